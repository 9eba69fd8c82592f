"""Pinecone store: request limits, retries, errors, index set-up; the double's own semantics;
and a live round trip when PINECONE_API_KEY is set."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator

import numpy as np
import pytest
from pinecone_double import MAX_REQUEST_BYTES, PineconeDouble, matches
from sfxmatch.store import Filter, Record, SoundMeta, StoreError
from sfxmatch.store.pinecone import PineconeStore, namespace_for, pinecone_filter

KEY = "test-key"


def records(n: int, dim: int, library: str = "lib", label: str = "Rain", seed: int = 0):
    rng = np.random.default_rng(seed)
    v = rng.standard_normal((n, dim)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return [
        Record(f"id-{seed}-{i}", v[i], SoundMeta(f"s{i}", library, "effect", label))
        for i in range(n)
    ]


@pytest.fixture
def double() -> Iterator[PineconeDouble]:
    with PineconeDouble(KEY) as server:
        yield server


def open_store(double: PineconeDouble, name: str = "idx", dim: int = 8, **kw) -> PineconeStore:
    return PineconeStore(name, dim, api_key=KEY, host=double.url, retry_base_s=0.0, **kw)


def test_filter_translation_and_namespaces() -> None:
    flt = Filter(kind="effect", label=["b", "a 'q'"], library="Lib One")
    assert pinecone_filter(flt) == {"kind": {"$eq": "effect"}, "label": {"$in": ["a 'q'", "b"]}}
    assert pinecone_filter(Filter(library="x")) is None
    assert namespace_for("field-recordings_2") == "field-recordings_2"
    odd = namespace_for("Bôite à sons / 2")
    assert odd.startswith("lib-") and odd == namespace_for("Bôite à sons / 2") and odd.isascii()


def test_double_filter_semantics() -> None:
    meta = {"kind": "effect", "tags": ["a", "b"], "n": 3}
    assert matches({"kind": "effect"}, meta)
    assert matches({"kind": {"$in": ["music", "effect"]}, "n": {"$gte": 3}}, meta)
    assert not matches({"kind": {"$nin": ["effect"]}}, meta)
    assert matches({"tags": {"$eq": "b"}}, meta)  # list fields match any element
    assert matches({"$or": [{"kind": "music"}, {"n": {"$lt": 4}}]}, meta)
    assert not matches({"$and": [{"kind": "effect"}, {"missing": {"$exists": True}}]}, meta)
    assert matches({"missing": {"$ne": "x"}}, meta)


def test_upserts_are_packed_under_the_request_limits(double: PineconeDouble) -> None:
    dim = 1024
    double.create_index("idx", dim)
    store = open_store(double, dim=dim)
    # ~21 KB of JSON per 1024-d vector: 2 MB holds ~90 of them, far below 1,000
    store.upsert(records(400, dim))
    ups = double.logged("/vectors/upsert")
    assert len(ups) >= 5
    assert all(u.body_bytes <= MAX_REQUEST_BYTES and u.vectors <= 1000 for u in ups)
    assert sum(u.vectors for u in ups) == 400
    assert store.count() == 400


def test_many_small_vectors_stop_at_1000_per_request(double: PineconeDouble) -> None:
    double.create_index("idx", 4)
    store = open_store(double, dim=4)
    store.upsert(records(2500, 4))
    sizes = sorted(u.vectors for u in double.logged("/vectors/upsert"))
    assert sizes[-1] == 1000 and sum(sizes) == 2500
    assert store.count() == 2500


def test_throttled_batches_are_retried_with_backoff(double: PineconeDouble) -> None:
    double.create_index("idx", 8)
    waits: list[float] = []
    store = open_store(double, sleep=waits.append)
    store._retry_base_s = 0.25
    # 6 failures outlast the SDK's own 4 attempts, so our loop has to resend the batch.
    double.inject("/vectors/upsert", 429, times=6, retry_after="0")
    assert store.upsert(records(20, 8)) == 20
    assert store.count() == 20
    assert len(double.logged("/vectors/upsert")) == 7
    assert waits == [0.25, 0.5][: len(waits)] and waits  # exponential backoff, not a busy loop


def test_a_rejected_batch_raises_at_once(double: PineconeDouble) -> None:
    double.create_index("idx", 8)
    store = open_store(double)
    double.inject("/vectors/upsert", 400, times=1)
    with pytest.raises(StoreError, match="rejected"):
        store.upsert(records(5, 8))
    assert len(double.logged("/vectors/upsert")) == 1  # a 4xx is never resent


def test_retries_give_up_with_a_clear_error(double: PineconeDouble) -> None:
    double.create_index("idx", 8)
    store = open_store(double, max_attempts=2)
    double.inject("/vectors/upsert", 503, times=100, retry_after="0")
    with pytest.raises(StoreError, match="still failing after 2 attempts"):
        store.upsert(records(5, 8))


def test_metadata_over_40kb_is_refused_before_sending(double: PineconeDouble) -> None:
    double.create_index("idx", 8)
    store = open_store(double)
    big = records(1, 8, label="x" * 41_000)
    with pytest.raises(StoreError, match=r"metadata is \d+ bytes"):
        store.upsert(big)
    assert double.logged("/vectors/upsert") == []


def test_index_checks_and_creation(double: PineconeDouble) -> None:
    with pytest.raises(StoreError, match="does not exist"):
        open_store(double, "missing")
    store = open_store(double, "made-here", dim=8, create=True)
    assert double.indexes["made-here"].dimension == 8
    store.upsert(records(3, 8))
    assert store.count() == 3
    with pytest.raises(StoreError, match="holds 8-d vectors, expected 16"):
        open_store(double, "made-here", dim=16)
    double.create_index("euclid", 8, metric="euclidean")
    with pytest.raises(StoreError, match="euclidean"):
        open_store(double, "euclid")


def test_bad_api_key_and_missing_key(double: PineconeDouble, monkeypatch) -> None:
    double.create_index("idx", 8)
    with pytest.raises(StoreError, match=r"(?i)api key"):
        PineconeStore("idx", 8, api_key="wrong", host=double.url)
    monkeypatch.delenv("PINECONE_API_KEY", raising=False)
    with pytest.raises(StoreError, match="PINECONE_API_KEY"):
        PineconeStore("idx", 8, host=double.url)


def test_libraries_live_in_their_own_namespaces(double: PineconeDouble) -> None:
    double.create_index("idx", 8)
    store = open_store(double)
    store.upsert(
        records(4, 8, library="Field Recs", seed=1) + records(3, 8, library="Foley", seed=2)
    )
    assert set(double.indexes["idx"].namespaces) == {namespace_for("Field Recs"), "Foley"}
    assert store.count(Filter(library="Foley")) == 3
    queries = double.logged("/query")
    store.query(records(1, 8, seed=2)[0].vector, 2, Filter(library="Foley", kind="effect"))
    sent = double.logged("/query")[len(queries) :]
    assert [q.namespace for q in sent] == ["Foley"]  # a library filter queries one namespace


def test_delete_by_filter_is_done_by_the_service(double: PineconeDouble) -> None:
    """A library's vectors go in one delete per namespace: nothing is read back first."""
    double.create_index("idx", 8)
    store = open_store(double)
    store.upsert(
        records(4, 8, library="Field Recs", seed=1)
        + records(3, 8, library="Foley", seed=2)
        + records(2, 8, library="Foley", label="Door", seed=3)
    )
    before = len(double.requests)
    store.delete(filter=Filter(library="Foley", label="Door"))
    store.delete(filter=Filter(library="Field Recs"))
    sent = double.requests[before:]
    assert [(r.path, r.namespace) for r in sent if r.path != "/describe_index_stats"] == [
        ("/vectors/delete", "Foley"),
        ("/vectors/delete", namespace_for("Field Recs")),
    ]
    assert set(double.indexes["idx"].namespaces) == {"Foley"}
    assert store.count() == 3 and store.labels() == ["Rain"]


@pytest.mark.skipif(
    not os.environ.get("PINECONE_API_KEY"), reason="live Pinecone test: set PINECONE_API_KEY"
)
def test_live_pinecone_round_trip() -> None:  # pragma: no cover - needs the service
    """Against the real service: an index named by $SFXMATCH_PINECONE_INDEX (default
    sfxmatch-test, created if missing), in a namespace of its own that is emptied after."""
    name = os.environ.get("SFXMATCH_PINECONE_INDEX", "sfxmatch-test")
    library = f"test-{uuid.uuid4().hex[:8]}"
    store = PineconeStore(name, 1024, create=True)
    recs = records(30, 1024, library=library, label='Door "slam" it\'s')
    try:
        store.upsert(recs)
        deadline = time.monotonic() + 120  # eventually consistent: poll until visible
        while store.count(Filter(library=library)) < 30 and time.monotonic() < deadline:
            time.sleep(1)
        assert store.count(Filter(library=library)) == 30
        hits = store.query(recs[4].vector, 3, Filter(library=library, label=recs[4].meta.label))
        assert hits[0].id == recs[4].id and hits[0].score == pytest.approx(1.0, abs=1e-4)
        assert store.get([recs[2].id])[0].meta == recs[2].meta
    finally:
        store.delete([r.id for r in recs])
        store.close()


def test_double_answers_documented_errors_through_the_sdk(double: PineconeDouble) -> None:
    from pinecone import Pinecone
    from pinecone.errors import ApiError, NotFoundError

    double.create_index("idx", 4)
    pc = Pinecone(api_key=KEY, host=double.url)
    with pytest.raises(NotFoundError):
        pc.indexes.describe("nope")
    index = pc.index(name="idx")
    with pytest.raises(ApiError, match="dimension 3 does not match") as wrong_dim:
        index.upsert(vectors=[("a", [0.1, 0.2, 0.3])], namespace="n")
    assert wrong_dim.value.status_code == 400
    with pytest.raises(ApiError, match="non-zero"):
        index.upsert(vectors=[("a", [0.0] * 4)], namespace="n")
    with pytest.raises(ApiError, match="null"):
        index.upsert(vectors=[{"id": "a", "values": [1.0] * 4, "metadata": {"x": None}}])
    index.upsert(vectors=[(f"v{i}", [1.0, i, 0, 0], {"n": i}) for i in range(5)], namespace="n")
    with pytest.raises(ApiError, match="metadata filtering"):
        index.describe_index_stats(filter={"n": {"$gt": 1}})
    page = index.fetch_by_metadata(filter={"n": {"$gte": 1}}, namespace="n", limit=3)
    assert sorted(page.vectors) == ["v1", "v2", "v3"] and page.pagination.next
    rest = index.fetch_by_metadata(
        filter={"n": {"$gte": 1}}, namespace="n", limit=3, pagination_token=page.pagination.next
    )
    assert sorted(rest.vectors) == ["v4"] and rest.pagination is None
    hits = index.query(vector=[1.0, 0, 0, 0], top_k=2, namespace="n", filter={"n": {"$in": [3, 4]}})
    assert [m.id for m in hits.matches] == ["v3", "v4"]  # cosine: smaller angle first
    index.delete(ids=[f"v{i}" for i in range(5)], namespace="n")
    assert index.describe_index_stats().namespaces == {}  # an emptied namespace disappears
    pc.close()
