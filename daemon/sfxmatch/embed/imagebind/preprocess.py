"""ImageBind's input preprocessing in plain torch, matching upstream's ``imagebind.data``.

Upstream builds its inputs with torchvision (images), pytorchvideo (video clips) and
torchaudio (resampling, Kaldi filterbanks), none of which can be installed next to a modern
torch. This module recomputes the same numbers from the published formulas, in float32 torch
(float64 where upstream's reference is exact integer arithmetic), so it runs on any device.

Per-path resize, as upstream does it:
- still images: Pillow's antialiased bicubic (a = -0.5) with its 8-bit fixed-point
  arithmetic and uint8 rounding after each pass, then torchvision's centre crop (offsets
  rounded half to even);
- video (scene clips and our 0.1 s segments): pytorchvideo's ShortSideScale, i.e.
  ``torch.nn.functional.interpolate(mode="bilinear", align_corners=False)`` with no
  antialiasing, then pytorchvideo's uniform crop (offsets rounded up).

Clip sampling follows pytorchvideo's ConstantClipsPerVideoSampler at the commit upstream
ImageBind pins (starts ``k * (duration - clip) / (clips - 1)``, so the last clip ends at the
end; the PyPI release 0.1.5 divided by ``clips`` instead). A sound or scene shorter than a clip
gives ``clips`` identical clips covering all of it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction
from functools import lru_cache
from typing import Final, Literal

import numpy as np
import torch
import torch.nn.functional as F

from sfxmatch.embed.values import sample_window_starts

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
IMAGE_SIZE = 224

VIDEO_CLIP_DURATION = 2
VIDEO_CLIPS_PER_VIDEO = 5
FRAMES_PER_CLIP = 2
SPATIAL_CROPS: Final = 3

AUDIO_SAMPLE_RATE = 16000
AUDIO_NUM_MEL_BINS = 128
AUDIO_TARGET_LENGTH = 204
AUDIO_CLIP_DURATION = 2
AUDIO_CLIPS_PER_VIDEO = 3
AUDIO_MEAN = -4.268
AUDIO_STD = 9.138

Device = torch.device | str | None

# Pillow resamples 8-bit images with 22-bit fixed-point coefficients (32 - 8 - 2 bits).
_PIL_PRECISION_BITS = 22
# Float pixels held at once in the video path (bounds peak memory): 256 MiB.
_VIDEO_CHUNK_FLOATS = 64 << 20
# Audio windows turned into filterbanks at once.
_AUDIO_CHUNK = 64


# --------------------------------------------------------------------------- clip sampling


def clip_timepoints(
    duration: float, clip_duration: float = VIDEO_CLIP_DURATION, clips: int = VIDEO_CLIPS_PER_VIDEO
) -> list[tuple[Fraction, Fraction]]:
    """(start, end) in seconds, exact fractions, of ``clips`` evenly spaced clips.

    Mirrors upstream: the slack ``duration - clip_duration`` is taken in float arithmetic and
    then made exact; starts are multiples of ``slack / (clips - 1)``. Ends may pass the end of
    a short input; consumers cut there.
    """
    if clips < 1:
        raise ValueError("clips must be at least 1")
    slack = Fraction(max(duration - clip_duration, 0))
    step = slack / max(clips - 1, 1)
    length = Fraction(clip_duration)
    return [(step * k, step * k + length) for k in range(clips)]


# --------------------------------------------------------------------------- vision helpers


def _to_tensor(data: np.ndarray | torch.Tensor, device: Device) -> torch.Tensor:
    tensor = torch.from_numpy(np.ascontiguousarray(data)) if isinstance(data, np.ndarray) else data
    return tensor.to(device) if device is not None else tensor


def _check_rgb_uint8(tensor: torch.Tensor, leading: int) -> None:
    if tensor.dtype != torch.uint8:
        raise ValueError(f"expected uint8 RGB pixels, got {tensor.dtype}")
    if tensor.ndim != leading + 3 or tensor.shape[-1] != 3:
        raise ValueError(
            f"expected {leading} leading dims then (H, W, 3), got {tuple(tensor.shape)}"
        )
    if tensor.shape[-2] < 1 or tensor.shape[-3] < 1:
        raise ValueError("empty image")


def _normalise_channels(x: torch.Tensor, channel_dim: int) -> torch.Tensor:
    shape = [1] * x.ndim
    shape[channel_dim] = 3
    mean = torch.tensor(CLIP_MEAN, dtype=x.dtype, device=x.device).view(shape)
    std = torch.tensor(CLIP_STD, dtype=x.dtype, device=x.device).view(shape)
    return (x - mean) / std


# --------------------------------------------------------------------------- still images


def _pil_bicubic(x: float) -> float:
    # Keys' cubic with a = -0.5, in Pillow's operation order (bit-exact coefficients).
    a = -0.5
    x = abs(x)
    if x < 1.0:
        return ((a + 2.0) * x - (a + 3.0)) * x * x + 1
    if x < 2.0:
        return (((x - 5) * x + 8) * x - 4) * a
    return 0.0


@lru_cache(maxsize=64)
def _pil_coefficients(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray]:
    """First input index and fixed-point weights of each output pixel, as Pillow makes them."""
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support = 2.0 * filterscale  # bicubic reaches 2 pixels, stretched when shrinking
    inverse = 1.0 / filterscale
    ksize = math.ceil(support) * 2 + 1
    firsts = np.zeros(out_size, dtype=np.int64)
    weights = np.zeros((out_size, ksize), dtype=np.int64)
    for xx in range(out_size):
        center = (xx + 0.5) * scale
        xmin = max(int(center - support + 0.5), 0)
        count = min(int(center + support + 0.5), in_size) - xmin
        taps = [_pil_bicubic((x + xmin - center + 0.5) * inverse) for x in range(count)]
        total = 0.0
        for w in taps:
            total += w
        for x, w in enumerate(taps):
            k = w / total if total != 0.0 else w
            # Rounded half away from zero, as C's truncating cast of k * 2^22 +- 0.5.
            weights[xx, x] = int(k * (1 << _PIL_PRECISION_BITS) + (0.5 if k >= 0 else -0.5))
        firsts[xx] = xmin
    return firsts, weights


def _pil_resample_last_axis(x: torch.Tensor, out_size: int, keep: slice) -> torch.Tensor:
    """One Pillow pass along the last axis of uint8-valued float64 data, rounded to uint8.

    Only the outputs in ``keep`` are computed (each depends on its own taps alone). The sums
    are integers below 2^53, so float64 gives Pillow's int32 results exactly.
    """
    in_size = x.shape[-1]
    firsts, weights = _pil_coefficients(in_size, out_size)
    first = torch.from_numpy(firsts[keep]).to(x.device)
    taps = torch.from_numpy(weights[keep]).to(device=x.device, dtype=torch.float64)
    acc = torch.zeros((*x.shape[:-1], len(first)), dtype=torch.float64, device=x.device)
    for k in range(taps.shape[1]):
        # Past a row's last tap the weight is zero, so a clamped index is harmless.
        index = (first + k).clamp_(max=in_size - 1)
        acc += x[..., index] * taps[:, k]
    half = float(1 << (_PIL_PRECISION_BITS - 1))
    return torch.floor((acc + half) / float(1 << _PIL_PRECISION_BITS)).clamp_(0, 255)


def _pil_resize(
    image: torch.Tensor,
    height: int,
    width: int,
    rows: slice | None = None,
    columns: slice | None = None,
    *,
    pillow13_order: bool = False,
) -> torch.Tensor:
    """Pillow ``Image.resize(BICUBIC)`` of a (3, H, W) uint8-valued float64 tensor, then
    the given rows and columns of the result (computing only those).

    Pillow up to 12 always resamples rows (horizontal pass) first, as when ImageBind was
    built; Pillow 13 goes vertical first when the height shrinks by more than twice as many
    pixels as the width (``pillow13_order``). Only the uint8 rounding in between differs.
    """
    rows = rows or slice(0, height)
    columns = columns or slice(0, width)
    in_h, in_w = image.shape[-2:]

    def vertical(x: torch.Tensor) -> torch.Tensor:
        if in_h == height:  # Pillow skips a pass that changes nothing
            return x[..., rows, :]
        return _pil_resample_last_axis(x.transpose(-1, -2), height, rows).transpose(-1, -2)

    def horizontal(x: torch.Tensor) -> torch.Tensor:
        if in_w == width:
            return x[..., columns]
        return _pil_resample_last_axis(x, width, columns)

    shrink = in_h - height
    if pillow13_order and shrink > 0 and shrink > 2 * (in_w - width):
        return horizontal(vertical(image))
    return vertical(horizontal(image))


def resized_image_size(height: int, width: int, size: int = IMAGE_SIZE) -> tuple[int, int]:
    """torchvision ``Resize(size)``: shorter side to ``size``, longer side truncated."""
    if width <= height:
        return int(size * height / width), size
    return size, int(size * width / height)


def image_tensor(
    image: np.ndarray | torch.Tensor, *, pillow13_order: bool = False, device: Device = None
) -> torch.Tensor:
    """Upstream's image transform of one (H, W, 3) uint8 RGB image -> (3, 224, 224) float32.

    Resize(224, bicubic) as Pillow computes it (bit-exact; pass order of Pillow <= 12 unless
    ``pillow13_order``), CenterCrop(224), /255, CLIP normalisation.
    """
    pixels = _to_tensor(image, device)
    _check_rgb_uint8(pixels, leading=0)
    height, width = pixels.shape[0], pixels.shape[1]
    new_h, new_w = resized_image_size(height, width)
    top = round((new_h - IMAGE_SIZE) / 2.0)
    left = round((new_w - IMAGE_SIZE) / 2.0)
    chw = pixels.permute(2, 0, 1).to(torch.float64)
    rows, columns = slice(top, top + IMAGE_SIZE), slice(left, left + IMAGE_SIZE)
    crop = _pil_resize(chw, new_h, new_w, rows, columns, pillow13_order=pillow13_order)
    return _normalise_channels(crop.to(torch.float32) / 255.0, channel_dim=0)


# --------------------------------------------------------------------------- video


def short_side_size(height: int, width: int, size: int = IMAGE_SIZE) -> tuple[int, int]:
    """pytorchvideo ``ShortSideScale(size)``: shorter side to ``size``, longer side floored."""
    if width < height:
        return math.floor(height / width * size), size
    return size, math.floor(width / height * size)


def _crop_offsets(height: int, width: int, spatial_index: int) -> tuple[int, int]:
    """pytorchvideo's uniform crop: 0/1/2 = start/centre/end along the longer side."""
    top = math.ceil((height - IMAGE_SIZE) / 2)
    left = math.ceil((width - IMAGE_SIZE) / 2)
    if height > width:
        top = {0: 0, 1: top, 2: height - IMAGE_SIZE}[spatial_index]
    else:
        left = {0: 0, 1: left, 2: width - IMAGE_SIZE}[spatial_index]
    return top, left


def _scaled_clips(clips: torch.Tensor) -> torch.Tensor:
    """(B, T, H, W, 3) uint8 -> (B, 3, T, h, w) float32: /255, bilinear short side, normalise.

    Same operation order as upstream; interpolation sees each clip as (C, T, H, W), i.e.
    colour channels as the batch and frames as the channels.
    """
    batch, frames, height, width, _ = clips.shape
    new_h, new_w = short_side_size(height, width)
    x = clips.permute(0, 4, 1, 2, 3).to(torch.float32) / 255.0
    x = x.reshape(batch * 3, frames, height, width)
    x = F.interpolate(x, size=(new_h, new_w), mode="bilinear", align_corners=False)
    x = x.reshape(batch, 3, frames, new_h, new_w)
    return _normalise_channels(x, channel_dim=1)


def _clip_crops(clips: torch.Tensor, spatial_indices: Sequence[int]) -> torch.Tensor:
    """(B, T, H, W, 3) uint8 -> (B * len(spatial_indices), 3, T, 224, 224), crops per clip."""
    out = []
    chunk = max(1, _VIDEO_CHUNK_FLOATS // max(1, clips[0].numel()))
    for start in range(0, clips.shape[0], chunk):
        scaled = _scaled_clips(clips[start : start + chunk])
        height, width = scaled.shape[-2:]
        crops = []
        for index in spatial_indices:
            top, left = _crop_offsets(height, width, index)
            crops.append(scaled[..., top : top + IMAGE_SIZE, left : left + IMAGE_SIZE])
        # Clip-major order: clip 0's crops, then clip 1's...
        out.append(torch.stack(crops, dim=1).flatten(0, 1))
    return torch.cat(out)


def frames_to_segment_clip(
    frames: np.ndarray | torch.Tensor, *, device: Device = None
) -> torch.Tensor:
    """Model input for our short video segments: (N, T, H, W, 3) uint8 -> (N, 3, T, 224, 224).

    Each segment is one clip of its frames (T = 2 for ImageBind) through upstream's video
    transform with the centre crop only. A single (T, H, W, 3) segment gives (3, T, 224, 224).
    """
    pixels = _to_tensor(frames, device)
    single = pixels.ndim == 4
    if single:
        pixels = pixels.unsqueeze(0)
    _check_rgb_uint8(pixels, leading=2)
    if pixels.shape[0] == 0:
        raise ValueError("no segments")
    out = _clip_crops(pixels, spatial_indices=(1,))
    return out[0] if single else out


def scene_clips(
    frames: Sequence[np.ndarray] | np.ndarray | torch.Tensor,
    times: Sequence[float] | np.ndarray,
    start: float,
    end: float,
    *,
    clip_duration: float = VIDEO_CLIP_DURATION,
    clips: int = VIDEO_CLIPS_PER_VIDEO,
    frames_per_clip: int = FRAMES_PER_CLIP,
    spatial_crops: Literal[1, 3] = SPATIAL_CROPS,
    device: Device = None,
) -> torch.Tensor:
    """Upstream's whole-video input for the scene [start, end): (clips * crops, 3, T, 224, 224).

    ``frames`` are (H, W, 3) uint8 RGB images shown at ``times`` (seconds, same clock as
    start/end), e.g. decoded at a fixed rate. The scene plays the part of upstream's video:
    a clip [a, b) takes the frames with ``a <= t - start < b`` (decord's
    ``ceil(fps * a) .. ceil(fps * b)`` index rule for frames at k / fps; a frame within
    1 us of a bound counts as on it, where upstream's float product decides by rounding), then
    ``frames_per_clip`` of them at ``linspace(0, n - 1)``, then the video transform and
    the 3 spatial crops (start, centre, end of the longer side) of each clip, clip-major.
    A clip that holds no frame (upstream would fail) uses the frame on screen at its start.
    """
    if spatial_crops not in (1, 3):
        raise ValueError("spatial_crops must be 1 or 3")
    if end <= start:
        raise ValueError("empty scene")
    stamps = np.asarray(times, dtype=np.float64)
    if stamps.ndim != 1 or len(stamps) != len(frames):
        raise ValueError("times must hold one time per frame")
    eps = 1e-6  # tolerance for times computed as k / rate
    relative = stamps - start
    inside = np.flatnonzero((relative >= -eps) & (relative < end - start - eps))
    if len(inside) == 0:
        raise ValueError("no frame inside the scene")

    picked: list[int] = []
    for clip_start, clip_end in clip_timepoints(end - start, clip_duration, clips):
        a, b = float(clip_start), float(clip_end)
        chosen = inside[(relative[inside] >= a - eps) & (relative[inside] < b - eps)]
        if len(chosen) == 0:
            before = inside[relative[inside] <= a + eps]
            chosen = before[-1:] if len(before) else inside[:1]
        spread = torch.linspace(0, len(chosen) - 1, frames_per_clip)
        positions = spread.clamp(0, len(chosen) - 1).long().tolist()
        picked.extend(int(chosen[p]) for p in positions)

    stack = torch.stack([_to_tensor(frames[i], device) for i in picked])
    _check_rgb_uint8(stack, leading=1)
    stack = stack.reshape(clips, frames_per_clip, *stack.shape[1:])
    indices = (0, 1, 2) if spatial_crops == 3 else (1,)
    return _clip_crops(stack, spatial_indices=indices)


# --------------------------------------------------------------------------- audio


def _as_waveform(waveform: np.ndarray | torch.Tensor, device: Device) -> torch.Tensor:
    tensor = _to_tensor(waveform, device)
    if not tensor.is_floating_point():
        raise ValueError(f"expected a floating-point waveform, got {tensor.dtype}")
    if tensor.ndim not in (1, 2):
        raise ValueError(f"expected (samples,) or (channels, samples), got {tuple(tensor.shape)}")
    return tensor


def _sinc_kernel(
    orig: int,
    new: int,
    lowpass_filter_width: int,
    rolloff: float,
    dtype: torch.dtype,
    device: Device,
) -> tuple[torch.Tensor, int]:
    """Hann-windowed sinc filters, one per output phase: (new, 1, 2 * width + orig).

    Phase j of block b is output sample ``b * new + j`` and sees input ``b * orig - width``
    onwards; its tap i weighs the input at ``t = (i - width) / orig - j / new`` (in units of
    the reduced rates) by ``sinc(pi * base * t) * cos^2(pi * base * t / (2 * lpw))`` with
    ``base = min(orig, new) * rolloff``, cut at ``|base * t| = lpw`` and scaled by
    ``base / orig``. Computed in the waveform's dtype, in torchaudio's operation order.
    """
    base = min(orig, new) * rolloff
    width = math.ceil(lowpass_filter_width * orig / base)
    taps = torch.arange(-width, width + orig, dtype=dtype, device=device)[None, None] / orig
    phases = torch.arange(0, -new, -1, dtype=dtype, device=device)[:, None, None] / new
    t = (phases + taps) * base
    t = t.clamp(-lowpass_filter_width, lowpass_filter_width)
    window = torch.cos(t * math.pi / lowpass_filter_width / 2) ** 2
    t = t * math.pi
    sinc = torch.where(t == 0, torch.ones((), dtype=dtype, device=device), t.sin() / t)
    return sinc * (window * (base / orig)), width


def resample(
    waveform: np.ndarray | torch.Tensor,
    orig_sr: int,
    new_sr: int,
    *,
    lowpass_filter_width: int = 6,
    rolloff: float = 0.99,
    device: Device = None,
) -> torch.Tensor:
    """Band-limited resampling as ``torchaudio.functional.resample`` (sinc_interp_hann).

    (samples,) or (channels, samples) -> same rank at ``new_sr``; the output has
    ``ceil(new * n / orig)`` samples (reduced rates, the quotient rounded to float32 first
    as torchaudio does).
    """
    x = _as_waveform(waveform, device)
    if int(orig_sr) != orig_sr or int(new_sr) != new_sr or orig_sr <= 0 or new_sr <= 0:
        raise ValueError("sample rates must be positive integers")
    if lowpass_filter_width <= 0:
        raise ValueError("lowpass_filter_width must be positive")
    if orig_sr == new_sr:
        return x
    gcd = math.gcd(int(orig_sr), int(new_sr))
    orig, new = int(orig_sr) // gcd, int(new_sr) // gcd
    kernel, width = _sinc_kernel(orig, new, lowpass_filter_width, rolloff, x.dtype, x.device)
    rows = x.reshape(-1, x.shape[-1])
    length = rows.shape[-1]
    padded = F.pad(rows, (width, width + orig))
    out = F.conv1d(padded[:, None], kernel, stride=orig)  # (rows, new, blocks)
    out = out.transpose(1, 2).reshape(rows.shape[0], -1)
    target = math.ceil(float(np.float32(new * length / orig)))
    return out[:, :target].reshape(*x.shape[:-1], -1)


@lru_cache(maxsize=8)
def _mel_banks(
    num_bins: int, padded_window: int, sample_rate: float, low_freq: float, high_freq: float
) -> torch.Tensor:
    """Kaldi's triangular mel filters over the FFT bins: (num_bins, padded_window // 2 + 1).

    Triangles are evenly spaced on mel = 1127 ln(1 + f / 700) between low_freq and
    high_freq (<= 0 means relative to Nyquist), evaluated at bin k * sr / padded_window for
    k < padded_window / 2; the Nyquist bin gets weight 0. float32, torchaudio's order.
    """
    nyquist = 0.5 * sample_rate
    if high_freq <= 0.0:
        high_freq += nyquist
    if not 0.0 <= low_freq < high_freq <= nyquist:
        raise ValueError(f"bad mel range {low_freq}..{high_freq} Hz for Nyquist {nyquist} Hz")
    mel_low = 1127.0 * math.log(1.0 + low_freq / 700.0)
    mel_high = 1127.0 * math.log(1.0 + high_freq / 700.0)
    delta = (mel_high - mel_low) / (num_bins + 1)
    index = torch.arange(num_bins).unsqueeze(1)
    left = mel_low + index * delta
    centre = mel_low + (index + 1.0) * delta
    right = mel_low + (index + 2.0) * delta
    bin_hz = sample_rate / padded_window * torch.arange(float(padded_window // 2))
    mel = (1127.0 * (1.0 + bin_hz / 700.0).log()).unsqueeze(0)
    rising = (mel - left) / (centre - left)
    falling = (right - mel) / (right - centre)
    banks = torch.max(torch.zeros(1), torch.min(rising, falling))
    return F.pad(banks, (0, 1))


def kaldi_fbank(
    waveform: np.ndarray | torch.Tensor,
    sample_rate: float = AUDIO_SAMPLE_RATE,
    *,
    num_mel_bins: int = AUDIO_NUM_MEL_BINS,
    frame_length_ms: float = 25.0,
    frame_shift_ms: float = 10.0,
    preemphasis: float = 0.97,
    low_freq: float = 20.0,
    high_freq: float = 0.0,
    window: Literal["hanning", "povey"] = "hanning",
    device: Device = None,
) -> torch.Tensor:
    """Log mel filterbank as ``torchaudio.compliance.kaldi.fbank`` computes it for ImageBind.

    (..., samples) -> (..., frames, num_mel_bins), frames = 1 + (n - 400) // 160 at 16 kHz
    (snip_edges; none when n < 400). Per frame: subtract its mean, pre-emphasis (first sample
    against itself), symmetric Hann window (or Povey: Hann^0.85), zero-pad to the next power
    of two, power spectrum, mel filters, ``log(max(x, float32 eps))``. No dither, energy or
    VTLN: upstream's settings (use_energy=False, dither=0; htk_compat only moves the energy).
    """
    x = _to_tensor(waveform, device)
    if not x.is_floating_point():
        raise ValueError(f"expected a floating-point waveform, got {x.dtype}")
    shift = int(sample_rate * frame_shift_ms * 0.001)
    size = int(sample_rate * frame_length_ms * 0.001)
    if size < 2 or shift < 1:
        raise ValueError("frame length and shift too short for the sample rate")
    padded_size = 1 << (size - 1).bit_length()
    n_frames = 1 + (x.shape[-1] - size) // shift if x.shape[-1] >= size else 0
    if n_frames == 0:
        return x.new_zeros((*x.shape[:-1], 0, num_mel_bins))
    frames = x.unfold(-1, size, shift)
    frames = frames - frames.mean(dim=-1, keepdim=True)
    previous = torch.cat((frames[..., :1], frames[..., :-1]), dim=-1)
    frames = frames - preemphasis * previous
    taper = torch.hann_window(size, periodic=False, dtype=x.dtype, device=x.device)
    if window == "povey":
        taper = taper.pow(0.85)
    elif window != "hanning":
        raise ValueError(f"unknown window {window!r}")
    frames = F.pad(frames * taper, (0, padded_size - size))
    power = torch.fft.rfft(frames).abs().pow(2.0)
    banks = _mel_banks(num_mel_bins, padded_size, float(sample_rate), low_freq, high_freq)
    energies = power @ banks.to(device=x.device, dtype=x.dtype).T
    floor = torch.tensor(torch.finfo(torch.float32).eps, dtype=x.dtype, device=x.device)
    return torch.max(energies, floor).log()


def clip_melspec(clip: np.ndarray | torch.Tensor, *, device: Device = None) -> torch.Tensor:
    """Upstream's ``waveform2melspec`` + Normalize of one 16 kHz clip -> (1, 128, 204).

    ``clip`` is (samples,) or (channels, samples); its mean over all channels is removed and
    channel 0 is used (Kaldi fbank's default channel). Frames are cut or zero-padded to 204
    before normalising ``(x - mean) / std``. A clip under 25 ms (upstream raises) is
    zero-padded to one frame.
    """
    x = _as_waveform(clip, device)
    return _melspec_in_place((x if x.ndim == 2 else x[None]).clone())


def _melspec_in_place(clip: torch.Tensor) -> torch.Tensor:
    # In place like upstream: ``clip`` may be a view of the whole waveform (audio_clips).
    clip -= clip.mean()
    mono = clip[0]
    size = int(AUDIO_SAMPLE_RATE * 25.0 * 0.001)
    if mono.shape[-1] < size:
        mono = F.pad(mono, (0, size - mono.shape[-1]))
    return _normalised_melspec(kaldi_fbank(mono)[None])[0]


def _normalised_melspec(fbank: torch.Tensor) -> torch.Tensor:
    """(B, frames, 128) -> (B, 1, 128, 204): transpose, fit the length, normalise."""
    spec = fbank.transpose(-1, -2)
    missing = AUDIO_TARGET_LENGTH - spec.shape[-1]
    spec = F.pad(spec, (0, missing)) if missing > 0 else spec[..., :AUDIO_TARGET_LENGTH]
    mean = torch.tensor(AUDIO_MEAN, dtype=spec.dtype, device=spec.device)
    std = torch.tensor(AUDIO_STD, dtype=spec.dtype, device=spec.device)
    return ((spec - mean) / std).unsqueeze(1)


def audio_clips(
    waveform: np.ndarray | torch.Tensor,
    sample_rate: int,
    *,
    clips: int = AUDIO_CLIPS_PER_VIDEO,
    clip_duration: float = AUDIO_CLIP_DURATION,
    device: Device = None,
) -> torch.Tensor:
    """Upstream's audio input for a whole sound: (clips, 1, 128, 204) float32.

    ``waveform`` is float (samples,) or (channels, samples) at ``sample_rate``; it is
    resampled to 16 kHz, cut into ``clips`` evenly spaced clips of ``clip_duration`` seconds
    (``clip_timepoints``; sample bounds ``int(t * 16000)``), each made a normalised log-mel
    spectrogram. Like upstream, each clip's mean is subtracted from a shared copy of the
    waveform, so overlapping clips see their predecessors' offsets (a float-level effect:
    Kaldi removes each frame's mean anyway). Multi-channel input uses channel 0 after a
    mean over all channels, as upstream; pass a mono mix-down to use every channel.
    """
    x = _as_waveform(waveform, device)
    if x.shape[-1] == 0:
        raise ValueError("empty waveform")
    x = resample(x, sample_rate, AUDIO_SAMPLE_RATE)
    work = (x if x.ndim == 2 else x[None]).clone()
    duration = work.shape[-1] / AUDIO_SAMPLE_RATE
    out = []
    for start, end in clip_timepoints(duration, clip_duration, clips):
        a, b = int(start * AUDIO_SAMPLE_RATE), int(end * AUDIO_SAMPLE_RATE)
        out.append(_melspec_in_place(work[:, a:b]))
    return torch.stack(out)


def audio_windows(
    waveform: np.ndarray | torch.Tensor,
    sample_rate: int,
    *,
    window: float = AUDIO_CLIP_DURATION,
    hop: float = 1.0,
    device: Device = None,
) -> tuple[torch.Tensor, np.ndarray]:
    """Long sounds as many one-clip inputs: ((W, 1, 128, 204), window start times in seconds).

    Windows of ``window`` seconds every ``hop`` seconds at 16 kHz (``sample_window_starts``: the
    tail gets an end-aligned window; a short sound is one zero-padded window). Each window is
    what upstream makes of a sound of exactly that length (its mean removed, channel 0 after
    a mean over channels), so a window's embedding is that of the corresponding excerpt.
    """
    x = _as_waveform(waveform, device)
    if x.shape[-1] == 0:
        raise ValueError("empty waveform")
    x = resample(x, sample_rate, AUDIO_SAMPLE_RATE)
    x = x if x.ndim == 2 else x[None]
    win = round(window * AUDIO_SAMPLE_RATE)
    step = round(hop * AUDIO_SAMPLE_RATE)
    starts = sample_window_starts(x.shape[-1], win, step)
    if x.shape[-1] <= win:
        return _melspec_in_place(x.clone())[None], np.zeros(1)
    out = []
    for first in range(0, len(starts), _AUDIO_CHUNK):
        offsets = torch.tensor(starts[first : first + _AUDIO_CHUNK], device=x.device)
        index = offsets[:, None] + torch.arange(win, device=x.device)
        chunk = x[:, index].transpose(0, 1)  # (windows, channels, win)
        chunk = chunk - chunk.mean(dim=(1, 2), keepdim=True)
        out.append(_normalised_melspec(kaldi_fbank(chunk[:, 0])))
    return torch.cat(out), np.asarray(starts, dtype=np.float64) / AUDIO_SAMPLE_RATE
