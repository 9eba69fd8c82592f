"""PE-AV through sfxmatch equals transformers' own PE-AV on the same real inputs.

A checkpoint as a user downloads one is emulated: transformers' ``PeAudioVideoModel`` (with
timm's frame encoder, in the reference process) at tiny sizes with random weights, saved with
``save_pretrained`` beside the tokenizer and preprocessor files of a hub repository. sfxmatch
loads that folder through its own path (its frame encoder, its preprocessing) and must give
the vectors transformers' ``forward`` gives, for every head a pipeline step uses.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hf_reference import require_reference, run_reference
from sfxmatch import media
from sfxmatch.embed.encoder import SceneInput, load_encoder
from sfxmatch.embed.pe.preprocess import prepare_audio
from sfxmatch.embed.pe.tiny import (
    SPECIAL_TOKENS,
    TINY_FRAME_SIZE,
    processor_files,
    tiny_config,
    tiny_tokenizer,
)

pytestmark = pytest.mark.real_media

LABELS = ["footsteps on gravel", "a door slams", "rain on a tin roof", "birds"]

REFERENCE = """
from transformers import AutoTokenizer, PeAudioFeatureExtractor, PeAudioVideoConfig
from transformers import PeAudioVideoModel, PeVideoVideoProcessor
folder = _params["folder"]
config = PeAudioVideoConfig.from_dict(json.loads(open(folder + "/source_config.json").read()))
model = PeAudioVideoModel(config).eval()
vision = model.video_model.video_encoder.embedder.vision_model
assert type(vision).__name__ == "TimmWrapperForImageClassification", type(vision)
with torch.no_grad():
    # Random but not initial values everywhere (logit scales and biases start at zero).
    for p in model.parameters():
        p.add_(torch.randn_like(p) * 0.02)
model.save_pretrained(folder)
tokenizer = AutoTokenizer.from_pretrained(folder)
video = PeVideoVideoProcessor.from_pretrained(folder)
audio = PeAudioFeatureExtractor.from_pretrained(folder)
frames = list(_inputs["frames"])
text = tokenizer(_params["labels"], padding=True, return_tensors="pt")
sounds = audio([_inputs[f"sound{i}"] for i in range(_params["sounds"])],
               sampling_rate=48000, return_tensors="pt")
with torch.no_grad():
    # PE-AV's own video and audio models (its towers, tied to the full model's weights), each
    # with its text head. One clip of every frame (a scene), then each frame as its own
    # one-frame clip (segments).
    for name, videos in (("scene", [frames]), ("segments", [[f] for f in frames])):
        pixels = video(videos=videos, return_tensors="pt")
        out = model.video_model(
            input_ids=text["input_ids"], attention_mask=text["attention_mask"],
            pixel_values_videos=pixels["pixel_values_videos"],
        )
        _outputs[f"{name}_video"] = out.video_embeds.numpy()
    _outputs["text_video"] = out.text_video_embeds.numpy()
    out = model.audio_model(
        input_ids=text["input_ids"], attention_mask=text["attention_mask"],
        input_values=sounds["input_values"], padding_mask=sounds["padding_mask"],
    )
    _outputs["audio"] = out.audio_embeds.numpy()
    _outputs["text_audio"] = out.text_audio_embeds.numpy()
    _outputs["video_scale"] = model.video_model.text_video_logit_scale.numpy()
"""


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, vtest_avi, minetest_sounds, ovos_sounds):
    """(folder, reference outputs, frames, sounds at 48 kHz)."""
    require_reference()
    folder = tmp_path_factory.mktemp("pe-av-checkpoint")
    tokenizer = tiny_tokenizer()
    ids = {token: tokenizer.token_to_id(token) for token in SPECIAL_TOKENS}
    config = tiny_config(tokenizer.get_vocab_size(), ids)
    (folder / "source_config.json").write_text(config.to_json_string())
    tokenizer.save(str(folder / "tokenizer.json"))
    tokenizer_config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        **{f"{t.strip('[]').lower()}_token": t for t in SPECIAL_TOKENS},
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(tokenizer_config))
    for name, content in processor_files(TINY_FRAME_SIZE).items():
        (folder / name).write_text(json.dumps(content))
    frames = np.stack(
        [
            f.image
            for f in media.iter_frames(vtest_avi, max_side=2 * TINY_FRAME_SIZE)
            if f.index % 9 == 0
        ][:6]
    )
    paths = [*sorted(minetest_sounds.rglob("*.ogg"))[:3], ovos_sounds / "dog.mp3"]
    sounds = []
    for path in paths:
        audio = media.load_audio(path, channels="keep")
        sounds.append(prepare_audio(audio.samples, audio.sample_rate, 48_000))
    reference = run_reference(
        REFERENCE,
        folder,
        inputs={"frames": frames, **{f"sound{i}": s for i, s in enumerate(sounds)}},
        params={"folder": str(folder), "labels": LABELS, "sounds": len(sounds)},
    )
    return folder, reference, frames, sounds


@pytest.fixture(scope="module")
def encoder(checkpoint, tmp_path_factory):
    folder = checkpoint[0]
    from sfxmatch.config import Settings

    settings = Settings(cache_dir=tmp_path_factory.mktemp("cache"))
    return load_encoder(
        "pe-av-tiny", folder, device="cpu", dtype="fp32", settings=settings, progress=None
    )


def test_the_saved_checkpoint_is_what_the_hub_holds(checkpoint):
    folder = checkpoint[0]
    saved = json.loads((folder / "config.json").read_text())
    vision = saved["audio_video_config"]["video_config"]["vision_config"]
    assert vision["model_type"] == "timm_wrapper"  # written by transformers with timm
    assert (folder / "model.safetensors").is_file()


def test_picture_vectors_equal_transformers(checkpoint, encoder):
    _, reference, frames, _ = checkpoint
    scene = encoder.embed_scenes([SceneInput(frames, np.arange(len(frames)) * 0.9, 0.0, 6.0)])
    segments = encoder.embed_video_segments(frames[:, None])
    assert np.abs(scene - _unit(reference["scene_video"])).max() <= 1e-5
    assert np.abs(segments - _unit(reference["segments_video"])).max() <= 1e-5


def test_sound_vectors_equal_transformers(checkpoint, encoder):
    _, reference, _, sounds = checkpoint
    ours = encoder.embed_audio(sounds, 48_000)
    assert np.abs(ours - _unit(reference["audio"])).max() <= 1e-5


def test_each_text_space_uses_its_own_head(checkpoint, encoder):
    reference = checkpoint[1]
    video = encoder.embed_text(LABELS, space="video")
    audio = encoder.embed_text(LABELS, space="audio")
    assert np.abs(video - _unit(reference["text_video"])).max() <= 1e-5
    assert np.abs(audio - _unit(reference["text_audio"])).max() <= 1e-5
    assert np.abs(video - audio).max() > 0.05  # two heads, two spaces


def test_the_model_id_names_the_weights_and_the_temperature_their_scale(checkpoint, encoder):
    reference = checkpoint[1]
    assert encoder.model_id.startswith("pe-av-tiny/sha256-")
    scale = float(reference["video_scale"][0])
    expected = 1.0 / scale if scale > 0 else 0.01
    assert encoder.temperature == pytest.approx(expected)


def test_a_folder_that_is_not_a_checkpoint_is_one_clear_error(tmp_path):
    from sfxmatch.config import Settings
    from sfxmatch.errors import ModelError

    settings = Settings(cache_dir=tmp_path / "cache")
    (tmp_path / "weights").mkdir()
    with pytest.raises(ModelError, match=r"lacks config\.json, model\.safetensors"):
        load_encoder("pe-av-small", tmp_path / "weights", settings=settings, progress=None)
    assert Path(tmp_path / "weights").is_dir()


def _git_blob_sha1(data: bytes) -> str:
    import hashlib

    return hashlib.sha1(f"blob {len(data)}\0".encode() + data).hexdigest()


def test_a_checkpoint_in_the_hub_cache_loads_offline_and_equals_transformers(
    checkpoint, tmp_path, monkeypatch
):
    """The same files as a download leaves them in huggingface_hub's cache (blobs named by
    their hashes, a snapshot of links, the branch's ref), loaded with downloads off."""
    import hashlib

    from sfxmatch.config import Settings
    from sfxmatch.embed.pe.hub import OPTIONAL, REQUIRED

    folder, reference, frames, _ = checkpoint
    settings = Settings(cache_dir=tmp_path / "cache", offline=True)
    repo = settings.models_dir / "hub" / "models--facebook--pe-av-small"
    commit = "0123456789abcdef0123456789abcdef01234567"
    for name in (*REQUIRED, *OPTIONAL):
        data = (folder / name).read_bytes()
        large = name == "model.safetensors"
        blob = (
            repo / "blobs" / (hashlib.sha256(data).hexdigest() if large else _git_blob_sha1(data))
        )
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        link = repo / "snapshots" / commit / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(f"../../blobs/{blob.name}")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    encoder = load_encoder(
        "pe-av-small", device="cpu", dtype="fp32", settings=settings, progress=None
    )
    weights = hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()
    assert encoder.model_id == f"pe-av-small/sha256-{weights[:16]}/v1"
    segments = encoder.embed_video_segments(frames[:, None])
    assert np.abs(segments - _unit(reference["segments_video"])).max() <= 1e-5
    assert len(list((repo / "blobs").glob("*.verified"))) == len(REQUIRED) + len(OPTIONAL)
