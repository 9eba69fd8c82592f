"""ImageBind preprocessing port against independent references.

Upstream's own preprocessing needs torchvision, torchaudio and pytorchvideo, which cannot be
installed here, so each step is checked against what can run: Pillow (upstream's image
resizer), direct float64 restatements of the published formulas (windowed-sinc resampling,
Kaldi filterbanks, pytorchvideo/decord clip and frame indexing), hand-computed cases, and
upstream's constants read from its installed source.
"""

from __future__ import annotations

import importlib.util
import math
import re
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sfxmatch.embed.imagebind import preprocess as P
from sfxmatch.embed.values import sample_window_starts

MEAN = torch.tensor(P.CLIP_MEAN)
STD = torch.tensor(P.CLIP_STD)
LOG_EPS = math.log(torch.finfo(torch.float32).eps)


def _normalised(values: torch.Tensor, channel_dim: int = 0) -> torch.Tensor:
    shape = [1] * values.ndim
    shape[channel_dim] = 3
    return (values - MEAN.view(shape)) / STD.view(shape)


# ------------------------------------------------------------------------------ constants


def _upstream_data_source() -> str:
    spec = importlib.util.find_spec("imagebind")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("imagebind-unofficial is not installed")
    return (Path(next(iter(spec.submodule_search_locations))) / "data.py").read_text()


def test_constants_are_upstreams() -> None:
    source = _upstream_data_source()
    assert f"mean={P.CLIP_MEAN}".replace(" ", "") in source.replace(" ", "").replace("\n", "")
    assert f"std={P.CLIP_STD}".replace(" ", "") in source.replace(" ", "").replace("\n", "")
    audio = source[source.index("def load_and_transform_audio_data") :]
    for name, value in {
        "num_mel_bins": P.AUDIO_NUM_MEL_BINS,
        "target_length": P.AUDIO_TARGET_LENGTH,
        "sample_rate": P.AUDIO_SAMPLE_RATE,
        "clip_duration": P.AUDIO_CLIP_DURATION,
        "clips_per_video": P.AUDIO_CLIPS_PER_VIDEO,
        "mean": P.AUDIO_MEAN,
        "std": P.AUDIO_STD,
    }.items():
        assert re.search(rf"\b{name}={re.escape(str(value))},", audio), name
    video = source[source.index("def load_and_transform_video_data") :]
    assert f"clips_per_video={P.VIDEO_CLIPS_PER_VIDEO}," in video
    assert f"clip_duration={P.VIDEO_CLIP_DURATION}," in video
    assert 'window_type="hanning"' in source and "dither=0.0" in source


# ------------------------------------------------------------------------------ clip sampling


@pytest.mark.parametrize(
    ("duration", "clips", "starts"),
    [
        (10.0, 5, [0, 2, 4, 6, 8]),  # last clip ends at the end (pinned pytorchvideo)
        (5.0, 3, [0, 1.5, 3]),
        (2.0, 3, [0, 0, 0]),
        (0.4, 3, [0, 0, 0]),  # shorter than a clip: the whole sound, three times
        (7.0, 1, [0]),
    ],
)
def test_clip_timepoints(duration: float, clips: int, starts: list[float]) -> None:
    points = P.clip_timepoints(duration, 2, clips)
    assert [float(a) for a, _ in points] == starts
    assert all(b - a == 2 for a, b in points)
    assert all(isinstance(a, Fraction) for a, _ in points)


def test_clip_timepoints_take_the_slack_in_float_like_upstream() -> None:
    duration = 48001 / 16000  # not exact in binary
    (_, _), (middle, _), (last, _) = P.clip_timepoints(duration, 2, 3)
    assert last == Fraction(duration - 2)
    assert middle == Fraction(duration - 2) / 2


def test_window_starts() -> None:
    assert sample_window_starts(5_500, 2_000, 1_000) == [0, 1_000, 2_000, 3_000, 3_500]
    assert sample_window_starts(4_000, 2_000, 1_000) == [0, 1_000, 2_000]
    assert sample_window_starts(1_500, 2_000, 1_000) == [0]


# ------------------------------------------------------------------------------ still images


def _image_cases() -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[0:333, 0:517]
    smooth = np.stack([(xx * 0.4) % 256, (yy * 0.7) % 256, (xx + yy) % 256], -1)
    return [
        rng.integers(0, 256, (300, 451, 3), dtype=np.uint8),
        rng.integers(0, 256, (640, 360, 3), dtype=np.uint8),
        rng.integers(0, 256, (100, 150, 3), dtype=np.uint8),  # upscaled
        rng.integers(0, 256, (224, 224, 3), dtype=np.uint8),  # untouched by resize
        rng.integers(0, 256, (1000, 227, 3), dtype=np.uint8),  # tall: pass order matters
        rng.integers(0, 256, (225, 301, 3), dtype=np.uint8),  # odd crop margins
        smooth.astype(np.uint8),
    ]


def test_image_matches_pillow_bicubic() -> None:
    image_module = pytest.importorskip("PIL.Image")
    pillow_major = int(image_module.__version__.split(".")[0])
    worst = 0.0
    for image in _image_cases():
        new_h, new_w = P.resized_image_size(*image.shape[:2])
        resized = image_module.fromarray(image).resize((new_w, new_h), image_module.BICUBIC)
        top, left = round((new_h - 224) / 2), round((new_w - 224) / 2)
        crop = np.asarray(resized)[top : top + 224, left : left + 224]
        expected = _normalised(torch.from_numpy(crop.copy()).permute(2, 0, 1).float() / 255)
        ours = P.image_tensor(image, pillow13_order=pillow_major >= 13)
        assert ours.shape == (3, 224, 224) and ours.dtype == torch.float32
        worst = max(worst, float((ours - expected).abs().max()))
    assert worst == 0.0


def test_image_resize_sizes_and_centre_crop() -> None:
    assert P.resized_image_size(300, 600) == (224, 448)
    assert P.resized_image_size(1080, 1920) == (224, 398)  # 398.2 truncated
    assert P.resized_image_size(641, 360) == (398, 224)
    # Left half red, right half blue: the edge lands at the crop's centre column.
    image = np.zeros((300, 600, 3), np.uint8)
    image[:, :300, 0] = 255
    image[:, 300:, 2] = 255
    out = P.image_tensor(image)
    red, blue = _normalised(torch.tensor([1.0, 0, 0])), _normalised(torch.tensor([0, 0, 1.0]))
    assert torch.allclose(out[:, 150, 100], red, atol=1e-6)
    assert torch.allclose(out[:, 150, 124], blue, atol=1e-6)
    # A flat image stays exactly flat through the fixed-point filter.
    flat = P.image_tensor(np.full((480, 640, 3), (10, 200, 77), np.uint8))
    expected = _normalised(torch.tensor([10, 200, 77]) / 255.0)
    assert torch.equal(flat, expected.view(3, 1, 1).expand(3, 224, 224))


# ------------------------------------------------------------------------------ video


def _upstream_video_transform(clip_thwc: np.ndarray, spatial_index: int) -> torch.Tensor:
    """Upstream's chain for one clip, step by step as its modules run (pytorchvideo layout)."""
    video = torch.from_numpy(clip_thwc).to(torch.float32).permute(3, 0, 1, 2)  # (C, T, H, W)
    video = video / 255.0
    _, _, h, w = video.shape
    size = (math.floor(h / w * 224), 224) if w < h else (224, math.floor(w / h * 224))
    video = F.interpolate(video, size=size, mode="bilinear", align_corners=False)
    video = video.sub(MEAN[:, None, None, None]).div(STD[:, None, None, None])
    h, w = video.shape[-2:]
    y, x = math.ceil((h - 224) / 2), math.ceil((w - 224) / 2)
    if h > w:
        y = {0: 0, 1: y, 2: h - 224}[spatial_index]
    else:
        x = {0: 0, 1: x, 2: w - 224}[spatial_index]
    return video[:, :, y : y + 224, x : x + 224]


def test_segment_clips_match_upstream_chain(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(P, "_VIDEO_CHUNK_FLOATS", 1)  # one clip per chunk: exercise the loop
    rng = np.random.default_rng(3)
    for shape in [(240, 426), (500, 300), (224, 224), (120, 160)]:
        frames = rng.integers(0, 256, (3, 2, *shape, 3), dtype=np.uint8)
        ours = P.frames_to_segment_clip(frames)
        assert ours.shape == (3, 3, 2, 224, 224)
        for n in range(3):
            expected = _upstream_video_transform(frames[n], spatial_index=1)
            assert float((ours[n] - expected).abs().max()) == 0.0
    single = P.frames_to_segment_clip(frames[0])
    assert torch.equal(single, ours[0])


def test_video_resize_is_bilinear_without_antialias() -> None:
    # Columns carry a quadratic profile; a 128 x 256 frame is scaled x1.75 to 224 x 448.
    profile = (np.arange(256) ** 2 // 256).astype(np.uint8)
    frame = np.broadcast_to(profile[None, :, None], (128, 256, 3))
    clip = P.frames_to_segment_clip(np.stack([frame, frame])[None])[0]
    columns = np.arange(224) + 112  # centre crop of the 448 columns
    src = np.maximum((columns + 0.5) * (256 / 448) - 0.5, 0)
    lo = np.floor(src).astype(int)
    hi = np.minimum(lo + 1, 255)
    frac = src - lo
    expected = (profile[lo] * (1 - frac) + profile[hi] * frac) / 255.0
    got = clip[0, 0, 100].double() * P.CLIP_STD[0] + P.CLIP_MEAN[0]
    assert np.abs(got.numpy() - expected).max() < 1e-6


def test_spatial_crops_cover_start_centre_end() -> None:
    # 224 x 400: no resize; each column's value is its index // 2.
    landscape = np.broadcast_to(
        (np.arange(400) // 2).astype(np.uint8)[None, :, None], (224, 400, 3)
    )
    clips = P.scene_clips([landscape] * 4, [0.0, 0.5, 1.0, 1.5], 0.0, 2.0, clips=1)
    assert clips.shape == (3, 3, 2, 224, 224)
    firsts = (clips[:, 0, 0, 0, 0] * P.CLIP_STD[0] + P.CLIP_MEAN[0]) * 255
    assert torch.allclose(firsts, torch.tensor([0.0, 44.0, 88.0]), atol=1e-3)
    portrait = np.ascontiguousarray(landscape.transpose(1, 0, 2))
    clips = P.scene_clips([portrait] * 4, [0.0, 0.5, 1.0, 1.5], 0.0, 2.0, clips=1)
    firsts = (clips[:, 0, 0, 0, 0] * P.CLIP_STD[0] + P.CLIP_MEAN[0]) * 255
    assert torch.allclose(firsts, torch.tensor([0.0, 44.0, 88.0]), atol=1e-3)


def _decord_frames(fps: float, start: Fraction, end: Fraction, n_frames: int) -> list[int]:
    """pytorchvideo's decord clip: indices ceil(fps * start) .. ceil(fps * end) - 1.

    Bounds are rounded to the microsecond first: upstream's float product decides a frame
    lying exactly on a bound by rounding noise (2.1 s at 10 fps: slack 0.1000...09 s drops
    frame 1 from the last clip); ours counts a frame within 1 us of a bound as on it.
    """
    a, b = round(float(start), 6), round(float(end), 6)
    return list(range(math.ceil(fps * a), min(math.ceil(fps * b), n_frames)))


@pytest.mark.parametrize(("n_frames", "offset"), [(100, 0.0), (65, 3.0), (13, 7.2), (21, 0.0)])
def test_scene_clips_sample_frames_like_upstream(n_frames: int, offset: float) -> None:
    fps = 10.0
    # Frame k of the scene is a flat image of value k; times on the video's clock.
    frames = [np.full((32, 48, 3), k, np.uint8) for k in range(n_frames)]
    times = [offset + k / fps for k in range(n_frames)]
    out = P.scene_clips(frames, times, offset, offset + n_frames / fps)
    assert out.shape == (15, 3, 2, 224, 224)
    duration = n_frames / fps
    for c, (a, b) in enumerate(P.clip_timepoints(duration, 2, 5)):
        idx = _decord_frames(fps, a, b, n_frames)
        expected = [idx[0], idx[-1]]  # UniformTemporalSubsample(2): first and last
        for crop in range(3):
            values = out[3 * c + crop, 0, :, 0, 0] * P.CLIP_STD[0] + P.CLIP_MEAN[0]
            assert torch.allclose(values * 255, torch.tensor(expected, dtype=torch.float32))


def test_scene_clips_validate_inputs() -> None:
    frame = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(ValueError):
        P.scene_clips([frame], [5.0], 0.0, 1.0)  # no frame inside
    with pytest.raises(ValueError):
        P.scene_clips([frame], [0.0, 0.1], 0.0, 1.0)
    with pytest.raises(ValueError):
        P.frames_to_segment_clip(np.zeros((1, 2, 8, 8, 3), np.float32))


# ------------------------------------------------------------------------------ resampling


def _resample_reference(x: np.ndarray, orig_sr: int, new_sr: int) -> np.ndarray:
    """Direct float64 sum of the Hann-windowed sinc interpolation formula (lpw 6, rolloff .99)."""
    g = math.gcd(orig_sr, new_sr)
    orig, new = orig_sr // g, new_sr // g
    base = min(orig, new) * 0.99
    reach = 6 * orig / base
    out = np.zeros(math.ceil(new * len(x) / orig))
    for k in range(len(out)):
        centre = k * orig / new
        lo, hi = max(0, math.floor(centre - reach)), min(len(x), math.ceil(centre + reach) + 1)
        t = (np.arange(lo, hi) / orig - k / new) * base
        sinc = np.sinc(t)  # sin(pi t) / (pi t)
        taper = np.cos(np.pi * t / 12) ** 2
        out[k] = np.sum(x[lo:hi] * np.where(np.abs(t) <= 6, sinc * taper * base / orig, 0))
    return out


@pytest.mark.parametrize("orig_sr", [44100, 48000, 22050, 11025, 8000])
def test_resample_matches_sinc_formula(orig_sr: int) -> None:
    rng = np.random.default_rng(orig_sr)
    x = rng.uniform(-1, 1, orig_sr // 8)
    expected = _resample_reference(x, orig_sr, 16000)
    # float64 input: kernel and sums in float64, so only rounding separates them.
    assert np.abs(P.resample(x, orig_sr, 16000).numpy() - expected).max() < 1e-9
    # float32 (what upstream feeds): the kernel is built in float32 like torchaudio's.
    ours32 = P.resample(x.astype(np.float32), orig_sr, 16000).double().numpy()
    assert np.abs(ours32 - expected).max() < 1e-4


def test_resample_length_rule() -> None:
    for n, orig, new, expected in [
        (1, 44100, 16000, 1),
        (441, 44100, 16000, 160),
        (1000, 44100, 16000, 363),
        (7, 8000, 16000, 14),
        (5, 48000, 16000, 2),
    ]:
        assert P.resample(np.zeros(n, np.float32), orig, new).shape == (expected,)
    stereo = P.resample(np.zeros((2, 4410), np.float32), 44100, 16000)
    assert stereo.shape == (2, 1600)
    same = torch.ones(10)
    assert P.resample(same, 16000, 16000) is same


def test_resample_keeps_a_sine_and_removes_what_cannot_be_represented() -> None:
    t = np.arange(44100) / 44100
    low = (0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    out = P.resample(low, 44100, 16000).numpy()
    tt = np.arange(len(out)) / 16000
    inner = slice(200, -200)
    assert np.abs(out[inner] - 0.5 * np.sin(2 * np.pi * 1000 * tt[inner])).max() < 2e-3
    high = np.sin(2 * np.pi * 12000 * t).astype(np.float32)  # above the new Nyquist
    # Hann-windowed sinc, 6 zero crossings: about -55 dB of the 12 kHz tone remains.
    assert np.sqrt(np.mean(P.resample(high, 44100, 16000).numpy()[inner] ** 2)) < 3e-3


# ------------------------------------------------------------------------------ Kaldi fbank


def _mel(f: float) -> float:
    return 1127.0 * math.log(1.0 + f / 700.0)


def _fbank_reference(x: np.ndarray, bins: int = 128) -> np.ndarray:
    """Kaldi's fbank written out loop by loop in float64 (16 kHz, 25/10 ms, 512-point FFT)."""
    size, shift, nfft = 400, 160, 512
    window = [0.5 - 0.5 * math.cos(2 * math.pi * n / (size - 1)) for n in range(size)]
    low, high = _mel(20.0), _mel(8000.0)
    delta = (high - low) / (bins + 1)
    banks = np.zeros((bins, nfft // 2 + 1))
    for b in range(bins):
        left, centre, right = low + b * delta, low + (b + 1) * delta, low + (b + 2) * delta
        for k in range(nfft // 2):  # the Nyquist bin keeps weight 0
            m = _mel(k * 16000 / nfft)
            banks[b, k] = max(
                0.0, min((m - left) / (centre - left), (right - m) / (right - centre))
            )
    rows = []
    for i in range(1 + (len(x) - size) // shift):
        frame = x[i * shift : i * shift + size].astype(np.float64)
        frame = frame - sum(frame) / size
        emphasised = [frame[0] - 0.97 * frame[0]] + [
            frame[j] - 0.97 * frame[j - 1] for j in range(1, size)
        ]
        padded = np.zeros(nfft)
        padded[:size] = np.asarray(emphasised) * window
        power = np.abs(np.fft.rfft(padded)) ** 2
        rows.append(np.log(np.maximum(banks @ power, np.finfo(np.float32).eps)))
    return np.asarray(rows)


def test_fbank_matches_kaldi_formulas() -> None:
    rng = np.random.default_rng(11)
    x = rng.normal(0, 0.1, 8000).astype(np.float32)
    ours = P.kaldi_fbank(x)
    assert ours.shape == (1 + (8000 - 400) // 160, 128) and ours.dtype == torch.float32
    expected = _fbank_reference(x)
    assert np.abs(ours.double().numpy() - expected).max() < 1e-3


def test_fbank_of_a_sine_peaks_in_its_mel_bin() -> None:
    t = np.arange(16000) / 16000
    low, high = _mel(20.0), _mel(8000.0)
    delta = (high - low) / 129
    for freq in (440.0, 1000.0, 3000.0):
        spec = P.kaldi_fbank(np.sin(2 * np.pi * freq * t).astype(np.float32))
        centres = [low + (b + 1) * delta for b in range(128)]
        nearest = int(np.argmin([abs(c - _mel(freq)) for c in centres]))
        assert abs(int(spec.mean(0).argmax()) - nearest) <= 1


def test_fbank_removes_dc_and_counts_frames() -> None:
    dc = P.kaldi_fbank(np.full(16000, 0.3, np.float32))
    assert dc.shape == (98, 128)
    # Each frame's mean is removed first: nothing is left, so every bin is log(eps).
    assert torch.allclose(dc, torch.full_like(dc, LOG_EPS))
    assert P.kaldi_fbank(np.zeros(399, np.float32)).shape == (0, 128)
    assert P.kaldi_fbank(np.zeros(400, np.float32)).shape == (1, 128)


# ------------------------------------------------------------------------------ audio clips


def _sweep(seconds: float, sr: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * np.sin(2 * np.pi * (200 + 400 * t) * t) + 0.01).astype(np.float32)


def test_melspec_pads_with_zeros_before_normalising() -> None:
    spec = P.clip_melspec(_sweep(2.0))
    assert spec.shape == (1, 128, 204)
    padding = (0.0 - P.AUDIO_MEAN) / P.AUDIO_STD
    assert torch.allclose(spec[0, :, 198:], torch.full((128, 6), padding))
    fbank = P.kaldi_fbank(torch.from_numpy(_sweep(2.0) - _sweep(2.0).mean()))
    assert torch.allclose(spec[0, :, :198], (fbank.T - P.AUDIO_MEAN) / P.AUDIO_STD, atol=1e-5)
    long = P.clip_melspec(_sweep(3.0))
    assert long.shape == (1, 128, 204)
    assert float(long[0, :, 198:].std()) > 0.1  # real frames, cut at 204


def test_audio_clips_sample_like_upstream() -> None:
    x = _sweep(5.0)
    out = P.audio_clips(x, 16000)
    assert out.shape == (3, 1, 128, 204)
    # Upstream: starts 0, 1.5, 3 s; each clip's mean removed from a shared waveform in place.
    shared = torch.from_numpy(x.copy())
    for clip, start in zip(out, (0, 24000, 48000), strict=True):
        segment = shared[start : start + 32000]
        segment -= segment.mean()
        expected = P.clip_melspec(segment)
        assert float((clip - expected).abs().max()) < 1e-3
    assert float((out[0] - out[2]).abs().max()) > 1.0  # different parts of the sweep


def test_audio_clips_of_a_short_sound_repeat_it() -> None:
    out = P.audio_clips(_sweep(0.5), 16000)
    assert torch.allclose(out[0], out[1], atol=1e-4) and torch.allclose(out[0], out[2], atol=1e-4)
    padding = (0.0 - P.AUDIO_MEAN) / P.AUDIO_STD
    assert torch.allclose(out[0, 0, :, 48:], torch.full((128, 156), padding))
    tiny = P.audio_clips(np.ones(100, np.float32) * 0.1, 16000)  # upstream would raise
    assert tiny.shape == (3, 1, 128, 204) and torch.isfinite(tiny).all()
    with pytest.raises(ValueError):
        P.audio_clips(np.zeros(0, np.float32), 16000)


def test_audio_clips_resample_and_use_channel_zero() -> None:
    x = _sweep(3.0, 22050)
    direct = P.audio_clips(P.resample(x, 22050, 16000), 16000)
    assert torch.equal(P.audio_clips(x, 22050), direct)
    # Channel 0 is used; other channels only enter the mean that is removed (2 s: no
    # overlapping clips, so the shift is the same over the whole clip and Kaldi drops it).
    mono = _sweep(2.0)
    noise = np.random.default_rng(5).normal(0.2, 0.5, mono.shape).astype(np.float32)
    stereo = P.audio_clips(np.stack([mono, noise]), 16000)
    assert float((stereo - P.audio_clips(mono, 16000)).abs().max()) < 1e-3


def test_audio_windows() -> None:
    x = _sweep(5.5)
    windows, starts = P.audio_windows(x, 16000, window=2.0, hop=1.0)
    assert windows.shape == (5, 1, 128, 204)
    assert starts.tolist() == [0.0, 1.0, 2.0, 3.0, 3.5]
    for spec, start in zip(windows, starts, strict=True):
        a = int(start * 16000)
        expected = P.clip_melspec(x[a : a + 32000])
        assert float((spec - expected).abs().max()) < 1e-3
    short, starts = P.audio_windows(_sweep(1.0), 16000)
    assert short.shape == (1, 1, 128, 204) and starts.tolist() == [0.0]


# ------------------------------------------------------------------------------ real sounds


def _load(path: Path) -> tuple[np.ndarray, int]:
    from sfxmatch.media import load_audio

    audio = load_audio(path, channels="first")
    return audio.samples[0], audio.sample_rate


@pytest.mark.real_media
def test_real_low_rate_sounds(tuxpaint_sounds: Path) -> None:
    low_rate = []
    for path in sorted(tuxpaint_sounds.rglob("*.ogg")):
        if "_desc" in path.name:
            continue
        samples, sr = _load(path)
        if sr in (8000, 11025):
            low_rate.append((samples, sr))
        if len(low_rate) == 2:
            break
    if not low_rate:
        pytest.skip("no 8 or 11 kHz clip found")
    for samples, sr in low_rate:
        excerpt = samples[: sr // 4].astype(np.float64)
        expected = _resample_reference(excerpt, sr, 16000)
        got = P.resample(excerpt.astype(np.float32), sr, 16000).double().numpy()
        assert np.abs(got - expected).max() < 1e-4
        clips = P.audio_clips(samples, sr)
        assert clips.shape == (3, 1, 128, 204) and torch.isfinite(clips).all()
        assert float(clips.std()) > 0.1


@pytest.mark.real_media
def test_real_footstep_fbank(minetest_sounds: Path) -> None:
    path = next(p for p in sorted(minetest_sounds.rglob("*.ogg")) if "dirt" in p.name)
    samples, sr = _load(path)
    wave = P.resample(samples, sr, 16000).numpy()[:8000]
    wave = wave - wave.mean()
    expected = _fbank_reference(wave)
    assert np.abs(P.kaldi_fbank(wave).double().numpy() - expected).max() < 2e-3
