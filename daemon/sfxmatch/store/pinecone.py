"""Pinecone-backed store, through the official ``pinecone`` SDK (extra: ``sfxmatch[pinecone]``).

Layout: one index (dense, cosine, ``dim``-wide), one namespace per library, so a library can
be searched or counted on its own cheaply. Metadata is ``SoundMeta.to_dict()`` (strings and
numbers only: Pinecone stores no nulls).

Semantics kept equal to the embedded stores (the conformance tests run on all of them):
- ids are unique across libraries: an upsert also deletes those ids from the other known
  namespaces, so moving a sound to another library leaves no stale copy behind;
- ``delete`` with a filter deletes by metadata filter server-side, per namespace (a filter
  on the library alone empties its namespace);
- ``count``/``labels`` with a filter on more than the library walk ``fetch_by_metadata``
  (serverless indexes do not filter ``describe_index_stats``); that reads every matching
  record, so cache the answer where it is used often.

Limits from Pinecone's documentation: an upsert request holds at most 1,000 vectors and 2 MB,
metadata at most 40 KB per vector, fetch and delete at most 1,000 ids. Upserts are packed
under those limits and sent through the SDK's batched upsert; batches that fail with a
retryable error (429, 5xx, timeouts) are resent with exponential backoff, a deterministic
rejection raises ``StoreError`` at once. Pinecone is eventually consistent: a write may take
a moment to show in queries from other clients (and sometimes this one).

Point it at another endpoint (a gateway, Pinecone Local, the test double) with ``host`` for
the control plane; the index's data-plane host comes from ``describe_index`` unless
``index_host`` is given.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import partial
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from sfxmatch.config import ENV_PINECONE_API_KEY, env_text
from sfxmatch.errors import StoreError
from sfxmatch.store.base import (
    DEFAULT_DIM,
    KINDS,
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

ENV_API_KEY = ENV_PINECONE_API_KEY
MAX_UPSERT_VECTORS = 1000
MAX_REQUEST_BYTES = 2 * 1000 * 1000  # "2 MB": the decimal reading is the safe one
MAX_METADATA_BYTES = 40 * 1000  # "40 KB", decimal for the same reason
MAX_IDS_PER_DELETE = 1000
FETCH_IDS_PER_REQUEST = 100  # fetch puts ids in the URL: keep it well under URL limits
FETCH_PAGE = 1000
_REQUEST_OVERHEAD = 1024  # JSON envelope and namespace, on top of the items
_NAMESPACE_OK = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


def namespace_for(library: str) -> str:
    """The namespace holding a library: its name if plainly spelled, else a stable hash."""
    if library and len(library) <= 64 and set(library) <= _NAMESPACE_OK:
        return library
    return "lib-" + hashlib.blake2b(library.encode(), digest_size=8).hexdigest()


def pinecone_filter(filter: Filter | None) -> dict[str, Any] | None:
    """Pinecone's metadata filter for every clause but ``library`` (namespaces carry that)."""
    if filter is None:
        return None
    out: dict[str, Any] = {}
    for name, values in filter.clauses:
        if name == "library":
            continue
        out[name] = {"$eq": values[0]} if len(values) == 1 else {"$in": list(values)}
    return out or None


class PineconeStore(StoreLifecycle):
    """``VectorStore`` over one Pinecone index. Needs the ``pinecone`` extra."""

    def __init__(
        self,
        index_name: str = "sfxmatch",
        dim: int = DEFAULT_DIM,
        *,
        api_key: str | None = None,
        host: str | None = None,
        index_host: str | None = None,
        create: bool = False,
        cloud: str = "aws",
        region: str = "us-east-1",
        create_timeout_s: int = 300,
        max_attempts: int = 5,
        retry_base_s: float = 0.5,
        max_concurrency: int = 4,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        try:
            from pinecone import Pinecone
            from pinecone.errors import NotFoundError, PineconeError
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise StoreError(
                "the Pinecone store needs the pinecone SDK: pip install 'sfxmatch[pinecone]'"
            ) from exc
        self._errors: tuple[type[BaseException], ...] = (PineconeError,)
        key = api_key or env_text(ENV_API_KEY)
        if not key:
            raise StoreError(f"the Pinecone store needs an API key: set {ENV_API_KEY}")
        self._dim = dim
        self._max_attempts = max_attempts
        self._retry_base_s = retry_base_s
        self._max_concurrency = max_concurrency
        self._sleep = sleep
        self._closed = False
        self._pc = Pinecone(api_key=key, host=host)
        try:
            try:
                model = self._pc.indexes.describe(index_name)
            except NotFoundError:
                if not create:
                    raise StoreError(
                        f"Pinecone index {index_name!r} does not exist (create it, or pass "
                        "create=True)"
                    ) from None
                model = self._pc.indexes.create(
                    name=index_name,
                    schema={
                        "fields": {
                            "_values": {
                                "type": "dense_vector",
                                "dimension": dim,
                                "metric": "cosine",
                            }
                        }
                    },
                    deployment={"deployment_type": "managed", "cloud": cloud, "region": region},
                    timeout=create_timeout_s,
                )
            self._check_model(index_name, model)
            self._index = self._pc.index(host=index_host or model.host or "")
            self._namespaces: set[str] = set()
            self._refresh_namespaces()
        except self._errors as exc:
            self._pc.close()
            raise StoreError(f"Pinecone index {index_name!r}: {exc}") from exc
        except BaseException:
            self._pc.close()  # no half-open client left behind
            raise

    # -- protocol ------------------------------------------------------------------------

    @property
    def dim(self) -> int:
        return self._dim

    def upsert(self, records: Iterable[Record]) -> int:
        self._check_open()
        prepared = prepare_records(records, self._dim)
        if not prepared:
            return 0
        self._refresh_namespaces()  # other clients may have added libraries
        by_namespace: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for record in prepared:
            by_namespace[namespace_for(record.meta.library)].append(self._item(record))
        for namespace, items in by_namespace.items():
            self._upsert_namespace(namespace, items)
            self._namespaces.add(namespace)
        # Ids are global keys: drop copies left in other libraries' namespaces.
        for namespace, items in by_namespace.items():
            ids = [item["id"] for item in items]
            for other in self._namespaces - {namespace}:
                self._delete_in(other, ids)
        return len(prepared)

    def delete(self, ids: Iterable[str] | None = None, *, filter: Filter | None = None) -> None:
        self._check_open()
        selected = delete_selector(ids, filter)
        self._refresh_namespaces()
        if not isinstance(selected, Filter):
            for namespace in sorted(self._namespaces):
                self._delete_in(namespace, selected)
            return
        if selected.is_empty:
            return
        # Pinecone deletes by metadata filter server-side; a filter on the library alone is
        # its whole namespace (delete_all: a filter must carry a condition).
        flt = pinecone_filter(selected)
        for namespace in sorted(set(self._namespaces_for(selected)) & self._namespaces):
            if flt is None:
                self._call(partial(self._index.delete, delete_all=True, namespace=namespace))
            else:
                self._call(partial(self._index.delete, filter=flt, namespace=namespace))

    def get(self, ids: Sequence[str]) -> list[Record]:
        self._check_open()
        wanted = prepare_ids(ids)
        self._refresh_namespaces()
        found: dict[str, Record] = {}
        for namespace in sorted(self._namespaces):
            for chunk in chunks(wanted, FETCH_IDS_PER_REQUEST):
                response = self._call(
                    partial(self._index.fetch, ids=list(chunk), namespace=namespace)
                )
                for vid, vector in response.vectors.items():
                    found[vid] = self._record(vid, vector.values, vector.metadata)
        return [found[i] for i in wanted if i in found]

    def query(self, vector: ArrayLike, top_k: int = 10, filter: Filter | None = None) -> list[Hit]:
        self._check_open()
        q = normalize_query(vector, self._dim).tolist()
        check_top_k(top_k)
        if filter is not None and filter.is_empty:
            return []
        namespaces = self._namespaces_for(filter)
        if not namespaces:
            return []
        flt = pinecone_filter(filter)
        if len(namespaces) == 1:
            response = self._call(
                lambda: self._index.query(
                    vector=q,
                    top_k=top_k,
                    namespace=namespaces[0],
                    filter=flt,
                    include_metadata=True,
                )
            )
        else:
            response = self._call(
                lambda: self._index.query_namespaces(
                    vector=q,
                    namespaces=namespaces,
                    metric="cosine",
                    top_k=top_k,
                    filter=flt,
                    include_metadata=True,
                )
            )
        return [
            Hit(m.id, float(m.score), SoundMeta.from_dict(m.metadata or {}))
            for m in response.matches[:top_k]
        ]

    def count(self, filter: Filter | None = None) -> int:
        self._check_open()
        if filter is not None and filter.is_empty:
            return 0
        namespaces = self._namespaces_for(filter)
        if pinecone_filter(filter) is None:
            stats = self._call(lambda: self._index.describe_index_stats())
            return sum(
                stats.namespaces[ns].vector_count for ns in namespaces if ns in stats.namespaces
            )
        return sum(1 for _ in self._scan(namespaces, filter))

    def labels(self, filter: Filter | None = None) -> list[str]:
        self._check_open()
        if filter is not None and filter.is_empty:
            return []
        return sorted(
            {meta.get("label", "") for meta in self._scan(self._namespaces_for(filter), filter)}
        )

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for closable in (self._index, self._pc):
            with contextlib.suppress(Exception):  # closing is best effort
                closable.close()

    # -- internals -----------------------------------------------------------------------

    def _check_model(self, name: str, model: Any) -> None:
        fields = getattr(getattr(model, "schema", None), "fields", None) or {}
        dense = fields.get("_values")
        if dense is None:  # a document index (schema of named fields): no vectors API
            raise StoreError(
                f"Pinecone index {name!r} is not a vector index (create it with a dimension "
                "and the cosine metric)"
            )
        if dense.dimension != self._dim:
            raise StoreError(
                f"Pinecone index {name!r} holds {dense.dimension}-d vectors, expected {self._dim}"
            )
        if str(dense.metric).lower() not in ("cosine", "dotproduct"):
            raise StoreError(
                f"Pinecone index {name!r} uses the {dense.metric} metric; cosine or dotproduct "
                "is needed (scores are cosines)"
            )

    def _call(self, fn: Callable[[], Any]) -> Any:
        """Run one SDK call, turning its errors into ``StoreError`` (the SDK has retried)."""
        try:
            return fn()
        except self._errors as exc:
            raise StoreError(f"Pinecone: {exc}") from exc

    def _refresh_namespaces(self) -> None:
        stats = self._call(lambda: self._index.describe_index_stats())
        self._namespaces = {ns for ns, s in stats.namespaces.items() if s.vector_count > 0}

    def _namespaces_for(self, filter: Filter | None) -> list[str]:
        libraries = filter.values("library") if filter is not None else None
        if libraries is not None:
            return sorted({namespace_for(lib) for lib in libraries})
        self._refresh_namespaces()
        return sorted(self._namespaces)

    def _item(self, record: Record) -> dict[str, Any]:
        import orjson  # a dependency of the SDK: the encoder it sends requests with

        metadata = record.meta.to_dict()
        size = len(orjson.dumps(metadata))
        if size > MAX_METADATA_BYTES:
            raise StoreError(
                f"record {record.id!r}: metadata is {size} bytes, Pinecone takes at most "
                f"{MAX_METADATA_BYTES} (shorten its label or path)"
            )
        return {"id": record.id, "values": record.vector.tolist(), "metadata": metadata}

    def _batch_size(self, items: Sequence[dict[str, Any]]) -> int:
        """Items per request so that a request of the largest items stays under 2 MB."""
        import orjson

        largest = max(len(orjson.dumps(item)) for item in items)
        fit = (MAX_REQUEST_BYTES - _REQUEST_OVERHEAD) // (largest + 1)  # +1: the comma
        return max(1, min(MAX_UPSERT_VECTORS, fit))

    def _upsert_namespace(self, namespace: str, items: list[dict[str, Any]]) -> None:
        pending = items
        for attempt in range(self._max_attempts):
            response = self._call(
                partial(
                    self._index.upsert,
                    vectors=pending,
                    namespace=namespace,
                    batch_size=self._batch_size(pending),
                    show_progress=False,
                    max_concurrency=self._max_concurrency,
                )
            )
            if not response.has_errors:
                return
            fatal = [e for e in response.errors if not e.retryable]
            if fatal:
                raise StoreError(
                    f"Pinecone rejected an upsert to namespace {namespace!r}: "
                    f"{fatal[0].error_message}"
                )
            pending = response.failed_items
            if attempt + 1 < self._max_attempts:
                self._sleep(self._retry_base_s * 2**attempt)
        raise StoreError(
            f"Pinecone upsert to namespace {namespace!r}: {len(pending)} records still failing "
            f"after {self._max_attempts} attempts"
        )

    def _delete_in(self, namespace: str, ids: Sequence[str]) -> None:
        for chunk in chunks(ids, MAX_IDS_PER_DELETE):
            self._call(partial(self._index.delete, ids=list(chunk), namespace=namespace))

    def _scan(self, namespaces: Sequence[str], filter: Filter | None) -> Iterator[dict[str, Any]]:
        """Metadata of every matching record (fetch_by_metadata, page by page)."""
        flt = pinecone_filter(filter) or {"kind": {"$in": list(KINDS)}}  # matches every record
        for namespace in namespaces:
            token: str | None = None
            while True:
                page = self._call(
                    partial(
                        self._index.fetch_by_metadata,
                        filter=flt,
                        namespace=namespace,
                        limit=FETCH_PAGE,
                        pagination_token=token,
                    )
                )
                for vector in page.vectors.values():
                    yield vector.metadata or {}
                token = page.pagination.next if page.pagination else None
                if not token:
                    break

    def _record(self, vid: str, values: Sequence[float], metadata: Any) -> Record:
        return Record(
            vid, np.asarray(values, dtype=np.float32), SoundMeta.from_dict(metadata or {})
        )
