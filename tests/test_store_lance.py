"""LanceDB store: persistence, crash safety (SIGKILL mid-upsert), SQL quoting, ANN indexing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from sfxmatch.store import Filter, LanceIndexConfig, LanceStore, Record, SoundMeta, StoreError
from sfxmatch.store.lance import IvfSearch, default_store_dir, sql_literal, sql_where

DIM = 32


def batch(k: int, size: int, dim: int = DIM) -> list[Record]:
    """Deterministic batch k: ids b{k}-{i}, vectors from seed k."""
    rng = np.random.default_rng(k)
    vectors = rng.standard_normal((size, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    kinds = ("ambience", "effect", "music")
    return [
        Record(f"b{k}-{i}", vectors[i], SoundMeta(f"s{k}", "lib", kinds[i % 3], f"label {i % 7}"))
        for i in range(size)
    ]


def test_sql_literal_escapes_quotes_and_keeps_the_rest() -> None:
    assert sql_literal("O'Brien's") == "'O''Brien''s'"
    assert sql_literal('say "hi" \\ 雨') == "'say \"hi\" \\ 雨'"
    with pytest.raises(ValueError, match="NUL"):
        sql_literal("a\x00b")
    where = sql_where(Filter(kind="effect", label=["it's", "b"]))
    assert where == "kind = 'effect' AND label IN ('b', 'it''s')"
    assert sql_where(Filter(label=[])) == "FALSE"
    assert sql_where(None) is None and sql_where(Filter()) is None


def test_default_dir_is_in_user_data_and_overridable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("SFXMATCH_STORE_DIR", raising=False)
    assert default_store_dir().parts[-2:] == ("sfxmatch", "store")
    monkeypatch.setenv("SFXMATCH_STORE_DIR", str(tmp_path / "elsewhere"))
    assert default_store_dir() == tmp_path / "elsewhere"
    store = LanceStore(dim=DIM)
    assert store.path == tmp_path / "elsewhere"
    store.close()


def test_persists_across_reopen(tmp_path: Path) -> None:
    records = batch(1, 50)
    with LanceStore(tmp_path, DIM) as store:
        store.upsert(records)
        store.delete(["b1-3"])
        before = store.query(records[0].vector, 5, Filter(kind="ambience"))
    with LanceStore(tmp_path, DIM) as store:
        assert store.count() == 49
        assert store.get(["b1-3", "b1-4"]) == [records[4]]
        assert store.query(records[0].vector, 5, Filter(kind="ambience")) == before


def test_wrong_dimension_on_reopen_is_a_clear_error(tmp_path: Path) -> None:
    LanceStore(tmp_path, DIM).close()
    with pytest.raises(StoreError, match="expected 64-d"):
        LanceStore(tmp_path, 64)


_WRITER = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {tests!r})
    from test_store_lance import batch
    from sfxmatch.store import LanceStore
    store = LanceStore({path!r}, {dim})
    for k in range(1000):
        print("begin", k, flush=True)
        store.upsert(batch(k, {size}, {dim}))
        print("done", k, flush=True)
    """
)


def test_sigkill_during_upsert_leaves_a_consistent_store(tmp_path: Path) -> None:
    """Kill a writer while its upsert is writing data files; the table reopens with whole
    batches only, and re-upserting by id converges without duplicates."""
    dim, size = 256, 4000  # ~4 MB per batch: the write takes long enough to be caught in
    path = tmp_path / "store"
    script = _WRITER.format(tests=str(Path(__file__).parent), path=str(path), dim=dim, size=size)
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    data = path / "vectors.lance" / "data"
    done = -1
    assert proc.stdout is not None
    for line in proc.stdout:  # follow the writer's progress
        word, k = line.split()
        if word == "done":
            done = int(k)
        if word == "begin" and int(k) == 2:
            files = len(os.listdir(data))
            deadline = time.monotonic() + 30
            # Poll for the third batch's data file: it exists before the commit does.
            while len(os.listdir(data)) == files and time.monotonic() < deadline:
                pass
            os.kill(proc.pid, signal.SIGKILL)
            break
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert done == 1
    assert len(os.listdir(data)) > files, "the kill should land while batch 2 is being written"

    with LanceStore(path, dim) as store:
        count = store.count()
        assert count in (2 * size, 3 * size)  # the killed batch is all there or not at all
        assert store.get(["b0-0", "b1-3999"]) == [batch(0, size, dim)[0], batch(1, size, dim)[-1]]
        probe = batch(1, size, dim)[17]
        assert store.query(probe.vector, 1)[0].id == probe.id
        for k in range(3):  # what a restarted indexer does: write everything again
            store.upsert(batch(k, size, dim))
        assert store.count() == 3 * size
        assert store.count(Filter(sound_id="s2")) == size
    with LanceStore(path, dim) as store:
        ids = store._open_table().search().select(["id"]).limit(None).to_arrow()["id"]
        assert len(ids) == len(set(ids.to_pylist())) == 3 * size


def recall_at_10(
    store: LanceStore, records: list[Record], queries: list[Record], flt=None
) -> float:
    rows = [r for r in records if flt is None or flt.matches(r.meta)]
    matrix = np.stack([r.vector for r in rows])
    found = 0
    for q in queries:
        truth = {rows[i].id for i in np.argsort(-(matrix @ q.vector))[:10]}
        found += len(truth & {h.id for h in store.query(q.vector, 10, flt)})
    return found / (10 * len(queries))


def test_switches_to_ivf_past_the_threshold_and_keeps_recall(tmp_path: Path) -> None:
    dim = 64
    records = batch(0, 2000, dim) + batch(1, 1000, dim)
    config = LanceIndexConfig(
        min_rows=2500, min_ivf_rows=500, lists_per_sqrt=1.0, nprobe=24, exact_max=50
    )
    queries = batch(7, 20, dim)
    with LanceStore(tmp_path, dim, index=config) as store:
        store.upsert(records[:2000])
        assert store.query(queries[0].vector, 1)  # exact search on the in-memory copy
        assert not store.has_vector_index()
        store.upsert(records[2000:])
        assert store.has_vector_index()  # built on crossing min_rows
        assert recall_at_10(store, records, queries) >= 0.9
        # a filter leaving few rows per kind is scored exactly (reconstructed fp16 vectors)
        narrow = Filter(sound_id="s1", label=["label 3", "label 4"])
        assert recall_at_10(store, records, queries, narrow) == 1.0
        # a broad non-kind filter goes through IVF with a selector
        broad = Filter(label=[f"label {i}" for i in range(5)])
        assert recall_at_10(store, records, queries, broad) >= 0.85
        store.tune(nprobe=1000)  # every list: IVF becomes exhaustive
        assert recall_at_10(store, records, queries) == 1.0
        # new and re-upserted rows are searchable at once
        extra = batch(9, 5, dim)
        store.upsert(extra)
        assert records[0].meta.kind == "ambience" and extra[4].meta.kind == "effect"
        # records[0] moves to the effect index, with extra[4]'s vector
        moved = Record(records[0].id, extra[4].vector, SoundMeta("s9", "lib", "effect", "moved"))
        store.upsert([moved])
        hits = store.query(extra[4].vector, 2, Filter(kind="effect"))
        assert {h.id for h in hits} == {moved.id, extra[4].id}
        assert records[0].id not in {h.id for h in store.query(records[0].vector, 50)}
        store.delete([extra[4].id])
        assert store.query(extra[4].vector, 1, Filter(kind="effect"))[0].id == moved.id


def test_saved_ivf_index_is_reused_only_for_its_table_version(tmp_path: Path) -> None:
    dim = 64
    config = LanceIndexConfig(min_rows=500, min_ivf_rows=100)
    first = batch(0, 1200, dim)
    with LanceStore(tmp_path, dim, index=config) as store:
        store.upsert(first)
        assert store.has_vector_index()
        expected = [h.id for h in store.query(first[5].vector, 10)]
    pointer = json.loads((tmp_path / "vectors.search" / "current.json").read_text())
    folder = tmp_path / "vectors.search" / pointer["folder"]
    marker = folder / "ids.npy"
    stamp = marker.stat().st_mtime_ns
    with LanceStore(tmp_path, dim, index=config) as store:
        assert [h.id for h in store.query(first[5].vector, 10)] == expected
        assert store.has_vector_index()
    assert marker.exists() and marker.stat().st_mtime_ns == stamp  # loaded, not rebuilt
    # another writer moves the table on: the saved index no longer matches and is rebuilt
    with LanceStore(tmp_path, dim, index=config, auto_index=False) as other:
        other.upsert(batch(3, 10, dim))
    with LanceStore(tmp_path, dim, index=config) as store:
        fresh = batch(3, 10, dim)[2]
        assert store.query(fresh.vector, 1)[0].id == fresh.id
    assert not folder.exists()


def test_ivf_search_filters_on_flat_and_ivf_kinds_alike() -> None:
    """Kinds too small for IVF are flat faiss indexes; a selector filter works on both."""
    dim = 32
    records = batch(4, 900, dim)  # 300 rows per kind
    config = LanceIndexConfig(min_ivf_rows=250, lists_per_sqrt=1.0, nprobe=1000, exact_max=0)
    music_small = [r for r in records if r.meta.kind != "music"] + [
        r for r in records if r.meta.kind == "music"
    ][:100]  # music stays below min_ivf_rows: a flat index
    search = IvfSearch.build(
        dim,
        config,
        [r.id for r in music_small],
        np.stack([r.vector for r in music_small]),
        [r.meta for r in music_small],
    )
    assert set(search.calibrated) == {"ambience", "effect"}  # the IVF kinds
    flt = Filter(label=["label 1", "label 2"])
    matrix = np.stack([r.vector for r in music_small])
    allowed = np.array([flt.matches(r.meta) for r in music_small])
    for q in batch(5, 5, dim):
        scores = np.where(allowed, matrix @ q.vector, -np.inf)
        truth = [music_small[i].id for i in np.argsort(-scores)[:10]]
        hits = search.query(q.vector, 10, flt)
        assert [h.id for h in hits] == truth
        assert all(h.meta.label in ("label 1", "label 2") for h in hits)
