"""Scene-splitting speed: ours (decode once, downscaled in swscale) against PySceneDetect's CLI.

    .venv/bin/python benchmarks/bench_scenes.py --runs 5 --experiments   # as in BENCHMARKS.md
    .venv/bin/python benchmarks/bench_scenes.py --runs 3 --max-side 128 --files 1080p 1080p-cuts

Files (real footage, never committed):
- ``vtest``: OpenCV's vtest.avi (768x576, 10 fps, msmpeg4v3, 79.5 s), fetched by
  ``sfxmatch.testing.media`` from Debian's ``opencv-doc``.
- ``1080p``: the first 60 s of vtest upscaled to 1920x1080 H.264 (yuv420p, x264 ``medium``
  CRF 20, 10 fps as the source) by the ffmpeg CLI, cached beside the test media.
- ``1080p-cuts``: the same 60 s as six 10 s shots, each filtered differently, so five hard
  cuts (frames 100 to 500); x264 ``medium`` CRF 20 as well.

For every file, the runs are interleaved (each contender once, then again) so that load from
other processes hits every contender alike; the report is the median wall and CPU time of
``--runs`` runs, the speed as a multiple of real time (file duration / wall time), and
PySceneDetect's time over ours. Every contender of ours must find the same scenes, or the run
stops. Contenders:
- ``lib@N``: ``sfxmatch.scenes.detect_scenes(path, max_side=N)`` in this process: the quick
  scan, analysis decoding (``fast=True``: no in-loop deblocking, FAST_BILINEAR downscale), 8
  decoder threads. ``lib@128 every``: the same decoding every frame.
- ``cli@128``: ``python -m sfxmatch scenes VIDEO --json``, a new process like theirs, start-up
  included; ``cli@128 every`` with ``--scan every``.
- ``pyscenedetect``: ``scenedetect -i VIDEO detect-content``, its defaults (OpenCV backend,
  frames downscaled to 256 px wide by cv2.resize).
With ``--experiments``: decoder threads 1, 2 and 3 (3 is FFmpeg's own choice on 2 cores) for
the quick scan and 3 for every frame, full-quality decoding (``exact``: ``fast=False``) and
analysis decoding with AREA instead of FAST_BILINEAR (``fast+area``, patched in for the
measurement). A profile of one pass (decode only / + conversion to small RGB / + detection,
every frame) says where the time goes.
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
from sfxmatch.media import frames as media_frames
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


def _made_with_ffmpeg(name: str, arguments: list[str]) -> Path:
    """A benchmark file made once from vtest with the ffmpeg CLI and cached."""
    target = cache_root().parent / "bench" / name
    if target.is_file():
        return target
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise SystemExit(
            "the ffmpeg CLI is needed to make the 1080p files (apt-get install ffmpeg)"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.mp4")
    command = [ffmpeg, "-v", "error", "-y", "-i", str(media_path("vtest")), *arguments]
    command += ["-c:v", "libx264", "-preset", "medium", "-crf", "20", "-pix_fmt", "yuv420p"]
    print("making", target, "(about a minute)...", file=sys.stderr)
    subprocess.run([*command, "-an", str(partial)], check=True)
    partial.replace(target)
    return target


def vtest_1080p() -> Path:
    """The first 60 s of vtest upscaled to 1080p H.264: one long take, no cut."""
    return _made_with_ffmpeg("vtest_1080p_h264_60s.mp4", ["-t", "60", "-vf", "scale=1920:1080"])


CUT_FILTERS = ("null", "hue=h=150", "negate", "hflip,eq=brightness=0.25", "hue=s=0", "vflip")


def vtest_1080p_cuts() -> Path:
    """The same 60 s in six 10 s shots, each filtered differently (hue turned, negated,
    flipped, grey...): five hard cuts, at frames 100, 200, 300, 400 and 500. x264's defaults
    otherwise (it puts a keyframe at a cut it notices, as it does for any footage)."""
    chains = ";".join(
        f"[0:v]trim={10 * i}:{10 * (i + 1)},setpts=PTS-STARTPTS,{f}[s{i}]"
        for i, f in enumerate(CUT_FILTERS)
    )
    joined = "".join(f"[s{i}]" for i in range(len(CUT_FILTERS)))
    graph = f"{chains};{joined}concat=n={len(CUT_FILTERS)}:v=1:a=0,scale=1920:1080[v]"
    return _made_with_ffmpeg(
        "vtest_1080p_h264_60s_cuts.mp4", ["-filter_complex", graph, "-map", "[v]"]
    )


FILES: dict[str, Callable[[], Path]] = {
    "vtest": lambda: media_path("vtest"),
    "1080p": vtest_1080p,
    "1080p-cuts": vtest_1080p_cuts,
}


def timed_lib(
    path: Path, max_side: int, threads: int = 0, fast: bool = True, scan: str = "quick"
) -> tuple[float, float, tuple[int, ...]]:
    cpu, start = _cpu_self(), time.perf_counter()
    found = detect_scenes(path, max_side=max_side, threads=threads, fast=fast, scan=scan)  # type: ignore[arg-type]
    return time.perf_counter() - start, _cpu_self() - cpu, tuple(s.start_frame for s in found)


@contextlib.contextmanager
def _fast_interpolation(name: media_frames._Interpolation) -> Iterator[None]:
    """Experiment only: the swscale filter of media's analysis decoding."""
    real = media_frames._FAST_INTERPOLATION
    media_frames._FAST_INTERPOLATION = name
    try:
        yield
    finally:
        media_frames._FAST_INTERPOLATION = real


def timed_fast_area(path: Path, max_side: int) -> tuple[float, float, tuple[int, ...]]:
    # What FAST_BILINEAR buys over AREA once deblocking is skipped.
    with _fast_interpolation("AREA"):
        return timed_lib(path, max_side)


def timed_process(command: list[str]) -> tuple[float, float, tuple[int, ...]]:
    cpu, start = _cpu_children(), time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    wall, cpu = time.perf_counter() - start, _cpu_children() - cpu
    if done.returncode != 0:
        raise SystemExit(f"{command[0]} failed:\n{done.stderr[-2000:]}")
    if "--json" in command:
        return wall, cpu, tuple(s["start_frame"] for s in json.loads(done.stdout)["scenes"])
    return wall, cpu, ()


def profile(path: Path, max_side: int) -> dict[str, float]:
    """Wall seconds of one pass each: decode only; decode + RGB at max_side; full split (all
    three with analysis decoding, as ``detect_scenes``)."""
    start = time.perf_counter()
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        stream.codec_context.options = dict(media_frames._FAST_DECODER_OPTIONS)
        for _ in container.decode(stream):
            pass
    decode = time.perf_counter() - start
    start = time.perf_counter()
    for _ in media.iter_frames(path, max_side=max_side, fast=True):
        pass
    convert = time.perf_counter() - start
    full, _, _ = timed_lib(path, max_side, scan="every")
    return {"decode": decode, "decode+rgb": convert, "decode+rgb+detect": full}


def bench_file(name: str, path: Path, runs: int, sides: list[int], experiments: bool) -> dict:
    info = media.probe(path)
    assert info.video is not None
    duration = info.duration
    contenders: dict[str, Callable[[], tuple[float, float, tuple[int, ...]]]] = {
        f"lib@{side}": (lambda side=side: timed_lib(path, side)) for side in sides
    }
    side = DEFAULT_MAX_SIDE
    contenders[f"lib@{side} every"] = lambda: timed_lib(path, side, scan="every")
    if experiments:
        for threads in (1, 2, 3):
            contenders[f"lib@{side} thr={threads}"] = lambda threads=threads: timed_lib(
                path, side, threads
            )
        contenders[f"lib@{side} every thr=3"] = lambda: timed_lib(path, side, 3, scan="every")
        contenders[f"lib@{side} exact"] = lambda: timed_lib(path, side, fast=False)
        contenders[f"lib@{side} fast+area"] = lambda: timed_fast_area(path, side)
    command = [sys.executable, "-m", "sfxmatch", "scenes", str(path), "--json"]
    contenders[f"cli@{side}"] = lambda: timed_process(command)
    contenders[f"cli@{side} every"] = lambda: timed_process([*command, "--scan", "every"])
    contenders["pyscenedetect"] = lambda: timed_process(
        [str(BIN / "scenedetect"), "-i", str(path), "detect-content"]
    )
    samples: dict[str, list[tuple[float, float, int]]] = {k: [] for k in contenders}
    for run in range(runs):
        for key, contender in contenders.items():
            samples[key].append(contender())
        print(f"  {name}: run {run + 1}/{runs} done", file=sys.stderr)
    theirs = statistics.median(w for w, _, _ in samples["pyscenedetect"])
    theirs_cpu = statistics.median(c for _, c, _ in samples["pyscenedetect"])
    cuts = {key: values[0][2] for key, values in samples.items() if values[0][2]}
    if len(set(cuts.values())) != 1:  # every way of ours must find the same scenes
        raise SystemExit(f"{name}: the contenders disagree on the scenes: {cuts}")
    rows = {}
    for key, values in samples.items():
        wall = statistics.median(w for w, _, _ in values)
        rows[key] = {
            "wall_s": round(wall, 3),
            "cpu_s": round(statistics.median(c for _, c, _ in values), 3),
            "x_realtime": round(duration / wall, 1),
            "fps": round(info.video.frame_count / wall, 1) if info.video.frame_count else None,
            "vs_pyscenedetect": round(theirs / wall, 2),
            "vs_pyscenedetect_cpu": round(
                theirs_cpu / statistics.median(c for _, c, _ in values), 2
            ),
        }
    return {
        "file": name,
        "path": str(path),
        "size": f"{info.video.width}x{info.video.height}",
        "codec": info.video.codec,
        "fps": float(info.video.fps),
        "duration_s": round(duration, 2),
        "runs": runs,
        "scene_starts": list(next(iter(cuts.values()))),
        "results": rows,
        "profile": {k: round(v, 3) for k, v in profile(path, DEFAULT_MAX_SIDE).items()},
    }


def print_report(report: dict) -> None:
    print(
        f"\n{report['file']}: {report['size']} {report['codec']} {report['fps']:g} fps, "
        f"{report['duration_s']} s; median of {report['runs']} runs; scenes start at "
        f"frames {report['scene_starts']} (the same for every contender of ours)"
    )
    print(
        f"  {'contender':22}{'wall s':>8}{'cpu s':>8}{'x real':>8}{'fps':>8}{'vs PySD':>9}"
        f"{'CPU':>8}"
    )
    for key, row in report["results"].items():
        print(
            f"  {key:22}{row['wall_s']:8.2f}{row['cpu_s']:8.2f}{row['x_realtime']:8.1f}"
            f"{row['fps'] or 0:8.0f}{row['vs_pyscenedetect']:8.2f}x"
            f"{row['vs_pyscenedetect_cpu']:7.2f}x"
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
        help="also time decoder threads 1, 2 and 3 (FFmpeg's own choice on 2 cores), "
        "full-quality decoding and AREA downscaling",
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
