"""Scene-splitting speed: ours (decode once, downscaled in swscale) against PySceneDetect's CLI.

    .venv/bin/python benchmarks/bench_scenes.py --runs 5 --experiments   # as in BENCHMARKS.md
    .venv/bin/python benchmarks/bench_scenes.py --runs 3 --max-side 128 256 --files 1080p

Files (real footage, never committed):
- ``vtest``: OpenCV's vtest.avi (768x576, 10 fps, msmpeg4v3, 79.5 s), fetched by
  ``sfxmatch.testing.media`` from Debian's ``opencv-doc``.
- ``1080p``: the first 60 s of vtest upscaled to 1920x1080 H.264 (yuv420p, x264 ``medium``
  CRF 20, 10 fps as the source) by the ffmpeg CLI, cached beside the test media.

For every file, the runs are interleaved (ours at each ``--max-side``, our CLI, theirs, then
again) so that load from other processes hits every contender alike; the report is the median
wall time of ``--runs`` runs, the speed as a multiple of real time (file duration / wall
time), and ours / theirs. Contenders:
- ``lib@N``: ``sfxmatch.scenes.detect_scenes(path, max_side=N)`` in this process (analysis
  decoding, ``fast=True``: no in-loop deblocking, FAST_BILINEAR downscale).
- ``cli@128``: ``python -m sfxmatch scenes VIDEO --json`` (default size), a new process like
  theirs, start-up included.
- ``pyscenedetect``: ``scenedetect -i VIDEO detect-content``, its defaults (OpenCV backend,
  frames downscaled to 256 px wide by cv2.resize).
With ``--experiments``: decoder threads 1 and 2 (default: FFmpeg's choice), full-quality
decoding (``lib@128 exact``: ``fast=False``, deblocking and AREA downscale) and analysis
decoding with AREA instead of FAST_BILINEAR (``lib@128 fast+area``, patched in for the
measurement). A profile of one pass (decode only / + conversion to small RGB / + detection)
says where our time goes. CPU time is reported beside wall time: it is steadier on a shared
machine.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import av
from sfxmatch import media
from sfxmatch.scenes import DEFAULT_MAX_SIDE, detect_scenes
from sfxmatch.testing.media import cache_root, media_path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _cpu_children() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _cpu_self() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def vtest_1080p() -> Path:
    """vtest upscaled to 1080p H.264, made once with the ffmpeg CLI and cached."""
    target = cache_root().parent / "bench" / "vtest_1080p_h264_60s.mp4"
    if target.is_file():
        return target
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise SystemExit("the ffmpeg CLI is needed to make the 1080p file (apt-get install ffmpeg)")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.mp4")
    command = [
        ffmpeg, "-v", "error", "-y", "-i", str(media_path("vtest")), "-t", "60",
        "-vf", "scale=1920:1080", "-c:v", "libx264", "-preset", "medium", "-crf", "20",
        "-pix_fmt", "yuv420p", "-an", str(partial),
    ]  # fmt: skip
    print("making", target, "(about a minute)...", file=sys.stderr)
    subprocess.run(command, check=True)
    partial.replace(target)
    return target


FILES: dict[str, Callable[[], Path]] = {
    "vtest": lambda: media_path("vtest"),
    "1080p": vtest_1080p,
}


def timed_lib(
    path: Path, max_side: int, threads: int = 0, fast: bool = True
) -> tuple[float, float, int]:
    cpu, start = _cpu_self(), time.perf_counter()
    found = detect_scenes(path, max_side=max_side, threads=threads, fast=fast)
    return time.perf_counter() - start, _cpu_self() - cpu, len(found)


@contextlib.contextmanager
def _fast_interpolation(name: media._Interpolation) -> Iterator[None]:
    """Experiment only: the swscale filter of media's analysis decoding."""
    real = media._FAST_INTERPOLATION
    media._FAST_INTERPOLATION = name
    try:
        yield
    finally:
        media._FAST_INTERPOLATION = real


def timed_fast_area(path: Path, max_side: int) -> tuple[float, float, int]:
    # What FAST_BILINEAR buys over AREA once deblocking is skipped.
    with _fast_interpolation("AREA"):
        return timed_lib(path, max_side)


def timed_process(command: list[str]) -> tuple[float, float, int]:
    cpu, start = _cpu_children(), time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    wall, cpu = time.perf_counter() - start, _cpu_children() - cpu
    if done.returncode != 0:
        raise SystemExit(f"{command[0]} failed:\n{done.stderr[-2000:]}")
    scenes = len(json.loads(done.stdout)["scenes"]) if "--json" in command else -1
    return wall, cpu, scenes


def profile(path: Path, max_side: int) -> dict[str, float]:
    """Wall seconds of one pass each: decode only; decode + RGB at max_side; full split (all
    three with analysis decoding, as ``detect_scenes``)."""
    start = time.perf_counter()
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        stream.codec_context.options = dict(media._FAST_DECODER_OPTIONS)
        for _ in container.decode(stream):
            pass
    decode = time.perf_counter() - start
    start = time.perf_counter()
    for _ in media.iter_frames(path, max_side=max_side, fast=True):
        pass
    convert = time.perf_counter() - start
    full, _, _ = timed_lib(path, max_side)
    return {"decode": decode, "decode+rgb": convert, "decode+rgb+detect": full}


def bench_file(name: str, path: Path, runs: int, sides: list[int], experiments: bool) -> dict:
    info = media.probe(path)
    assert info.video is not None
    duration = info.duration
    contenders: dict[str, Callable[[], tuple[float, float, int]]] = {
        f"lib@{side}": (lambda side=side: timed_lib(path, side)) for side in sides
    }
    if experiments:
        for threads in (1, 2):
            contenders[f"lib@{DEFAULT_MAX_SIDE} thr={threads}"] = lambda threads=threads: timed_lib(
                path, DEFAULT_MAX_SIDE, threads
            )
        contenders[f"lib@{DEFAULT_MAX_SIDE} exact"] = lambda: timed_lib(
            path, DEFAULT_MAX_SIDE, fast=False
        )
        contenders[f"lib@{DEFAULT_MAX_SIDE} fast+area"] = lambda: timed_fast_area(
            path, DEFAULT_MAX_SIDE
        )
    contenders[f"cli@{DEFAULT_MAX_SIDE}"] = lambda: timed_process(
        [sys.executable, "-m", "sfxmatch", "scenes", str(path), "--json"]
    )
    contenders["pyscenedetect"] = lambda: timed_process(
        [str(BIN / "scenedetect"), "-i", str(path), "detect-content"]
    )
    samples: dict[str, list[tuple[float, float, int]]] = {k: [] for k in contenders}
    for run in range(runs):
        for key, contender in contenders.items():
            samples[key].append(contender())
        print(f"  {name}: run {run + 1}/{runs} done", file=sys.stderr)
    theirs = statistics.median(w for w, _, _ in samples["pyscenedetect"])
    rows = {}
    for key, values in samples.items():
        wall = statistics.median(w for w, _, _ in values)
        rows[key] = {
            "wall_s": round(wall, 3),
            "cpu_s": round(statistics.median(c for _, c, _ in values), 3),
            "x_realtime": round(duration / wall, 1),
            "fps": round(info.video.frame_count / wall, 1) if info.video.frame_count else None,
            "vs_pyscenedetect": round(theirs / wall, 2),
            "scenes": values[0][2],
        }
    return {
        "file": name,
        "path": str(path),
        "size": f"{info.video.width}x{info.video.height}",
        "codec": info.video.codec,
        "fps": float(info.video.fps),
        "duration_s": round(duration, 2),
        "runs": runs,
        "results": rows,
        "profile": {k: round(v, 3) for k, v in profile(path, DEFAULT_MAX_SIDE).items()},
    }


def print_report(report: dict) -> None:
    print(
        f"\n{report['file']}: {report['size']} {report['codec']} {report['fps']:g} fps, "
        f"{report['duration_s']} s; median of {report['runs']} runs"
    )
    print(f"  {'contender':20}{'wall s':>8}{'cpu s':>8}{'x real':>8}{'fps':>8}{'vs PySD':>9}")
    for key, row in report["results"].items():
        print(
            f"  {key:20}{row['wall_s']:8.2f}{row['cpu_s']:8.2f}{row['x_realtime']:8.1f}"
            f"{row['fps'] or 0:8.0f}{row['vs_pyscenedetect']:8.2f}x"
        )
    prof = report["profile"]
    print(
        f"  profile @{DEFAULT_MAX_SIDE}: decode {prof['decode']:.2f} s, +rgb "
        f"{prof['decode+rgb']:.2f} s, +detect {prof['decode+rgb+detect']:.2f} s"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", nargs="+", choices=list(FILES), default=list(FILES))
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--max-side", nargs="+", type=int, default=[96, 128, 256])
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument(
        "--experiments",
        action="store_true",
        help="also time decoder threads 1 and 2, full-quality decoding and AREA downscaling",
    )
    args = parser.parse_args()
    print(f"cores: {os.cpu_count()}, load average before: {os.getloadavg()}", file=sys.stderr)
    reports = []
    for name in args.files:
        report = bench_file(name, FILES[name](), args.runs, args.max_side, args.experiments)
        print_report(report)
        reports.append(report)
    print(f"\nload average after: {tuple(round(x, 2) for x in os.getloadavg())}")
    if args.json:
        args.json.write_text(json.dumps(reports, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
