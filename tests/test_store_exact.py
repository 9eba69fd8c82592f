"""Typed values of the store contract, the exact store's persistence, and ``open_store``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sfxmatch.store import (
    ExactStore,
    Filter,
    LanceStore,
    Record,
    SoundMeta,
    StoreError,
    open_store,
)
from sfxmatch.store.exact import top_k_indices


def unit(seed: int, n: int, dim: int = 16) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_filter_normalises_values_and_compares_by_meaning() -> None:
    a = Filter(kind=["music", "effect", "music"], label="Rain")
    b = Filter(label="Rain", kind=("effect", "music"))
    assert a == b
    assert a.kind == ("effect", "music") and a.label == "Rain"
    assert a.values("kind") == ("effect", "music") and a.values("library") is None
    assert a.without("kind") == Filter(label="Rain")
    assert Filter(label=[]).is_empty and not Filter(label=["x"]).is_empty
    meta = SoundMeta("s", "lib", "effect", "Rain")
    assert a.matches(meta) and not Filter(kind="music").matches(meta)
    with pytest.raises(ValueError, match="kind 'noise'"):
        Filter(kind="noise")
    with pytest.raises(TypeError, match="must be str"):
        Filter(label=[1])  # type: ignore[list-item]


def test_sound_meta_validates_and_round_trips() -> None:
    meta = SoundMeta("s1", "lib", "ambience", 'Rain "heavy"', "AMBRain", "/a.wav", 12.5, "audio")
    assert SoundMeta.from_dict(meta.to_dict()) == meta
    with pytest.raises(ValueError, match="kind"):
        SoundMeta("s", "lib", "speech", "x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="library"):
        SoundMeta("s", "", "music", "x")
    with pytest.raises(ValueError, match="finite"):
        SoundMeta("s", "lib", "music", "x", duration=float("nan"))


def test_top_k_indices_orders_best_first() -> None:
    scores = np.array([0.1, 0.9, 0.5, 0.9, -1.0], dtype=np.float32)
    assert top_k_indices(scores, 3).tolist() == [1, 3, 2]
    assert top_k_indices(scores, 10).tolist() == [1, 3, 2, 0, 4]


def test_exact_store_persists_atomically(tmp_path: Path) -> None:
    v = unit(0, 5)
    kinds = ["ambience", "effect", "music", "effect", "ambience"]
    records = [
        Record(f"r{i}", v[i], SoundMeta(f"s{i}", "lib", kinds[i], f"l{i}")) for i in range(5)
    ]  # type: ignore[arg-type]
    with ExactStore(16, tmp_path) as store:
        store.upsert(records)
        store.delete(["r1"])
        # moving r0 to another kind moves it between the per-kind blocks
        store.upsert([Record("r0", v[0], SoundMeta("s0", "lib", "music", "l0"))])
    assert [p.name for p in tmp_path.iterdir()] == ["exact.npz"]  # no temp files left behind
    with ExactStore(16, tmp_path) as store:
        assert store.count() == 4
        assert store.count(Filter(kind="music")) == 2
        assert store.get(["r3", "r1"]) == [records[3]]
        assert [h.id for h in store.query(v[4], 1, Filter(kind="ambience"))] == ["r4"]
        assert store.labels(Filter(kind="music")) == ["l0", "l2"]
    with pytest.raises(StoreError, match="expected 8"):
        ExactStore(8, tmp_path)


def test_from_arrays_matches_upsert() -> None:
    v = unit(1, 30)
    metas = [
        SoundMeta(f"s{i}", "lib", ("ambience", "effect", "music")[i % 3], f"l{i % 4}")
        for i in range(30)
    ]  # type: ignore[misc]
    ids = [f"r{i}" for i in range(30)]
    bulk = ExactStore.from_arrays(ids, v, metas)
    slow = ExactStore(16)
    slow.upsert(Record(i, v[n], metas[n]) for n, i in enumerate(ids))
    for q in unit(2, 4):
        for flt in (None, Filter(kind="effect", label=["l1", "l2"])):
            assert bulk.query(q, 5, flt) == slow.query(q, 5, flt)
    with pytest.raises(ValueError, match="same length"):
        ExactStore.from_arrays(ids[:3], v, metas)


def test_open_store_dispatches(tmp_path: Path) -> None:
    assert isinstance(open_store("exact", dim=16), ExactStore)
    lance = open_store("lance", path=tmp_path, dim=16)
    assert isinstance(lance, LanceStore) and lance.path == tmp_path
    lance.close()
    with pytest.raises(ValueError, match="unknown store backend"):
        open_store("faiss", dim=16)  # type: ignore[arg-type]
