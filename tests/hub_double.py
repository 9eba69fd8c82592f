"""A loopback double of the Hugging Face hub's file-resolution endpoints, for huggingface_hub.

Written from huggingface_hub 2.4's documented and observable behaviour (``file_download.py``:
``hf_hub_url``, ``get_hf_file_metadata``, ``_get_metadata_or_catch_error``, ``http_get``;
``utils/_http.py``: ``hf_raise_for_status``, ``_httpx2_follow_hub_redirects_with_backoff``;
``constants.py``), not from the hub's server. What the library relies on:

- ``HEAD`` then ``GET {endpoint}/{repo_id}/resolve/{revision}/{filename}`` (revision and
  filename percent-encoded). The HEAD must carry ``X-Repo-Commit`` (else ``FileMetadataError``:
  "not served by a Hugging Face Hub endpoint") and an ETag: ``X-Linked-Etag`` is preferred over
  ``ETag``, quotes and ``W/`` are stripped, and the result names the cache blob. The size
  comes from ``X-Linked-Size``, else ``Content-Length`` (ignored on a redirect).
- Small (git) files: ``200`` with ``ETag: "<git blob sha1>"``, ``Content-Length``,
  ``Accept-Ranges: bytes``.
- Large (LFS) files: ``302`` to a CDN with ``X-Linked-Etag: "<sha256>"``, ``X-Linked-Size``
  and ``ETag`` = the git sha1 of the LFS pointer file. Redirects are followed during the HEAD
  only to the same origin (scheme, host, port) or a known hub origin; anywhere else the
  metadata is read off the 302 itself and the GET goes straight to ``Location``. So the CDN
  here is a second server on its own port, as the real one is a different host (had it
  shared the hub's origin, the HEAD would follow it and miss ``X-Repo-Commit``).
- Errors: ``X-Error-Code: EntryNotFound`` on a 404 makes ``RemoteEntryNotFoundError`` (its
  ``X-Repo-Commit`` lets the library cache the absence under ``.no_exist``);
  ``RevisionNotFound`` makes ``RevisionNotFoundError``; an unknown repo answers 401 with
  ``RepoNotFound`` as the hub does for missing or private repos.
- ``GET`` with ``Range: bytes=N-`` (sent by ``http_get`` when it retries after a dropped
  connection, within the same call) expects ``206`` and ``Content-Range``; a 200 instead
  makes the library start the file over.
- No ``X-Xet-Hash`` / ``X-Xet-*`` / ``Link: <...>; rel="xet-auth"`` headers are sent: without
  them ``xet_file_data`` is None and the library takes the plain HTTP path even with
  ``hf_xet`` installed.

Pointing huggingface_hub here: ``constants.ENDPOINT`` and ``constants.HUGGINGFACE_CO_URL_TEMPLATE``
are computed from ``$HF_ENDPOINT`` at import, and ``hf_hub_url`` formats the template, so
setting the variable after import changes nothing: :func:`use_double` patches both constants
(``utils._http._HUB_ORIGINS`` is also frozen at import; it is left alone, the same-origin rule
covers the hub double). It also patches, for the same reason, ``HF_HUB_DISABLE_TELEMETRY``
(otherwise the user-agent builder fetches ``{ENDPOINT}/api/agent-harnesses`` once a day),
``HF_HUB_DISABLE_IMPLICIT_TOKEN`` (otherwise a stored OAuth token may be refreshed over the
network) and ``HF_HUB_OFFLINE`` (a developer's own setting would turn every request away).

Test hooks: ``faults[name]`` is a queue of :class:`Drop` / :class:`Fail` applied to the next
content GETs of that file, one each; ``corrupt`` names files served with one byte flipped
while the right hash is advertised; ``requests`` records every request (server, method,
path, Range).
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import pytest

_RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<revision>[^/]+)/(?P<filename>.+)$")
_CDN = re.compile(r"^/repos/(?P<sha256>[0-9a-f]{64})$")
_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")


def git_blob_sha1(data: bytes) -> str:
    """The id git gives a file's content: what the hub sends as a small file's ETag."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(data: bytes) -> bytes:
    """The text git stores in place of an LFS file (its git sha1 is the 302's ETag)."""
    sha = hashlib.sha256(data).hexdigest()
    return (
        f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha}\nsize {len(data)}\n".encode()
    )


@dataclass(frozen=True)
class Drop:
    """Send the headers and ``after`` body bytes, then close the connection."""

    after: int


@dataclass(frozen=True)
class Fail:
    """Answer with this status and no body."""

    status: int


@dataclass(frozen=True)
class Logged:
    server: str  # "hub" or "cdn"
    method: str
    path: str  # without the query
    range: str | None


@dataclass
class HubDouble:
    repo_id: str
    files: dict[str, bytes]
    lfs: frozenset[str] = frozenset()  # served through the CDN, named by sha256
    commit: str = "0123456789abcdef0123456789abcdef01234567"
    faults: dict[str, list[Drop | Fail]] = field(default_factory=dict)
    corrupt: set[str] = field(default_factory=set)
    requests: list[Logged] = field(default_factory=list)
    endpoint: str = ""  # set by start()
    cdn: str = ""
    _servers: list[ThreadingHTTPServer] = field(default_factory=list)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        # The sockets listen from construction, so a request queues until serve_forever
        # accepts it: no readiness wait is needed.
        for role in ("hub", "cdn"):
            server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
            server.double = self  # type: ignore[attr-defined]
            server.role = role  # type: ignore[attr-defined]
            # A short poll interval makes shutdown() return quickly.
            thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
            thread.start()
            self._servers.append(server)
            self._threads.append(thread)
            url = f"http://127.0.0.1:{server.server_address[1]}"
            if role == "hub":
                self.endpoint = url
            else:
                self.cdn = url

    def close(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join()

    def log(self, entry: Logged) -> None:
        with self._lock:
            self.requests.append(entry)

    def gets(self, server: str | None = None) -> list[Logged]:
        return [r for r in self.requests if r.method == "GET" and server in (None, r.server)]

    def next_fault(self, name: str) -> Drop | Fail | None:
        with self._lock:
            queue = self.faults.get(name)
            return queue.pop(0) if queue else None

    def body(self, name: str) -> bytes:
        data = self.files[name]
        if name in self.corrupt and data:
            return bytes([data[0] ^ 0xFF]) + data[1:]  # same size: only a hash check notices
        return data

    def by_sha256(self, sha: str) -> str | None:
        for name in self.lfs:
            if name in self.files and hashlib.sha256(self.files[name]).hexdigest() == sha:
                return name
        return None


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.0 (one request per connection) keeps teardown simple; the client doesn't mind.
    server: Any

    def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
        pass

    def do_HEAD(self) -> None:
        self._answer(head=True)

    def do_GET(self) -> None:
        self._answer(head=False)

    def _answer(self, *, head: bool) -> None:
        double: HubDouble = self.server.double
        role: str = self.server.role
        path = urlsplit(self.path).path
        double.log(Logged(role, self.command, path, self.headers.get("Range")))
        if role == "cdn":
            match = _CDN.match(path)
            name = double.by_sha256(match["sha256"]) if match else None
            if match is None or name is None:
                self._status(404, {})
                return
            self._content(double, name, head, {"ETag": f'"{match["sha256"]}"'})
            return
        match = _RESOLVE.match(path)
        if match is None:
            self._status(404, {})  # e.g. /api/agent-harnesses: nothing else is served
            return
        repo, revision, name = match["repo"], unquote(match["revision"]), unquote(match["filename"])
        if repo != double.repo_id:
            self._status(
                401, {"X-Error-Code": "RepoNotFound", "X-Error-Message": "Repository not found"}
            )
            return
        if revision not in ("main", double.commit):
            self._status(
                404, {"X-Error-Code": "RevisionNotFound", "X-Error-Message": "Invalid rev id"}
            )
            return
        commit = {"X-Repo-Commit": double.commit}
        if name not in double.files:
            self._status(
                404,
                {**commit, "X-Error-Code": "EntryNotFound", "X-Error-Message": "Entry not found"},
            )
            return
        data = double.files[name]
        if name in double.lfs:
            sha = hashlib.sha256(data).hexdigest()
            self._status(
                302,
                {
                    **commit,
                    "Location": f"{double.cdn}/repos/{sha}?filename={quote(name)}",
                    "ETag": f'"{git_blob_sha1(lfs_pointer(data))}"',
                    "X-Linked-Etag": f'"{sha}"',
                    "X-Linked-Size": str(len(data)),
                },
            )
            return
        self._content(double, name, head, {**commit, "ETag": f'"{git_blob_sha1(data)}"'})

    def _status(self, status: int, headers: dict[str, str]) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _content(self, double: HubDouble, name: str, head: bool, headers: dict[str, str]) -> None:
        fault = None if head else double.next_fault(name)
        if isinstance(fault, Fail):
            self._status(fault.status, {})
            return
        data = double.body(name)
        start, end, status = 0, len(data) - 1, 200
        asked = _RANGE.match(self.headers.get("Range", ""))
        if asked:
            start = int(asked[1])
            end = min(int(asked[2]), end) if asked[2] else end
            if start >= len(data) or start > end:
                self._status(416, {"Content-Range": f"bytes */{len(data)}"})
                return
            status = 206
        body = data[start : end + 1]
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Disposition", f'attachment; filename="{name}"')
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(len(body)))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
        self.end_headers()
        if head:
            return
        if isinstance(fault, Drop):
            body = body[: fault.after]
            self.close_connection = True
        self.wfile.write(body)


def use_double(monkeypatch: pytest.MonkeyPatch, endpoint: str) -> None:
    """Point huggingface_hub (already imported or not) at ``endpoint``, with nothing else
    that could reach the network: see the module docstring for why each one is patched."""
    from huggingface_hub import constants

    monkeypatch.setenv("HF_ENDPOINT", endpoint)  # for anything that reads it afresh
    monkeypatch.setattr(constants, "ENDPOINT", endpoint)
    monkeypatch.setattr(
        constants,
        "HUGGINGFACE_CO_URL_TEMPLATE",
        endpoint + "/{repo_id}/resolve/{revision}/{filename}",
    )
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_TELEMETRY", True)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_IMPLICIT_TOKEN", True)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_OIDC_RESOURCE"):
        monkeypatch.delenv(name, raising=False)


@contextmanager
def running(repo_id: str, files: dict[str, bytes], lfs: frozenset[str]) -> Iterator[HubDouble]:
    double = HubDouble(repo_id, dict(files), lfs)
    double.start()
    try:
        yield double
    finally:
        double.close()
