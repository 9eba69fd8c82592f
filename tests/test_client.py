"""The client library: light imports, discovery, tokens."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sfxmatch.client import Client, TokenRefused, find_daemon
from sfxmatch.errors import ConfigError
from sfxmatch.service import paths
from sfxmatch.service.server import Daemon
from test_service_support import *  # noqa: F403  (fixtures)


def test_client_imports_neither_torch_nor_the_pipeline() -> None:
    code = (
        "import sys, sfxmatch.client, sfxmatch._cli.daemon;"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'lancedb', 'av')"
        " or m in ('sfxmatch.pipeline', 'sfxmatch.service.server'));"
        "print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_find_daemon_finds_the_running_one(daemon: Daemon) -> None:
    client = find_daemon(daemon.settings.data_dir)
    assert client is not None
    with client:
        assert client.target.startswith("unix:")  # the socket is preferred
        assert client.version().pid == os.getpid()


def test_find_daemon_without_a_daemon_is_none(tmp_path: Path) -> None:
    assert find_daemon(tmp_path / "empty") is None


def test_find_daemon_ignores_a_dead_daemon(tmp_path: Path) -> None:
    folder = paths.ensure_private_dir(paths.daemon_dir(tmp_path))
    paths.ensure_token(folder / "token")
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    info = paths.DaemonInfo(int(dead.stdout), "0", ("unix:///nope.sock",), 0.0, "")
    paths.write_info(folder / "daemon.json", info)
    assert json.loads((folder / "daemon.json").read_text())["pid"] == int(dead.stdout)
    assert find_daemon(tmp_path) is None


def test_find_daemon_with_a_wrong_token_says_so(daemon: Daemon, tmp_path: Path, monkeypatch):
    wrong = tmp_path / "token"
    wrong.write_text("f" * 64)
    wrong.chmod(0o600)
    monkeypatch.setenv(paths.ENV_DAEMON_TOKEN_FILE, str(wrong))
    said = f"answers at unix://.* but refuses the token in {wrong}"
    with pytest.raises(TokenRefused, match=said):
        find_daemon(daemon.settings.data_dir)


def test_a_token_file_others_can_read_is_refused(tmp_path: Path) -> None:
    token = tmp_path / "d" / "token"
    value = paths.ensure_token(token)
    assert len(value) == 64 and paths.read_token(token) == value
    assert paths.ensure_token(token) == value  # kept across restarts
    token.chmod(0o644)
    with pytest.raises(ConfigError, match="only you can read"):
        paths.read_token(token)


def test_a_token_is_never_seen_half_written(tmp_path: Path, monkeypatch) -> None:
    # A client polls for the file while the daemon starts: it must appear whole or not at all.
    token = tmp_path / "d" / "token"
    seen_while_writing: list[bool] = []
    real_hex = paths.secrets.token_hex

    def observed_hex(n: int) -> str:
        seen_while_writing.append(token.exists())
        return real_hex(n)

    monkeypatch.setattr(paths.secrets, "token_hex", observed_hex)
    value = paths.ensure_token(token)
    assert seen_while_writing == [False]
    assert len(value) == 64 and (token.stat().st_mode & 0o777) == 0o600
    assert [f.name for f in token.parent.iterdir()] == ["token"]  # no temporary file left


def test_address_override(daemon: Daemon, monkeypatch) -> None:
    tcp = next(a for a in daemon.addresses if not a.startswith("unix:"))
    monkeypatch.setenv(paths.ENV_DAEMON_ADDRESS, tcp)
    client = find_daemon(daemon.settings.data_dir)
    assert client is not None and client.target == tcp
    client.close()


def test_unreachable_daemon_gives_unavailable(tmp_path: Path) -> None:
    with Client(f"unix://{tmp_path}/none.sock", "t" * 64, timeout=2) as c:
        assert not c.health(timeout=1)
        with pytest.raises(Exception) as failed:
            c.version()
        assert getattr(failed.value, "code", "") in ("UNAVAILABLE", "DEADLINE_EXCEEDED")
