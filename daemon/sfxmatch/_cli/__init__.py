"""The ``sfxmatch`` command line: parses arguments and calls library functions, nothing more.

Each subcommand is one ``_add_<name>`` function registered in ``_SUBCOMMANDS``; later
commands (library, suggest, daemon) plug in the same way. Errors print one line and exit
with the code ``EXIT_CODES`` gives their class, the same whether the work ran here or on a
daemon (the client raises the daemon's classes): 2 for what the user can fix, 130 for
Ctrl-C and cancelled work, 1 for an unexpected failure inside the daemon.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from sfxmatch import __version__
from sfxmatch.errors import Cancelled, InternalError, SfxmatchError

PROG = "sfxmatch"
EXIT_INTERNAL = 1  # what Python exits with for an uncaught exception here
EXIT_USER_ERROR = 2  # argparse uses 2 for usage errors too
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what shells report for Ctrl-C

# The one class -> exit code table, looked up along the error's class hierarchy.
EXIT_CODES: dict[type[BaseException], int] = {
    KeyboardInterrupt: EXIT_INTERRUPTED,
    Cancelled: EXIT_INTERRUPTED,
    InternalError: EXIT_INTERNAL,
    SfxmatchError: EXIT_USER_ERROR,
}


def exit_code(error: BaseException) -> int:
    """The exit code for ``error`` (``EXIT_CODES``; 1 for a class it does not list)."""
    for cls in type(error).__mro__:
        if cls in EXIT_CODES:
            return EXIT_CODES[cls]
    return EXIT_INTERNAL


Handler = Callable[[argparse.Namespace], int]


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0: {text}")
    return value


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more: {text}")
    return value


# --- scenes -------------------------------------------------------------------------------


def _add_scenes(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from sfxmatch import scenes  # PyAV and OpenCV: not for commands that only call a daemon

    parser = subparsers.add_parser(
        "scenes",
        help="split a video into scenes",
        description="Split a video into scenes (PySceneDetect) and list them.",
    )
    parser.add_argument("video", type=Path, help="video file")
    parser.add_argument(
        "--detector",
        choices=scenes.DETECTORS,
        default="content",
        help="content: fixed threshold on frame change (default); adaptive: change relative "
        "to neighbouring frames, steadier under fast camera motion",
    )
    parser.add_argument(
        "--threshold",
        type=_positive_float,
        help="cut threshold (default: "
        + ", ".join(f"{k} {v:g}" for k, v in scenes.DEFAULT_THRESHOLDS.items())
        + ")",
    )
    parser.add_argument(
        "--min-scene-len",
        type=_non_negative_float,
        default=scenes.DEFAULT_MIN_SCENE_LEN,
        metavar="SECONDS",
        help="shortest scene in seconds, the last one excepted (default: %(default)s)",
    )
    parser.add_argument(
        "--max-side",
        type=int,
        default=scenes.DEFAULT_MAX_SIDE,
        metavar="PIXELS",
        help="analyse frames downscaled to this longest side (default: %(default)s)",
    )
    parser.add_argument(
        "--scan",
        choices=scenes.SCAN_MODES,
        default="quick",
        help="quick: decode the frames others are predicted from, and the rest only where a "
        "cut could hide (the same cuts, faster on most H.264/HEVC; default); every: decode "
        "and compare every frame",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(handler=_run_scenes)


def _run_scenes(args: argparse.Namespace) -> int:
    from sfxmatch import scenes
    from sfxmatch._cli.progress import running

    with running(f"scenes {args.video.name}") as work:
        found = scenes.detect_scenes(
            args.video,
            detector=args.detector,
            threshold=args.threshold,
            min_scene_len=args.min_scene_len,
            max_side=args.max_side,
            scan=args.scan,
            progress=work.seconds if work.shows_bar else None,
        )
    threshold = args.threshold or scenes.DEFAULT_THRESHOLDS[args.detector]
    if args.json:
        document = {
            "file": str(args.video),
            "detector": args.detector,
            "threshold": threshold,
            "min_scene_len": args.min_scene_len,
            "scenes": [
                {
                    "index": s.index,
                    "start": round(s.start, 6),
                    "end": round(s.end, 6),
                    "start_timecode": scenes.format_timecode(s.start),
                    "end_timecode": scenes.format_timecode(s.end),
                    "start_frame": s.start_frame,
                    "end_frame": s.end_frame,
                }
                for s in found
            ],
        }
        print(json.dumps(document, indent=2, ensure_ascii=False))
        return 0
    print(
        f"{args.video}: {len(found)} scene{'s' * (len(found) != 1)} "
        f"({args.detector} detector, threshold {threshold:g}, "
        f"min length {args.min_scene_len:g} s)"
    )
    header = ("#", "start s", "end s", "start", "end", "frames", "first", "last")
    rows = [
        (
            str(s.index),
            f"{s.start:.3f}",
            f"{s.end:.3f}",
            scenes.format_timecode(s.start),
            scenes.format_timecode(s.end),
            str(s.frame_count),
            str(s.start_frame),
            str(s.end_frame - 1),
        )
        for s in found
    ]
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        print("  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True)))
    return 0


# --- entry point --------------------------------------------------------------------------


def _add_library(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from sfxmatch._cli.library import add_library

    add_library(subparsers)


def _add_suggest(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from sfxmatch._cli.suggest import add_suggest

    add_suggest(subparsers)


def _add_daemon(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from sfxmatch._cli.daemon import add_daemon

    add_daemon(subparsers)


def _add_models(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from sfxmatch._cli.models import add_models

    add_models(subparsers)


def _add_resolve_clips(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from sfxmatch._cli.resolve import add_resolve_clips

    add_resolve_clips(subparsers)


_SUBCOMMANDS: tuple[Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None], ...] = (
    _add_scenes,
    _add_library,
    _add_suggest,
    _add_daemon,
    _add_models,
    _add_resolve_clips,
)


def build_parser() -> argparse.ArgumentParser:
    """The full parser, subcommands included."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Suggest and place ambience and sound effects for video from your own "
        "sound library.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    for add in _SUBCOMMANDS:
        add(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except SfxmatchError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return exit_code(error)
    except KeyboardInterrupt as interrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return exit_code(interrupt)
    except BrokenPipeError:
        # Output piped into `head` and closed early: not an error. Point stdout at devnull
        # so the interpreter's final flush does not complain either.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
