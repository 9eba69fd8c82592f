"""Embedding cache and CachedEncoder, with a counting fake encoder (no model, no torch)."""

from __future__ import annotations

import hashlib
import multiprocessing
import sqlite3
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from sfxmatch.embed.cache import CachedEncoder, EmbeddingCache, content_key
from sfxmatch.embed.encoder import DevicePlacement, Encoder, SceneInput
from sfxmatch.embed.registry import ModelSpec, get_model

DIM = 16


def _vector(seed: bytes) -> np.ndarray:
    rng = np.random.default_rng(int.from_bytes(hashlib.sha256(seed).digest()[:8], "little"))
    v = rng.standard_normal(DIM).astype(np.float32)
    return v / np.linalg.norm(v)


class CountingEncoder:
    """Deterministic vectors from content and model id; records every input it computes."""

    def __init__(self, model_id: str = "fake-a") -> None:
        self._model_id = model_id
        self.computed: list[tuple[str, object]] = []

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def dim(self) -> int:
        return DIM

    @property
    def spec(self) -> ModelSpec:
        return replace(get_model("imagebind-tiny"), name=self._model_id, dim=DIM)

    @property
    def temperature(self) -> float:
        return 0.01

    @property
    def placement(self) -> DevicePlacement:
        return DevicePlacement("cpu", "fp32")

    def prepare_audio(self, samples: np.ndarray, sample_rate: int) -> np.ndarray:
        return np.asarray(samples, np.float32)

    def emitter_maps(self, clips: np.ndarray, label_vectors: np.ndarray) -> tuple:
        return np.ones((len(clips), 1, 1), np.float32), np.zeros(len(clips), np.float32)

    def _embed(self, kind: str, items: Sequence[bytes]) -> np.ndarray:
        self.computed.extend((kind, item) for item in items)
        rows = [_vector(self._model_id.encode() + kind.encode() + item) for item in items]
        return np.stack(rows) if rows else np.empty((0, DIM), np.float32)

    def embed_video_segments(self, clips: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        return self._embed("segment", [np.asarray(c).tobytes() for c in clips])

    def embed_scenes(self, scenes: Sequence[SceneInput]) -> np.ndarray:
        return self._embed("scene", [np.asarray(s.frames).tobytes() for s in scenes])

    def embed_audio(self, waveforms: Sequence[np.ndarray], sample_rate: int) -> np.ndarray:
        return self._embed(
            "audio", [str(sample_rate).encode() + np.asarray(w).tobytes() for w in waveforms]
        )

    def embed_text(self, texts: Sequence[str], *, space: str) -> np.ndarray:
        return self._embed(f"text-{space}", [t.encode() for t in texts])


def _clips(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 2, 8, 8, 3), dtype=np.uint8)


@pytest.fixture
def cache(tmp_path: Path):
    with EmbeddingCache(tmp_path / "emb.sqlite3") as opened:
        yield opened


def test_hits_avoid_recomputation_and_return_the_same_rows(cache):
    inner = CountingEncoder()
    encoder = CachedEncoder(inner, cache)
    clips = _clips(5)
    first = encoder.embed_video_segments(clips)
    assert len(inner.computed) == 5
    second = encoder.embed_video_segments(clips)
    assert len(inner.computed) == 5
    np.testing.assert_array_equal(first, second)
    np.testing.assert_allclose(first, inner.embed_video_segments(clips))

    # Two new clips among three known ones: only the new ones are computed, order kept.
    mixed = np.concatenate([clips[:3], _clips(2, seed=1)])
    before = len(inner.computed)
    out = encoder.embed_video_segments(mixed)
    assert len(inner.computed) - before == 2
    np.testing.assert_array_equal(out[:3], first[:3])


def test_every_kind_is_cached(cache):
    inner = CountingEncoder()
    encoder = CachedEncoder(inner, cache)
    assert isinstance(encoder, Encoder)
    waves = [np.linspace(-1, 1, 100, dtype=np.float32), np.zeros(50, np.float32)]
    frames = np.random.default_rng(3).integers(0, 256, (20, 8, 8, 3), dtype=np.uint8)
    times = np.arange(20) / 10
    scenes = [SceneInput(frames, times, 0.0, 1.0), SceneInput(frames, times, 1.0, 2.0)]
    for _ in range(2):
        assert encoder.embed_text(["rain", "door slam"], space="video").shape == (2, DIM)
        assert encoder.embed_audio(waves, 16_000).shape == (2, DIM)
        assert encoder.embed_scenes(scenes).shape == (2, DIM)
    assert len(inner.computed) == 6
    encoder.embed_audio(waves, 48_000)  # another rate is another input
    assert len(inner.computed) == 8
    assert encoder.embed_text([], space="video").shape == (0, DIM)
    # A scene's key covers its own frames only: frames outside it may change freely.
    outside = frames.copy()
    outside[15:] = 0
    encoder.embed_scenes([SceneInput(outside, times, 0.0, 1.0)])
    assert len(inner.computed) == 8
    encoder.embed_scenes([SceneInput(outside, times, 0.0, 1.6)])
    assert len(inner.computed) == 9


def test_duplicates_within_a_call_are_computed_once(cache):
    inner = CountingEncoder()
    out = CachedEncoder(inner, cache).embed_text(["wind", "wind", "birds", "wind"], space="video")
    assert [item for _, item in inner.computed] == [b"wind", b"birds"]
    np.testing.assert_array_equal(out[0], out[3])


def test_model_ids_do_not_collide(cache):
    a, b = CountingEncoder("model-a"), CountingEncoder("model-b")
    clips = _clips(3)
    out_a = CachedEncoder(a, cache).embed_video_segments(clips)
    out_b = CachedEncoder(b, cache).embed_video_segments(clips)
    assert len(b.computed) == 3  # nothing of model-a's was served to model-b
    assert not np.allclose(out_a, out_b)
    np.testing.assert_array_equal(CachedEncoder(a, cache).embed_video_segments(clips), out_a)
    assert len(cache) == 6


def test_content_key_covers_dtype_shape_and_params():
    data = np.arange(12, dtype=np.uint8)
    keys = {
        content_key(data),
        content_key(data.reshape(3, 4)),
        content_key(data.astype(np.int16)),
        content_key(data, sample_rate=16_000),
        content_key(data, sample_rate=48_000),
        content_key(data.tobytes()),
        content_key("abc"),
        content_key(b"abc"),
    }
    assert len(keys) == 8
    assert content_key(data, a=1, b=2) == content_key(data.copy(), b=2, a=1)


def test_damaged_entries_are_recomputed_and_repaired(tmp_path):
    path = tmp_path / "emb.sqlite3"
    inner = CountingEncoder()
    with EmbeddingCache(path) as cache:
        good = CachedEncoder(inner, cache).embed_text(["a", "b", "c"], space="video")
    with sqlite3.connect(path) as db:
        key_a, key_b = content_key("a"), content_key("b")
        db.execute("UPDATE embeddings SET vector = zeroblob(64) WHERE key = ?", (key_a,))
        db.execute("UPDATE embeddings SET vector = x'0000' WHERE key = ?", (key_b,))
    with EmbeddingCache(path) as cache:
        out = CachedEncoder(inner, cache).embed_text(["a", "b", "c"], space="video")
        np.testing.assert_array_equal(out, good)
        assert [item for _, item in inner.computed[3:]] == [b"a", b"b"]
        assert all(v is not None for v in cache.get_many("fake-a", "text", [key_a, key_b]))


def test_entries_of_another_dimension_are_misses(cache):
    cache.put_many("m", "text", [("k", np.ones(8, np.float32))])
    assert cache.get_many("m", "text", ["k"], dim=16) == [None]
    assert cache.get_many("m", "text", ["k"], dim=8)[0] is not None
    assert cache.get_many("m", "audio", ["k"]) == [None]
    with pytest.raises(ValueError, match="1-D"):
        cache.put_many("m", "text", [("k", np.ones((2, 8)))])


def test_unreadable_database_is_moved_aside(tmp_path):
    path = tmp_path / "emb.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    with EmbeddingCache(path) as cache:
        cache.put_many("m", "text", [("k", np.ones(4, np.float32))])
        assert len(cache) == 1
    assert len(list(tmp_path.glob("emb.sqlite3.corrupt-*"))) == 1


def test_default_location_follows_the_cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("SFXMATCH_CACHE_DIR", str(tmp_path / "c"))
    with EmbeddingCache() as cache:
        assert cache.path == tmp_path / "c" / "embeddings" / "embeddings.sqlite3"


def _writer(path: str, worker: int, rounds: int) -> None:
    """Each process writes overlapping keys in small transactions and reads them back."""
    with EmbeddingCache(path) as cache:
        for r in range(rounds):
            keys = [f"k{(worker * 7 + r * 3 + j) % 60}" for j in range(10)]
            cache.put_many("m", "text", [(k, _vector(k.encode())) for k in keys])
            for key, got in zip(keys, cache.get_many("m", "text", keys), strict=True):
                if got is None or not np.array_equal(got, _vector(key.encode())):
                    raise AssertionError(f"worker {worker} read back a bad {key}")


def test_concurrent_processes_do_not_corrupt(tmp_path):
    path = str(tmp_path / "emb.sqlite3")
    EmbeddingCache(path).close()  # create the schema once; the workers race on the data only
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_writer, args=(path, w, 40)) for w in range(3)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(timeout=60)
    assert [process.exitcode for process in workers] == [0, 0, 0]
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    with EmbeddingCache(path) as cache:
        keys = [f"k{i}" for i in range(60)]
        stored = cache.get_many("m", "text", keys)
        for key, got in zip(keys, stored, strict=True):
            assert got is not None
            np.testing.assert_array_equal(got, _vector(key.encode()))


def test_importing_the_cache_does_not_import_torch():
    code = "import sys, sfxmatch.embed.cache; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
