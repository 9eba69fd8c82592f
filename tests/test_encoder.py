"""ImageBindEncoder with the tiny configuration (seeded random weights), its factory, and where
models run. What every encoder must do is in test_encoder_contract.py."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch
from sfxmatch.config import Settings
from sfxmatch.embed.cache import CachedEncoder, EmbeddingCache
from sfxmatch.embed.checkpoint import IMAGEBIND_HUGE
from sfxmatch.embed.encoder import (
    DevicePlacement,
    Encoder,
    SceneInput,
    choose_placement,
    load_encoder,
)
from sfxmatch.embed.imagebind.encoder import ImageBindEncoder
from sfxmatch.errors import ConfigError, ModelError

TINY = "imagebind-tiny"


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    # The tiny model is milliseconds per batch: extra threads only contend on a busy machine.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny() -> ImageBindEncoder:
    # Explicit device/dtype: an SFXMATCH_DEVICE in the developer's shell must not leak in.
    return load_encoder(TINY, device="cpu", dtype="fp32", batch_size=7, progress=None)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch, tmp_path):
    for name in ("DEVICE", "DTYPE", "BATCH_SIZE", "COMPILE", "IMAGEBIND_CHECKPOINT", "OFFLINE"):
        monkeypatch.delenv(f"SFXMATCH_{name}", raising=False)
    monkeypatch.setenv("SFXMATCH_CACHE_DIR", str(tmp_path / "cache"))


def _segments(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 2, 36, 64, 3), dtype=np.uint8)


def _waves(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [(0.1 * rng.standard_normal(4000 + 3000 * i)).astype(np.float32) for i in range(n)]


def _unit_rows(array: np.ndarray, rows: int, dim: int) -> None:
    assert array.shape == (rows, dim)
    assert array.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(array, axis=1), 1.0, atol=1e-5)


def test_every_method_gives_unit_float32_rows(tiny):
    assert isinstance(tiny, Encoder)
    assert tiny.dim == 24
    _unit_rows(tiny.embed_video_segments(_segments(9)), 9, 24)  # 7 + a partial batch of 2
    _unit_rows(tiny.embed_audio(_waves(3), 16_000), 3, 24)
    _unit_rows(tiny.embed_audio([np.zeros((2, 22_050), np.float32)], 44_100), 1, 24)
    _unit_rows(tiny.embed_text(["rain on a tin roof", "a dog barks", ""], space="video"), 3, 24)
    frames = np.random.default_rng(1).integers(0, 256, (40, 36, 64, 3), dtype=np.uint8)
    scenes = [
        SceneInput(frames, np.arange(40) / 10, 0.0, 4.0),
        SceneInput(frames, np.arange(40) / 10, 1.0, 1.5),
    ]
    _unit_rows(tiny.embed_scenes(scenes), 2, 24)
    assert tiny.embed_video_segments(_segments(0)).shape == (0, 24)
    assert tiny.embed_text([], space="audio").shape == (0, 24)


def test_inputs_are_not_confused(tiny):
    segments = tiny.embed_video_segments(_segments(3))
    assert not np.allclose(segments[0], segments[1])
    texts = tiny.embed_text(["thunder", "thunder", "birdsong"], space="video")
    np.testing.assert_array_equal(texts[0], texts[1])
    assert not np.allclose(texts[0], texts[2])


def test_batch_size_does_not_change_the_rows(tiny):
    one = ImageBindEncoder(
        tiny.model, spec=tiny.spec, model_id=tiny.model_id, placement=tiny.placement, batch_size=1
    )
    segments = _segments(7, seed=2)
    np.testing.assert_allclose(
        one.embed_video_segments(segments), tiny.embed_video_segments(segments), atol=1e-5
    )
    waves = _waves(3, seed=3)
    np.testing.assert_allclose(
        one.embed_audio(waves, 16_000), tiny.embed_audio(waves, 16_000), atol=1e-5
    )
    texts = ["wind", "a door creaks open", "footsteps on gravel", "sea", "fire", "car", "owl"]
    np.testing.assert_allclose(
        one.embed_text(texts, space="video"), tiny.embed_text(texts, space="video"), atol=1e-5
    )


def test_same_seed_same_vectors_and_the_id_says_random(tiny):
    again = load_encoder(TINY, device="cpu", dtype="fp32", progress=None)
    other = load_encoder(TINY, device="cpu", dtype="fp32", seed=1, progress=None)
    segments = _segments(2, seed=4)
    np.testing.assert_array_equal(
        again.embed_video_segments(segments), tiny.embed_video_segments(segments)
    )
    assert not np.allclose(
        other.embed_video_segments(segments), again.embed_video_segments(segments)
    )
    assert again.model_id == tiny.model_id == "imagebind-tiny/random-seed0/v1"
    assert "random" in other.model_id and other.model_id != tiny.model_id


def test_checkpoint_weights_load_and_are_named_by_hash(tiny, tmp_path):
    path = tmp_path / "tiny.pth"
    torch.save(tiny.model.state_dict(), path)
    loaded = load_encoder(TINY, path, device="cpu", dtype="fp32", progress=None)
    assert loaded.model_id.startswith("imagebind-tiny/sha256-")
    segments = _segments(3, seed=5)
    np.testing.assert_allclose(
        loaded.embed_video_segments(segments), tiny.embed_video_segments(segments), atol=1e-6
    )
    # The digest is remembered: a second load hashes nothing (same id, digests.json reused).
    assert (tmp_path / "cache" / "models" / "digests.json").exists()
    assert load_encoder(TINY, path, device="cpu", progress=None).model_id == loaded.model_id


def test_cached_encoder_over_the_model_matches_it(tiny, tmp_path):
    with EmbeddingCache(tmp_path / "e.sqlite3") as cache:
        cached = CachedEncoder(tiny, cache)
        segments = _segments(4, seed=6)
        first = cached.embed_video_segments(segments)
        np.testing.assert_allclose(first, tiny.embed_video_segments(segments), atol=1e-6)
        np.testing.assert_array_equal(cached.embed_video_segments(list(segments)), first)
        assert len(cache) == 4


def test_huge_without_a_checkpoint_raises_the_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("SFXMATCH_OFFLINE", "1")  # never touch the network in tests
    with pytest.raises(ModelError) as caught:
        load_encoder("imagebind-huge", device="cpu", progress=None)
    message = str(caught.value)
    assert IMAGEBIND_HUGE.url in message
    assert "SFXMATCH_IMAGEBIND_CHECKPOINT" in message
    assert str(tmp_path / "cache" / "models" / "imagebind_huge.pth") in message
    with pytest.raises(ModelError, match="does not exist"):
        load_encoder("imagebind-huge", tmp_path / "nope.pth", progress=None)


def test_environment_chooses_dtype_and_batch_size(monkeypatch):
    monkeypatch.setenv("SFXMATCH_DTYPE", "bf16")
    monkeypatch.setenv("SFXMATCH_BATCH_SIZE", "3")
    encoder = load_encoder(TINY, progress=None)
    assert encoder.placement == DevicePlacement("cpu", "bf16")  # no CUDA on a test machine
    assert encoder.batch_size == 3
    assert next(encoder.model.parameters()).dtype == torch.bfloat16
    _unit_rows(encoder.embed_video_segments(_segments(4)), 4, 24)
    # Arguments beat the environment.
    assert load_encoder(TINY, dtype="fp32", batch_size=5, progress=None).placement.dtype == "fp32"
    monkeypatch.setenv("SFXMATCH_BATCH_SIZE", "zero")
    with pytest.raises(ConfigError, match="SFXMATCH_BATCH_SIZE"):
        Settings.from_env()


def test_compiled_encoder_pads_partial_batches(tiny):
    compiled = ImageBindEncoder(
        tiny.model,
        spec=tiny.spec,
        model_id=tiny.model_id,
        placement=tiny.placement,
        batch_size=4,
        compile="eager",
    )
    segments = _segments(6, seed=7)  # a full batch, then 2 padded to 4
    np.testing.assert_allclose(
        compiled.embed_video_segments(segments), tiny.embed_video_segments(segments), atol=1e-5
    )


@pytest.mark.parametrize(
    ("device", "dtype", "cuda", "bf16", "mps", "expected"),
    [
        (None, None, True, True, True, DevicePlacement("cuda", "bf16")),
        (None, None, True, False, False, DevicePlacement("cuda", "fp16")),
        (None, None, False, False, False, DevicePlacement("cpu", "fp32")),
        (None, None, False, False, True, DevicePlacement("mps", "fp16")),
        (None, "fp16", True, True, False, DevicePlacement("cuda", "fp16")),
        ("cpu", None, True, True, True, DevicePlacement("cpu", "fp32")),
        ("cpu", "bfloat16", False, False, False, DevicePlacement("cpu", "bf16")),
        ("CUDA:1", "float32", True, True, False, DevicePlacement("cuda:1", "fp32")),
        ("mps", "fp32", False, False, True, DevicePlacement("mps", "fp32")),
    ],
)
def test_choose_placement(device, dtype, cuda, bf16, mps, expected):
    chosen = choose_placement(device, dtype, cuda_available=cuda, cuda_bf16=bf16, mps_available=mps)
    assert chosen == expected


@pytest.mark.parametrize(
    ("device", "dtype", "cuda", "bf16", "mps", "error"),
    [
        ("cuda", None, False, False, False, "CUDA is not available"),
        (None, "bf16", True, False, False, "does not support"),
        ("cpu", "fp16", True, True, False, "fp16 is for GPUs"),
        ("tpu", None, False, False, False, "unknown device"),
        (None, "int8", False, False, False, "unknown dtype"),
        ("mps", None, False, False, False, "MPS is not available"),
        ("mps", "bf16", False, False, True, "not supported on MPS"),
    ],
)
def test_choose_placement_refuses(device, dtype, cuda, bf16, mps, error):
    with pytest.raises(ConfigError, match=error):
        choose_placement(device, dtype, cuda_available=cuda, cuda_bf16=bf16, mps_available=mps)
