"""Per-stage times of ``Pipeline.suggest`` + ``render`` on a 60 s 1080p video with cuts.

Stages: decode, scenes, embed (segments, scenes, labels), score, sync, search, locate
(emitter maps of the placed effects), place (from ``Suggester.timings``), then mix
(render_mix + WAV) and export (OTIO). Each run starts with an empty embedding cache so every
vector is computed; the library is indexed once before the runs. Prints a Markdown table of
medians over ``--runs`` runs, the segments the scan embedded, and the GPU command.

    .venv/bin/python benchmarks/bench_suggest.py            # CPU, tiny model, 3 runs
    # a real-size model with random weights (the real arithmetic, no checkpoint needed):
    .venv/bin/python benchmarks/bench_suggest.py --model pe-av-small --random-weights --runs 1
    .venv/bin/python benchmarks/bench_suggest.py --model pe-av-large --random-weights \
        --device cuda --dtype bf16
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

STAGES = (
    "decode", "scenes", "embed", "score", "sync", "search", "locate", "place", "mix", "export"
)  # fmt: skip
GPU_COMMAND = (
    ".venv/bin/python benchmarks/bench_suggest.py --model pe-av-large --random-weights "
    "--device cuda --dtype bf16"
)


def make_video(path: Path, seconds: float, size: tuple[int, int]) -> Path:
    from sfxmatch.testing import synth

    if path.is_file():
        return path
    fps = 25
    frames = round(seconds * fps)
    lengths = [150, 40, 260, 90, 200, 120, 300, 60]  # 6 s, 1.6 s, ... (short scenes too)
    shots: list[int] = []
    while sum(shots) < frames:
        shots.append(lengths[len(shots) % len(lengths)])
    shots[-1] -= sum(shots) - frames
    if shots[-1] < 2:
        shots[-2] += shots.pop()
    synth.make_cut_video(path, size=size, fps=fps, shot_lengths=shots)
    return path


def build_library(pipeline: object, root: Path) -> None:
    from sfxmatch.testing.media import media_path

    beds = root / "beds"
    beds.mkdir(parents=True, exist_ok=True)
    shutil.copy(media_path("acoustic_scene"), beds / "street ambience.wav")
    pipeline.library_add(media_path("ovos"), "ovos")  # type: ignore[attr-defined]
    pipeline.library_add(beds, "beds", kind_overrides=[("*", "ambience")])  # type: ignore[attr-defined]
    pipeline.library_index()  # type: ignore[attr-defined]


def one_run(
    root: Path, data: Path, model: str, video: Path, run: int, weights: str | None, scan: str
) -> dict[str, float]:
    from sfxmatch.config import Settings
    from sfxmatch.pipeline import Pipeline
    from sfxmatch.suggest import edit_for_video
    from sfxmatch.suggestions import RenderRequest, SuggestOptions

    settings = Settings.from_env()
    settings = Settings(
        cache_dir=root / f"cache-{run}",
        data_dir=data,
        imagebind_checkpoint=settings.imagebind_checkpoint,
        weights=settings.weights,
        device=settings.device,
        dtype=settings.dtype,
    )
    with Pipeline(settings, model=model, weights=weights) as pipeline:  # type: ignore[arg-type]
        began = time.perf_counter()
        pipeline.load_model()
        load = time.perf_counter() - began
        edit = edit_for_video(video)
        options = SuggestOptions(scan=scan)  # type: ignore[arg-type]
        suggester = pipeline.suggester(options)
        began = time.perf_counter()
        suggestions = suggester.run(edit)
        times = dict(suggester.timings)
        times["suggest total"] = time.perf_counter() - began
        out = root / f"out-{run}"
        began = time.perf_counter()
        pipeline.render(suggestions, RenderRequest(mix=str(out / "mix.wav")))
        times["mix"] = time.perf_counter() - began
        began = time.perf_counter()
        pipeline.render(suggestions, RenderRequest(timeline=str(out / "t.otio")))
        times["export"] = time.perf_counter() - began
        times["model load"] = load
        times["segments embedded"] = float(suggester.scan_counts[0])
        times["segments"] = float(suggester.scan_counts[1])
        times["placements"] = float(len(suggestions.placements))
        times["scenes_found"] = float(len(suggestions.scenes))
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="imagebind-tiny")
    parser.add_argument(
        "--random-weights", action="store_true", help="seeded random weights at the real size"
    )
    parser.add_argument("--scan", default="auto", choices=("auto", "full", "coarse"))
    parser.add_argument("--device", default=None, help="cpu, cuda (default: automatic)")
    parser.add_argument("--dtype", default=None, help="fp32, bf16, fp16 (default: automatic)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--size", default="1920x1080")
    parser.add_argument("--work", type=Path, default=None, help="keep files here (reused)")
    args = parser.parse_args()
    if args.device:
        os.environ["SFXMATCH_DEVICE"] = args.device
    if args.dtype:
        os.environ["SFXMATCH_DTYPE"] = args.dtype
    weights = "random" if args.random_weights else None
    root = args.work or Path(tempfile.mkdtemp(prefix="bench-suggest-"))
    root.mkdir(parents=True, exist_ok=True)
    width, height = (int(v) for v in args.size.split("x"))
    began = time.perf_counter()
    video = make_video(
        root / f"cuts_{args.seconds:g}s_{args.size}.mp4", args.seconds, (width, height)
    )
    print(f"video {video.name} ready in {time.perf_counter() - began:.1f} s")

    from sfxmatch.config import Settings
    from sfxmatch.pipeline import Pipeline

    data = root / f"data-{args.model}"
    index_settings = Settings(cache_dir=root / "cache-index", data_dir=data)
    with Pipeline(index_settings, model=args.model, weights=weights) as p:  # type: ignore[arg-type]
        if not p.libraries():
            began = time.perf_counter()
            build_library(p, root)
            print(f"library indexed in {time.perf_counter() - began:.1f} s")
    runs = []
    for run in range(args.runs):
        shutil.rmtree(root / f"cache-{run}", ignore_errors=True)
        runs.append(one_run(root, data, args.model, video, run, weights, args.scan))
        print(f"run {run + 1}: suggest {runs[-1]['suggest total']:.1f} s")
    rows = [*STAGES, "suggest total", "model load"]
    print(f"\n{args.model}, {args.seconds:g} s {args.size} 25 fps, medians of {args.runs} runs")
    print(
        f"({int(runs[0]['scenes_found'])} scenes, {int(runs[0]['placements'])} placements, "
        f"{int(runs[0]['segments embedded'])} of {int(runs[0]['segments'])} segments embedded)\n"
    )
    print("| stage | median s | runs (s) |")
    print("|---|---:|---|")
    for stage in rows:
        values = [r.get(stage, 0.0) for r in runs]
        shown = ", ".join(f"{v:.2f}" for v in values)
        print(f"| {stage} | {statistics.median(values):.2f} | {shown} |")
    print(f"\nOn a GPU:\n    {GPU_COMMAND}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
