"""PE-AV's inputs from the frames and audio sfxmatch already decodes, as transformers makes them.

transformers' ``PeVideoVideoProcessor`` needs torchvision, which cannot run beside our torch,
so the video maths is redone here in plain torch; the audio steps follow
``PeAudioFeatureExtractor`` and transformers' reference audio loader. Tests prove both equal to
transformers' own processors on real footage and real sounds (``tests/test_pe_preprocess.py``).

* Frames: a squash resize of the whole picture (no crop) to the checkpoint's size, bilinear
  with antialiasing on uint8 pixels (torchvision's native uint8 kernel on CPU, its
  float-then-round path elsewhere), then ``(x - 255 * mean) / (255 * std)`` in float32 (the
  processor's fused rescale and normalise).
* Audio: mono as the mean of the channels, resampled to 48 kHz with soxr's high-quality
  mode and cut or zero-padded to ``ceil(n * 48000 / rate)`` samples (transformers' soundfile
  loader, identical to ``librosa.load``); then each sound reflect-padded to a multiple of the
  40 ms hop (1920 samples) and a batch zero-padded to its longest, with a padding mask.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class FrameSpec:
    """What ``video_preprocessor_config.json`` asks of a frame."""

    height: int
    width: int
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)


def frames_to_pixels(
    frames: np.ndarray | Sequence[np.ndarray],
    spec: FrameSpec,
    *,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """(N, H, W, 3) uint8 RGB frames -> (N, 3, height, width) float32 model input."""
    array = np.asarray(frames)
    if array.ndim != 4 or array.shape[-1] != 3 or array.dtype != np.uint8:
        raise ValueError(f"expected frames (N, H, W, 3) uint8, got {array.shape} {array.dtype}")
    pixels = torch.from_numpy(np.ascontiguousarray(array)).to(device).permute(0, 3, 1, 2)
    size = (spec.height, spec.width)
    if pixels.shape[0] and tuple(pixels.shape[-2:]) != size:
        if pixels.device.type == "cpu":
            pixels = F.interpolate(
                pixels, size=size, mode="bilinear", align_corners=False, antialias=True
            )
        else:  # no uint8 kernel off the CPU: torchvision interpolates floats, then rounds
            resized = F.interpolate(
                pixels.float(), size=size, mode="bilinear", align_corners=False, antialias=True
            )
            pixels = resized.round_().to(torch.uint8)
    mean = torch.tensor(spec.mean, device=pixels.device) * 255.0
    std = torch.tensor(spec.std, device=pixels.device) * 255.0
    out = pixels.to(torch.float32)
    return out.sub_(mean.view(-1, 1, 1)).div_(std.view(-1, 1, 1)).contiguous()


def prepare_audio(samples: np.ndarray, sample_rate: int, target_rate: int) -> np.ndarray:
    """A decoded sound ((samples,) or (channels, samples)) -> mono float32 at ``target_rate``,
    as transformers' reference loader makes it."""
    import soxr

    data = np.asarray(samples, np.float32)
    if data.ndim == 2:
        data = data.mean(axis=0) if data.shape[0] > 1 else data[0]
    if sample_rate != target_rate:
        count = math.ceil(data.shape[-1] * target_rate / sample_rate)
        data = soxr.resample(data, sample_rate, target_rate, quality="soxr_hq")
        data = np.pad(data, (0, max(0, count - len(data))))[:count]
    return np.ascontiguousarray(data, dtype=np.float32)


def _reflect_to_hop(wave: np.ndarray, hop: int) -> np.ndarray:
    short = len(wave) % hop
    return wave if short == 0 else np.pad(wave, (0, hop - short), mode="reflect")


def audio_batch(
    waveforms: Sequence[np.ndarray], hop: int, *, device: torch.device | str = "cpu"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mono float32 waveforms at the model's rate -> (input_values (B, 1, L), padding_mask
    (B, L) int32), as ``PeAudioFeatureExtractor`` pads a batch."""
    waves = [_reflect_to_hop(np.asarray(w, np.float32), hop) for w in waveforms]
    if any(w.ndim != 1 or w.size == 0 for w in waves):
        raise ValueError("expected non-empty mono waveforms")
    longest = max(len(w) for w in waves)
    values = np.zeros((len(waves), 1, longest), np.float32)
    mask = np.zeros((len(waves), longest), np.int32)
    for i, wave in enumerate(waves):
        values[i, 0, : len(wave)] = wave
        mask[i, : len(wave)] = 1
    return torch.from_numpy(values).to(device), torch.from_numpy(mask).to(device)
