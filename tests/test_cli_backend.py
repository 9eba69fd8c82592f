"""Every library command runs on a running daemon by default, and then builds no pipeline
and loads no model in the CLI's process; what it prints equals a ``--local`` run's. The
daemon is a real gRPC server on loopback with the tiny model."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sfxmatch.embed.encoder
from sfxmatch import _cli as cli
from sfxmatch.client import Client
from sfxmatch.config import Settings
from sfxmatch.pipeline import Pipeline
from sfxmatch.service import paths
from sfxmatch.service.server import Daemon, DaemonConfig
from test_service_support import make_library, short_dir


@pytest.fixture(scope="module")
def served() -> Iterator[dict[str, Any]]:
    """A data folder with library "fx" indexed for the tiny model, served by a daemon."""
    root = short_dir("sfxb-")
    sounds = make_library(root / "sounds", effects=2, beds=1)
    data, cache = root / "data", root / "cache"
    pipeline = Pipeline(Settings(cache_dir=cache, data_dir=data), model="imagebind-tiny")
    pipeline.library_add(sounds, "fx")
    pipeline.library_index(["fx"])
    config = DaemonConfig(data_dir=data, socket=root / "d.sock", tcp="127.0.0.1:0", grace=0.0)
    daemon = Daemon(config, pipeline=pipeline).start()
    address = next(a for a in daemon.addresses if a.startswith("127.0.0.1:"))
    client = Client(address, paths.read_token(paths.token_path(data)), timeout=60)
    assert client.wait_ready(30)  # polled, no sleeps
    yield {"root": root, "sounds": sounds, "data": data, "cache": cache, "client": client}
    client.close()
    daemon.stop(grace=0)


@pytest.fixture
def env(served: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setenv("SFXMATCH_DATA_DIR", str(served["data"]))  # the daemon's own data
    monkeypatch.setenv("SFXMATCH_CACHE_DIR", str(served["cache"]))
    monkeypatch.setenv("SFXMATCH_MODEL", "imagebind-tiny")
    monkeypatch.delenv("SFXMATCH_DAEMON_ADDRESS", raising=False)
    monkeypatch.delenv("SFXMATCH_DAEMON_TOKEN_FILE", raising=False)
    return served


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> Any:
    capsys.readouterr()
    code = cli.main(argv)
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out) if "--json" in argv else out


def _forbid(monkeypatch: pytest.MonkeyPatch, *, pipelines: bool) -> list[str]:
    """Record (and refuse) every model load, and every pipeline built, in this process."""
    calls: list[str] = []

    def no_model(*args: Any, **kwargs: Any) -> Any:
        calls.append("load_encoder")
        raise AssertionError("the CLI loaded a model while a daemon runs")

    monkeypatch.setattr(sfxmatch.embed.encoder, "load_encoder", no_model)
    if pipelines:
        built = Pipeline.__init__

        def no_pipeline(self: Pipeline, *args: Any, **kwargs: Any) -> None:
            calls.append("Pipeline")
            built(self, *args, **kwargs)

        monkeypatch.setattr(Pipeline, "__init__", no_pipeline)
    return calls


def _sound(env: dict[str, Any]) -> Path:
    return next(Path(env["sounds"]).glob("DOOR*.wav"))


def test_search_with_a_daemon_loads_no_model_here_and_finds_what_a_local_run_finds(
    env: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    search = ["library", "search", "a wooden door slams", "--top-k", "3", "--json"]
    local = _run([*search, "--local"], capsys)
    assert local
    calls = _forbid(monkeypatch, pipelines=True)
    assert _run(search, capsys) == local  # the default: a running daemon
    assert _run([*search, "--daemon"], capsys) == local
    assert calls == []


@pytest.mark.parametrize(
    "argv",
    [
        ["library", "status", "--json"],
        ["library", "status", "fx", "--json"],
        ["library", "sync", "{sound}", "--json"],
        ["library", "index", "fx", "--json"],
    ],
)
def test_library_commands_with_a_daemon_build_no_pipeline_here(
    env: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
) -> None:
    argv = [a.format(sound=_sound(env)) for a in argv]
    local = _run([*argv, "--local"], capsys)
    calls = _forbid(monkeypatch, pipelines=True)
    there = _run(argv, capsys)
    assert calls == []
    if argv[1] == "index":  # nothing changed: the same counts, timings aside
        drop = ("seconds", "decode_seconds", "model_seconds", "sync_seconds")
        local, there = ([{k: v for k, v in r.items() if k not in drop} for r in x]
                        for x in (local, there))  # fmt: skip
    assert there == local


def test_status_of_every_sound_with_a_daemon_loads_no_model_here(
    env: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["library", "status", "fx", "--sounds", "--json"]
    local = _run([*argv, "--local"], capsys)
    calls = _forbid(monkeypatch, pipelines=False)  # the index files are read here
    assert _run(argv, capsys) == local
    assert calls == []


def test_add_set_sync_and_remove_run_on_the_daemon(
    env: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    calls = _forbid(monkeypatch, pipelines=True)
    client: Client = env["client"]
    more = make_library(env["root"] / "more", effects=1, beds=0)
    _run(["library", "add", str(more), "--name", "fx2"], capsys)
    assert "fx2" in {s.library.name for s in client.library_status()}
    sound = _sound(env)
    assert _run(["library", "sync", str(sound), "0.25", "--json"], capsys)["sync_point"] == 0.25
    assert client.sound_sync(sound).sync_point == 0.25
    _run(["library", "sync", str(sound), "--clear"], capsys)
    assert client.sound_sync(sound).source != "override"
    _run(["library", "remove", "fx2"], capsys)
    assert "fx2" not in {s.library.name for s in client.library_status()}
    assert calls == []


def test_a_daemon_serving_another_model_is_refused_not_used_in_silence(
    env: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    calls = _forbid(monkeypatch, pipelines=True)
    capsys.readouterr()
    argv = ["library", "search", "a door", "--daemon", "--model", "pe-av-tiny"]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "serves imagebind-tiny, not pe-av-tiny" in err and "--local" in err
    assert calls == []
    # The daemon's own model named explicitly is fine.
    assert _run(["library", "search", "a door", "--daemon", "--model", "imagebind-tiny"], capsys)
