"""A loopback double of Pinecone's REST API, for testing the Pinecone store through the real SDK.

Written from Pinecone's documented REST behaviour (API reference and "Database limits"),
not from its server. It covers what ``sfxmatch.store.pinecone`` and the SDK's calls for it use:

Control plane (the ``Pinecone(host=...)`` URL):
  GET /indexes, GET /indexes/{name} (the SDK's describe, which gives the index host),
  POST /indexes (create; ready at once), DELETE /indexes/{name}.
  Errors: ``{"error": {"code": "NOT_FOUND", "message": ...}, "status": 404}``.

Data plane (one loopback server per index, its ``host``):
  POST /vectors/upsert, POST /query, GET /vectors/fetch, POST /vectors/fetch_by_metadata,
  POST /vectors/delete, POST /describe_index_stats.
  Errors: ``{"code": <gRPC code>, "message": ..., "details": []}`` with the HTTP status.

Documented behaviour implemented: the ``Api-Key`` header is required (401); upsert takes at
most 1,000 vectors and 2 MB per request (400 / 413), 40 KB of metadata per vector, metadata
values are strings, numbers, booleans or lists of strings (no nulls), dense values must match
the index dimension and not be all zeros; fetch and delete take at most 1,000 ids; query
``topK`` is 1..10,000 and scores follow the index metric (cosine, dotproduct, euclidean);
namespaces appear on first upsert and disappear when emptied; ``describe_index_stats`` takes
no filter on serverless indexes (400). Filters: implicit equality, ``$eq $ne $gt $gte $lt
$lte $in $nin $exists``, ``$and`` / ``$or``; on a list-of-strings field ``$eq``/``$in``
match when any element does. Unlike the real service, writes are visible immediately (the
real one is eventually consistent).

Test hooks: ``inject(path, status, times, retry_after=None)`` makes the next ``times``
requests to a data-plane path fail; ``requests`` records every request (method, path,
body size, vector count).
"""

from __future__ import annotations

import json
import math
import re
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

MAX_UPSERT_VECTORS = 1000
MAX_REQUEST_BYTES = 2 * 1024 * 1024
MAX_METADATA_BYTES = 40 * 1024
MAX_FETCH_DELETE_IDS = 1000
MAX_TOP_K = 10_000
MAX_ID_LENGTH = 512
DEFAULT_FETCH_BY_METADATA_LIMIT = 100

# gRPC status codes Pinecone's data plane puts in "code"
_GRPC = {400: 3, 401: 16, 404: 5, 409: 6, 413: 3, 429: 8, 500: 13, 503: 14}
_CONTROL_CODES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    404: "NOT_FOUND",
    409: "ALREADY_EXISTS",
    429: "RESOURCE_EXHAUSTED",
    500: "UNKNOWN",
}


class ApiFailure(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Logged:
    method: str
    path: str
    body_bytes: int
    vectors: int = 0
    namespace: str | None = None


@dataclass
class IndexState:
    name: str
    dimension: int
    metric: str
    host: str = ""
    namespaces: dict[str, dict[str, tuple[list[float], dict[str, Any]]]] = field(
        default_factory=dict
    )
    server: ThreadingHTTPServer | None = None

    def model(self) -> dict[str, Any]:
        # The 2026-07 shape: vectors addressed by the reserved "_values" dense field.
        return {
            "name": self.name,
            "host": self.host,
            "status": {"ready": True, "state": "Ready"},
            "schema": {
                "fields": {
                    "_values": {
                        "type": "dense_vector",
                        "dimension": self.dimension,
                        "metric": self.metric,
                    }
                }
            },
            "deployment": {"deployment_type": "managed", "cloud": "aws", "region": "us-east-1"},
            "deletion_protection": "disabled",
            "tags": None,
        }


# -- the filter language ----------------------------------------------------------------


def _compare(op: str, have: Any, want: Any) -> bool:
    many = have if isinstance(have, list) else [have]
    if op == "$eq":
        return want in many
    if op == "$ne":
        return want not in many
    if op in ("$in", "$nin"):
        if not isinstance(want, list):
            raise ApiFailure(400, f"{op} operator requires an array value")
        found = any(v in want for v in many)
        return found if op == "$in" else not found
    if op in ("$gt", "$gte", "$lt", "$lte"):
        if not isinstance(want, (int, float)) or isinstance(want, bool):
            raise ApiFailure(400, f"{op} operator requires a number")
        if not isinstance(have, (int, float)) or isinstance(have, bool):
            return False
        return {"$gt": have > want, "$gte": have >= want, "$lt": have < want, "$lte": have <= want}[
            op
        ]
    raise ApiFailure(400, f"Invalid filter operator: {op}")


def matches(flt: dict[str, Any] | None, metadata: dict[str, Any]) -> bool:
    if not flt:
        return True
    if not isinstance(flt, dict):
        raise ApiFailure(400, "filter must be an object")
    for key, cond in flt.items():
        if key in ("$and", "$or"):
            if not isinstance(cond, list):
                raise ApiFailure(400, f"{key} requires an array of filters")
            results = [matches(c, metadata) for c in cond]
            if not (all(results) if key == "$and" else any(results)):
                return False
            continue
        if key.startswith("$"):
            raise ApiFailure(400, f"Invalid filter operator: {key}")
        if not isinstance(cond, dict):
            cond = {"$eq": cond}  # a bare value is equality
        for op, want in cond.items():
            if op == "$exists":
                if (key in metadata) != bool(want):
                    return False
                continue
            if key not in metadata:
                if op in ("$ne", "$nin"):
                    continue  # a missing field is "not equal"
                return False
            if not _compare(op, metadata[key], want):
                return False
    return True


def _score(metric: str, a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    if metric == "dotproduct":
        return dot
    if metric == "euclidean":
        return sum((x - y) ** 2 for x, y in zip(a, b, strict=True))
    na = math.sqrt(sum(x * x for x in a))
    nb = math.sqrt(sum(y * y for y in b))
    return dot / (na * nb) if na and nb else 0.0


def _check_metadata(vid: str, metadata: Any) -> None:
    if not isinstance(metadata, dict):
        raise ApiFailure(400, f"Metadata of vector {vid} must be an object")
    size = len(json.dumps(metadata, separators=(",", ":"), ensure_ascii=False).encode())
    if size > MAX_METADATA_BYTES:
        raise ApiFailure(
            400,
            f"Metadata size is {size} bytes, which exceeds the limit of "
            f"{MAX_METADATA_BYTES} bytes per vector",
        )
    for key, value in metadata.items():
        ok = isinstance(value, (str, int, float, bool)) or (
            isinstance(value, list) and all(isinstance(v, str) for v in value)
        )
        if value is None or not ok:
            raise ApiFailure(
                400,
                f"Metadata value for field {key} of vector {vid} has an "
                "unsupported type (null values are not supported)",
            )


# -- the server -------------------------------------------------------------------------


class PineconeDouble:
    """Start with ``with PineconeDouble(api_key) as double:``; ``double.url`` is the control
    plane. Indexes made with ``create_index`` or the SDK each get their own data-plane port."""

    def __init__(self, api_key: str = "test-key") -> None:
        self.api_key = api_key
        self.indexes: dict[str, IndexState] = {}
        self.requests: list[Logged] = []
        self._lock = threading.RLock()
        self._faults: dict[str, list[tuple[int, str | None]]] = {}
        self._control = self._serve(None)
        self.url = f"http://127.0.0.1:{self._control.server_address[1]}"

    # -- lifecycle / hooks --

    def __enter__(self) -> PineconeDouble:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        servers = [self._control] + [i.server for i in self.indexes.values() if i.server]
        for server in servers:
            server.shutdown()
            server.server_close()

    def create_index(self, name: str, dimension: int, metric: str = "cosine") -> IndexState:
        with self._lock:
            if name in self.indexes:
                raise ApiFailure(409, f"Resource {name} already exists")
            state = IndexState(name, dimension, metric)
            state.server = self._serve(state)
            state.host = f"http://127.0.0.1:{state.server.server_address[1]}"
            self.indexes[name] = state
            return state

    def inject(
        self, path: str, status: int, times: int = 1, retry_after: str | None = None
    ) -> None:
        """The next ``times`` requests to ``path`` answer ``status`` (then normal service)."""
        with self._lock:
            self._faults.setdefault(path, []).extend([(status, retry_after)] * times)

    def logged(self, path: str) -> list[Logged]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def _serve(self, index: IndexState | None) -> ThreadingHTTPServer:
        double = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the SDK's pool expects
            # Headers and body go out in separate writes: without this, Nagle's algorithm and
            # the client's delayed ACK add ~40 ms to every response.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:  # silence stderr
                pass

            def do_GET(self) -> None:
                double._handle(self, "GET", index)

            def do_POST(self) -> None:
                double._handle(self, "POST", index)

            def do_DELETE(self) -> None:
                double._handle(self, "DELETE", index)

            def do_PATCH(self) -> None:
                double._handle(self, "PATCH", index)

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        # A short poll interval keeps shutdown() quick (it waits for the loop to notice).
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        return server

    # -- request plumbing --

    def _handle(self, req: BaseHTTPRequestHandler, method: str, index: IndexState | None) -> None:
        parts = urlsplit(req.path)
        length = int(req.headers.get("Content-Length") or 0)
        raw = req.rfile.read(length) if length else b""
        status, body, headers = 200, {}, {}
        try:
            if req.headers.get("Api-Key") != self.api_key:
                raise ApiFailure(401, "Invalid API Key")
            payload = json.loads(raw) if raw else {}
            with self._lock:
                self.requests.append(
                    Logged(
                        method,
                        parts.path,
                        len(raw),
                        len(payload.get("vectors", []))
                        if isinstance(payload, dict) and isinstance(payload.get("vectors"), list)
                        else 0,
                        payload.get("namespace") if isinstance(payload, dict) else None,
                    )
                )
                queue = self._faults.get(parts.path) if index is not None else None
                fault = queue.pop(0) if queue else None
            if fault is not None:
                if fault[1] is not None:
                    headers["Retry-After"] = fault[1]
                raise ApiFailure(fault[0], "injected failure")
            if index is None:
                status, body = self._control_plane(method, parts.path, payload)
            else:
                status, body = self._data_plane(
                    index, method, parts.path, parts.query, payload, len(raw)
                )
        except ApiFailure as failure:
            status = failure.status
            if index is None:
                code = _CONTROL_CODES.get(status, "UNKNOWN")
                body = {"error": {"code": code, "message": failure.message}, "status": status}
            else:
                body = {"code": _GRPC.get(status, 2), "message": failure.message, "details": []}
        except json.JSONDecodeError:
            status, body = 400, {"code": 3, "message": "malformed JSON body", "details": []}
        data = json.dumps(body).encode() if body is not None else b""
        req.send_response(status)
        req.send_header("Content-Type", "application/json")
        req.send_header("Content-Length", str(len(data)))
        for key, value in headers.items():
            req.send_header(key, value)
        req.end_headers()
        req.wfile.write(data)

    # -- control plane --

    def _control_plane(self, method: str, path: str, payload: Any) -> tuple[int, Any]:
        if path == "/indexes" and method == "GET":
            with self._lock:
                return 200, {"indexes": [i.model() for i in self.indexes.values()]}
        if path == "/indexes" and method == "POST":
            name = payload.get("name")
            if not name or not re.fullmatch(r"[a-z0-9]([a-z0-9-]{0,43}[a-z0-9])?", name):
                raise ApiFailure(400, "Index name must consist of lowercase alphanumerics or '-'")
            dense = (payload.get("schema") or {}).get("fields", {}).get("_values")
            dimension = (dense or {}).get("dimension") or payload.get("dimension")
            metric = (dense or {}).get("metric") or payload.get("metric") or "cosine"
            if not isinstance(dimension, int) or not 1 <= dimension <= 20_000:
                raise ApiFailure(400, "dimension must be an integer between 1 and 20000")
            return 201, self.create_index(name, dimension, metric).model()
        match = re.fullmatch(r"/indexes/([^/]+)", path)
        if match:
            name = unquote(match.group(1))
            with self._lock:
                state = self.indexes.get(name)
                if state is None:
                    raise ApiFailure(404, f"Resource {name} not found")
                if method == "GET":
                    return 200, state.model()
                if method == "DELETE":
                    del self.indexes[name]
                    if state.server:
                        threading.Thread(target=state.server.shutdown, daemon=True).start()
                    return 202, None
        raise ApiFailure(404, f"Not found: {method} {path}")

    # -- data plane --

    def _data_plane(
        self, index: IndexState, method: str, path: str, query: str, p: Any, size: int
    ) -> tuple[int, Any]:
        route = (method, path)
        with self._lock:
            if route == ("POST", "/vectors/upsert"):
                return 200, self._upsert(index, p, size)
            if route == ("POST", "/query"):
                return 200, self._query(index, p)
            if route == ("GET", "/vectors/fetch"):
                params = parse_qs(query)
                ids = params.get("ids", [])
                ns = params.get("namespace", [""])[0]
                if len(ids) > MAX_FETCH_DELETE_IDS:
                    raise ApiFailure(400, f"Cannot fetch more than {MAX_FETCH_DELETE_IDS} ids")
                store = index.namespaces.get(ns, {})
                vectors = {i: self._vector(i, *store[i]) for i in ids if i in store}
                return 200, {"vectors": vectors, "namespace": ns, "usage": {"readUnits": 1}}
            if route == ("POST", "/vectors/fetch_by_metadata"):
                return 200, self._fetch_by_metadata(index, p)
            if route == ("POST", "/vectors/delete"):
                return 200, self._delete(index, p)
            if route == ("POST", "/describe_index_stats"):
                if p.get("filter"):
                    raise ApiFailure(
                        400,
                        "Serverless and starter indexes do not support "
                        "describing index stats with metadata filtering.",
                    )
                counts = {ns: {"vectorCount": len(v)} for ns, v in index.namespaces.items() if v}
                return 200, {
                    "namespaces": counts,
                    "dimension": index.dimension,
                    "indexFullness": 0.0,
                    "metric": index.metric,
                    "vectorType": "dense",
                    "totalVectorCount": sum(c["vectorCount"] for c in counts.values()),
                }
        raise ApiFailure(404, f"Not found: {method} {path}")

    @staticmethod
    def _vector(vid: str, values: list[float], metadata: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"id": vid, "values": values}
        if metadata:
            out["metadata"] = metadata
        return out

    def _upsert(self, index: IndexState, p: dict[str, Any], size: int) -> dict[str, Any]:
        if size > MAX_REQUEST_BYTES:
            raise ApiFailure(
                413,
                f"Request size {size} exceeds the maximum supported size "
                f"of {MAX_REQUEST_BYTES} bytes",
            )
        vectors = p.get("vectors")
        if not isinstance(vectors, list) or not vectors:
            raise ApiFailure(400, "vectors must be a non-empty array")
        if len(vectors) > MAX_UPSERT_VECTORS:
            raise ApiFailure(
                400,
                f"Upsert request can contain at most {MAX_UPSERT_VECTORS} "
                f"vectors, got {len(vectors)}",
            )
        staged = []
        for v in vectors:  # validate the whole request before writing any of it
            vid, values = v.get("id"), v.get("values")
            if not isinstance(vid, str) or not 1 <= len(vid) <= MAX_ID_LENGTH:
                raise ApiFailure(400, f"Vector id must be 1-{MAX_ID_LENGTH} characters")
            if not isinstance(values, list) or len(values) != index.dimension:
                got = len(values) if isinstance(values, list) else 0
                raise ApiFailure(
                    400,
                    f"Vector dimension {got} does not match the dimension of "
                    f"the index {index.dimension}",
                )
            if not any(values):
                raise ApiFailure(400, "Dense vectors must contain at least one non-zero value")
            metadata = v.get("metadata") or {}
            _check_metadata(vid, metadata)
            staged.append((vid, [float(x) for x in values], metadata))
        store = index.namespaces.setdefault(p.get("namespace") or "", {})
        for vid, values, metadata in staged:
            store[vid] = (values, metadata)
        return {"upsertedCount": len(staged)}

    def _query(self, index: IndexState, p: dict[str, Any]) -> dict[str, Any]:
        top_k = p.get("topK")
        if not isinstance(top_k, int) or not 1 <= top_k <= MAX_TOP_K:
            raise ApiFailure(400, f"topK must be between 1 and {MAX_TOP_K}")
        ns = p.get("namespace") or ""
        store = index.namespaces.get(ns, {})
        vector = p.get("vector")
        if vector is None and p.get("id") is not None:
            vector = store[p["id"]][0] if p["id"] in store else None
            if vector is None:
                return {"matches": [], "namespace": ns, "usage": {"readUnits": 1}}
        if not isinstance(vector, list) or len(vector) != index.dimension:
            raise ApiFailure(
                400,
                f"Query vector dimension does not match the dimension of "
                f"the index {index.dimension}",
            )
        flt = p.get("filter")
        scored = [
            (_score(index.metric, vector, values), vid, values, metadata)
            for vid, (values, metadata) in store.items()
            if matches(flt, metadata)
        ]
        reverse = index.metric != "euclidean"
        scored.sort(key=lambda s: (-s[0] if reverse else s[0], s[1]))
        out = []
        for score, vid, values, metadata in scored[:top_k]:
            match: dict[str, Any] = {"id": vid, "score": score, "values": []}
            if p.get("includeValues"):
                match["values"] = values
            if p.get("includeMetadata") and metadata:
                match["metadata"] = metadata
            out.append(match)
        return {"matches": out, "namespace": ns, "usage": {"readUnits": 1 + len(store) // 1000}}

    def _fetch_by_metadata(self, index: IndexState, p: dict[str, Any]) -> dict[str, Any]:
        flt = p.get("filter")
        if not flt:
            raise ApiFailure(400, "Fetch by metadata requires a non-empty filter")
        ns = p.get("namespace") or ""
        limit = p.get("limit") or DEFAULT_FETCH_BY_METADATA_LIMIT
        store = index.namespaces.get(ns, {})
        ids = sorted(vid for vid, (_, metadata) in store.items() if matches(flt, metadata))
        token = p.get("paginationToken")
        start = int(token) if token else 0
        page = ids[start : start + limit]
        body: dict[str, Any] = {
            "vectors": {vid: self._vector(vid, *store[vid]) for vid in page},
            "namespace": ns,
            "usage": {"readUnits": 1},
        }
        if start + limit < len(ids):
            body["pagination"] = {"next": str(start + limit)}
        return body

    def _delete(self, index: IndexState, p: dict[str, Any]) -> dict[str, Any]:
        ns = p.get("namespace") or ""
        store = index.namespaces.get(ns, {})
        if p.get("deleteAll"):
            store.clear()
        elif p.get("ids") is not None:
            ids = p["ids"]
            if len(ids) > MAX_FETCH_DELETE_IDS:
                raise ApiFailure(400, f"Cannot delete more than {MAX_FETCH_DELETE_IDS} ids")
            for vid in ids:
                store.pop(vid, None)
        elif p.get("filter"):
            for vid in [v for v, (_, m) in store.items() if matches(p["filter"], m)]:
                del store[vid]
        else:
            raise ApiFailure(400, "Delete requires ids, deleteAll or a filter")
        if ns in index.namespaces and not store:
            del index.namespaces[ns]  # serverless namespaces vanish when emptied
        return {}


@contextmanager
def running(api_key: str = "test-key") -> Iterator[PineconeDouble]:
    double = PineconeDouble(api_key)
    try:
        yield double
    finally:
        double.close()


def unique_name(prefix: str = "sfx") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"
