"""PE-AV's inputs, made by sfxmatch.embed.pe.preprocess, equal transformers' own processors.

The references run in a separate process where torchvision imports (tests/hf_reference.py):
transformers' ``PeVideoVideoProcessor`` for frames, its ``PeAudioFeatureExtractor`` for
padding, and its reference audio loader (soundfile decoding, soxr resampling) for sounds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hf_reference import run_reference
from sfxmatch import media
from sfxmatch.embed.pe.preprocess import FrameSpec, audio_batch, frames_to_pixels, prepare_audio

pytestmark = pytest.mark.real_media

VIDEO_REFERENCE = """
from transformers import PeVideoVideoProcessor
# The published checkpoints' video_preprocessor_config.json, at the size asked for.
processor = PeVideoVideoProcessor(
    size={"height": _params["height"], "width": _params["width"]},
    do_resize=True,
    do_rescale=True,
    do_normalize=True,
    do_convert_rgb=True,
    do_sample_frames=False,
    image_mean=[0.5, 0.5, 0.5],
    image_std=[0.5, 0.5, 0.5],
)
video = list(_inputs["frames"])  # one video of these frames, as decoded (H, W, 3) uint8
out = processor(videos=[video], return_tensors="pt")
_outputs["pixels"] = out["pixel_values_videos"][0].numpy()
"""


def _frames(path: Path, count: int, max_side: int | None) -> np.ndarray:
    picked = []
    for frame in media.iter_frames(path, max_side=max_side):
        if frame.index % 7 == 0:
            picked.append(frame.image)
        if len(picked) == count:
            break
    return np.stack(picked)


@pytest.mark.parametrize(
    ("video", "max_side", "size"),
    [
        ("vtest_avi", None, 336),  # full-size 768x576 frames, the published checkpoints' size
        ("vtest_avi", 672, 336),  # as suggest decodes for PE-AV (twice the model's side)
        ("tree_avi", None, 336),  # 320x240: an upscale
        ("vtest_avi", 112, 56),  # pe-av-tiny
    ],
)
def test_frames_equal_the_video_processor(request, tmp_path, video, max_side, size):
    frames = _frames(request.getfixturevalue(video), 5, max_side)
    ours = frames_to_pixels(frames, FrameSpec(size, size)).numpy()
    theirs = run_reference(
        VIDEO_REFERENCE,
        tmp_path,
        inputs={"frames": frames},
        params={"height": size, "width": size},
    )["pixels"]
    assert ours.shape == theirs.shape == (5, 3, size, size)
    assert np.abs(ours - theirs).max() <= 1e-5


def test_a_non_square_checkpoint_size_and_its_statistics(vtest_avi, tmp_path):
    frames = _frames(vtest_avi, 2, None)
    spec = FrameSpec(48, 80, mean=(0.4, 0.5, 0.6), std=(0.2, 0.3, 0.25))
    ours = frames_to_pixels(frames, spec).numpy()
    code = VIDEO_REFERENCE.replace(
        "image_mean=[0.5, 0.5, 0.5],\n    image_std=[0.5, 0.5, 0.5],",
        "image_mean=[0.4, 0.5, 0.6],\n    image_std=[0.2, 0.3, 0.25],",
    )
    theirs = run_reference(code, tmp_path, {"frames": frames}, {"height": 48, "width": 80})
    assert ours.shape == (2, 3, 48, 80)
    assert np.abs(ours - theirs["pixels"]).max() <= 1e-5


def test_frames_are_refused_clearly():
    with pytest.raises(ValueError, match="uint8"):
        frames_to_pixels(np.zeros((1, 8, 8, 3), np.float32), FrameSpec(4, 4))
    with pytest.raises(ValueError, match=r"\(N, H, W, 3\)"):
        frames_to_pixels(np.zeros((8, 8, 3), np.uint8), FrameSpec(4, 4))
    empty = frames_to_pixels(np.zeros((0, 8, 8, 3), np.uint8), FrameSpec(4, 4))
    assert empty.shape[0] == 0


# --------------------------------------------------------------------------------------- audio

AUDIO_REFERENCE = """
from transformers.audio_utils import load_audio
for i, path in enumerate(_params["paths"]):
    _outputs[f"wave{i}"] = load_audio(path, sampling_rate=48000, backend="soundfile")
"""


def _real_sounds(request) -> list[Path]:
    """Real recordings at several rates and channel counts: one of each rate tuxpaint has
    (8 to 48 kHz), a stereo WAV, an MP3 and some minetest OGGs."""
    by_rate: dict[int, Path] = {}
    for path in sorted(request.getfixturevalue("tuxpaint_sounds").rglob("*.ogg")):
        if "_desc" in path.name:
            continue
        for stream in media.probe(path).audio[:1]:
            by_rate.setdefault(stream.sample_rate, path)
    wanted = [
        request.getfixturevalue("acoustic_scene_wav"),  # 44.1 kHz stereo WAV
        request.getfixturevalue("ovos_sounds") / "cow.mp3",  # 48 kHz MP3
        *sorted(request.getfixturevalue("minetest_sounds").rglob("*.ogg"))[:2],
        *by_rate.values(),
    ]
    return [p for p in wanted if p.is_file()]


def _as_float_wav(source: Path, folder: Path) -> tuple[Path, media.Audio]:
    """The sound decoded once (our decoder), written as a float WAV at its own rate and
    channels: then both sides read identical samples and differ only in what comes after."""
    audio = media.load_audio(source, channels="keep")
    target = folder / f"{source.stem}.wav"
    media.write_wav(target, audio)  # float32 WAV
    return target, audio


def test_sounds_equal_the_reference_loader(request, tmp_path):
    sources = _real_sounds(request)
    assert len(sources) >= 6
    converted = [_as_float_wav(s, tmp_path) for s in sources]
    theirs = run_reference(
        AUDIO_REFERENCE, tmp_path, params={"paths": [str(path) for path, _ in converted]}
    )
    rates = set()
    for i, (_, audio) in enumerate(converted):
        rates.add(audio.sample_rate)
        ours = prepare_audio(audio.samples, audio.sample_rate, 48_000)
        reference = theirs[f"wave{i}"]
        assert ours.shape == reference.shape, sources[i]
        assert np.abs(ours - reference).max() <= 1e-5, sources[i]
    assert len(rates) >= 3  # 8/11/22/44.1/48 kHz among them: real resampling


FEATURE_REFERENCE = """
from transformers import PeAudioFeatureExtractor
extractor = PeAudioFeatureExtractor(sampling_rate=48000, hop_length=1920)
waves = [_inputs[f"w{i}"] for i in range(_params["count"])]
out = extractor(waves, sampling_rate=48000, return_tensors="pt")
_outputs["values"] = out["input_values"].numpy()
_outputs["mask"] = out["padding_mask"].numpy()
"""


def test_a_batch_of_sounds_is_padded_as_the_feature_extractor_pads_it(tmp_path):
    rng = np.random.default_rng(0)
    lengths = [1920 * 3, 5000, 1, 48_000 + 17]  # exact, short, one sample, over a second
    waves = [rng.standard_normal(n).astype(np.float32) * 0.1 for n in lengths]
    values, mask = audio_batch(waves, 1920)
    theirs = run_reference(
        FEATURE_REFERENCE,
        tmp_path,
        inputs={f"w{i}": w for i, w in enumerate(waves)},
        params={"count": len(waves)},
    )
    assert values.shape == theirs["values"].shape
    np.testing.assert_array_equal(values.numpy(), theirs["values"])
    np.testing.assert_array_equal(mask.numpy(), theirs["mask"])
    assert values.dtype == torch.float32 and values.shape[-1] % 1920 == 0
