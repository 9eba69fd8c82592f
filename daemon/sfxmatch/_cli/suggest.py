"""``sfxmatch suggest`` (the main job) and ``sfxmatch tune`` (AutoSync parameters)."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sfxmatch._cli.backend import add_mode_options, add_model_options, backend_for
from sfxmatch._cli.models import warn_about_model
from sfxmatch._cli.progress import running

if TYPE_CHECKING:
    from sfxmatch.suggestions import Edit, RenderRequest, Suggestions, SuggestOptions


def add_suggest(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "suggest",
        help="suggest, place and mix ambience and effects for a video",
        description="Split the video into scenes, pick ambience per scene and synced effects "
        "from your indexed libraries, and write a timeline, a mix, stems, a muxed video and a "
        "plot as asked.",
    )
    parser.add_argument("video", nargs="?", type=Path, help="video file")
    parser.add_argument(
        "--edit",
        type=Path,
        help="an editor's clip list instead of a video: Edit JSON (what the Resolve script "
        "sends), an .otio, a Premiere FCP7 .xml, or free Resolve's exports (.otio, .fcpxml "
        "1.8-1.11, .edl)",
    )
    parser.add_argument("--library", action="append", default=[], help="libraries (default: all)")
    out = parser.add_argument_group("outputs")
    out.add_argument("-o", "--output", type=Path, help="timeline: .otio or FCP7 .xml")
    out.add_argument(
        "--flavour",
        choices=("generic", "resolve", "premiere"),
        default="generic",
        help="timeline shaped for an editor's importer (default: generic)",
    )
    out.add_argument("--mix", type=Path, help="stereo mix WAV")
    out.add_argument("--stems", type=Path, metavar="DIR", help="one WAV per track into DIR")
    out.add_argument("--mux", type=Path, help="the video with the mix as its audio")
    out.add_argument("--plot", type=Path, help="PNG of similarity traces, intervals, cuts")
    out.add_argument("--json", action="store_true", help="print the suggestions as JSON")
    out.add_argument(
        "--progress",
        choices=("bar", "jsonl", "none"),
        default="bar",
        help="progress on stderr: a bar (terminal), JSON lines (for plugins) or none",
    )
    tuning = parser.add_argument_group("matching")
    tuning.add_argument("--top-k", type=int, default=5, help="candidates per slot (default 5)")
    tuning.add_argument(
        "--ambience-mode", choices=("vta", "va"), default="vta",
        help="ambience search: labels first (vta, default) or audio directly (va)",
    )  # fmt: skip
    tuning.add_argument(
        "--rule", choices=("report", "threshold", "hysteresis"), default="report",
        help="AutoSync interval rule (default: report)",
    )  # fmt: skip
    tuning.add_argument("--threshold", type=float, help="scene cut threshold")
    tuning.add_argument("--sync-t", type=float, default=0.1, help="AutoSync threshold t")
    tuning.add_argument("--sync-d", type=float, default=0.5, help="AutoSync stability d")
    tuning.add_argument("--target-lufs", type=float, default=-23.0, help="mix loudness")
    tuning.add_argument("--true-peak", type=float, default=-1.0, help="ceiling in dBTP")
    tuning.add_argument("--no-spatial", action="store_true", help="no pan/gain automation")
    tuning.add_argument(
        "--scan", choices=("auto", "full", "coarse"), default="auto",
        help="segments to embed: every one (full), or every --coarse-step-th and those "
        "between where a label's score moves or a cut lies (coarse); auto: coarse on a CPU",
    )  # fmt: skip
    tuning.add_argument(
        "--coarse-step", type=int, default=3, metavar="N",
        help="segments between coarse samples (default 3: 0.3 s, the shortest effect kept, "
        "so none can hide between two samples)",
    )  # fmt: skip
    tuning.add_argument(
        "--temperature", type=float,
        help="softmax temperature of label scores (default: the model's own)",
    )  # fmt: skip
    tuning.add_argument(
        "--preroll-frames", type=int, default=2, metavar="N",
        help="frames of an effect kept before its sync point (default 2); its earlier lead-in "
        "is trimmed through the clip's source in point",
    )  # fmt: skip
    parser.add_argument(
        "--edit-fps", metavar="RATE",
        help="the frame rate of an --edit EDL (EDLs do not state it; default: 29.97 when drop "
        "frame, else the first clip's own)",
    )  # fmt: skip
    parser.add_argument(
        "--keep-original-formats", action="store_true",
        help="point timelines at the library's own files even where an editor cannot import "
        "them (Ogg, Opus, FLAC); by default such sounds are conformed once into 48 kHz "
        "24-bit Broadcast WAV in the library's conform cache",
    )  # fmt: skip
    add_mode_options(parser)
    add_model_options(parser)
    parser.set_defaults(handler=run_suggest)

    tune = subparsers.add_parser(
        "tune",
        help="grid-search AutoSync parameters against annotations",
        description="Evaluate AutoSync rules and parameters on saved similarity traces (.npz "
        "with times, scores, labels) against annotations in `filename onset offset "
        "event_label` form, by event-based F1 and onset error.",
    )
    tune.add_argument("traces", type=Path, help=".npz file or folder of them")
    tune.add_argument("annotations", type=Path, help="annotation file (DCASE format)")
    tune.add_argument("--rule", choices=("report", "threshold", "hysteresis"), default="report")
    tune.add_argument("--t", default="0.05,0.1,0.2,0.3", help="comma-separated values of t")
    tune.add_argument("--d", default="0.25,0.5,1.0", help="values of d (report rule)")
    tune.add_argument("--max-gap", default="0.1,0.2,0.4", help="values of max_gap (s)")
    tune.add_argument("--min-duration", default="0.1,0.3,0.5", help="values of min_duration (s)")
    tune.add_argument("--top", type=int, default=10, help="rows to print")
    tune.add_argument("--json", action="store_true")
    tune.set_defaults(handler=run_tune)


def _options(args: argparse.Namespace) -> SuggestOptions:
    from sfxmatch.suggestions import SuggestOptions

    try:
        return SuggestOptions(
            libraries=tuple(args.library),
            top_k=args.top_k,
            ambience_mode=args.ambience_mode,
            rule=args.rule,
            threshold=args.threshold,
            sync_t=args.sync_t,
            sync_d=args.sync_d,
            spatial=not args.no_spatial,
            scan=args.scan,
            coarse_step=args.coarse_step,
            temperature=args.temperature,
            preroll_frames=args.preroll_frames,
            keep_original_formats=args.keep_original_formats,
        )
    except ValueError as exc:
        from sfxmatch.errors import ConfigError

        raise ConfigError(str(exc)) from None


def _request(args: argparse.Namespace) -> RenderRequest:
    from sfxmatch.suggestions import RenderRequest

    def text(p: Path | None) -> str | None:
        return str(p) if p is not None else None

    return RenderRequest(
        mix=text(args.mix),
        stems_dir=text(args.stems),
        mux=text(args.mux),
        timeline=text(args.output),
        flavour=args.flavour,
        plot=text(args.plot),
        target_lufs=args.target_lufs,
        true_peak_dbtp=args.true_peak,
    )


def load_edit(path: Path, fps: str | None = None) -> Edit:
    """An editor's clip list: Edit JSON (the Resolve script), OTIO, FCP7 XML, or what free
    Resolve exports (FCPXML 1.x, CMX 3600 EDL: sfxmatch.timeline.exchange; ``fps`` is an
    EDL's frame rate, which the file does not state)."""
    from sfxmatch.errors import MediaError, MissingFileError

    suffix = path.suffix.lower()
    if suffix == ".fcpxml":
        from sfxmatch.timeline.exchange import read_fcpxml

        return read_fcpxml(path)
    if suffix == ".edl":
        from sfxmatch.timeline.exchange import read_edl

        return read_edl(path, fps)

    if path.suffix.lower() == ".json":
        from sfxmatch.suggestions import edit_from_dict

        try:
            edit = edit_from_dict(json.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            raise MissingFileError(path) from None
        except (ValueError, KeyError, TypeError) as exc:
            raise MediaError(path, f"is not a valid edit ({exc})") from None
        if not edit.clips:
            raise MediaError(path, "holds no clips")
        return edit
    from sfxmatch.timeline import read_edit

    return read_edit(path)


def run_suggest(args: argparse.Namespace) -> int:
    from sfxmatch.errors import ConfigError
    from sfxmatch.suggestions import RenderResult

    if (args.video is None) == (args.edit is None):
        raise ConfigError("give a VIDEO or --edit FILE (one of them)")
    source: Any = load_edit(args.edit, args.edit_fps) if args.edit else args.video
    options = _options(args)
    request = _request(args)
    from sfxmatch.pipeline import check_render_request

    # Wrong output names fail now, not after a long suggest run.
    check_render_request(request, source if args.edit else None)
    wanted = any((request.mix, request.stems_dir, request.mux, request.timeline, request.plot))
    nothing = RenderResult(files=())
    _make_output_folders(request)
    with backend_for(args) as backend, running("suggest", style=args.progress) as work:
        suggestions = backend.suggest(source, options, progress=work.progress, cancel=work.cancel)
        result = (
            backend.render(suggestions, request, progress=work.progress, cancel=work.cancel)
            if wanted
            else nothing
        )
    if suggestions.meaningless:
        print(
            "sfxmatch: WARNING: made with RANDOM weights: these suggestions are MEANINGLESS",
            file=sys.stderr,
        )
    warn_about_model(suggestions.model_id.split("/", 1)[0], meaningless=False)
    if args.json:
        from sfxmatch.timeline.choices import payload  # plus every choice's clips (plugins)

        print(json.dumps(payload(suggestions), ensure_ascii=False))
        return 0
    _print_summary(suggestions)
    for what, path in result.files:
        print(f"wrote {what}: {path}")
    line = loudness_line(result)
    if line:
        print(line)
    return 0


def loudness_line(result: Any) -> str:
    """The mix's loudness for people: the numbers when measured, else why not ("" when
    nothing was mixed)."""
    note = f" ({result.loudness_note})" if result.loudness_note else ""
    lufs, peak = result.loudness_lufs, result.true_peak_dbtp
    if lufs is not None and math.isfinite(lufs):
        peak_text = f"{peak:.1f} dBTP" if peak is not None and math.isfinite(peak) else "none"
        return f"mix loudness {lufs:.1f} LUFS, true peak {peak_text}{note}"
    return f"mix loudness not measured{note}" if note else ""


def _make_output_folders(request: RenderRequest) -> None:
    """The daemon writes only into folders that exist: make them here, as the user."""
    from sfxmatch.errors import ConfigError

    targets = [request.mix, request.mux, request.timeline, request.plot]
    folders = [Path(t).parent for t in targets if t] + (
        [Path(request.stems_dir)] if request.stems_dir else []
    )
    for folder in folders:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"{folder}: cannot be made ({exc.strerror or exc})") from None


def _print_summary(s: Suggestions) -> None:
    print(f"{s.edit.name or 'edit'}: {len(s.scenes)} scene(s), {len(s.placements)} placement(s)")
    for scene in s.scenes:
        bed = scene.ambience[0].label if scene.ambience else "(no ambience in the library)"
        borrowed = (
            f" (kept from scene {scene.borrowed_from})" if scene.borrowed_from is not None else ""
        )
        print(f"  scene {scene.index}: {scene.start:7.2f}-{scene.end:7.2f} s  bed: {bed}{borrowed}")
        for e in scene.effects:
            sound = e.candidates[0].label if e.candidates else "-"
            sync = ""
            if e.candidates and e.spots and e.spots[0].sound_id == e.candidates[0].sound_id:
                c = e.candidates[0]
                sync = f", its event at {c.sync_point:.3f} s into it ({c.sync_source})"
            span = f"{e.start:7.2f}-{e.end:7.2f} s"
            print(f"    {span}  {e.label} ({e.confidence:.2f}) -> {sound}{sync}")


def run_tune(args: argparse.Namespace) -> int:
    from sfxmatch.errors import ConfigError
    from sfxmatch.match.tuning import run_tuning

    def values(text: str) -> list[float]:
        try:
            return [float(v) for v in text.split(",") if v.strip()]
        except ValueError:
            raise ConfigError(f"not a list of numbers: {text!r}") from None

    grid = {"t": values(args.t), "max_gap": values(args.max_gap)}
    grid["min_duration"] = values(args.min_duration)
    if args.rule == "report":
        grid["d"] = values(args.d)
    results = run_tuning(args.traces, args.annotations, args.rule, grid)
    rows = results[: args.top]
    if args.json:
        print(json.dumps([
            {"params": {k: getattr(r.params, k) for k in grid}, "f1": r.f1,
             "precision": r.precision, "recall": r.recall, "onset_error": r.onset_error,
             "offset_error": r.offset_error}
            for r in rows
        ], indent=2))  # fmt: skip
        return 0
    for r in rows:
        params = ", ".join(f"{k}={getattr(r.params, k):g}" for k in grid)
        print(f"F1 {r.f1:.3f}  P {r.precision:.3f}  R {r.recall:.3f}  onset err "
              f"{r.onset_error:.3f} s  ({params})")  # fmt: skip
    return 0
