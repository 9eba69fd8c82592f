"""Shared fixtures for the daemon tests (no tests here): a tiny-model pipeline, a small sound
library, in-process daemons on a Unix socket and loopback TCP, and a "gated" daemon whose
index jobs wait until released or cancelled (for queue, cancel and disconnect tests)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sfxmatch.client import Client, DaemonError
from sfxmatch.config import Settings
from sfxmatch.pipeline import Pipeline
from sfxmatch.service import paths
from sfxmatch.service.server import Daemon, DaemonConfig
from sfxmatch.testing import synth

__all__ = [
    "GatedPipeline",
    "client",
    "connect_spawned",
    "daemon",
    "daemon_logs",
    "gated",
    "gated_client",
    "make_library",
    "service_root",
    "short_dir",
    "sound_library",
    "spawn_daemon",
    "status_of",
    "stop_spawned",
    "tiny_pipeline",
    "token",
    "wait_for",
]

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable


def make_library(folder: Path, effects: int = 6, beds: int = 4) -> Path:
    """Short synthetic sounds with UCS names: effects (1 s) and ambience beds (4 s)."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(effects):
        synth.make_tone_file(
            folder / f"DOORWood_door slam {i:03d}.wav",
            freq=180.0 + 37 * i,
            duration=1.0,
            sample_rate=16000,
            channels=1,
            amplitude=0.5,
            sample_format="s16",
        )
    for i in range(beds):
        synth.make_tone_file(
            folder / f"AMBForst_forest birds {i:03d}.wav",
            freq=90.0 + 11 * i,
            duration=4.0,
            sample_rate=16000,
            channels=1,
            amplitude=0.2,
            sample_format="s16",
        )
    return folder


def status_of(error: BaseException) -> str:
    """The gRPC status name a client's error stands for: a ``DaemonError``'s own, else what
    its class maps to (the daemon's class came back as itself)."""
    if isinstance(error, DaemonError):
        return error.code
    from sfxmatch.service.translate import status_for

    return status_for(error)[0].name


def short_dir(prefix: str) -> Path:
    """A short temporary folder: Unix socket paths must stay under ~100 bytes."""
    import tempfile

    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))


def wait_for(predicate: Callable[[], Any], timeout: float = 60.0, what: str = "") -> Any:
    """Poll ``predicate`` until it returns something truthy (no fixed sleeps)."""
    deadline = time.monotonic() + timeout
    event = threading.Event()
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        event.wait(0.02)


class GatedPipeline(Pipeline):
    """``library_index`` waits for ``gate`` (or its cancel event) instead of indexing."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.gate = threading.Event()
        self.entered = threading.Semaphore(0)
        self.cancelled_runs = 0

    def library_index(self, names=None, *, progress=None, cancel=None, on_file=None):  # type: ignore[override]
        from sfxmatch.pipeline import Progress

        self.entered.release()
        if progress is not None:
            progress(Progress("index gated", 0.0, "waiting for the gate"))
        while not self.gate.wait(0.02):
            if cancel is not None and cancel.is_set():
                self.cancelled_runs += 1
                return []
        return []


@pytest.fixture(scope="session")
def service_root() -> Iterator[Path]:
    root = short_dir("sfxd-")
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def tiny_pipeline(service_root: Path) -> Iterator[Pipeline]:
    settings = Settings(cache_dir=service_root / "cache", data_dir=service_root / "data")
    pipeline = Pipeline(settings, model="imagebind-tiny", excluded=(service_root / "excluded",))
    pipeline.load_model()
    yield pipeline
    pipeline.close()


@pytest.fixture(scope="session")
def sound_library(service_root: Path) -> Path:
    return make_library(service_root / "sounds")


@pytest.fixture(scope="session")
def daemon(service_root: Path, tiny_pipeline: Pipeline) -> Iterator[Daemon]:
    """One daemon on a Unix socket AND loopback TCP (port chosen by the OS)."""
    (service_root / "excluded").mkdir(exist_ok=True)
    config = DaemonConfig(
        data_dir=service_root / "data",
        socket=service_root / "d.sock",
        tcp="127.0.0.1:0",
        max_concurrent=1,
        max_queued=4,
        excluded=(service_root / "excluded",),
        grace=5.0,
        refusal_delay=0.01,  # the tarpit for calls without the token; its default is 0.5 s
    )
    running = Daemon(config, pipeline=tiny_pipeline).start()
    yield running
    running.stop(grace=0)


@pytest.fixture(scope="session")
def token(daemon: Daemon) -> str:
    return paths.read_token(daemon.token_file)


@pytest.fixture(params=["unix", "tcp"])
def client(request: pytest.FixtureRequest, daemon: Daemon, token: str) -> Iterator[Client]:
    """A client over each transport in turn."""
    address = next(
        a for a in daemon.addresses if a.startswith("unix:") == (request.param == "unix")
    )
    with Client(address, token, timeout=120) as c:
        assert c.health()
        yield c


@pytest.fixture
def gated(tmp_path_factory: pytest.TempPathFactory, tiny_pipeline: Pipeline) -> Iterator[Daemon]:
    """A daemon with 1 worker and 1 waiting slot whose index jobs block on ``gate``."""
    root = short_dir("sfxg-")
    settings = Settings(cache_dir=root / "cache", data_dir=root / "data")
    pipeline = GatedPipeline(settings, encoder=tiny_pipeline.encoder)
    config = DaemonConfig(
        data_dir=root / "data", socket=root / "g.sock", max_concurrent=1, max_queued=1, grace=0.0
    )
    running = Daemon(config, pipeline=pipeline).start()
    yield running
    pipeline.gate.set()
    running.stop(grace=0)
    shutil.rmtree(root, ignore_errors=True)


def gated_client(daemon: Daemon) -> Client:
    return Client(daemon.addresses[0], paths.read_token(daemon.token_file), timeout=30)


def spawn_daemon(
    data_dir: Path,
    socket: Path,
    *extra: str,
    env: dict[str, str] | None = None,
    wrapper: tuple[str, ...] = (),
) -> subprocess.Popen[str]:
    """``python -m sfxmatch daemon run`` in a child process with the tiny model; its JSON
    log goes to ``<data_dir>/../daemon-<pid>.log``. ``env`` adds variables; ``wrapper`` is a
    command the daemon's command line is handed to (it must exec it)."""
    environment = dict(os.environ)
    environment.update(
        SFXMATCH_DATA_DIR=str(data_dir),
        SFXMATCH_CACHE_DIR=str(data_dir.parent / "cache"),
        SFXMATCH_MODEL="imagebind-tiny",
        PYTHONUNBUFFERED="1",
    )
    environment.update(env or {})
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    log = (data_dir.parent / f"daemon-{time.monotonic_ns()}.log").open("w")
    with log:
        return subprocess.Popen(
            [*wrapper, PYTHON, "-m", "sfxmatch", "daemon", "run", "--socket", str(socket), *extra],
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=REPO,
        )


def daemon_logs(folder: Path) -> str:
    """Everything the daemons spawned under ``folder`` logged (for failure messages)."""
    return "\n".join(p.read_text(errors="replace") for p in sorted(folder.glob("daemon-*.log")))


def connect_spawned(
    process: subprocess.Popen[str],
    data_dir: Path,
    socket: Path,
    *,
    token_file: Path | None = None,
    timeout: float = 120.0,
) -> Client:
    """A client of a spawned daemon once it answers its health check (polled, no sleeps)."""
    token_file = token_file or paths.token_path(data_dir)
    wait_for(lambda: token_file.exists() or process.poll() is not None, timeout, "token")
    assert process.poll() is None, f"the daemon exited at start:\n{daemon_logs(data_dir.parent)}"
    client = Client(f"unix://{socket}", paths.read_token(token_file), timeout=timeout)
    wait_for(lambda: client.health(timeout=2) or process.poll() is not None, timeout, "health")
    assert process.poll() is None, f"the daemon exited:\n{daemon_logs(data_dir.parent)}"
    return client


def stop_spawned(process: subprocess.Popen[str], timeout: float = 60.0) -> int:
    """SIGTERM, wait; SIGKILL if it did not stop. Returns its exit code."""
    if process.poll() is None:
        process.terminate()
        try:
            return process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
    return process.wait(timeout=timeout)
