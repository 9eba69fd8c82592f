"""The daemon's limits, each through a real gRPC server on a Unix socket (in this process,
with small limits so that each is reached at once): the lanes' bounds (RESOURCE_EXHAUSTED
past them while the event loop's calls answer), the first message's timeout, calls at once
on one connection, and ``Client.wait_ready`` when no Watch is to be had. And failures
deep inside a call, mapped to status codes by their class."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sfxmatch.client import Client
from sfxmatch.config import Settings
from sfxmatch.errors import (
    AccessDeniedError,
    BusyError,
    ConfigError,
    NotFoundError,
    PreconditionError,
    SfxmatchError,
)
from sfxmatch.pipeline import Pipeline
from sfxmatch.service import paths
from sfxmatch.service.auth import bearer
from sfxmatch.service.server import Daemon, DaemonConfig
from test_service_support import short_dir, status_of, wait_for

FAST = 1.0  # seconds


class BlockingPipeline(Pipeline):
    """``library_status`` (the cheap lane) and ``library_remove`` (the library lane) wait
    for ``gate``; ``entered`` counts the calls that got a thread."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.gate = threading.Event()
        self.entered = threading.Semaphore(0)

    def _block(self) -> None:
        self.entered.release()
        assert self.gate.wait(60)

    def library_status(self, name: str | None = None) -> list[Any]:
        self._block()
        return []

    def library_remove(self, name: str) -> int:
        self._block()
        return 0


@pytest.fixture
def small() -> Iterator[tuple[Daemon, BlockingPipeline, Path]]:
    """A daemon whose lanes have one thread and room for one call more (two in all)."""
    root = short_dir("sfxl-")
    settings = Settings(cache_dir=root / "cache", data_dir=root / "data")
    pipeline = BlockingPipeline(settings, model="imagebind-tiny")
    (root / "lib").mkdir()
    pipeline.library_add(root / "lib", "lib")
    config = DaemonConfig(
        data_dir=root / "data",
        socket=root / "l.sock",
        cheap_threads=1,
        max_cheap_calls=2,
        work_threads=1,
        max_work_calls=2,
        max_watches=0,  # no Watch with the token: wait_ready must poll the check
        first_message_timeout=0.5,
        max_streams_per_connection=4,
        refusal_delay=0.0,
        grace=0.0,
    )
    daemon = Daemon(config, pipeline=pipeline).start()
    yield daemon, pipeline, root
    pipeline.gate.set()
    daemon.stop(grace=0)
    shutil.rmtree(root, ignore_errors=True)


def _client(daemon: Daemon) -> Client:
    return Client(daemon.addresses[0], paths.read_token(daemon.token_file), timeout=30)


@pytest.mark.parametrize("lane", ["cheap", "library"])
def test_a_full_lane_is_resource_exhausted_while_the_loop_answers(small, lane: str) -> None:
    daemon, pipeline, _root = small
    with _client(daemon) as c:
        call = c.library_status if lane == "cheap" else (lambda: c.library_remove("lib"))
        results: list[Any] = []
        threads = [threading.Thread(target=lambda: results.append(call())) for _ in range(2)]
        for thread in threads:
            thread.start()
        assert pipeline.entered.acquire(timeout=30)  # the first runs, the second waits
        wait_for(lambda: daemon._transport.limits[  # type: ignore[union-attr]
            "cheap" if lane == "cheap" else "work"
        ].active == 2, 30, "two calls in the lane")  # fmt: skip
        began = time.monotonic()
        with pytest.raises(SfxmatchError) as full:
            call()
        assert status_of(full.value) == "RESOURCE_EXHAUSTED" and "at most 2" in str(full.value)
        assert c.version(timeout=FAST).pid > 0 and c.list_jobs() == []
        assert c.health(timeout=FAST)
        assert time.monotonic() - began < FAST
        pipeline.gate.set()
        for thread in threads:
            thread.join(30)
        assert results == ([[], []] if lane == "cheap" else [0, 0])
        assert call() in ([], 0)  # room again


def test_the_first_message_must_come_in_time(small) -> None:
    daemon, _pipeline, _root = small
    token = paths.read_token(daemon.token_file)
    release = threading.Event()

    def never() -> Iterator[bytes]:
        release.wait()
        return
        yield b""  # pragma: no cover - makes this a generator

    with grpc.insecure_channel(daemon.addresses[0]) as channel:
        try:
            for method, metadata in (
                ("/sfxmatch.v1.Sfxmatch/Version", bearer(token)),
                ("/grpc.health.v1.Health/Check", None),
            ):
                began = time.monotonic()
                call = channel.stream_unary(method).future(never(), metadata=metadata)
                error = call.exception(timeout=30)
                assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED, method
                assert "no request message within 0.5 s" in error.details()
                assert 0.4 < time.monotonic() - began < 0.5 + FAST
        finally:
            release.set()


def test_calls_at_once_on_one_connection_are_bounded(small) -> None:
    daemon, pipeline, _root = small
    token = paths.read_token(daemon.token_file)
    options = (("grpc.use_local_subchannel_pool", 1),)  # a connection of its own
    with _client(daemon) as c, grpc.insecure_channel(daemon.addresses[0], options) as other:
        # Four calls hold c's connection: two in each lane, waiting for the gate.
        calls = [c.library_status, c.library_status] + [lambda: c.library_remove("lib")] * 2
        threads = [threading.Thread(target=call) for call in calls]
        for thread in threads:
            thread.start()
        try:
            limits = daemon._transport.limits  # type: ignore[union-attr]
            wait_for(lambda: limits["cheap"].active == limits["work"].active == 2, 30, "lanes")
            # A fifth call on that connection waits for a stream...
            with pytest.raises(SfxmatchError) as waited:
                c.version(timeout=0.3)
            assert status_of(waited.value) == "DEADLINE_EXCEEDED"
            # ... while another connection is answered at once.
            began = time.monotonic()
            version = other.unary_unary("/sfxmatch.v1.Sfxmatch/Version")
            assert version(b"", metadata=bearer(token), timeout=FAST) is not None
            assert time.monotonic() - began < FAST
        finally:
            pipeline.gate.set()
            for thread in threads:
                thread.join(30)
        assert c.version(timeout=FAST).pid > 0


def test_wait_ready_polls_the_check_when_no_watch_is_to_be_had(small) -> None:
    daemon, _pipeline, _root = small
    token = paths.read_token(daemon.token_file)
    with grpc.insecure_channel(daemon.addresses[0]) as channel:
        watch = health_pb2_grpc.HealthStub(channel).Watch(
            health_pb2.HealthCheckRequest(), metadata=bearer(token), timeout=10
        )
        with pytest.raises(grpc.RpcError) as refused:
            next(watch)
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    with _client(daemon) as c:
        began = time.monotonic()
        assert c.wait_ready(timeout=10)
        assert time.monotonic() - began < FAST
    daemon.stop(grace=0)
    with _client(daemon) as c:
        began = time.monotonic()
        assert not c.wait_ready(timeout=0.5)  # nobody there: False at its deadline
        assert time.monotonic() - began < 0.5 + FAST


class FailingPipeline(Pipeline):
    """``library_status`` raises ``error``."""

    error: BaseException = RuntimeError()

    def library_status(self, name: str | None = None) -> list[Any]:
        raise self.error


SECRET = "/var/lib/sfxmatch/store/x/_versions/1.manifest at /root/.cargo/src/io.rs:224"


@pytest.mark.parametrize(
    ("error", "code", "said"),
    [
        (NotFoundError("no library named 'x' (known: a)"), "NOT_FOUND", "no library named 'x'"),
        (AccessDeniedError("/sounds: permission denied"), "PERMISSION_DENIED", "/sounds"),
        (PreconditionError("no library to index: add one"), "FAILED_PRECONDITION", "add one"),
        (BusyError("indexed by pid 7 now"), "ABORTED", "pid 7"),
        # The words of a message no longer decide its code: only its class.
        (ConfigError("the glob was not found, permission denied"), "INVALID_ARGUMENT", "glob"),
        # Bare errors from deep inside say their class only (their text is for the log).
        (ValueError(SECRET), "INTERNAL", "(ValueError)"),
        (KeyError(SECRET), "INTERNAL", "(KeyError)"),
        (TypeError(SECRET), "INTERNAL", "(TypeError)"),
        (FileNotFoundError(2, "No such file or directory", SECRET), "NOT_FOUND", "its log"),
        (PermissionError(13, "Permission denied", SECRET), "PERMISSION_DENIED", "its log"),
    ],
)
def test_failures_are_mapped_by_class_and_never_leak_internal_text(
    error: BaseException, code: str, said: str
) -> None:
    root = short_dir("sfxe-")
    settings = Settings(cache_dir=root / "cache", data_dir=root / "data")
    pipeline = FailingPipeline(settings, model="imagebind-tiny")
    pipeline.error = error
    config = DaemonConfig(data_dir=root / "data", socket=root / "e.sock", grace=0.0)
    daemon = Daemon(config, pipeline=pipeline).start()
    try:
        with _client(daemon) as c:
            with pytest.raises(SfxmatchError) as failed:
                c.library_status()
            assert status_of(failed.value) == code and said in str(failed.value)
            if code in ("INTERNAL", "NOT_FOUND", "PERMISSION_DENIED") and not isinstance(
                error, NotFoundError | AccessDeniedError
            ):
                assert "/var/lib" not in str(failed.value) and ".rs" not in str(failed.value)
            assert c.health()
    finally:
        daemon.stop(grace=0)
        shutil.rmtree(root, ignore_errors=True)


def test_an_idle_connection_is_closed() -> None:
    root = short_dir("sfxi-")
    settings = Settings(cache_dir=root / "cache", data_dir=root / "data")
    config = DaemonConfig(
        data_dir=root / "data", socket=root / "i.sock", idle_connection_timeout=0.5, grace=0.0
    )
    daemon = Daemon(config, pipeline=Pipeline(settings, model="imagebind-tiny")).start()
    token = paths.read_token(daemon.token_file)
    states: list[grpc.ChannelConnectivity] = []
    options = (("grpc.use_local_subchannel_pool", 1),)
    try:
        with grpc.insecure_channel(daemon.addresses[0], options) as channel:
            channel.subscribe(states.append, try_to_connect=False)
            channel.unary_unary("/sfxmatch.v1.Sfxmatch/Version")(
                b"", metadata=bearer(token), timeout=10
            )
            wait_for(lambda: grpc.ChannelConnectivity.READY in states, 10, "a ready channel")
            began = time.monotonic()
            # The daemon closes the quiet connection (GOAWAY): the channel goes idle.
            wait_for(lambda: states[-1] == grpc.ChannelConnectivity.IDLE, 10, "an idle channel")
            assert time.monotonic() - began < 0.5 + 2 * FAST
            channel.unary_unary("/sfxmatch.v1.Sfxmatch/Version")(  # and reconnects at will
                b"", metadata=bearer(token), timeout=10
            )
    finally:
        daemon.stop(grace=0)
        shutil.rmtree(root, ignore_errors=True)
