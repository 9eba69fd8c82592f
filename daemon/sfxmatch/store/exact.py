"""Exact (brute-force) search in numpy: the ground truth for benchmarks and tests, a store for
tiny libraries, and the in-memory search of ``LanceStore`` below its index threshold.

Every query is matrix-vector products over the matching rows, so results are exact and
latency grows linearly with the library. Rows are kept in one contiguous block per kind:
nearly every query filters on kind (ambience for scenes, effects for AutoSync), and a
contiguous block is read at memory bandwidth where gathering scattered rows is several times
slower (BENCHMARKS.md). With a ``path`` the store persists to one ``.npz`` file replaced
atomically on every write, which suits libraries of a few thousand vectors.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike, NDArray

from sfxmatch.errors import StoreError
from sfxmatch.files import atomic_write
from sfxmatch.store.base import (
    DEFAULT_DIM,
    FILTER_FIELDS,
    KINDS,
    Filter,
    Hit,
    Kind,
    Record,
    SoundMeta,
    StoreLifecycle,
    check_top_k,
    delete_selector,
    normalize_query,
    prepare_ids,
    prepare_records,
)

_FILE_NAME = "exact.npz"
_CODED_FIELDS = tuple(name for name in FILTER_FIELDS if name != "kind")  # kind picks the block


def top_k_indices(scores: NDArray[np.float32], top_k: int) -> NDArray[np.intp]:
    """Indices of the ``top_k`` largest scores, best first (ties broken by position)."""
    n = scores.shape[0]
    candidates = np.arange(n) if top_k >= n else np.argpartition(-scores, top_k - 1)[:top_k]
    # lexsort: primary key is the score (descending), then the row for a stable order
    order = np.lexsort((candidates, -scores[candidates]))
    return candidates[order]


class _Block:
    """The rows of one kind: a dense float32 matrix plus ids, metadata and filter codes."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.size = 0
        self.matrix = np.empty((0, dim), dtype=np.float32)
        self.ids: list[str] = []
        self.metas: list[SoundMeta] = []
        # Per filter field, one int32 code per row: a filter is a vectorised np.isin.
        self.codes = {name: np.empty(0, dtype=np.int32) for name in _CODED_FIELDS}

    def reserve(self, rows: int) -> None:
        if rows <= self.matrix.shape[0]:
            return
        capacity = max(rows, 2 * self.matrix.shape[0], 64)  # amortised growth
        grown = np.empty((capacity, self.dim), dtype=np.float32)
        grown[: self.size] = self.matrix[: self.size]
        self.matrix = grown
        for name, codes in self.codes.items():
            grown_codes = np.empty(capacity, dtype=np.int32)
            grown_codes[: self.size] = codes[: self.size]
            self.codes[name] = grown_codes

    def put(self, row: int | None, record: Record, codes: dict[str, int]) -> int:
        if row is None:
            self.reserve(self.size + 1)
            row = self.size
            self.size += 1
            self.ids.append(record.id)
            self.metas.append(record.meta)
        else:
            self.metas[row] = record.meta
        self.matrix[row] = record.vector
        for name, code in codes.items():
            self.codes[name][row] = code
        return row

    def remove(self, row: int) -> str | None:
        """Swap-remove a row; returns the id that moved into it (None if it was the last)."""
        last = self.size - 1
        moved = None
        if row != last:
            moved = self.ids[last]
            self.matrix[row] = self.matrix[last]
            self.ids[row] = moved
            self.metas[row] = self.metas[last]
            for codes in self.codes.values():
                codes[row] = codes[last]
        self.ids.pop()
        self.metas.pop()
        self.size = last
        return moved

    def rows(self, clauses: list[tuple[str, list[int]]]) -> NDArray[np.intp] | None:
        """Rows matching coded clauses, or None for "every row"."""
        if not clauses:
            return None
        mask = np.ones(self.size, dtype=bool)
        for name, wanted in clauses:
            mask &= np.isin(self.codes[name][: self.size], wanted)
        return np.flatnonzero(mask)

    def scores(self, q: NDArray[np.float32], rows: NDArray[np.intp] | None) -> NDArray[np.float32]:
        if rows is None:
            return self.matrix[: self.size] @ q
        if rows.size * 4 > self.size:
            # A broad filter: one pass over the contiguous block beats gathering the rows.
            return (self.matrix[: self.size] @ q)[rows]
        return self.matrix[rows] @ q


class ExactStore(StoreLifecycle):
    """In-memory rows, optional single-file persistence, exact cosine search."""

    def __init__(self, dim: int = DEFAULT_DIM, path: str | os.PathLike[str] | None = None) -> None:
        self._dim = dim
        self._blocks = {kind: _Block(dim) for kind in KINDS}
        self._where: dict[str, tuple[Kind, int]] = {}  # id -> (kind, row)
        self._vocab: dict[str, dict[str, int]] = {name: {} for name in _CODED_FIELDS}
        self._file = Path(path) / _FILE_NAME if path is not None else None
        self._closed = False
        if self._file is not None and self._file.exists():
            self._load(self._file)

    @classmethod
    def from_arrays(
        cls, ids: Sequence[str], vectors: NDArray[np.float32], metas: Sequence[SoundMeta]
    ) -> ExactStore:
        """An in-memory store over rows already validated elsewhere (a bulk load that skips
        per-record checks): ``vectors`` is (n, dim) float32, one row per id."""
        if not (len(ids) == len(metas) == vectors.shape[0]) or len(set(ids)) != len(ids):
            raise ValueError("ids, vectors and metas must be the same length, ids unique")
        store = cls(vectors.shape[1])
        store._fill(ids, np.asarray(vectors, dtype=np.float32), metas)
        return store

    # -- protocol ------------------------------------------------------------------------

    @property
    def dim(self) -> int:
        return self._dim

    def upsert(self, records: Iterable[Record]) -> int:
        self._check_open()
        prepared = prepare_records(records, self._dim)
        for record in prepared:
            self._put(record)
        if prepared:
            self._save()
        return len(prepared)

    def delete(self, ids: Iterable[str] | None = None, *, filter: Filter | None = None) -> None:
        self._check_open()
        selected = delete_selector(ids, filter)
        wanted = self._matching_ids(selected) if isinstance(selected, Filter) else selected
        changed = False
        for record_id in wanted:
            if record_id in self._where:
                self._remove(record_id)
                changed = True
        if changed:
            self._save()

    def get(self, ids: Sequence[str]) -> list[Record]:
        self._check_open()
        out = []
        for record_id in prepare_ids(ids):
            found = self._where.get(record_id)
            if found is not None:
                block = self._blocks[found[0]]
                row = found[1]
                out.append(Record(record_id, block.matrix[row].copy(), block.metas[row]))
        return out

    def query(self, vector: ArrayLike, top_k: int = 10, filter: Filter | None = None) -> list[Hit]:
        self._check_open()
        q = normalize_query(vector, self._dim)
        check_top_k(top_k)
        best: list[tuple[float, str, SoundMeta]] = []
        for block, rows in self._selection(filter):
            scores = block.scores(q, rows)
            if scores.size == 0:
                continue
            for i in top_k_indices(scores, top_k).tolist():
                row = i if rows is None else int(rows[i])
                best.append((float(scores[i]), block.ids[row], block.metas[row]))
        best.sort(key=lambda hit: (-hit[0], hit[1]))
        return [Hit(record_id, score, meta) for score, record_id, meta in best[:top_k]]

    def count(self, filter: Filter | None = None) -> int:
        self._check_open()
        return sum(b.size if r is None else int(r.size) for b, r in self._selection(filter))

    def labels(self, filter: Filter | None = None) -> list[str]:
        self._check_open()
        names = list(self._vocab["label"])  # insertion order = code order
        present: set[int] = set()
        for block, rows in self._selection(filter):
            codes = block.codes["label"][: block.size]
            present.update(np.unique(codes if rows is None else codes[rows]).tolist())
        return sorted(names[c] for c in present)

    def close(self) -> None:
        self._closed = True

    # -- internals -----------------------------------------------------------------------

    def _selection(self, filter: Filter | None) -> list[tuple[_Block, NDArray[np.intp] | None]]:
        """(block, rows) pairs covering the matching records; rows None = the whole block."""
        if filter is not None and filter.is_empty:
            return []
        kinds = filter.values("kind") if filter is not None else None
        clauses = []
        for name, values in filter.clauses if filter is not None else ():
            if name == "kind":
                continue
            vocab = self._vocab[name]
            clauses.append((name, [vocab[v] for v in values if v in vocab]))
        return [
            (block, block.rows(clauses))
            for kind, block in self._blocks.items()
            if block.size and (kinds is None or kind in kinds)
        ]

    def _matching_ids(self, filter: Filter) -> list[str]:
        out: list[str] = []
        for block, rows in self._selection(filter):
            every = block.ids[: block.size]
            out += every if rows is None else [every[r] for r in rows.tolist()]
        return out

    def _codes(self, meta: SoundMeta) -> dict[str, int]:
        out = {}
        for name in _CODED_FIELDS:
            vocab = self._vocab[name]
            out[name] = vocab.setdefault(getattr(meta, name), len(vocab))
        return out

    def _put(self, record: Record) -> None:
        found = self._where.get(record.id)
        if found is not None and found[0] != record.meta.kind:
            self._remove(record.id)  # the kind changed: the row moves to another block
            found = None
        row = self._blocks[record.meta.kind].put(
            found[1] if found else None, record, self._codes(record.meta)
        )
        self._where[record.id] = (record.meta.kind, row)

    def _remove(self, record_id: str) -> None:
        kind, row = self._where.pop(record_id)
        moved = self._blocks[kind].remove(row)
        if moved is not None:
            self._where[moved] = (kind, row)

    def _fill(
        self, ids: Sequence[str], vectors: NDArray[np.float32], metas: Sequence[SoundMeta]
    ) -> None:
        """Bulk load into empty blocks: one fancy-index copy per kind."""
        kinds = np.array([m.kind for m in metas])
        for kind, block in self._blocks.items():
            rows = np.flatnonzero(kinds == kind)
            block.size = int(rows.size)
            block.matrix = np.ascontiguousarray(vectors[rows])
            block.ids = [ids[r] for r in rows.tolist()]
            block.metas = [metas[r] for r in rows.tolist()]
            block.codes = {n: np.empty(block.size, dtype=np.int32) for n in _CODED_FIELDS}
            for row, (record_id, meta) in enumerate(zip(block.ids, block.metas, strict=True)):
                for name, code in self._codes(meta).items():
                    block.codes[name][row] = code
                self._where[record_id] = (kind, row)

    def _save(self) -> None:
        if self._file is None:
            return
        self._file.parent.mkdir(parents=True, exist_ok=True)
        blocks = [b for b in self._blocks.values() if b.size]
        vectors = (
            np.concatenate([b.matrix[: b.size] for b in blocks])
            if blocks
            else np.empty((0, self._dim), dtype=np.float32)
        )
        ids = [i for b in blocks for i in b.ids]
        metas = json.dumps([m.to_dict() for b in blocks for m in b.metas], ensure_ascii=False)
        # A crash leaves the old file or the new one.
        with (
            atomic_write(self._file, private=True, suffix=".npz") as tmp,
            open(tmp, "wb") as handle,
        ):
            np.savez(
                handle, vectors=vectors, ids=np.array(ids, dtype=np.str_), metas=np.array(metas)
            )

    def _load(self, file: Path) -> None:
        try:
            with np.load(file, allow_pickle=False) as data:
                vectors = np.asarray(data["vectors"], dtype=np.float32)
                ids = [str(i) for i in data["ids"].tolist()]
                metas = [SoundMeta.from_dict(m) for m in json.loads(str(data["metas"]))]
        except (OSError, ValueError, KeyError) as exc:
            raise StoreError(f"{file}: cannot read the exact store ({exc})") from exc
        if vectors.ndim != 2 or vectors.shape[1] != self._dim:
            raise StoreError(f"{file}: holds {vectors.shape[-1]}-d vectors, expected {self._dim}")
        self._fill(ids, vectors, metas)
