"""On-disk embedding cache keyed by model and content, and a caching Encoder wrapper.

Format: one SQLite database (``<cache>/embeddings/embeddings.sqlite3``) in WAL mode, one row
per vector: (model_id, kind, key) -> (dim, float32 blob, 8-byte BLAKE2b of the blob). Why:

- crash-safe for free: every ``put_many`` is one transaction, so a killed process leaves
  either all of a batch or none of it, never a torn file (a directory of .npy shards would
  need its own temp-file/rename dance and an index);
- several processes (daemon, CLI, indexer) read while one writes (WAL), and writers queue on
  SQLite's lock (``busy_timeout``) instead of corrupting each other;
- one indexed ``SELECT ... IN (...)`` fetches a batch; 1024 float32s are 4 KiB, SQLite's
  sweet spot for blobs;
- in the standard library.

A row whose blob fails its checksum or has the wrong size counts as a miss and is recomputed
and overwritten. A database file SQLite cannot open is moved aside and a fresh one started:
it is a cache.

Keys are ``content_key(...)``: BLAKE2b-256 over the input's dtype, shape and bytes plus the
preprocessing parameters; the model id (weights + config + preprocessing version) and the
kind ("segment", "scene", "audio", "audio_window", "text" for the video text space,
"text:audio") are separate columns, so two models never share a row.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sfxmatch.config import Settings
from sfxmatch.embed.encoder import DevicePlacement, Encoder, SceneInput, TextSpace, window_starts
from sfxmatch.embed.registry import ModelSpec
from sfxmatch.errors import is_storage_full

log = logging.getLogger(__name__)

_KEY_VERSION = b"sfxmatch-embedding-key-v1"
_SQL_CHUNK = 500  # below SQLite's default host-parameter limit with room to spare
# Cache kinds of text vectors per space ("text" is the video space, as before spaces existed).
_TEXT_KINDS: dict[str, str] = {"video": "text", "audio": "text:audio"}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS embeddings (
    model_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    dim INTEGER NOT NULL,
    vector BLOB NOT NULL,
    checksum BLOB NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (model_id, kind, key)
) WITHOUT ROWID
"""


def content_key(data: np.ndarray | bytes | str, **params: object) -> str:
    """A hex key for one input: its exact content plus the parameters that shape its embedding.

    ``params`` must be JSON-serialisable (sample rate, clip layout, ...); arrays are hashed
    with their dtype and shape, so the same bytes viewed differently do not collide.
    """
    hasher = hashlib.blake2b(_KEY_VERSION, digest_size=32)
    hasher.update(json.dumps(params, sort_keys=True, separators=(",", ":")).encode())
    if isinstance(data, str):
        hasher.update(b"str:" + data.encode("utf-8"))
    elif isinstance(data, bytes | bytearray | memoryview):
        hasher.update(b"bytes:")
        hasher.update(data)
    else:
        array = np.ascontiguousarray(data)
        hasher.update(f"array:{array.dtype.str}:{array.shape}:".encode())
        hasher.update(array.data.cast("B"))
    return hasher.hexdigest()


def _scene_key(scene: SceneInput) -> str:
    # Only the frames inside the scene can matter; hashing them streams (no big copy).
    times = np.asarray(scene.times, dtype=np.float64)
    hasher = hashlib.blake2b(_KEY_VERSION + b"scene", digest_size=32)
    hasher.update(np.asarray([scene.start, scene.end], dtype=np.float64).tobytes())
    for index in np.flatnonzero((times >= scene.start - 1e-6) & (times < scene.end)):
        hasher.update(times[index].tobytes())
        hasher.update(bytes.fromhex(content_key(scene.frames[int(index)])))
    return hasher.hexdigest()


def _checksum(blob: bytes) -> bytes:
    return hashlib.blake2b(blob, digest_size=8).digest()


class EmbeddingCache:
    """Vectors on disk, keyed by (model_id, kind, key). Safe across threads and processes."""

    def __init__(self, path: str | os.PathLike[str] | None = None, *, timeout: float = 60.0):
        if path is None:
            path = Settings.from_env().embeddings_dir / "embeddings.sqlite3"
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._timeout = timeout
        self._lock = threading.Lock()  # one connection shared by this object's threads
        self._db = self._open()

    def _open(self) -> sqlite3.Connection:
        try:
            return self._connect()
        except sqlite3.DatabaseError as error:  # "file is not a database" and the like
            aside = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time())}")
            log.warning("embedding cache %s unreadable (%s); moved to %s", self.path, error, aside)
            os.replace(self.path, aside)
            for suffix in ("-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(f"{self.path}{suffix}")
            return self._connect()

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(
            self.path, timeout=self._timeout, isolation_level=None, check_same_thread=False
        )
        try:
            db.execute(f"PRAGMA busy_timeout={int(self._timeout * 1000)}")
            db.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL: a crash never corrupts; a power cut may drop the last batches.
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute(_SCHEMA)
        except sqlite3.DatabaseError:
            db.close()
            raise
        return db

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> EmbeddingCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0])

    def get_many(
        self, model_id: str, kind: str, keys: Sequence[str], *, dim: int | None = None
    ) -> list[np.ndarray | None]:
        """Vectors for ``keys`` in order; None for a miss or a damaged entry."""
        found: dict[str, np.ndarray] = {}
        unique = list(dict.fromkeys(keys))
        with self._lock:
            for start in range(0, len(unique), _SQL_CHUNK):
                chunk = unique[start : start + _SQL_CHUNK]
                rows = self._db.execute(
                    "SELECT key, dim, vector, checksum FROM embeddings "
                    f"WHERE model_id = ? AND kind = ? AND key IN ({','.join('?' * len(chunk))})",
                    (model_id, kind, *chunk),
                ).fetchall()
                for key, row_dim, blob, checksum in rows:
                    vector = _decode(blob, checksum, row_dim, dim)
                    if vector is None:
                        log.warning("embedding cache: damaged entry %s/%s/%s", model_id, kind, key)
                    else:
                        found[key] = vector
        return [found.get(key) for key in keys]

    def put_many(self, model_id: str, kind: str, items: Iterable[tuple[str, np.ndarray]]) -> None:
        """Store vectors (float32, 1-D), replacing entries with the same key, in one transaction."""
        rows = []
        now = time.time()
        for key, vector in items:
            array = np.ascontiguousarray(vector, dtype=np.float32)
            if array.ndim != 1:
                raise ValueError(f"expected a 1-D vector for {key}, got shape {array.shape}")
            blob = array.tobytes()
            rows.append((model_id, kind, key, array.shape[0], blob, _checksum(blob), now))
        if not rows:
            return
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.executemany(
                    "INSERT OR REPLACE INTO embeddings VALUES (?,?,?,?,?,?,?)", rows
                )
                self._db.execute("COMMIT")
            except BaseException as exc:
                if self._db.in_transaction:  # SQLite may have rolled back already
                    self._db.execute("ROLLBACK")
                if is_storage_full(exc):  # a cache: the work goes on without it
                    log.warning("embedding cache %s: disk full, vectors not cached", self.path)
                    return
                raise


def _decode(blob: object, checksum: object, row_dim: int, dim: int | None) -> np.ndarray | None:
    if not isinstance(blob, bytes) or not isinstance(checksum, bytes):
        return None
    if len(blob) != row_dim * 4 or (dim is not None and row_dim != dim):
        return None
    if _checksum(blob) != checksum:
        return None
    vector = np.frombuffer(blob, dtype=np.float32).copy()
    return vector if np.isfinite(vector).all() else None


class CachedEncoder:
    """An Encoder that looks each input up in an EmbeddingCache and computes only the misses.

    Identical inputs within one call are computed once. The wrapped encoder's ``model_id``
    must change whenever its weights, config or preprocessing change.
    """

    def __init__(self, encoder: Encoder, cache: EmbeddingCache) -> None:
        self.encoder = encoder
        self.cache = cache

    @property
    def model_id(self) -> str:
        return self.encoder.model_id

    @property
    def spec(self) -> ModelSpec:
        return self.encoder.spec

    @property
    def dim(self) -> int:
        return self.encoder.dim

    @property
    def temperature(self) -> float:
        return self.encoder.temperature

    @property
    def placement(self) -> DevicePlacement:
        return self.encoder.placement

    def embed_video_segments(self, clips: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        items = list(clips)
        keys = [content_key(clip) for clip in items]
        return self._cached(
            "segment",
            keys,
            items,
            lambda misses: self.encoder.embed_video_segments(np.stack(misses)),
        )

    def emitter_maps(
        self, clips: np.ndarray | Sequence[np.ndarray], label_vectors: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        return self.encoder.emitter_maps(clips, label_vectors)  # maps are not worth caching

    def embed_scenes(self, scenes: Sequence[SceneInput]) -> np.ndarray:
        items = list(scenes)
        keys = [_scene_key(scene) for scene in items]
        return self._cached("scene", keys, items, self.encoder.embed_scenes)

    def prepare_audio(self, samples: np.ndarray, sample_rate: int) -> np.ndarray:
        return self.encoder.prepare_audio(samples, sample_rate)

    def embed_audio(self, waveforms: Sequence[np.ndarray], sample_rate: int) -> np.ndarray:
        items = list(waveforms)
        keys = [content_key(np.asarray(w, np.float32), sample_rate=sample_rate) for w in items]
        return self._cached(
            "audio", keys, items, lambda misses: self.encoder.embed_audio(misses, sample_rate)
        )

    def embed_audio_windows(
        self, waveform: np.ndarray, sample_rate: int, *, window: float, hop: float
    ) -> tuple[np.ndarray, np.ndarray]:
        # One row per window; which windows there are follows the shared rule, so a complete
        # hit needs no model call.
        data = np.asarray(waveform, np.float32)
        starts = window_starts(data.shape[-1], sample_rate, window, hop)
        base = content_key(data, sample_rate=sample_rate, window=window, hop=hop)
        keys = [f"{base}:{i}" for i in range(len(starts))]
        hits = self.cache.get_many(self.model_id, "audio_window", keys, dim=self.dim)
        if all(h is not None for h in hits):
            vectors = np.stack([np.asarray(h, np.float32) for h in hits])
            return vectors, np.asarray(starts, np.float64) / sample_rate
        vectors, times = self.encoder.embed_audio_windows(data, sample_rate, window=window, hop=hop)
        if len(vectors) == len(keys):
            self.cache.put_many(self.model_id, "audio_window", zip(keys, vectors, strict=True))
        return vectors, times

    def embed_text(self, texts: Sequence[str], *, space: TextSpace) -> np.ndarray:
        items = list(texts)
        keys = [content_key(text) for text in items]
        return self._cached(
            _TEXT_KINDS[space],
            keys,
            items,
            lambda misses: self.encoder.embed_text(misses, space=space),
        )

    def _cached(
        self,
        kind: str,
        keys: list[str],
        items: list[Any],
        compute: Callable[[list[Any]], np.ndarray],
    ) -> np.ndarray:
        out = np.empty((len(keys), self.dim), dtype=np.float32)
        hits = self.cache.get_many(self.model_id, kind, keys, dim=self.dim)
        todo: dict[str, list[int]] = {}
        for index, (key, hit) in enumerate(zip(keys, hits, strict=True)):
            if hit is None:
                todo.setdefault(key, []).append(index)
            else:
                out[index] = hit
        if todo:
            firsts = [positions[0] for positions in todo.values()]
            vectors = np.asarray(compute([items[i] for i in firsts]), dtype=np.float32)
            self.cache.put_many(self.model_id, kind, zip(todo, vectors, strict=True))
            for positions, vector in zip(todo.values(), vectors, strict=True):
                out[positions] = vector
        return out
