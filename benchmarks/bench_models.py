r"""Every model at its real size, with seeded random weights (the arithmetic of the real thing):
0.1 s segments embedded per second, 10 s audio clips per second, peak memory, and FLOPs per
segment and per clip counted from the configuration.

FLOPs are counted by torch's FlopCounterMode on the meta device (no weights, no memory): the
matrix products and convolutions of one segment (PE-AV: one frame through the frame encoder,
the temporal transformer and the head; ImageBind: two frames through its vision tower) and of
one 10 s sound. Speeds go through the Encoder protocol from decoded uint8 frames and 48/16 kHz
waveforms, as the pipeline calls it (preprocessing included), medians of ``--runs`` timed
calls after one untimed call. Peak memory is a fresh process's peak RSS (VmHWM) after loading
the model and embedding a segment, a clip and a label.

PE-AV models are first written once as random-weight checkpoints in the hub's layout
(``--checkpoints``, 3.4 to 8.9 GB each), then loaded through the path a downloaded checkpoint
takes: what a user's memory and speed are.

CPU (what BENCHMARKS.md reports from this 2-core machine):
    .venv/bin/python benchmarks/bench_models.py --device cpu --runs 3 --json /tmp/models.json
GPU:
    .venv/bin/python benchmarks/bench_models.py --device cuda --batch 64 --runs 5
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

MODELS = ("pe-av-small", "pe-av-base", "pe-av-large", "imagebind-huge")
CLIP_SECONDS = 10.0


def count_flops(name: str) -> dict[str, float]:
    """GFLOP of one segment and one 10 s clip (PE-AV: and of one frame), from the
    configuration."""
    import torch
    from sfxmatch.embed.registry import get_model
    from torch.utils.flop_counter import FlopCounterMode

    spec = get_model(name)
    out: dict[str, float] = {}
    with torch.device("meta"), torch.no_grad():
        if spec.family == "pe-av":
            from sfxmatch.embed.pe.config import published_config
            from sfxmatch.embed.pe.encoder import quiet_transformers
            from sfxmatch.embed.pe.frame_encoder import use_frame_encoder

            with quiet_transformers():
                from transformers import PeAudioVideoModel

                model = PeAudioVideoModel(use_frame_encoder(published_config(name)))
            model.requires_grad_(False)
            video = model.video_model
            steps = {
                "frame": lambda: video.video_encoder.embedder.vision_model(
                    torch.zeros(1, 3, spec.frame_size, spec.frame_size)
                ),
                "segment": lambda: video.video_head(
                    video.video_encoder(
                        pixel_values_videos=torch.zeros(1, 1, 3, spec.frame_size, spec.frame_size)
                    ).pooler_output
                ),
                "clip": lambda: model.audio_model.audio_head(
                    model.audio_model.audio_encoder(
                        input_values=torch.zeros(1, 1, int(CLIP_SECONDS * spec.audio_rate))
                    ).pooler_output
                ),
            }
        else:
            from sfxmatch.embed.imagebind.config import get_config
            from sfxmatch.embed.imagebind.model import build_model

            config = get_config(name)
            model = build_model(config, device="meta").requires_grad_(False)
            frames = (1, 3, config.video_frames, config.image_size, config.image_size)
            steps = {
                "segment": lambda: model("vision", torch.zeros(frames)),
                # ImageBind embeds a sound as 3 clips of 2 s (upstream's recipe), any length.
                "clip": lambda: model("audio", torch.zeros(3, 1, 128, config.audio_target_len)),
            }
        for key, step in steps.items():
            with FlopCounterMode(display=False) as counter:
                step()
            out[f"gflop_per_{key}"] = round(counter.get_total_flops() / 1e9, 2)
    return out


def write_checkpoint(name: str, folder: Path) -> Path:
    """A random-weight PE-AV checkpoint at ``name``'s published size, in a subprocess (the
    model is built in float32 and written; nothing stays in this process)."""
    if (folder / "model.safetensors").is_file():
        return folder
    code = f"""
import json
from pathlib import Path
import torch
from sfxmatch.embed.pe.config import FRAME_SIZE, published_config
from sfxmatch.embed.pe.encoder import quiet_transformers
from sfxmatch.embed.pe.frame_encoder import use_frame_encoder
from sfxmatch.embed.pe.tiny import processor_files, tiny_tokenizer
folder = Path({str(folder)!r})
with quiet_transformers():
    from transformers import PeAudioVideoModel
    config = published_config({name!r})
    torch.manual_seed(0)
    PeAudioVideoModel(use_frame_encoder(config)).save_pretrained(folder)  # every tower
(folder / "config.json").write_text(config.to_json_string())
tiny_tokenizer().save(str(folder / "tokenizer.json"))
(folder / "tokenizer_config.json").write_text(json.dumps({{
    "tokenizer_class": "PreTrainedTokenizerFast", "cls_token": "[CLS]", "sep_token": "[SEP]",
    "pad_token": "[PAD]", "mask_token": "[MASK]", "unk_token": "[UNK]"}}))
for n, content in processor_files(FRAME_SIZE).items():
    (folder / n).write_text(json.dumps(content))
"""
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-c", code], check=True, timeout=3600)
    return folder


def load_args(name: str, checkpoints: Path) -> dict[str, Any]:
    from sfxmatch.embed.registry import get_model

    if get_model(name).family == "pe-av":
        return {"weights_path": str(write_checkpoint(name, checkpoints / name))}
    return {"weights": "random"}


def time_encoder(
    name: str, device: str, batch: int, runs: int, load: dict[str, Any]
) -> dict[str, float]:
    """Segments and clips per second through the Encoder protocol, real-size weights."""
    from sfxmatch.embed.encoder import load_encoder

    encoder = load_encoder(name, device=device, batch_size=batch, progress=None, **load)
    spec = encoder.spec
    rng = np.random.default_rng(0)
    side = spec.decode_side
    shape = (batch, spec.segment_frames, side * 9 // 16, side, 3)  # a 16:9 picture, decoded

    def segments() -> None:  # new pixels every call: PE-AV remembers frames it has seen
        encoder.embed_video_segments(rng.integers(0, 256, shape, dtype=np.uint8))

    clips = [
        (0.1 * rng.standard_normal(int(CLIP_SECONDS * spec.audio_rate))).astype(np.float32)
        for _ in range(batch)
    ]
    labels = [f"label number {i}" for i in range(batch)]
    out: dict[str, float] = {}
    for key, call, count in (
        ("segments_per_s", segments, batch),
        ("clips_per_s", lambda: encoder.embed_audio(clips, spec.audio_rate), batch),
        ("labels_per_s", lambda: encoder.embed_text(labels, space="video"), batch),
    ):
        call()  # warm-up: lazy init, allocator, thread pools
        times = []
        for _ in range(runs):
            began = time.perf_counter()
            call()
            times.append(time.perf_counter() - began)
        out[key] = round(count / statistics.median(times), 4)
        out[f"{key}_runs_s"] = [round(t, 3) for t in times]  # type: ignore[assignment]
    return out


def peak_memory(name: str, device: str, load: dict[str, Any]) -> int:
    """Peak RSS (bytes) of a fresh process that loads the model and embeds one of each."""
    code = f"""
import numpy as np
from sfxmatch.embed.encoder import load_encoder
e = load_encoder({name!r}, device={device!r}, batch_size=1, progress=None, **{load!r})
s = e.spec
e.embed_video_segments(np.zeros((1, s.segment_frames, 378, 672, 3), np.uint8))
e.embed_audio([np.zeros(int({CLIP_SECONDS} * s.audio_rate), np.float32)], s.audio_rate)
e.embed_text(["a door slams"], space="video")
print(next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1])
"""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=1800
    )
    return int(done.stdout.strip().splitlines()[-1]) * 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=1, help="segments, clips, labels per call")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--no-speed", action="store_true")
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--checkpoints", type=Path, default=Path("/tmp/sfxmatch-bench-checkpoints"),
        help="where the random PE-AV checkpoints are written (kept for later runs)",
    )  # fmt: skip
    args = parser.parse_args()
    os.environ.setdefault("SFXMATCH_CACHE_DIR", "/tmp/sfxmatch-bench-models-cache")
    import torch

    results: dict[str, Any] = {"device": args.device, "threads": torch.get_num_threads()}
    for name in args.models.split(","):
        row: dict[str, Any] = count_flops(name)
        load = load_args(name, args.checkpoints) if not (args.no_speed and args.no_memory) else {}
        if not args.no_memory:  # first, in a fresh process, while this one holds no model
            row["peak_rss_gib"] = round(peak_memory(name, args.device, load) / 2**30, 2)
        if not args.no_speed:
            row.update(time_encoder(name, args.device, args.batch, args.runs, load))
            gc.collect()
        results[name] = row
        print(name, json.dumps(row), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
