"""The embedded default store: a LanceDB table for durability, searched in memory.

Storage: one LanceDB table in the user's data directory. Lance is embedded (no server), its
commits are atomic and versioned (a process killed mid-write leaves the last committed
version intact; tests/test_store_lance.py kills one), ``merge_insert`` on ``id`` makes a
re-run of the indexer idempotent, and SQL predicates answer ``get``/``count``/``labels``.

Search does not use Lance's own scans or IVF indexes: on two cores they cost ~25 ms per
100k rows scanned and ~10 ms per query at best, against ~1 ms for the same work in memory
(BENCHMARKS.md, "Vector store"). Instead the vectors are searched in memory:

- below ``LanceIndexConfig.min_rows`` rows: exactly, with numpy (``ExactStore``, per kind);
- from there on: one faiss IVF index per kind with fp16 scalar-quantised vectors (2 KB per
  1024-d vector, cosines within ~1e-3), ``nprobe`` lists probed per query. A filter that
  leaves at most ``exact_max`` rows of a kind is scored exactly over those rows instead, so
  narrow filters (a few labels, one sound) never lose results to unprobed lists.

The IVF index is built from the table (minutes at a million rows) and saved beside it,
tagged with the table version it reflects; a store reopened at that version loads it in
seconds, any other version (a crash, another writer) rebuilds it. Writes made through this
store are applied to the in-memory search at once; writes by other processes are seen after
reopening.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import threading
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import timedelta
from functools import wraps
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import ArrayLike, NDArray

from sfxmatch.config import Settings
from sfxmatch.errors import StoreError
from sfxmatch.files import storage_writes, write_text_atomic
from sfxmatch.store.base import (
    DEFAULT_DIM,
    FILTER_FIELDS,
    KINDS,
    META_FIELDS,
    Filter,
    Hit,
    Record,
    SoundMeta,
    StoreLifecycle,
    check_top_k,
    chunks,
    delete_selector,
    normalize_query,
    prepare_ids,
    prepare_records,
)
from sfxmatch.store.exact import ExactStore, top_k_indices

TABLE_NAME = "vectors"
log = logging.getLogger("sfxmatch.store.lance")

_WRITE_CHUNK = 50_000  # rows per commit: bounds memory; each chunk is one atomic version
_ID_CHUNK = 1_000  # ids per IN (...) clause
_FLOAT_FIELDS = ("duration", "start", "end")
_CODED_FIELDS = tuple(name for name in FILTER_FIELDS if name != "kind")


def default_store_dir() -> Path:
    """``$SFXMATCH_STORE_DIR``, else ``$SFXMATCH_DATA_DIR/store``, else the user data dir's."""
    return Settings.from_env().store_dir


@dataclass(frozen=True)
class LanceIndexConfig:
    """When to switch from exact to IVF search, and how to build and probe the IVF index.

    Defaults from benchmarks/bench_store.py (BENCHMARKS.md): at a million clustered vectors
    they give recall@10 >= 0.95 with p99 well under 10 ms on two cores.
    """

    min_rows: int = 50_000  # below: exact numpy search (~5 ms per 50k rows, 200 MB of RAM)
    lists_per_sqrt: float = 2.0  # IVF lists per kind = this * sqrt(rows of the kind)
    min_ivf_rows: int = 2_000  # a kind with fewer rows is searched exhaustively (flat)
    nprobe: int | None = None  # lists probed per query; None: calibrated per kind at build
    target_recall: float = 0.95  # what the calibration aims for (recall@10)
    exact_max: int = 20_000  # a filter leaving at most this many rows of a kind: exact scoring
    train_per_list: int = 40  # k-means training sample per list (faiss wants >= 39)
    kmeans_iterations: int = 10  # faiss's default 25 triples the build for little recall
    rebuild_growth: float = 2.0  # rebuild when the live rows reach this multiple of the build's

    def lists(self, rows: int) -> int:
        """IVF lists for a kind with ``rows`` rows (0: flat). ~2 sqrt(n) keeps lists small
        (fast probes) while k-means, which costs ~lists^2, stays minutes at 1M rows."""
        if rows < self.min_ivf_rows:
            return 0
        return max(2, round(self.lists_per_sqrt * math.sqrt(rows)))


def sql_literal(value: str) -> str:
    """A SQL string literal: single quotes doubled (standard SQL; backslashes are literal)."""
    if "\x00" in value:
        raise ValueError("filter values cannot contain NUL characters")
    return "'" + value.replace("'", "''") + "'"


def sql_where(filter: Filter | None) -> str | None:
    """The filter as a SQL predicate over the table's columns (None: no constraint)."""
    if filter is None or not filter.clauses:
        return None
    if filter.is_empty:
        return "FALSE"
    parts = []
    for name, values in filter.clauses:
        if len(values) == 1:
            parts.append(f"{name} = {sql_literal(values[0])}")
        else:
            parts.append(f"{name} IN ({', '.join(sql_literal(v) for v in values)})")
    return " AND ".join(parts)


def _schema(dim: int) -> pa.Schema:
    meta = [
        pa.field(name, pa.float64() if name in _FLOAT_FIELDS else pa.string(), nullable=False)
        for name in META_FIELDS
    ]
    return pa.schema(
        [
            pa.field("id", pa.string(), nullable=False),
            pa.field("vector", pa.list_(pa.float32(), dim), nullable=False),
            *meta,
        ]
    )


class IvfSearch:
    """In-memory approximate search: one faiss index per kind over int64 labels.

    A label is a row of the arrays here (id, metadata, filter codes); a re-upserted id gets
    a fresh label and its old one is removed from faiss and marked dead.
    """

    def __init__(self, dim: int, config: LanceIndexConfig) -> None:
        self.dim = dim
        self.config = config
        self.indexes: dict[str, Any] = {}  # kind -> faiss index
        self.built_rows = 0
        self.calibrated: dict[str, int] = {}  # kind -> nprobe meeting target_recall
        self._ids: list[str] = []  # label -> id ("" when dead)
        self._metas: list[SoundMeta | None] = []
        self._label: dict[str, int] = {}
        self._kind = np.empty(0, dtype=np.int8)  # label -> index into KINDS, -1 when dead
        self._codes = {name: np.empty(0, dtype=np.int32) for name in _CODED_FIELDS}
        self._vocab: dict[str, dict[str, int]] = {name: {} for name in _CODED_FIELDS}
        self._sorted_cache: dict[str, tuple[NDArray[np.intp], NDArray[np.int32]]] = {}

    # -- building ------------------------------------------------------------------------

    @classmethod
    def build(
        cls,
        dim: int,
        config: LanceIndexConfig,
        ids: Sequence[str],
        vectors: NDArray[np.float32],
        metas: Sequence[SoundMeta],
    ) -> IvfSearch:
        import faiss

        search = cls(dim, config)
        labels = search._assign(ids, metas)
        kinds = search._kind[: len(ids)]
        rng = np.random.default_rng(0)
        for code, kind in enumerate(KINDS):
            rows = np.flatnonzero(kinds == code)
            if rows.size == 0:
                continue
            nlist = config.lists(rows.size)
            if nlist == 0:
                index = faiss.index_factory(dim, "IDMap2,Flat", faiss.METRIC_INNER_PRODUCT)
            else:
                index = faiss.index_factory(dim, f"IVF{nlist},SQfp16", faiss.METRIC_INNER_PRODUCT)
                faiss.extract_index_ivf(index).cp.niter = config.kmeans_iterations
                sample = np.sort(
                    rng.choice(rows, min(rows.size, nlist * config.train_per_list), replace=False)
                )
                index.train(np.ascontiguousarray(vectors[sample]))
                # A hash map from label to list position: lets us remove ids one by one and
                # reconstruct the rows of a narrow filter for exact scoring.
                index.set_direct_map_type(faiss.DirectMap.Hashtable)
            for part in chunks(rows, 65_536):  # bounded copies, not one per kind
                index.add_with_ids(np.ascontiguousarray(vectors[part]), labels[part])
            search.indexes[kind] = index
            if nlist:
                search.calibrated[kind] = search._calibrate(index, vectors, rows, rng)
        search.built_rows = len(ids)
        return search

    def _calibrate(
        self, index: Any, vectors: NDArray[np.float32], rows: NDArray[np.intp], rng: Any
    ) -> int:
        """The smallest nprobe whose recall@10 reaches the target on this library's own rows.

        The right nprobe depends on how clumpy the data is (BENCHMARKS.md: 4 lists suffice on
        clustered vectors, all of them are needed on uniform noise), so it is measured rather
        than guessed: 128 rows serve as queries, their exact top 10 (themselves excluded) as
        truth, and the aim is 2 points above the target, as a sample of 128 is noisy and real
        queries come from outside the library. Costs seconds at a million rows.
        """
        import faiss

        probes = np.sort(rng.choice(rows, min(128, rows.size), replace=False))
        queries = np.ascontiguousarray(vectors[probes])
        scores = np.empty((probes.size, rows.size), dtype=np.float32)
        for start in range(0, rows.size, 65_536):  # exact truth, block by block
            part = rows[start : start + 65_536]
            scores[:, start : start + part.size] = queries @ vectors[part].T
        scores[np.arange(probes.size), np.searchsorted(rows, probes)] = -np.inf  # not itself
        truth = [set(rows[np.argpartition(-row, 10)[:10]].tolist()) for row in scores]
        ivf = faiss.extract_index_ivf(index)
        nprobe = 1
        while nprobe < ivf.nlist:
            params = faiss.SearchParametersIVF(nprobe=nprobe)
            _, found = index.search(queries, 11, params=params)
            hits = sum(len(t & set(f.tolist())) for t, f in zip(truth, found, strict=True))
            if hits >= min(1.0, self.config.target_recall + 0.02) * 10 * len(truth):
                break
            nprobe *= 2
        return min(nprobe, ivf.nlist)

    def nprobe(self, kind: str) -> int:
        """Lists probed for a kind: the configured value, else the calibrated one."""
        return self.config.nprobe or self.calibrated.get(kind, 32)

    def save(self, folder: Path) -> None:
        import faiss

        folder.mkdir(parents=True, exist_ok=True)
        for kind, index in self.indexes.items():
            faiss.write_index(index, str(folder / f"{kind}.faiss"))
        np.save(folder / "ids.npy", np.array(self._ids, dtype=np.str_))
        built = {"built_rows": self.built_rows, "calibrated": self.calibrated}
        (folder / "built.json").write_text(json.dumps(built))

    @classmethod
    def load(
        cls, folder: Path, dim: int, config: LanceIndexConfig, metas: dict[str, SoundMeta]
    ) -> IvfSearch:
        """The saved index; ``metas`` (by id) must be the table's rows at the saved version."""
        import faiss

        search = cls(dim, config)
        ids = [str(i) for i in np.load(folder / "ids.npy").tolist()]
        live = [i for i in ids if i]
        if len(live) != len(metas) or any(i not in metas for i in live):
            raise StoreError(f"{folder}: saved search index does not match the table")
        search._assign(ids, [metas.get(i) for i in ids])
        for kind in KINDS:
            file = folder / f"{kind}.faiss"
            if file.exists():
                search.indexes[kind] = faiss.read_index(str(file))
        built = json.loads((folder / "built.json").read_text())
        search.built_rows = built["built_rows"]
        search.calibrated = built["calibrated"]
        return search

    # -- writes --------------------------------------------------------------------------

    @property
    def live(self) -> int:
        return len(self._label)

    def upsert(self, records: Sequence[Record]) -> None:
        import faiss

        self.delete([r.id for r in records if r.id in self._label])
        if not records:
            return
        labels = self._assign([r.id for r in records], [r.meta for r in records])
        for kind in KINDS:
            picked = [i for i, r in enumerate(records) if r.meta.kind == kind]
            if not picked:
                continue
            if kind not in self.indexes:
                index = faiss.index_factory(self.dim, "IDMap2,Flat", faiss.METRIC_INNER_PRODUCT)
                self.indexes[kind] = index
            block = np.stack([records[i].vector for i in picked]).astype(np.float32, copy=False)
            self.indexes[kind].add_with_ids(block, labels[picked])

    def delete(self, ids: Sequence[str]) -> None:
        import faiss

        gone: dict[int, list[int]] = {}
        for record_id in ids:
            label = self._label.pop(record_id, None)
            if label is None:
                continue
            gone.setdefault(int(self._kind[label]), []).append(label)
            self._ids[label] = ""
            self._metas[label] = None
            self._kind[label] = -1
        for code, labels in gone.items():
            array = np.array(labels, dtype=np.int64)
            self.indexes[KINDS[code]].remove_ids(
                faiss.IDSelectorArray(array.size, faiss.swig_ptr(array))
            )

    # -- reads ---------------------------------------------------------------------------

    def query(self, q: NDArray[np.float32], top_k: int, filter: Filter | None) -> list[Hit]:
        import faiss

        if filter is not None and filter.is_empty:
            return []
        kinds = (filter.values("kind") if filter is not None else None) or KINDS
        candidates = self._candidates(filter)
        n = len(self._ids)
        found: list[tuple[float, int]] = []
        for kind in kinds:
            index = self.indexes.get(kind)
            if index is None or index.ntotal == 0:
                continue
            ivf = faiss.try_extract_index_ivf(index)
            if candidates is None:
                params = faiss.SearchParametersIVF(nprobe=self.nprobe(kind)) if ivf else None
                found += self._search(index, q, top_k, params)
                continue
            labels = candidates[self._kind[candidates] == KINDS.index(kind)]
            count = labels.size
            if count == 0:
                continue
            if count <= self.config.exact_max:
                scores = index.reconstruct_batch(labels) @ q
                found += [(float(scores[i]), int(labels[i])) for i in top_k_indices(scores, top_k)]
                continue
            rows = np.zeros(n, dtype=bool)
            rows[labels] = True
            bitmap = np.packbits(rows, bitorder="little")  # faiss: bit i of byte i // 8
            selector = faiss.IDSelectorBitmap(n, faiss.swig_ptr(bitmap))
            if ivf:
                # Probe more lists as the filter gets narrower, to find top_k matches.
                share = count / index.ntotal
                nprobe = min(ivf.nlist, math.ceil(self.nprobe(kind) / max(share, 1e-6)))
                params = faiss.SearchParametersIVF(nprobe=nprobe, sel=selector)
            else:
                params = faiss.SearchParameters(sel=selector)
            found += self._search(index, q, top_k, params)
            del bitmap  # kept alive until the search above has run
        found.sort(key=lambda hit: (-hit[0], self._ids[hit[1]]))
        return [
            Hit(self._ids[label], score, self._metas[label])  # type: ignore[arg-type]
            for score, label in found[:top_k]
        ]

    @staticmethod
    def _search(index: Any, q: NDArray[np.float32], k: int, params: Any) -> list[tuple[float, int]]:
        scores, labels = index.search(q[None, :], k, params=params)
        return [(float(s), int(i)) for s, i in zip(scores[0], labels[0], strict=True) if i >= 0]

    def _candidates(self, filter: Filter | None) -> NDArray[np.int64] | None:
        """Live labels matching the filter's non-kind clauses (None: no such clause).

        Starts from the most selective clause, looked up in a sorted copy of its codes, so
        a narrow filter (a few labels among a million rows) costs microseconds, not a scan.
        """
        clauses = []
        for name, values in filter.clauses if filter else ():
            if name != "kind":
                vocab = self._vocab[name]
                codes = [vocab[v] for v in values if v in vocab]
                # int32 like the stored codes: a wider dtype makes searchsorted copy them all
                clauses.append((name, np.array(codes, dtype=np.int32)))
        if not clauses:
            return None
        ranges = []
        for name, wanted in clauses:
            order, sorted_codes = self._sorted(name)
            lo = np.searchsorted(sorted_codes, wanted, side="left")
            hi = np.searchsorted(sorted_codes, wanted, side="right")
            ranges.append((int((hi - lo).sum()), name, order, lo, hi))
        _, first, order, lo, hi = min(ranges, key=lambda r: r[0])
        parts = [order[a:b] for a, b in zip(lo.tolist(), hi.tolist(), strict=True)]
        labels = np.sort(np.concatenate(parts)) if parts else np.empty(0, dtype=np.int64)
        for name, wanted in clauses:
            if name != first:
                labels = labels[np.isin(self._codes[name][labels], wanted)]
        return labels[self._kind[labels] >= 0].astype(np.int64)

    def _sorted(self, name: str) -> tuple[NDArray[np.intp], NDArray[np.int32]]:
        """Labels ordered by their code for one field, and the codes in that order (cached
        until new labels arrive; deletions only flip liveness, checked separately)."""
        cached = self._sorted_cache.get(name)
        if cached is None:
            codes = self._codes[name][: len(self._ids)]
            order = np.argsort(codes, kind="stable")
            cached = self._sorted_cache[name] = (order, codes[order])
        return cached

    def _assign(self, ids: Sequence[str], metas: Sequence[SoundMeta | None]) -> NDArray[np.int64]:
        """New labels for these rows (dead rows: id "" and meta None)."""
        self._sorted_cache.clear()
        start = len(self._ids)
        stop = start + len(ids)
        if stop > self._kind.size:  # amortised growth of the label-indexed arrays
            capacity = max(stop, 2 * self._kind.size, 1024)
            self._kind = np.resize(self._kind, capacity)
            self._codes = {k: np.resize(v, capacity) for k, v in self._codes.items()}
        for offset, (record_id, meta) in enumerate(zip(ids, metas, strict=True)):
            label = start + offset
            self._ids.append(record_id if meta is not None else "")
            self._metas.append(meta)
            if meta is None:
                self._kind[label] = -1
                continue
            self._label[record_id] = label
            self._kind[label] = KINDS.index(meta.kind)
            for name in _CODED_FIELDS:
                vocab = self._vocab[name]
                self._codes[name][label] = vocab.setdefault(getattr(meta, name), len(vocab))
        return np.arange(start, stop, dtype=np.int64)


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _locked(
    method: Callable[Concatenate[LanceStore, _P], _R],
) -> Callable[Concatenate[LanceStore, _P], _R]:
    @wraps(method)
    def wrapper(self: LanceStore, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        with self._lock:
            return method(self, *args, **kwargs)

    return wrapper


def _writes(
    method: Callable[Concatenate[LanceStore, _P], _R],
) -> Callable[Concatenate[LanceStore, _P], _R]:
    """A write: a full disk becomes StorageFullError (Lance reports it as a RuntimeError
    whose text carries the OS error and the engine's source paths); the table keeps its
    last committed version."""

    @wraps(method)
    def wrapper(self: LanceStore, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        with storage_writes("the vector store", self._path):
            return method(self, *args, **kwargs)

    return wrapper


class LanceStore(StoreLifecycle):
    """``VectorStore`` over one LanceDB table; upserts are ``merge_insert`` on ``id``.

    Safe to share between threads: writes and searches are serialised by one lock.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        dim: int = DEFAULT_DIM,
        *,
        table: str = TABLE_NAME,
        index: LanceIndexConfig | None = None,
        auto_index: bool = True,
    ) -> None:
        import lancedb  # imported here: a few hundred ms, only paid by users of this backend

        self._dim = dim
        self._path = Path(path) if path is not None else default_store_dir()
        self._config = index or LanceIndexConfig()
        self._auto_index = auto_index
        self._schema = _schema(dim)
        self._sidecar = self._path / f"{table}.search"
        try:
            with storage_writes("the vector store", self._path):
                self._path.mkdir(parents=True, exist_ok=True)
                self._db = lancedb.connect(str(self._path))
                if table in self._db.list_tables().tables:
                    self._table = self._db.open_table(table)
                else:
                    self._table = self._db.create_table(table, schema=self._schema, exist_ok=True)
        except (OSError, ValueError, RuntimeError) as exc:
            # The engine's own text names its source files and internals: logged, not said.
            log.warning(
                "the vector store cannot be opened", extra={"path": str(self._path)}, exc_info=exc
            )
            raise StoreError(
                f"{self._path}: cannot open the vector store (its files are damaged or "
                f"unreadable: {type(exc).__name__}, the log has the details); move the folder "
                "away and index the libraries again"
            ) from exc
        stored = self._table.schema.field("vector").type
        if not pa.types.is_fixed_size_list(stored) or stored.list_size != dim:
            raise StoreError(
                f"{self._path}: table {table!r} holds vectors of type {stored}, expected {dim}-d"
            )
        self._closed = False
        # One lock for everything: a query must not see the in-memory search half-updated
        # by a write from another thread (the daemon serves requests on a thread pool).
        self._lock = threading.RLock()
        self._search: ExactStore | IvfSearch | None = None  # loaded on first use
        self._dirty = False  # IVF changed since it was saved

    # -- protocol ------------------------------------------------------------------------

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def path(self) -> Path:
        return self._path

    @_writes
    @_locked
    def upsert(self, records: Iterable[Record]) -> int:
        table = self._open_table()
        prepared = prepare_records(records, self._dim)
        for chunk in chunks(prepared, _WRITE_CHUNK):
            (
                table.merge_insert("id")
                .when_matched_update_all()
                .when_not_matched_insert_all()
                .execute(self._to_arrow(chunk))
            )
        if prepared and self._search is not None:
            self._search.upsert(prepared)
            self._dirty = True
        if prepared and self._auto_index:
            self._maybe_index()
        return len(prepared)

    @_writes
    @_locked
    def delete(self, ids: Iterable[str] | None = None, *, filter: Filter | None = None) -> None:
        table = self._open_table()
        selected = delete_selector(ids, filter)
        if isinstance(selected, Filter):
            where = sql_where(selected)
            if where == "FALSE":
                return
            # The in-memory search is keyed by id: read the ids the predicate removes.
            scan = table.search().select(["id"])
            if where is not None:
                scan = scan.where(where)
            wanted = scan.limit(None).to_arrow().column("id").to_pylist()
            if wanted:
                table.delete(where or "TRUE")
        else:
            wanted = selected
            for chunk in chunks(wanted, _ID_CHUNK):
                table.delete(f"id IN ({', '.join(sql_literal(i) for i in chunk)})")
        if wanted and self._search is not None:
            self._search.delete(wanted)
            self._dirty = True

    def get(self, ids: Sequence[str]) -> list[Record]:
        table = self._open_table()
        wanted = prepare_ids(ids)
        found: dict[str, Record] = {}
        for chunk in chunks(wanted, _ID_CHUNK):
            where = f"id IN ({', '.join(sql_literal(i) for i in chunk)})"
            rows = table.search().where(where).limit(len(chunk)).to_arrow()
            found.update((r.id, r) for r in self._records(rows))
        return [found[i] for i in wanted if i in found]

    @_locked
    def query(self, vector: ArrayLike, top_k: int = 10, filter: Filter | None = None) -> list[Hit]:
        self._open_table()
        q = normalize_query(vector, self._dim)
        check_top_k(top_k)
        return self._searcher().query(q, top_k, filter)

    def count(self, filter: Filter | None = None) -> int:
        table = self._open_table()
        where = sql_where(filter)
        if where == "FALSE":
            return 0
        return int(table.count_rows(where))

    def labels(self, filter: Filter | None = None) -> list[str]:
        table = self._open_table()
        where = sql_where(filter)
        if where == "FALSE":
            return []
        scan = table.search().select(["label"])
        if where is not None:
            scan = scan.where(where)
        column = scan.limit(None).to_arrow().column("label")
        return sorted(pc.unique(column).to_pylist())

    @_locked
    def close(self) -> None:
        if self._closed:
            return
        if self._dirty and isinstance(self._search, IvfSearch):
            self._save_search(self._search)  # next open loads it instead of rebuilding
        self._closed = True
        self._search = None
        self._table = None  # type: ignore[assignment]
        self._db = None  # type: ignore[assignment]

    # -- index management ----------------------------------------------------------------

    def has_vector_index(self) -> bool:
        """Whether queries go through the IVF index (rather than exact search)."""
        return isinstance(self._search, IvfSearch)

    @_locked
    def tune(self, *, nprobe: int | None = None, exact_max: int | None = None) -> None:
        """Change search parameters without rebuilding (e.g. to trade recall for latency).

        ``nprobe=0`` goes back to the calibrated value; None leaves a parameter as it is.
        """
        changes: dict[str, int | None] = {}
        if nprobe is not None:
            changes["nprobe"] = nprobe or None
        if exact_max is not None:
            changes["exact_max"] = exact_max
        self._config = replace(self._config, **changes)  # type: ignore[arg-type]
        if isinstance(self._search, IvfSearch):
            self._search.config = self._config

    @_writes
    @_locked
    def build_index(self, *, force: bool = False) -> bool:
        """Build (or rebuild) the IVF search index and the table's scalar indexes.

        Without ``force`` nothing happens below ``min_rows`` rows, where exact search is
        fast enough. Returns whether it built; takes minutes at a million rows.
        """
        from lancedb.index import Bitmap, BTree

        table = self._open_table()
        rows = table.count_rows()
        if rows == 0 or (rows < self._config.min_rows and not force):
            return False
        ids, matrix, metas = self._scan()
        search = IvfSearch.build(self._dim, self._config, ids, matrix, metas)
        del matrix
        # Scalar indexes keep merge_insert's join on id and the SQL of get/count/labels
        # cheap at scale.
        for column in ("id", "label", "sound_id", "ucs_category"):
            table.create_index(column, config=BTree(), replace=True)
        for column in ("kind", "library", "modality"):
            table.create_index(column, config=Bitmap(), replace=True)
        self._save_search(search)
        self._search = search
        return True

    @_writes
    @_locked
    def optimize(self, *, keep_versions_for: timedelta = timedelta(days=1)) -> None:
        """Compact small files, update scalar indexes, drop old versions' files."""
        self._open_table().optimize(cleanup_older_than=keep_versions_for)
        if isinstance(self._search, IvfSearch):
            self._save_search(self._search)  # the table version moved on

    def _maybe_index(self) -> None:
        rows = self._open_table().count_rows()
        search = self._search
        if isinstance(search, IvfSearch):
            if search.live >= self._config.rebuild_growth * max(search.built_rows, 1):
                self.build_index(force=True)  # lists trained on a much smaller library
        elif rows >= self._config.min_rows:
            self.build_index()

    # -- internals -----------------------------------------------------------------------

    def _searcher(self) -> ExactStore | IvfSearch:
        if self._search is None:
            rows = self._open_table().count_rows()
            if rows >= self._config.min_rows:
                self._search = self._load_search()
                if self._search is None and self._auto_index:
                    self.build_index()
            if self._search is None:
                ids, matrix, metas = self._scan()
                self._search = ExactStore.from_arrays(ids, matrix, metas)
        return self._search

    def _scan(self) -> tuple[list[str], NDArray[np.float32], list[SoundMeta]]:
        """Every row; vectors copied batch by batch into one preallocated matrix, so the peak
        is one copy of the vectors (4 GB per million) rather than two or three."""
        table = self._open_table()
        matrix = np.empty((table.count_rows(), self._dim), dtype=np.float32)
        ids: list[str] = []
        metas: list[SoundMeta] = []
        for batch in table.search().limit(None).to_batches(batch_size=16_384):
            rows = pa.Table.from_batches([batch])
            matrix[len(ids) : len(ids) + rows.num_rows] = self._matrix(rows)
            ids += rows.column("id").to_pylist()
            metas += self._metas(rows)
        return ids, matrix[: len(ids)], metas

    def _save_search(self, search: IvfSearch) -> None:
        """Save under a fresh folder, then switch the pointer file atomically."""
        version = self._open_table().version
        folder = self._sidecar / f"v{version}-{uuid.uuid4().hex[:8]}"
        search.save(folder)
        pointer = {
            "version": version,
            "folder": folder.name,
            "dim": self._dim,
            "config": asdict(self._config),
        }
        write_text_atomic(self._sidecar / "current.json", json.dumps(pointer))
        for old in self._sidecar.iterdir():
            if old.is_dir() and old.name != folder.name:
                shutil.rmtree(old, ignore_errors=True)
        self._dirty = False

    def _load_search(self) -> IvfSearch | None:
        """The saved IVF index if it reflects the table's current version, else None."""
        try:
            pointer = json.loads((self._sidecar / "current.json").read_text())
        except (OSError, ValueError):
            return None
        if pointer.get("version") != self._open_table().version or pointer.get("dim") != self._dim:
            return None
        rows = self._open_table().search().select(["id", *META_FIELDS]).limit(None).to_arrow()
        metas = dict(zip(rows.column("id").to_pylist(), self._metas(rows), strict=True))
        try:
            return IvfSearch.load(self._sidecar / pointer["folder"], self._dim, self._config, metas)
        except (OSError, ValueError, KeyError, RuntimeError, StoreError):
            return None  # unreadable or stale: rebuild

    def _open_table(self) -> Any:
        self._check_open()
        return self._table

    def _matrix(self, rows: pa.Table) -> NDArray[np.float32]:
        if rows.num_rows == 0:
            return np.empty((0, self._dim), dtype=np.float32)
        flat = rows.column("vector").combine_chunks().flatten().to_numpy(zero_copy_only=False)
        return flat.astype(np.float32, copy=False).reshape(rows.num_rows, self._dim)

    def _to_arrow(self, records: Sequence[Record]) -> pa.Table:
        matrix = np.stack([r.vector for r in records]).astype(np.float32, copy=False)
        columns: dict[str, Any] = {
            "id": pa.array([r.id for r in records], pa.string()),
            "vector": pa.FixedSizeListArray.from_arrays(pa.array(matrix.reshape(-1)), self._dim),
        }
        for name in META_FIELDS:
            values = [getattr(r.meta, name) for r in records]
            columns[name] = pa.array(values, pa.float64() if name in _FLOAT_FIELDS else pa.string())
        return pa.table(columns, schema=self._schema)

    @staticmethod
    def _metas(rows: pa.Table) -> list[SoundMeta]:
        columns = {name: rows.column(name).to_pylist() for name in META_FIELDS}
        return [
            SoundMeta.from_dict({name: columns[name][i] for name in META_FIELDS})
            for i in range(rows.num_rows)
        ]

    def _records(self, rows: pa.Table) -> list[Record]:
        if rows.num_rows == 0:
            return []
        matrix = self._matrix(rows)
        ids = rows.column("id").to_pylist()
        metas = self._metas(rows)
        return [
            Record(i, matrix[n].copy(), m) for n, (i, m) in enumerate(zip(ids, metas, strict=True))
        ]
