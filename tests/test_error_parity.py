"""The same failure fails alike in this process (the ``Pipeline`` facade) and through a
daemon (a real gRPC server on loopback with the tiny model, reached by ``sfxmatch.client``):
the same exception class with the same message; and the CLI exits with the same code and
says the same line with a daemon (``--daemon``) and without (``--local``)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sfxmatch import _cli as cli
from sfxmatch.client import Client
from sfxmatch.config import Settings
from sfxmatch.errors import (
    Cancelled,
    InternalError,
    MissingFileError,
    ModelError,
    NotIndexedError,
    SfxmatchError,
    UnknownLibraryError,
)
from sfxmatch.pipeline import Pipeline
from sfxmatch.service import paths
from sfxmatch.service.server import Daemon, DaemonConfig
from sfxmatch.suggestions import SuggestOptions
from sfxmatch.testing import synth
from test_service_support import make_library, short_dir


class Side:
    """One way of calling: the facade here, or a client of a daemon over loopback TCP."""

    def __init__(self, name: str, target: Any) -> None:
        self.name = name
        self.target = target

    def fail(self, call: Callable[[Any], Any]) -> SfxmatchError:
        with pytest.raises(SfxmatchError) as failed:
            call(self.target)
        return failed.value


def _daemon(pipeline: Pipeline, data: Path) -> Daemon:
    config = DaemonConfig(
        data_dir=data, socket=data.parent / f"{data.name}.sock", tcp="127.0.0.1:0", grace=0.0
    )
    return Daemon(config, pipeline=pipeline).start()


def _client(daemon: Daemon, data: Path) -> Client:
    address = next(a for a in daemon.addresses if a.startswith("127.0.0.1:"))
    client = Client(address, paths.read_token(paths.token_path(data)), timeout=120)
    assert client.wait_ready(30)  # polled, no sleeps
    return client


@pytest.fixture(scope="module")
def world() -> Iterator[dict[str, Any]]:
    """Two data folders with the same libraries ("fx" indexed, "raw" not): one for the
    facade, one served by a daemon; a video; a daemon whose model has no weights."""
    root = short_dir("sfxp-")
    sounds = make_library(root / "sounds", effects=2, beds=1)
    raw = make_library(root / "raw", effects=1, beds=0)
    video = root / "clip.mp4"
    synth.make_cut_video(video, shot_lengths=(20, 20))
    cache = root / "cache"
    sides, daemons, clients = {}, [], []
    for name in ("local", "daemon"):
        data = root / name
        pipeline = Pipeline(Settings(cache_dir=cache, data_dir=data), model="imagebind-tiny")
        pipeline.library_add(sounds, "fx")
        pipeline.library_add(raw, "raw")
        pipeline.library_index(["fx"])
        if name == "local":
            sides[name] = Side(name, pipeline)
            continue
        daemons.append(_daemon(pipeline, data))
        clients.append(_client(daemons[-1], data))
        sides[name] = Side(name, clients[-1])
    # No weights: ImageBind huge is not in this cache, and nothing may be downloaded.
    unweighted = {}
    for name in ("local", "daemon"):
        data = root / f"{name}-unweighted"
        settings = Settings(cache_dir=root / "empty-cache", data_dir=data, offline=True)
        pipeline = Pipeline(settings, model="imagebind-huge")
        pipeline.library_add(sounds, "fx")  # so a suggest gets as far as the model
        if name == "local":
            unweighted[name] = Side(name, pipeline)
            continue
        daemons.append(_daemon(pipeline, data))
        clients.append(_client(daemons[-1], data))
        unweighted[name] = Side(name, clients[-1])
    yield {"sides": sides, "unweighted": unweighted, "video": video, "root": root}
    for client in clients:
        client.close()
    for daemon in daemons:
        daemon.stop(grace=0)


def _cancelled_suggest(target: Any, video: Path) -> Any:
    cancel = threading.Event()
    cancel.set()
    return target.suggest(video, SuggestOptions(libraries=("fx",)), cancel=cancel)


CASES: dict[str, tuple[type[SfxmatchError], Callable[[Any, Path], Any]]] = {
    "unknown library": (UnknownLibraryError, lambda t, v: t.library_index(["nope"])),
    "unknown library of a suggest": (
        UnknownLibraryError,
        lambda t, v: t.suggest(v, SuggestOptions(libraries=("nope",))),
    ),
    "missing file": (MissingFileError, lambda t, v: t.suggest(v.parent / "missing.mp4")),
    "not indexed": (NotIndexedError, lambda t, v: t.suggest(v, SuggestOptions(libraries=("raw",)))),
    "cancelled": (Cancelled, _cancelled_suggest),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_failure_is_the_same_class_and_message_here_and_through_a_daemon(
    world: dict[str, Any], case: str
) -> None:
    expected, call = CASES[case]
    video = world["video"]
    here, there = (world["sides"][n].fail(lambda t: call(t, video)) for n in ("local", "daemon"))
    assert type(here) is expected, (type(here), str(here))
    assert type(there) is type(here) and str(there) == str(here)


def test_missing_weights_are_the_same_class_and_message_here_and_through_a_daemon(
    world: dict[str, Any],
) -> None:
    here, there = (world["unweighted"][n].fail(lambda t: t.library_search("rain")) for n in
                   ("local", "daemon"))  # fmt: skip
    assert type(here) is ModelError, (type(here), str(here))
    assert type(there) is ModelError and str(there) == str(here)
    assert "SFXMATCH_IMAGEBIND_CHECKPOINT" in str(here)


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    capsys.readouterr()
    code = cli.main(argv)
    lines = capsys.readouterr().err.strip().splitlines()
    return code, lines[-1] if lines else ""


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["library", "index", "nope"], "no library named 'nope' (known: fx, raw)"),
        (["suggest", "{missing}"], "missing.mp4: no such file"),
        (["suggest", "{video}", "--library", "raw"], "library raw has no indexed sounds"),
    ],
)
def test_the_cli_exits_alike_with_a_daemon_and_without(
    world: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    said: str,
) -> None:
    root = world["root"]
    monkeypatch.setenv("SFXMATCH_DATA_DIR", str(root / "daemon"))  # the daemon's own data
    monkeypatch.setenv("SFXMATCH_CACHE_DIR", str(root / "cache"))
    monkeypatch.setenv("SFXMATCH_MODEL", "imagebind-tiny")
    monkeypatch.delenv("SFXMATCH_DAEMON_ADDRESS", raising=False)
    monkeypatch.delenv("SFXMATCH_DAEMON_TOKEN_FILE", raising=False)
    argv = [a.format(missing=root / "missing.mp4", video=world["video"]) for a in args]
    local = _cli([*argv, "--local"], capsys)
    remote = _cli([*argv, "--daemon"], capsys)
    assert local[0] == cli.EXIT_USER_ERROR and said in local[1], local
    assert remote == local


def test_the_cli_missing_weights_exit_alike_with_a_daemon_and_without(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = world["root"]
    monkeypatch.setenv("SFXMATCH_DATA_DIR", str(root / "daemon-unweighted"))
    monkeypatch.setenv("SFXMATCH_CACHE_DIR", str(root / "empty-cache"))
    monkeypatch.setenv("SFXMATCH_MODEL", "imagebind-huge")
    monkeypatch.setenv("SFXMATCH_OFFLINE", "1")
    argv = ["suggest", str(world["video"])]
    local = _cli([*argv, "--local"], capsys)
    remote = _cli([*argv, "--daemon"], capsys)
    assert local[0] == cli.EXIT_USER_ERROR and "SFXMATCH_IMAGEBIND_CHECKPOINT" in local[1], local
    assert remote == local


def test_exit_codes_come_from_one_table_by_class() -> None:
    assert cli.exit_code(Cancelled("suggest was cancelled")) == cli.EXIT_INTERRUPTED
    assert cli.exit_code(KeyboardInterrupt()) == cli.EXIT_INTERRUPTED
    assert cli.exit_code(NotIndexedError("x")) == cli.EXIT_USER_ERROR
    assert cli.exit_code(MissingFileError("/x")) == cli.EXIT_USER_ERROR
    assert cli.exit_code(InternalError("x")) == cli.EXIT_INTERNAL
