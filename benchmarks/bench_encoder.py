r"""Encoder throughput: 0.1 s video segments and 2 s audio clips embedded per second.

The HUGE configuration with seeded RANDOM weights (built on "meta", then materialised one
tensor at a time): no checkpoint is needed and the arithmetic is the real model's. Timed is
the model on preprocessed inputs already on the device (``ImageBindEncoder.embed_tensors``),
which is what the FLOP ceiling bounds; ``--end-to-end`` also times segments from uint8
frames through preprocessing on the device, at the largest batch size.

CPU, bounded (what BENCHMARKS.md reports from a 2-core machine):
    .venv/bin/python benchmarks/bench_encoder.py --device cpu --batch-sizes 1,4 \
        --dtypes fp32,bf16 --compile no --runs 3 --warmup 0 --point-budget 100 \
        --budget 900 --memory-batch 1 --json /tmp/bench_encoder_cpu.json
GPU (full sweep):
    .venv/bin/python benchmarks/bench_encoder.py --device cuda \
        --batch-sizes 1,2,4,8,16,32,64,128,256 --dtypes fp32,bf16 --compile both --end-to-end

CPU, torch.compile against eager in the same run (both on the same machine load):
    .venv/bin/python benchmarks/bench_encoder.py --device cpu --batch-sizes 1,2,4 \
        --dtypes fp32,bf16 --compile both --runs 3 --warmup 1 --point-budget 180 \
        --no-memory --json /tmp/bench_encoder_cpu_compile.json

Medians over ``--runs`` timed runs after ``--warmup`` untimed ones. The first call of each
point is timed on its own (``first_call_s``): with ``--compile`` it is the compilation of
that shape, which is always kept out of the medians (one warm-up call is forced). Before
each compiled point dynamo's caches are reset, so every point compiles its own graph (a
sweep has more shapes than dynamo's recompile limit of 8, past which it would silently run
eager), and Inductor's on-disk cache is a fresh directory per run (compile times are cold)
unless TORCHINDUCTOR_CACHE_DIR is set. ``--point-budget`` also guards before a point: its
cost is estimated from the same series' previous batch (per-item time x batch x calls, plus
the last compile time) and a point that would not fit is skipped and reported as skipped.
``peak_rss_bytes`` per point is the process's VmHWM after that point, reset before it
(``/proc/self/clear_refs``; Linux). Peak memory is also measured in a fresh subprocess for
the model in bf16 with only the three towers loaded: CPU peak RSS (VmHWM) and, on CUDA,
``torch.cuda.max_memory_allocated``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

# Cold compile times: Inductor's on-disk caches in a fresh directory unless one is given.
if "TORCHINDUCTOR_CACHE_DIR" not in os.environ:
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="bench_encoder_inductor_")

import torch
from sfxmatch.embed.encoder import load_encoder
from sfxmatch.embed.imagebind.config import ImageBindConfig, get_config
from sfxmatch.embed.imagebind.encoder import ImageBindEncoder

H100_BF16_DENSE_TFLOPS = 989.0  # NVIDIA H100 SXM, dense BF16 tensor-core peak
GOAL_SEGMENTS_PER_S = 1500.0


# --- FLOP arithmetic --------------------------------------------------------------------------


def tower_flops(tokens: int, width: int, blocks: int, mlp: int, extra_keys: int = 0) -> dict:
    """Multiply-adds x 2 for one input through a pre-LN ViT trunk.

    Per block and token: QKV (3 w^2) + output projection (w^2) + MLP (2 w mlp) weights, so
    2 * params * tokens; attention adds QK^T and AV, 2 * 2 * tokens * keys * width.
    LayerNorm, softmax and GELU are a few FLOPs per element: left out (< 0.5 %).
    """
    linear = 2 * (4 * width * width + 2 * width * mlp) * tokens * blocks
    attention = 2 * 2 * tokens * (tokens + extra_keys) * width * blocks
    return {"linear": linear, "attention": attention}


def vision_flops(c: ImageBindConfig) -> dict:
    kt, kh, kw = c.kernel_size
    patches = c.vision_num_tokens - 1
    parts = tower_flops(
        c.vision_num_tokens,
        c.vision_embed_dim,
        c.vision_num_blocks,
        c.mlp_ratio * c.vision_embed_dim,
    )
    parts["patch_embed"] = 2 * (3 * kt * kh * kw) * c.vision_embed_dim * patches
    parts["head"] = 2 * c.vision_embed_dim * c.out_embed_dim
    parts["total"] = sum(parts.values())
    return parts


def audio_flops(c: ImageBindConfig) -> dict:
    patches = c.audio_num_tokens - 1
    parts = tower_flops(
        c.audio_num_tokens,
        c.audio_embed_dim,
        c.audio_num_blocks,
        c.mlp_ratio * c.audio_embed_dim,
        extra_keys=1,  # the learned bias_k / bias_v token
    )
    parts["patch_embed"] = 2 * (c.audio_kernel_size**2) * c.audio_embed_dim * patches
    parts["head"] = 2 * c.audio_embed_dim * c.out_embed_dim
    parts["total"] = sum(parts.values())
    return parts


def flop_report(c: ImageBindConfig) -> dict:
    v, a = vision_flops(c), audio_flops(c)
    ceiling = H100_BF16_DENSE_TFLOPS * 1e12 / v["total"]
    return {
        "vision_tokens": c.vision_num_tokens,
        "vision_gflop_per_segment": {k: round(x / 1e9, 3) for k, x in v.items()},
        "audio_tokens": c.audio_num_tokens,
        "audio_gflop_per_clip": {k: round(x / 1e9, 3) for k, x in a.items()},
        "h100_bf16_dense_tflops": H100_BF16_DENSE_TFLOPS,
        "h100_segments_per_s_ceiling": round(ceiling),
        "h100_audio_clips_per_s_ceiling": round(H100_BF16_DENSE_TFLOPS * 1e12 / a["total"]),
        "goal_segments_per_s": GOAL_SEGMENTS_PER_S,
        "goal_fraction_of_peak": round(GOAL_SEGMENTS_PER_S / ceiling, 3),
    }


# --- timing ---------------------------------------------------------------------------------


@dataclass
class Point:
    modality: str  # "video" (0.1 s segments), "audio" (2 s clips), "video-e2e"
    dtype: str
    compiled: bool
    batch: int
    runs: list[float]
    items_per_s: float | None
    achieved_tflops: float | None
    first_call_s: float | None = None  # compile + one call when compiled
    compile_s: float | None = None  # first_call_s - median (compiled only)
    peak_rss_bytes: int | None = None  # VmHWM after the point, reset before it
    skipped: str | None = None  # why the point was not measured


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _inputs(c: ImageBindConfig, modality: str, batch: int, device: torch.device) -> torch.Tensor:
    generator = torch.Generator().manual_seed(batch)
    if modality == "video":
        shape = (batch, 3, c.video_frames, c.image_size, c.image_size)
    else:
        shape = (batch, 1, c.audio_num_mel_bins, c.audio_target_len)
    return torch.randn(shape, generator=generator).to(device)


def time_point(
    encoder: ImageBindEncoder,
    modality: str,
    batch: int,
    runs: int,
    warmup: int,
    deadline: float,
    point_budget: float = float("inf"),
    first: list[float] | None = None,
) -> list[float]:
    """Seconds per call, up to ``runs`` of them; fewer (at least one) when the sweep's
    ``deadline`` or this point's ``point_budget`` seconds would be passed. The first call's
    seconds are appended to ``first`` when given (a warm-up call, or the first timed one
    when ``warmup`` is 0)."""
    device = encoder.device
    c = encoder.config
    if modality == "video-e2e":
        rng = np.random.default_rng(batch)
        frames = rng.integers(0, 256, (batch, 2, 360, 640, 3), dtype=np.uint8)  # 640x360 video

        def call() -> None:
            encoder.embed_video_segments(frames)
    else:
        x = _inputs(c, modality, batch, device)
        name = "vision" if modality == "video" else "audio"

        def call() -> None:
            encoder.embed_tensors(name, x)

    began = time.perf_counter()
    for _ in range(warmup):
        start = time.perf_counter()
        call()
        _sync(device)
        if first is not None and not first:
            first.append(time.perf_counter() - start)
    times: list[float] = []
    while len(times) < runs:
        start = time.perf_counter()
        call()
        _sync(device)
        times.append(time.perf_counter() - start)
        if first is not None and not first:
            first.append(times[-1])
        # Stop (keeping at least one run) when another run would pass either limit.
        now = time.perf_counter()
        if now + times[-1] > deadline or now - began + times[-1] > point_budget:
            break
    return times


def run_sweep(args: argparse.Namespace) -> list[Point]:
    config = get_config(args.config)
    flops = {"video": vision_flops(config)["total"], "audio": audio_flops(config)["total"]}
    flops["video-e2e"] = flops["video"]
    modalities = [m.strip() for m in args.modalities.split(",")]
    batches = [int(b) for b in args.batch_sizes.split(",")]
    compiles = {"no": [False], "yes": [True], "both": [False, True]}[args.compile]
    start = time.perf_counter()
    points: list[Point] = []
    for dtype in args.dtypes.split(","):
        for compiled in compiles:
            encoder = load_encoder(
                args.config,
                device=args.device,
                dtype=dtype,
                weights="random",
                batch_size=max(batches),
                compile=args.backend if compiled else False,
                progress=None,
            )
            # Small batches of every modality first, so a spent budget cuts the big ones.
            plan = [(m, b) for b in batches for m in modalities]
            if args.end_to_end:
                plan.append(("video-e2e", max(batches)))
            # Per modality: (per-item seconds, last compile seconds) of the previous batch.
            seen: dict[str, tuple[float, float]] = {}
            warmup = max(args.warmup, 1) if compiled else args.warmup
            for modality, batch in plan:
                deadline = start + args.budget
                now = time.perf_counter()
                skipped = None
                if now > deadline:
                    skipped = "sweep budget spent"
                elif modality in seen:
                    per_item, compile_s = seen[modality]
                    estimate = per_item * batch * (warmup + 1) + compile_s
                    if estimate > min(args.point_budget, deadline - now):
                        skipped = f"estimated {estimate:.0f} s > budget"
                if skipped:
                    point = Point(modality, dtype, compiled, batch, [], None, None, skipped=skipped)
                    points.append(point)
                    print(f"skipping {modality} {dtype} b={batch}: {skipped}", file=sys.stderr)
                    continue
                if modality == "video-e2e":
                    encoder.batch_size = batch
                if compiled:
                    torch._dynamo.reset()  # one graph per point; no recompile limit to hit
                _reset_peak_rss()
                first: list[float] = []
                times = time_point(
                    encoder,
                    modality,
                    batch,
                    args.runs,
                    warmup,
                    deadline,
                    args.point_budget,
                    first,
                )
                median = statistics.median(times)
                rate = batch / median
                compile_s = max(first[0] - median, 0.0) if compiled else None
                seen[modality] = (median / batch, compile_s or 0.0)
                point = Point(
                    modality,
                    dtype,
                    compiled,
                    batch,
                    [round(t, 4) for t in times],
                    round(rate, 4),
                    round(rate * flops[modality] / 1e12, 3),
                    first_call_s=round(first[0], 3),
                    compile_s=None if compile_s is None else round(compile_s, 3),
                    peak_rss_bytes=_peak_rss_bytes(),
                )
                points.append(point)
                print(json.dumps(asdict(point)), file=sys.stderr, flush=True)
            del encoder
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
    return points


# --- peak memory (fresh process) ------------------------------------------------------------


def _reset_peak_rss() -> None:
    """Reset this process's VmHWM to its current RSS (Linux >= 4.0; elsewhere a no-op)."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def _peak_rss_bytes() -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource

    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def memory_child(config: str, device: str | None, batch: int | None) -> dict:
    """Build the model in bf16 on ``device``, run one video and one audio batch, report peaks."""
    encoder = load_encoder(config, device=device, dtype="bf16", weights="random", progress=None)
    if batch is None:
        batch = 64 if encoder.device.type == "cuda" else 4
    params = sum(p.numel() for p in encoder.model.parameters())
    loaded = _peak_rss_bytes()
    cuda = encoder.device.type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats(encoder.device)
        weights = torch.cuda.memory_allocated(encoder.device)
    for modality in ("video", "audio"):
        x = _inputs(encoder.config, modality, batch, encoder.device)
        encoder.embed_tensors("vision" if modality == "video" else "audio", x)
        _sync(encoder.device)
    report = {
        "config": config,
        "device": str(encoder.device),
        "dtype": "bf16",
        "batch": batch,
        "parameters": params,
        "peak_rss_after_load_bytes": loaded,
        "peak_rss_bytes": _peak_rss_bytes(),
    }
    if cuda:
        report["cuda_weights_bytes"] = weights
        report["cuda_max_memory_allocated_bytes"] = torch.cuda.max_memory_allocated(encoder.device)
    return report


def measure_memory(args: argparse.Namespace) -> dict:
    command = [
        sys.executable,
        __file__,
        "--memory-child",
        "--config",
        args.config,
    ]
    if args.memory_batch:
        command += ["--memory-batch", str(args.memory_batch)]
    if args.device:
        command += ["--device", args.device]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- main -----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="imagebind-huge")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:N (default: auto)")
    parser.add_argument("--batch-sizes", default="1,4,16")
    parser.add_argument("--dtypes", default="fp32,bf16")
    parser.add_argument("--compile", choices=["no", "yes", "both"], default="no")
    parser.add_argument(
        "--backend", default="inductor", help="torch.compile backend (inductor, aot_eager, ...)"
    )
    parser.add_argument("--modalities", default="video,audio")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--budget", type=float, default=3600.0, help="seconds for the sweep")
    parser.add_argument(
        "--point-budget", type=float, default=float("inf"), help="seconds per measured point"
    )
    parser.add_argument("--end-to-end", action="store_true")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument(
        "--memory-batch", type=int, default=None, help="default: 64 on CUDA, 4 on CPU"
    )
    parser.add_argument("--memory-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path, default=None, help="write all results here")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.memory_child:
        print(json.dumps(memory_child(args.config, args.device, args.memory_batch)))
        return 0

    config = get_config(args.config)
    flops = flop_report(config)
    print(json.dumps(flops, indent=1), file=sys.stderr)
    load_start = os.getloadavg()
    points = run_sweep(args)
    load_end = os.getloadavg()
    memory = None if args.no_memory else measure_memory(args)
    device_name = platform.processor() or platform.machine()
    if torch.cuda.is_available() and (args.device or "cuda").startswith("cuda"):
        device_name = torch.cuda.get_device_name()
    result = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "device": device_name,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "backend": args.backend,
        "loadavg_start": [round(x, 2) for x in load_start],
        "loadavg_end": [round(x, 2) for x in load_end],
        "flops": flops,
        "points": [asdict(p) for p in points],
        "memory": memory,
    }
    print_table(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0


def print_table(result: dict) -> None:
    flops = result["flops"]
    ceiling = flops["h100_segments_per_s_ceiling"]
    print(f"device: {result['device']}  torch {result['torch']}  threads {result['threads']}")
    print(
        f"load average (1/5/15 min) at start {result['loadavg_start']}, "
        f"at end {result['loadavg_end']}; compile backend {result['backend']}"
    )
    print(
        f"FLOPs: {flops['vision_gflop_per_segment']['total']} GFLOP/segment, "
        f"{flops['audio_gflop_per_clip']['total']} GFLOP/audio clip; H100 bf16 ceiling "
        f"{ceiling} segments/s"
    )
    print(
        "| input | dtype | compile | batch | median s/batch | items/s | TFLOP/s "
        "| of H100 bf16 peak | runs | first call s | compile s | peak RSS GiB |"
    )
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for p in result["points"]:
        head = f"| {p['modality']} | {p['dtype']} | {'yes' if p['compiled'] else 'no'} | "
        head += f"{p['batch']} | "
        if p.get("skipped"):
            print(head + f"skipped: {p['skipped']} | | | | | | | |")
            continue
        median = statistics.median(p["runs"])
        compile_s = "" if p.get("compile_s") is None else f"{p['compile_s']:.1f}"
        rss = p.get("peak_rss_bytes")
        print(
            head + f"{median:.4g} | {p['items_per_s']:.4g} | "
            f"{p['achieved_tflops']:.3f} | "
            f"{p['achieved_tflops'] / flops['h100_bf16_dense_tflops']:.2%} | {len(p['runs'])} | "
            f"{p.get('first_call_s') or 0:.3g} | {compile_s} | "
            f"{'' if rss is None else f'{rss / 2**30:.2f}'} |"
        )
    measured = {
        (p["modality"], p["dtype"], p["batch"], p["compiled"]): p["items_per_s"]
        for p in result["points"]
        if not p.get("skipped")
    }
    if any((*k[:3], False) in measured for k in measured if k[3]):
        print("| input | dtype | batch | eager items/s | compiled items/s | compiled/eager |")
        print("|---|---|---:|---:|---:|---:|")
        for (modality, dtype, batch), compiled in sorted(
            (k[:3], v) for k, v in measured.items() if k[3] and (*k[:3], False) in measured
        ):
            eager = measured[(modality, dtype, batch, False)]
            print(
                f"| {modality} | {dtype} | {batch} | {eager:.4g} | {compiled:.4g} | "
                f"{compiled / eager:.2f} |"
            )
    if result["memory"]:
        m = result["memory"]
        line = f"memory ({m['device']}, bf16, batch {m['batch']}): {m['parameters'] / 1e6:.0f} M "
        line += f"parameters, peak RSS {m['peak_rss_bytes'] / 2**30:.2f} GiB "
        line += f"(after load {m['peak_rss_after_load_bytes'] / 2**30:.2f} GiB)"
        if "cuda_max_memory_allocated_bytes" in m:
            line += f", CUDA max allocated {m['cuda_max_memory_allocated_bytes'] / 2**30:.2f} GiB"
        print(line)


if __name__ == "__main__":
    raise SystemExit(main())
