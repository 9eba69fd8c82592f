"""One protocol suite, run against every backend: exact numpy, LanceDB (flat and with an IVF
index), and Pinecone through the real SDK against the loopback double.

Ground truth is computed here with plain numpy, independently of the stores.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from pinecone_double import PineconeDouble
from sfxmatch.store import (
    ExactStore,
    Filter,
    LanceIndexConfig,
    LanceStore,
    Record,
    SoundMeta,
    StoreError,
    VectorStore,
)

DIM = 32
N = 60
# Labels that break naive quoting: SQL quotes, JSON quotes, backslashes, unicode, a semicolon.
LABELS = [
    'Rain "heavy" on roof',
    "O'Brien's door 'slam'",
    "Wind \\ gust",
    "Café – ambiance 雨",
    "x'); DROP TABLE vectors; --",
    "Birds",
]
KINDS = ["ambience", "effect", "music"]
LIBRARIES = ["Field Recordings", "bôite-à-sons"]

BACKENDS = ["exact", "lance", "lance-ivf", "pinecone"]


def unit(rng: np.random.Generator, n: int, dim: int = DIM) -> np.ndarray:
    x = rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def make_records(seed: int = 0, n: int = N) -> list[Record]:
    vectors = unit(np.random.default_rng(seed), n)
    out = []
    for i in range(n):
        meta = SoundMeta(
            sound_id=f"snd{i // 3}",
            library=LIBRARIES[i % 2],
            kind=KINDS[i % 3],  # type: ignore[arg-type]
            label=LABELS[i % len(LABELS)],
            ucs_category=["AMBForst", "DOORWood", ""][i % 3],
            path=f"/lib/{i}.wav",
            duration=1.5 + i,
            modality="text" if i % 10 == 9 else "audio",
            start=0.0,
            end=1.5,
        )
        out.append(Record(f"rec-{i:03d}", vectors[i], meta))
    return out


@pytest.fixture(scope="module")
def double() -> Iterator[PineconeDouble]:
    with PineconeDouble("test-key") as server:
        yield server


@pytest.fixture(params=BACKENDS)
def make_store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[[], VectorStore]]:
    """A factory: each call opens the same store (so reopening can be tested)."""
    opened: list[VectorStore] = []
    kind = request.param
    if kind == "pinecone":
        server = request.getfixturevalue("double")
        name = f"conf-{len(server.indexes)}"
        server.create_index(name, DIM)

    def factory() -> VectorStore:
        store: VectorStore
        if kind == "exact":
            store = ExactStore(DIM)
        elif kind == "lance":
            store = LanceStore(tmp_path / "lance", DIM)
        elif kind == "lance-ivf":
            # IVF from the first row on (4 lists of ~5 rows per kind), every list probed, exact
            # scoring of narrow filters off: every query goes through faiss IVF (fp16 vectors).
            config = LanceIndexConfig(
                min_rows=1, min_ivf_rows=10, lists_per_sqrt=1.0, nprobe=100, exact_max=0
            )
            store = LanceStore(tmp_path / "lance", DIM, index=config)
        else:
            store = _pinecone(server, name)
        opened.append(store)
        return store

    factory.score_atol = 2e-3 if kind == "lance-ivf" else 1e-5  # type: ignore[attr-defined]
    yield factory
    for store in opened:
        store.close()


def _pinecone(server: PineconeDouble, name: str) -> VectorStore:
    from sfxmatch.store.pinecone import PineconeStore

    return PineconeStore(name, DIM, api_key="test-key", host=server.url, retry_base_s=0.0)


def exact_top(records: list[Record], q: np.ndarray, k: int, flt: Filter | None = None):
    rows = [r for r in records if flt is None or flt.matches(r.meta)]
    scores = np.array([float(r.vector @ q) for r in rows])
    order = np.argsort(-scores, kind="stable")[:k]
    return [rows[i].id for i in order], scores[order]


def test_is_a_vector_store(make_store: Callable[[], VectorStore]) -> None:
    store = make_store()
    assert isinstance(store, VectorStore)
    assert store.dim == DIM
    assert store.count() == 0
    assert store.query(unit(np.random.default_rng(9), 1)[0], 5) == []


def test_upsert_get_count(make_store: Callable[[], VectorStore]) -> None:
    store = make_store()
    records = make_records()
    assert store.upsert(records) == N
    assert store.count() == N
    wanted = ["rec-007", "nope", "rec-001", "rec-059"]
    got = store.get(wanted)
    assert [r.id for r in got] == ["rec-007", "rec-001", "rec-059"]
    by_id = {r.id: r for r in records}
    for r in got:
        assert r == by_id[r.id]  # vectors round-trip bit-exactly, metadata equal
        assert r.vector.dtype == np.float32


def test_delete(make_store: Callable[[], VectorStore]) -> None:
    store = make_store()
    records = make_records()
    store.upsert(records)
    gone = ["rec-000", "rec-013", "rec-042", "unknown-id"]
    store.delete(gone)
    assert store.count() == N - 3
    assert store.get(gone) == []
    for r in records[:3]:
        hits = store.query(r.vector, N)
        assert "rec-000" not in {h.id for h in hits}
    store.delete([])
    assert store.count() == N - 3


DELETE_FILTERS = [
    Filter(library=LIBRARIES[1]),  # a library alone: Pinecone empties its namespace
    Filter(library=LIBRARIES[0], kind="effect"),
    Filter(label=LABELS[1]),  # every library
    Filter(modality="text", kind=["ambience", "music"]),
]


@pytest.mark.parametrize("flt", DELETE_FILTERS, ids=lambda f: repr(f)[:60])
def test_delete_by_filter(make_store: Callable[[], VectorStore], flt: Filter) -> None:
    store = make_store()
    records = make_records()
    store.upsert(records)
    kept = [r for r in records if not flt.matches(r.meta)]
    assert 0 < len(kept) < N
    store.delete(filter=flt)
    assert store.count() == len(kept)
    assert store.count(flt) == 0
    assert sorted(r.id for r in store.get([r.id for r in records])) == [r.id for r in kept]
    hits = store.query(records[0].vector, N)
    assert sorted(h.id for h in hits) == [r.id for r in kept]
    if not isinstance(store, ExactStore):  # the exact store here keeps no file
        store.close()  # the search saved and loaded again agrees with the table
        again = make_store()
        assert sorted(h.id for h in again.query(records[0].vector, N)) == [r.id for r in kept]


def test_delete_by_filter_matching_nothing(make_store: Callable[[], VectorStore]) -> None:
    store = make_store()
    store.upsert(make_records())
    for flt in (Filter(label=[]), Filter(library="nowhere"), Filter(label="no such label")):
        store.delete(filter=flt)
    assert store.count() == N
    store.delete(filter=Filter())  # no clause: everything
    assert store.count() == 0


def test_delete_takes_ids_or_a_filter(make_store: Callable[[], VectorStore]) -> None:
    store = make_store()
    store.upsert(make_records(n=3))
    with pytest.raises(TypeError, match="exactly one"):
        store.delete(["rec-000"], filter=Filter(kind="effect"))
    with pytest.raises(TypeError, match="exactly one"):
        store.delete()
    assert store.count() == 3


def test_reupsert_is_idempotent_and_replaces(make_store: Callable[[], VectorStore]) -> None:
    store = make_store()
    records = make_records()
    store.upsert(records)
    store.upsert(records)
    store.upsert(records[:10] + records[:10])  # duplicates inside one call too
    assert store.count() == N
    changed = Record(
        "rec-005",
        records[6].vector,
        SoundMeta("snd-new", LIBRARIES[1], "music", "Brand new 'label'"),
    )
    store.upsert([changed])
    assert store.count() == N
    assert store.get(["rec-005"]) == [changed]
    assert "Brand new 'label'" in store.labels()
    assert store.count(Filter(label="Brand new 'label'")) == 1


def test_moving_a_record_to_another_library_leaves_no_copy(
    make_store: Callable[[], VectorStore],
) -> None:
    store = make_store()
    r = make_records()[0]
    store.upsert([r])
    other = "Other Library" if r.meta.library != "Other Library" else "x"
    moved = Record(r.id, r.vector, SoundMeta(r.meta.sound_id, other, "effect", r.meta.label))
    store.upsert([moved])
    assert store.count() == 1
    assert store.count(Filter(library=r.meta.library)) == 0
    assert [h.id for h in store.query(r.vector, 5, Filter(library=other))] == [r.id]


def test_top_k_order_equals_exact_search(make_store: Callable[[], VectorStore]) -> None:
    store = make_store()
    records = make_records()
    store.upsert(records)
    queries = unit(np.random.default_rng(1), 8)
    for q in queries:
        ids, scores = exact_top(records, q, 10)
        hits = store.query(q, 10)
        assert [h.id for h in hits] == ids
        # fp16 vectors in the IVF index: cosines within ~1e-3
        np.testing.assert_allclose([h.score for h in hits], scores, atol=make_store.score_atol)
    # a query need not be unit length: scores are cosines
    hits = store.query(queries[0] * 7.5, 3)
    assert [h.id for h in hits] == exact_top(records, queries[0], 3)[0]
    assert store.query(queries[0], N + 50)[-1].id == exact_top(records, queries[0], N)[0][-1]


FILTERS = [
    Filter(kind="effect"),
    Filter(kind=["ambience", "music"]),
    Filter(label=LABELS[0]),
    Filter(label=LABELS[1]),
    Filter(label=[LABELS[2], LABELS[3], LABELS[4]]),
    Filter(library=LIBRARIES[1]),
    Filter(library=LIBRARIES),
    Filter(ucs_category="AMBForst", library=LIBRARIES[0]),
    Filter(kind="ambience", label=[LABELS[3], "not there"], modality="audio"),
    Filter(sound_id=["snd3", "snd7"]),
    Filter(modality="text"),
]


@pytest.mark.parametrize("flt", FILTERS, ids=lambda f: repr(f)[:60])
def test_filters(make_store: Callable[[], VectorStore], flt: Filter) -> None:
    store = make_store()
    records = make_records()
    store.upsert(records)
    matching = [r for r in records if flt.matches(r.meta)]
    assert matching, "every filter here should match something"
    assert store.count(flt) == len(matching)
    assert store.labels(flt) == sorted({r.meta.label for r in matching})
    for q in unit(np.random.default_rng(2), 3):
        ids, _ = exact_top(records, q, 5, flt)
        hits = store.query(q, 5, flt)
        assert [h.id for h in hits] == ids
        assert all(flt.matches(h.meta) for h in hits)


def test_filter_matching_nothing(make_store: Callable[[], VectorStore]) -> None:
    store = make_store()
    records = make_records()
    store.upsert(records)
    q = records[0].vector
    for flt in (Filter(label=[]), Filter(label="no such label"), Filter(library="nowhere")):
        assert store.count(flt) == 0
        assert store.labels(flt) == []
        assert store.query(q, 5, flt) == []


def test_labels_are_distinct_and_sorted(make_store: Callable[[], VectorStore]) -> None:
    store = make_store()
    store.upsert(make_records())
    assert store.labels() == sorted(LABELS)
    assert store.labels(Filter(kind="music", label=LABELS[:2])) == sorted(
        {LABELS[i % len(LABELS)] for i in range(N) if i % 3 == 2} & set(LABELS[:2])
    )


def test_rejects_bad_input(make_store: Callable[[], VectorStore]) -> None:
    store = make_store()
    r = make_records(n=1)[0]
    with pytest.raises(ValueError, match="unit-length"):
        store.upsert([Record("a", r.vector * 2, r.meta)])
    with pytest.raises(ValueError, match="has 10 values"):
        store.upsert([Record("a", r.vector[:10], r.meta)])
    with pytest.raises(ValueError, match="ASCII"):
        store.upsert([Record("é", r.vector, r.meta)])
    with pytest.raises(ValueError, match="non-zero"):
        store.query(np.zeros(DIM, dtype=np.float32))
    with pytest.raises(ValueError, match="top_k"):
        store.query(r.vector, 0)
    assert store.count() == 0  # nothing half-written


def test_closed_store_refuses_work(make_store: Callable[[], VectorStore]) -> None:
    store = make_store()
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.count()
