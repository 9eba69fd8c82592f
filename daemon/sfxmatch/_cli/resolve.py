"""``sfxmatch resolve-clips``: the Resolve script's appends in frames (JSON in, JSON out).

The script asks this after it has imported the sounds, when Resolve has told it each pool
item's rate and length and which spans of the audio tracks are taken; the rules that turn the
picked clips into frames and tracks are :mod:`sfxmatch.timeline.resolve_frames`. No model,
library or daemon is involved: it answers at once.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_resolve_clips(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "resolve-clips",
        help="frame-ready clips for the Resolve script (JSON in, JSON out)",
        description="Read the Resolve script's request (the picked choices, the timeline's "
        "rate and start frame, each imported sound's rate and length, the spans other clips "
        "take on the audio tracks) and print every clip to append: track, record frame, "
        "source frames.",
    )
    parser.add_argument("request", help="request JSON file, or - for standard input")
    parser.set_defaults(handler=run_resolve_clips)


def run_resolve_clips(args: argparse.Namespace) -> int:
    from sfxmatch.errors import TimelineError
    from sfxmatch.timeline.resolve_frames import answer

    try:
        if args.request == "-":
            request = json.load(sys.stdin)
        else:
            request = json.loads(Path(args.request).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise TimelineError(
            f"cannot read the resolve-clips request {args.request}: {exc}"
        ) from None
    if not isinstance(request, dict):
        raise TimelineError("a resolve-clips request is a JSON object")
    print(json.dumps(answer(request), ensure_ascii=False))
    return 0
