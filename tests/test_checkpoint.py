"""Checkpoint manager against a loopback HTTP server serving a small generated file."""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from sfxmatch.config import ENV_IMAGEBIND_CHECKPOINT, Settings
from sfxmatch.embed.checkpoint import IMAGEBIND_HUGE, CheckpointSpec, cache_path, ensure_checkpoint
from sfxmatch.errors import ModelError

PAYLOAD = np.random.default_rng(7).integers(0, 256, 300_000, dtype=np.uint8).tobytes()
DIGEST = hashlib.sha256(PAYLOAD).hexdigest()


@dataclasses.dataclass
class ServerState:
    payload: bytes = PAYLOAD
    etag: str = '"v1"'
    honour_range: bool = True
    wrong_range_start: bool = False  # answer 206 from byte 0 whatever was asked
    drop_after: int | None = None  # close the connection after this many body bytes, once
    requests: list[dict[str, str]] = dataclasses.field(default_factory=list)
    body_bytes: int = 0


class _Handler(http.server.BaseHTTPRequestHandler):
    state: ServerState  # set per server

    def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:
        state = self.server.state  # type: ignore[attr-defined]
        state.requests.append(dict(self.headers.items()))
        data = state.payload
        start = 0
        status = 200
        range_header = self.headers.get("Range")
        if_range = self.headers.get("If-Range")
        if range_header and state.honour_range and (if_range is None or if_range == state.etag):
            start = int(range_header.removeprefix("bytes=").rstrip("-"))
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = 206
            if state.wrong_range_start:
                start = 0
        body = data[start:]
        self.send_response(status)
        self.send_header("ETag", state.etag)
        self.send_header("Content-Length", str(len(body)))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.end_headers()
        if state.drop_after is not None:
            body = body[: state.drop_after]
            state.drop_after = None
            self.close_connection = True
        self.wfile.write(body)
        state.body_bytes += len(body)


@pytest.fixture
def server() -> Iterator[tuple[ServerState, str]]:
    state = ServerState()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.state = state  # type: ignore[attr-defined]
    # A short poll interval makes shutdown() return quickly at teardown.
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{httpd.server_address[1]}/imagebind_huge.pth"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def _spec(url: str, **changes: object) -> CheckpointSpec:
    fields: dict[str, object] = {"url": url, "sha256": DIGEST, "size": len(PAYLOAD)}
    fields.update(changes)
    return dataclasses.replace(IMAGEBIND_HUGE, **fields)  # type: ignore[arg-type]


def _settings(tmp_path: Path, checkpoint: Path | None = None) -> Settings:
    return Settings(cache_dir=tmp_path / "cache", imagebind_checkpoint=checkpoint)


def _fetch(spec: CheckpointSpec, settings: Settings, **kwargs: object) -> Path:
    return ensure_checkpoint(spec, settings=settings, progress=None, **kwargs)  # type: ignore[arg-type]


def _leftovers(target: Path) -> list[str]:
    return sorted(p.name for p in target.parent.iterdir() if p.name.endswith((".part", ".json")))


def test_full_download_then_second_call_does_not_download(server, tmp_path):
    state, url = server
    settings = _settings(tmp_path)
    seen: list[tuple[int, int | None]] = []
    path = ensure_checkpoint(
        _spec(url), settings=settings, progress=lambda done, total: seen.append((done, total))
    )
    assert path == settings.models_dir / "imagebind_huge.pth"
    assert path.read_bytes() == PAYLOAD
    assert _leftovers(path) == []
    assert seen[-1] == (len(PAYLOAD), len(PAYLOAD))
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)
    assert "Range" not in state.requests[0]

    again = _fetch(_spec(url), settings)
    assert again == path
    assert len(state.requests) == 1  # the stamp made the second call free


def test_resume_from_partial_file_requests_only_the_rest(server, tmp_path):
    state, url = server
    settings = _settings(tmp_path)
    target = cache_path(IMAGEBIND_HUGE, settings)
    target.parent.mkdir(parents=True)
    kept = 120_000
    target.with_name(target.name + ".part").write_bytes(PAYLOAD[:kept])
    target.with_name(target.name + ".part.json").write_text(json.dumps({"etag": state.etag}))

    path = _fetch(_spec(url), settings)
    assert path.read_bytes() == PAYLOAD
    assert state.requests[0]["Range"] == f"bytes={kept}-"
    assert state.requests[0]["If-Range"] == state.etag
    assert state.body_bytes == len(PAYLOAD) - kept
    assert _leftovers(path) == []


def test_server_ignoring_range_restarts_from_zero(server, tmp_path):
    state, url = server
    state.honour_range = False
    settings = _settings(tmp_path)
    target = cache_path(IMAGEBIND_HUGE, settings)
    target.parent.mkdir(parents=True)
    # Junk in the partial file proves the 200 body replaced it rather than being appended.
    target.with_name(target.name + ".part").write_bytes(b"\xff" * 50_000)

    assert _fetch(_spec(url), settings).read_bytes() == PAYLOAD
    assert state.requests[0]["Range"] == "bytes=50000-"
    assert state.body_bytes == len(PAYLOAD)


def test_changed_file_on_server_is_not_spliced(server, tmp_path):
    state, url = server
    state.etag = '"v2"'
    settings = _settings(tmp_path)
    target = cache_path(IMAGEBIND_HUGE, settings)
    target.parent.mkdir(parents=True)
    target.with_name(target.name + ".part").write_bytes(b"\x00" * 1000)
    target.with_name(target.name + ".part.json").write_text(json.dumps({"etag": '"v1"'}))

    assert _fetch(_spec(url), settings).read_bytes() == PAYLOAD
    assert state.requests[0]["If-Range"] == '"v1"'
    assert state.body_bytes == len(PAYLOAD)


def test_complete_part_file_answered_416_is_finished_without_transfer(server, tmp_path):
    state, url = server
    settings = _settings(tmp_path)
    target = cache_path(IMAGEBIND_HUGE, settings)
    target.parent.mkdir(parents=True)
    target.with_name(target.name + ".part").write_bytes(PAYLOAD)

    assert _fetch(_spec(url), settings).read_bytes() == PAYLOAD
    assert len(state.requests) == 1 and state.body_bytes == 0


def test_wrong_content_range_restarts(server, tmp_path):
    state, url = server
    state.wrong_range_start = True
    settings = _settings(tmp_path)
    target = cache_path(IMAGEBIND_HUGE, settings)
    target.parent.mkdir(parents=True)
    target.with_name(target.name + ".part").write_bytes(PAYLOAD[:1000])

    assert _fetch(_spec(url), settings).read_bytes() == PAYLOAD
    assert [r.get("Range") for r in state.requests] == ["bytes=1000-", None]


def test_dropped_connection_resumes_in_the_same_call(server, tmp_path):
    state, url = server
    state.drop_after = 100_000
    path = _fetch(_spec(url), _settings(tmp_path))
    assert path.read_bytes() == PAYLOAD
    assert [r.get("Range") for r in state.requests] == [None, "bytes=100000-"]


def test_hash_mismatch_deletes_the_download_and_leaves_no_final_file(server, tmp_path):
    _, url = server
    settings = _settings(tmp_path)
    with pytest.raises(ModelError, match="SHA-256") as caught:
        _fetch(_spec(url, sha256="0" * 64), settings)
    target = cache_path(IMAGEBIND_HUGE, settings)
    assert not target.exists()
    assert _leftovers(target) == []
    assert DIGEST in str(caught.value) and "run again" in str(caught.value)


def test_size_mismatch_fails_before_the_body(server, tmp_path):
    _, url = server
    settings = _settings(tmp_path)
    with pytest.raises(ModelError, match="offers 300000 bytes"):
        _fetch(_spec(url, size=123), settings)
    assert not cache_path(IMAGEBIND_HUGE, settings).exists()


def test_connection_refused_gives_an_actionable_error(tmp_path):
    with socket.socket() as probe:  # a port nobody listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/imagebind_huge.pth"
    settings = _settings(tmp_path)
    with pytest.raises(ModelError) as caught:
        _fetch(_spec(url), settings, timeout=5.0)
    message = str(caught.value)
    assert url in message
    assert str(cache_path(IMAGEBIND_HUGE, settings)) in message
    assert ENV_IMAGEBIND_CHECKPOINT in message
    assert "\n" not in message


def test_download_disabled_says_where_to_put_the_file(tmp_path):
    settings = _settings(tmp_path)
    with pytest.raises(ModelError, match="put it at") as caught:
        _fetch(IMAGEBIND_HUGE, settings, download=False)
    assert IMAGEBIND_HUGE.url in str(caught.value)


def test_explicit_path_then_env_var_then_cache(server, tmp_path, monkeypatch):
    state, url = server
    explicit = tmp_path / "explicit.pth"
    explicit.write_bytes(b"explicit")
    from_env = tmp_path / "env.pth"
    from_env.write_bytes(b"env")
    monkeypatch.setenv(ENV_IMAGEBIND_CHECKPOINT, str(from_env))
    monkeypatch.setenv("SFXMATCH_CACHE_DIR", str(tmp_path / "cache"))
    settings = Settings.from_env()
    spec = _spec(url)

    # Neither is hashed: a user may point at a fine-tuned file on purpose.
    assert ensure_checkpoint(spec, explicit, settings=settings, progress=None) == explicit
    assert ensure_checkpoint(spec, settings=settings, progress=None) == from_env
    with pytest.raises(ModelError, match="does not exist"):
        ensure_checkpoint(spec, tmp_path / "nope.pth", settings=settings, progress=None)
    monkeypatch.setenv(ENV_IMAGEBIND_CHECKPOINT, str(tmp_path / "missing.pth"))
    with pytest.raises(ModelError, match=ENV_IMAGEBIND_CHECKPOINT):
        ensure_checkpoint(spec, settings=Settings.from_env(), progress=None)
    assert state.requests == []

    monkeypatch.delenv(ENV_IMAGEBIND_CHECKPOINT)
    cached = ensure_checkpoint(spec, settings=Settings.from_env(), progress=None)
    assert cached == tmp_path / "cache" / "models" / "imagebind_huge.pth"
    assert len(state.requests) == 1


def test_hand_placed_file_is_verified_once(tmp_path):
    settings = _settings(tmp_path)
    target = cache_path(IMAGEBIND_HUGE, settings)
    target.parent.mkdir(parents=True)
    target.write_bytes(PAYLOAD)
    spec = _spec("http://127.0.0.1:9/unused")  # never contacted: the file is there
    assert _fetch(spec, settings) == target
    assert target.with_name(target.name + ".sha256").read_text().split()[0] == DIGEST

    target.write_bytes(PAYLOAD[:-1] + b"x")  # changed after verification: checked again
    with pytest.raises(ModelError, match="damaged"):
        _fetch(spec, settings)
    assert target.exists()  # the user's file is theirs to delete


def test_unpinned_hash_is_recorded_on_first_download(server, tmp_path):
    state, url = server
    settings = _settings(tmp_path)
    path = _fetch(_spec(url, sha256=None, size=None), settings)
    assert path.with_name(path.name + ".sha256").read_text().split()[0] == DIGEST
    path.write_bytes(b"tampered")
    with pytest.raises(ModelError, match=DIGEST):
        _fetch(_spec(url, sha256=None, size=None), settings)
    assert len(state.requests) == 1


def test_concurrent_callers_download_once(server, tmp_path):
    state, url = server
    settings = _settings(tmp_path)
    results: list[Path | BaseException] = []

    def worker() -> None:
        try:
            results.append(_fetch(_spec(url), settings))
        except BaseException as error:
            results.append(error)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [cache_path(IMAGEBIND_HUGE, settings)] * 3
    assert len(state.requests) == 1


def test_default_progress_bar_goes_to_stderr(server, tmp_path, capsys):
    _, url = server
    ensure_checkpoint(_spec(url), settings=_settings(tmp_path))  # progress="rich"
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "ImageBind huge" in captured.err and "CC BY-NC-SA" in captured.err
