"""The gRPC daemon: one ``Pipeline``, a bounded job queue, token auth, health, JSON logs.

``Daemon(config).start()`` takes the data folder's lock (one daemon per data folder),
clears what a killed daemon left there, binds (a Unix socket by default, loopback TCP when
asked), writes ``daemon.json`` and serves; ``stop(grace)`` (also on SIGTERM/SIGINT through
``serve_forever`` and on the ``Shutdown`` RPC) refuses new jobs, lets running ones finish
for ``grace`` seconds, cancels the rest, and removes its socket and info file.

How calls are served, so that nobody without the token can starve the daemon and the
health check and cheap calls always answer:

- The server is gRPC's asyncio one, on an event loop in its own thread. A call costs no
  thread until its request message has arrived, been decoded and been authorised: every
  method is registered as request-streaming, so the daemon itself reads the one message.
- Authentication looks at the headers only, before the message is read: a call without a
  valid token holds no thread and no job. Its refusal is sent after one to two times
  ``refusal_delay`` (a tarpit: a connection that keeps opening calls without the token
  gets at most ``max_streams_per_connection`` refusals per delay, instead of thousands a
  second that would crowd the event loop; the jitter spreads the refusals of calls opened
  together); past ``max_delayed_refusals`` such calls at once, refusals go out at once.
  The health service needs no token, but calls to it without one share small pools
  (``max_anonymous_reads`` being read, ``max_anonymous_watches`` watching); past them they
  are refused the same way, after the tarpit.
- The first (only) request message must arrive within ``first_message_timeout``; bytes that
  do not decode as the method's request are INVALID_ARGUMENT, and so is a health request
  (no token needed) over ``MAX_HEALTH_REQUEST`` bytes, before it is decoded.
- Lanes: the health service and the in-memory calls (Version, the job table, Shutdown)
  answer on the event loop itself; LibraryStatus (it reads the index) runs on a small pool
  of its own; library calls (add, remove, search) and the preparation of jobs on another;
  jobs (index, suggest, render) on the job manager's workers, their events streamed back
  by the event loop. Each lane is bounded; past its bound a call is refused with
  RESOURCE_EXHAUSTED instead of waiting.
- The event loop never pauses long for Python's cyclic garbage collector: ``daemon run``
  freezes the heap once serving (see ``DaemonConfig.freeze_heap``).
- Per connection at most ``max_streams_per_connection`` calls at once (HTTP/2), idle
  connections are closed, and the server pings quiet connections (keepalive) and refuses
  clients that ping too often.

The servicer translates and checks requests (:mod:`sfxmatch.service.translate`) and calls
the facade; a call that is cancelled, disconnects or passes its deadline cancels its job.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import ipaddress
import json
import logging
import os
import queue
import random
import signal
import sys
import threading
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from concurrent import futures
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import grpc
from google.protobuf.message import DecodeError
from grpc_health.v1 import health_pb2

from sfxmatch import __version__
from sfxmatch._generated.sfxmatch.v1 import sfxmatch_pb2 as pb
from sfxmatch.config import Settings
from sfxmatch.errors import (
    ConfigError,
    NotFoundError,
    PreconditionError,
    ResourceExhaustedError,
    UnknownLibraryError,
    UnsupportedError,
)
from sfxmatch.pipeline import Pipeline
from sfxmatch.progress import Progress
from sfxmatch.service import paths, translate
from sfxmatch.service.auth import REFUSAL, TokenAuth
from sfxmatch.service.jobs import DONE, Job, JobManager, JobState
from sfxmatch.service.jobs import ShuttingDown as JobsClosed
from sfxmatch.service.translate import PathPolicy, check_grace

SERVICE_NAME = "sfxmatch.v1.Sfxmatch"
HEALTH_SERVICE = "grpc.health.v1.Health"
API = "sfxmatch.v1"
MAX_MESSAGE = translate.MAX_MESSAGE
# A health request carries a service name ("" or "sfxmatch.v1.Sfxmatch"); needing no token,
# one that is longer is refused before it is decoded, and a name is echoed at most this long.
MAX_HEALTH_REQUEST = 1024  # bytes
MAX_ECHO = 80  # characters of a client's text put in a message
log = logging.getLogger("sfxmatch.service")

_DEADLINE_SLACK = 0.5  # seconds

Lane = Literal["health", "loop", "cheap", "work", "job"]
# Which lane each method runs in (see the module docstring).
LANES: dict[str, Lane] = {
    "Version": "loop",
    "Shutdown": "loop",
    "GetJob": "loop",
    "ListJobs": "loop",
    "CancelJob": "loop",
    "LibraryStatus": "cheap",
    "LibraryAdd": "work",
    "LibraryRemove": "work",
    "LibrarySearch": "work",
    "LibrarySoundSync": "cheap",
    "LibrarySetSync": "work",
    "LibraryIndex": "job",
    "Suggest": "job",
    "Render": "job",
    "Check": "health",
    "List": "health",
    "Watch": "health",
}


# --- configuration --------------------------------------------------------------------


@dataclass(frozen=True)
class DaemonConfig:
    """How a daemon listens and works. ``socket=None`` and ``tcp=None``: the default socket."""

    data_dir: Path | None = None
    socket: Path | None = None
    tcp: str | None = None  # "127.0.0.1:50051"; port 0 picks a free one
    allow_remote: bool = False  # listen on a non-loopback TCP address (no TLS: discouraged)
    max_concurrent: int = 1  # GPU jobs at once
    max_queued: int = 8  # jobs waiting behind them
    cheap_threads: int = 4  # threads of the cheap lane
    max_cheap_calls: int = 256  # cheap calls running or waiting; more: RESOURCE_EXHAUSTED
    work_threads: int = 2  # threads of the library lane
    max_work_calls: int = 16  # library calls running or waiting; more: RESOURCE_EXHAUSTED
    max_watches: int = 64  # health Watch streams with the token open at once
    # Health calls need no token; without it they share smaller pools, so that programs
    # without the token can neither hold every Watch nor make the daemon buffer many
    # requests at once (a request is buffered whole, up to MAX_MESSAGE, before its length
    # is known): Watch streams open at once, and calls whose request is being read.
    max_anonymous_watches: int = 8
    max_anonymous_reads: int = 4
    first_message_timeout: float = 5.0  # seconds from a call's headers to its message
    refusal_delay: float = 0.5  # seconds before a call without a valid token is refused
    max_delayed_refusals: int = 1024  # refusals waiting at once; more are sent at once
    max_streams_per_connection: int = 256  # calls at once on one connection (HTTP/2)
    idle_connection_timeout: float = 300.0  # a connection without calls this long is closed
    keepalive_interval: float = 60.0  # ping a quiet connection this often
    keepalive_timeout: float = 20.0  # ... and close it when the ping is not answered
    load_model: Literal["eager", "lazy"] = "lazy"
    grace: float = 30.0  # seconds running jobs get at shutdown
    excluded: tuple[Path, ...] = ()  # clients may not name paths inside these
    model: str | None = None
    weights: Literal["checkpoint", "random"] | None = None
    store_backend: str = "lance"
    write_info: bool = True
    # Move what exists once serving starts (and once the model is loaded) out of the cyclic
    # garbage collector's reach (gc.freeze): its full collections otherwise walk the
    # model's and libraries' millions of objects, pausing every call for 20-200 ms. For
    # the daemon's own process (`daemon run`), not for a daemon inside another program.
    freeze_heap: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def grpc_options(self) -> tuple[tuple[str, int], ...]:
        """gRPC core settings: message sizes, per-connection streams, keepalive."""
        return (
            ("grpc.max_receive_message_length", MAX_MESSAGE),
            ("grpc.max_send_message_length", MAX_MESSAGE),
            ("grpc.so_reuseport", 0),
            ("grpc.max_concurrent_streams", self.max_streams_per_connection),
            ("grpc.max_connection_idle_ms", int(self.idle_connection_timeout * 1000)),
            ("grpc.keepalive_time_ms", int(self.keepalive_interval * 1000)),
            ("grpc.keepalive_timeout_ms", int(self.keepalive_timeout * 1000)),
            # A client may ping at most every 10 s without calls; twice more often and its
            # connection is closed (GOAWAY "too_many_pings").
            ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
            ("grpc.http2.max_ping_strikes", 2),
            ("grpc.server_handshake_timeout_ms", int(self.first_message_timeout * 1000)),
        )


def _check_tcp(address: str, allow_remote: bool) -> str:
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ConfigError(f"{address}: TCP address must be HOST:PORT")
    bare = host.strip("[]")
    if bare == "localhost":
        return f"127.0.0.1:{port}"
    try:
        loopback = ipaddress.ip_address(bare).is_loopback
    except ValueError:
        raise ConfigError(f"{address}: give an IP address, e.g. 127.0.0.1:{port}") from None
    if not loopback and not allow_remote:
        raise ConfigError(
            f"{address}: not a loopback address; the daemon has no TLS, so it listens only on "
            "loopback or a Unix socket (--allow-remote overrides, at your own risk)"
        )
    return address


# --- logging --------------------------------------------------------------------------

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and any ``extra`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                data[key] = value
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str, ensure_ascii=False)


def setup_logging(level: int = logging.INFO, stream: Any = None) -> logging.Handler:
    """Send the daemon's logs to ``stream`` (stderr) as JSON lines."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger("sfxmatch")
    root.addHandler(handler)
    root.setLevel(level)
    return handler


def log_call(
    name: str,
    started: float,
    code: grpc.StatusCode,
    message: str = "",
    exc: BaseException | None = None,
) -> None:
    level = logging.ERROR if code is grpc.StatusCode.INTERNAL else logging.INFO
    log.log(
        level,
        "call",
        extra={
            "method": name,
            "code": code.name,
            "ms": round(1000 * (time.monotonic() - started), 2),
            **({"error": message} if message else {}),
        },
        exc_info=exc if code is grpc.StatusCode.INTERNAL else None,
    )


# --- the servicer: requests in, replies out (runs on the lanes' threads) ---------------


@dataclass(frozen=True)
class JobPlan:
    """A long call: ``prepare`` checks the request and returns (description, work); the
    job's result and other events become messages through ``result`` and ``other``."""

    kind: str
    prepare: Callable[[], tuple[str, Callable[[Job], Any]]]
    event_type: Any
    result: Callable[[Any], Any]
    other: Callable[[Any], Any] | None = None


class Servicer:
    """Each RPC: check and translate, call the facade, translate back. Unary methods take
    the decoded request and return the reply; job methods return a ``JobPlan``."""

    def __init__(self, daemon: Daemon) -> None:
        self.d = daemon

    @property
    def pipeline(self) -> Pipeline:
        return self.d.pipeline

    # -- daemon ------------------------------------------------------------------------

    def Version(self, request: pb.VersionRequest) -> pb.VersionReply:
        running, queued = self.d.jobs.counts()
        return pb.VersionReply(
            version=__version__,
            api=API,
            model=self.pipeline.model,
            model_id=self.d.model_id,
            model_loaded=bool(self.d.model_id),
            model_error=self.d.model_error,
            meaningless=self.pipeline.meaningless,
            pid=os.getpid(),
            started_at=self.d.started_at,
            jobs_running=running,
            jobs_queued=queued,
            max_concurrent_jobs=self.d.jobs.max_concurrent,
            max_queued_jobs=self.d.jobs.max_queued,
            addresses=list(self.d.addresses),
        )

    def Shutdown(self, request: pb.ShutdownRequest) -> pb.ShutdownReply:
        grace = request.grace_seconds  # 0: the daemon's own
        self.d.request_stop(self.d.config.grace if grace == 0 else check_grace(grace))
        return pb.ShutdownReply()

    # -- library -----------------------------------------------------------------------

    def LibraryAdd(self, request: pb.LibraryAddRequest) -> pb.LibraryAddReply:
        root = self.d.policy.existing(request.path, "library folder", folder=True)
        catalogue = (
            self.d.policy.existing(request.catalogue, "catalogue") if request.catalogue else None
        )
        name = translate.check_text(request.name, "library name", required=False) or None
        overrides = [(o.glob, o.kind) for o in request.kind_overrides]  # checked by the facade
        library = self.pipeline.library_add(
            root, name, catalogue=catalogue, kind_overrides=overrides
        )
        return pb.LibraryAddReply(library=translate.library_msg(library))

    def LibraryRemove(self, request: pb.LibraryRemoveRequest) -> pb.LibraryRemoveReply:
        name = translate.check_text(request.name, "library name")
        self._known_libraries([name])
        return pb.LibraryRemoveReply(sounds_removed=self.pipeline.library_remove(name))

    def LibraryStatus(self, request: pb.LibraryStatusRequest) -> pb.LibraryStatusReply:
        name = translate.check_text(request.name, "library name", required=False) or None
        if name:
            self._known_libraries([name])
        statuses = self.pipeline.library_status(name)
        return pb.LibraryStatusReply(libraries=[translate.status_msg(s) for s in statuses])

    def LibrarySearch(self, request: pb.LibrarySearchRequest) -> pb.LibrarySearchReply:
        text = translate.check_text(request.text, "search text")
        kind = translate.check_kind(request.kind)
        top_k = translate.check_top_k(request.top_k)
        libraries = translate.names(request.libraries, "library name")
        self._known_libraries(libraries)
        self.d.ensure_model()
        found = self.pipeline.library_search(
            text,
            kind=kind,
            library=libraries or None,
            top_k=top_k,
        )
        return pb.LibrarySearchReply(candidates=[translate.candidate_msg(c) for c in found])

    def LibrarySoundSync(self, request: pb.LibrarySoundSyncRequest) -> pb.SoundSync:
        path = self.d.policy.existing(request.path, "sound")
        return translate.sound_sync_msg(self.pipeline.sound_sync(path))

    def LibrarySetSync(self, request: pb.LibrarySetSyncRequest) -> pb.SoundSync:
        path = self.d.policy.existing(request.path, "sound")
        seconds = (
            translate.check_sync_seconds(request.seconds) if request.HasField("seconds") else None
        )
        return translate.sound_sync_msg(self.pipeline.library_set_sync(path, seconds))

    def LibraryIndex(self, request: pb.LibraryIndexRequest) -> JobPlan:
        def prepare() -> tuple[str, Callable[[Job], Any]]:
            names = translate.names(request.names, "library name")
            self._known_libraries(names)
            if not names and not self.pipeline.libraries():
                raise PreconditionError("no library to index: add one with LibraryAdd first")

            def work(job: Job) -> Any:
                self.d.ensure_model()
                return self.pipeline.library_index(
                    names or None,
                    progress=lambda p: job.report(p),
                    cancel=job.cancel,
                    on_file=job.emit,
                )

            return ", ".join(names) or "all libraries", work

        def result(reports: Any) -> pb.LibraryIndexEvent:
            return pb.LibraryIndexEvent(
                result=pb.LibraryIndexResult(reports=[translate.report_msg(r) for r in reports])
            )

        def other(event: Any) -> pb.LibraryIndexEvent:
            return pb.LibraryIndexEvent(file=translate.file_progress_msg(event))

        return JobPlan("index", prepare, pb.LibraryIndexEvent, result, other)

    def _known_libraries(self, names: list[str]) -> None:
        if not names:
            return
        known = {lib.name for lib in self.pipeline.libraries()}
        for name in names:
            if name not in known:
                raise UnknownLibraryError(name, sorted(known))

    # -- suggest and render ------------------------------------------------------------

    def Suggest(self, request: pb.SuggestRequest) -> JobPlan:
        def prepare() -> tuple[str, Callable[[Job], Any]]:
            which = request.WhichOneof("source")
            if which == "video_path":
                source: Any = self.d.policy.existing(request.video_path, "video")
                what = source
            elif which == "edit":
                source = translate.edit_from_msg(request.edit, self.d.policy)
                what = f"edit {source.name or ''} ({len(source.clips)} clips)".replace("  ", " ")
            else:
                raise translate.invalid("give a video_path or an edit to suggest sounds for")
            options = translate.options_from_msg(request.options)
            self._known_libraries(list(options.libraries))
            suggest = getattr(self.pipeline, "suggest", None)
            if suggest is None:
                raise UnsupportedError("this daemon's pipeline cannot suggest yet")

            def work(job: Job) -> Any:
                self.d.ensure_model()
                return suggest(
                    source,
                    options,
                    progress=lambda p: job.report(p),
                    cancel=job.cancel,
                )

            return what, work

        def result(suggestions: Any) -> pb.SuggestEvent:
            return pb.SuggestEvent(result=translate.suggest_result_msg(suggestions))

        return JobPlan("suggest", prepare, pb.SuggestEvent, result)

    def Render(self, request: pb.RenderRequest) -> JobPlan:
        def prepare() -> tuple[str, Callable[[Job], Any]]:
            render_request = translate.render_request_from_msg(request, self.d.policy)
            suggestions = translate.suggestions_from_json(request.suggestions_json, self.d.policy)
            translate.check_render_size(suggestions, render_request)
            render = getattr(self.pipeline, "render", None)
            if render is None:
                raise UnsupportedError("this daemon's pipeline cannot render yet")

            def work(job: Job) -> Any:
                return render(
                    suggestions,
                    render_request,
                    progress=lambda p: job.report(p),
                    cancel=job.cancel,
                )

            outputs = [p for p in (render_request.mix, render_request.timeline) if p]
            return ", ".join(outputs) or "render", work

        def result(rendered: Any) -> pb.RenderEvent:
            return pb.RenderEvent(result=translate.render_result_msg(rendered))

        return JobPlan("render", prepare, pb.RenderEvent, result)

    # -- jobs --------------------------------------------------------------------------

    def _job(self, job_id: str) -> Job:
        job = self.d.jobs.get(translate.check_job_id(job_id))
        if job is None:
            raise NotFoundError(f"no job {job_id[:80]!r}")
        return job

    def GetJob(self, request: pb.GetJobRequest) -> pb.Job:
        return translate.job_msg(self._job(request.job_id))

    def ListJobs(self, request: pb.ListJobsRequest) -> pb.ListJobsReply:
        jobs = self.d.jobs.list(active_only=request.active_only)
        return pb.ListJobsReply(jobs=[translate.job_msg(j) for j in jobs])

    def CancelJob(self, request: pb.CancelJobRequest) -> pb.Job:
        job = self._job(request.job_id)
        self.d.jobs.cancel(job.id, "CANCELLED", "cancelled by CancelJob")
        return translate.job_msg(job)


# --- health: answered on the event loop -------------------------------------------------


class HealthState:
    """The standard health service's statuses. ``set`` may be called from any thread;
    ``check`` and ``watch`` run on the event loop (no thread is ever held by a health call)."""

    def __init__(self) -> None:
        self._status: dict[str, int] = {}
        self._lock = threading.Lock()
        self._watchers: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self._shutting_down = False

    def set(self, service: str, status: int) -> None:
        with self._lock:
            if self._shutting_down:
                return
            self._status[service] = status
            watchers = list(self._watchers)
        for loop, changed in watchers:
            with contextlib.suppress(RuntimeError):  # its loop has closed
                loop.call_soon_threadsafe(changed.set)

    def enter_graceful_shutdown(self) -> None:
        for service in list(self._status):
            self.set(service, health_pb2.HealthCheckResponse.NOT_SERVING)
        with self._lock:
            self._shutting_down = True

    def get(self, service: str) -> int | None:
        with self._lock:
            return self._status.get(service)

    def all(self) -> dict[str, int]:
        with self._lock:
            return dict(self._status)

    async def watch(self, service: str) -> AsyncGenerator[int, None]:
        """The status now, then each change (SERVICE_UNKNOWN for an unknown service)."""
        changed = asyncio.Event()
        me = (asyncio.get_running_loop(), changed)
        with self._lock:
            self._watchers.add(me)
        try:
            last = None
            while True:
                changed.clear()
                status = self.get(service)
                if status is None:
                    status = health_pb2.HealthCheckResponse.SERVICE_UNKNOWN
                if status != last:
                    last = status
                    yield status
                await changed.wait()
        finally:
            with self._lock:
                self._watchers.discard(me)


# --- the transport: lanes, authentication, first message, errors -----------------------


class _Busy(ResourceExhaustedError):
    """A lane is full."""


@dataclass
class _LaneLimit:
    """Calls running or waiting in one lane (touched only on the event loop)."""

    name: str
    limit: int
    active: int = 0

    @contextlib.contextmanager
    def enter(self) -> Any:
        if self.active >= self.limit:
            raise _Busy(
                f"the daemon is busy: {self.active} {self.name} calls running or waiting "
                f"(at most {self.limit}); try again shortly"
            )
        self.active += 1
        try:
            yield
        finally:
            self.active -= 1


def _max_bytes(lane: Lane) -> int:
    """How long a request of a method in ``lane`` may be (the health service needs no
    token: its requests are refused undecoded past a kilobyte)."""
    return MAX_HEALTH_REQUEST if lane == "health" else MAX_MESSAGE


def _message_types() -> dict[str, tuple[str, Any, bool]]:
    """Full method name -> (short name, request class, server-streaming), from the protos."""
    out: dict[str, tuple[str, Any, bool]] = {}
    for module, service in ((pb, SERVICE_NAME), (health_pb2, HEALTH_SERVICE)):
        descriptor = module.DESCRIPTOR.services_by_name[service.rpartition(".")[2]]
        for method in descriptor.methods:
            request = getattr(module, method.input_type.name)
            out[f"/{service}/{method.name}"] = (method.name, request, method.server_streaming)
    return out


class _Transport(grpc.GenericRpcHandler):
    """Every method of the daemon, served on the asyncio server (see the module docstring)."""

    def __init__(self, daemon: Daemon, auth: TokenAuth) -> None:
        self.d = daemon
        self.auth = auth
        config = daemon.config
        self.cheap_pool = futures.ThreadPoolExecutor(
            config.cheap_threads, thread_name_prefix="sfxmatch-cheap"
        )
        self.work_pool = futures.ThreadPoolExecutor(
            config.work_threads, thread_name_prefix="sfxmatch-work"
        )
        self.limits = {
            "cheap": _LaneLimit("cheap", config.max_cheap_calls),
            "work": _LaneLimit("library", config.max_work_calls),
            "watch": _LaneLimit("health-watch", config.max_watches),
            "anonymous-watch": _LaneLimit(
                "health-watch (without the token)", config.max_anonymous_watches
            ),
            "anonymous-read": _LaneLimit("health (without the token)", config.max_anonymous_reads),
        }
        self.delayed_refusals = 0  # touched only on the event loop
        self.handlers: dict[str, grpc.RpcMethodHandler] = {}
        for full, (name, request_type, streaming) in _message_types().items():
            if streaming:
                behaviour: Any = self._streaming(full, name, request_type)
                handler = grpc.stream_stream_rpc_method_handler(
                    behaviour, response_serializer=_serialize
                )
            else:
                behaviour = self._unary(full, name, request_type)
                handler = grpc.stream_unary_rpc_method_handler(
                    behaviour, response_serializer=_serialize
                )
            self.handlers[full] = handler

    def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        return self.handlers.get(details.method)

    def close(self) -> None:
        self.cheap_pool.shutdown(wait=False, cancel_futures=True)
        self.work_pool.shutdown(wait=False, cancel_futures=True)

    # -- the steps every call takes ----------------------------------------------------

    async def _admit(
        self, full: str, request_type: Any, context: Any, max_bytes: int = MAX_MESSAGE
    ) -> Any:
        """Authorise from the headers, then read and decode the one request message
        (refused undecoded when it is longer than ``max_bytes``). A health call without the
        token is read only while fewer than ``max_anonymous_reads`` such calls are."""
        metadata = context.invocation_metadata()
        if self.auth.exempt(full) and not self.auth.valid(metadata):
            try:
                with self.limits["anonymous-read"].enter():
                    return await self._read(request_type, context, max_bytes)
            except _Busy as exc:
                await self._refuse(context, grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc))
        if not self.auth.allowed(full, metadata):
            await self._refuse(context, grpc.StatusCode.UNAUTHENTICATED, REFUSAL)
        return await self._read(request_type, context, max_bytes)

    async def _refuse(self, context: Any, code: grpc.StatusCode, message: str) -> None:
        """Refuse a call without the token after the tarpit's delay (see the module
        docstring): one connection cannot churn thousands of refusals a second."""
        config = self.d.config
        if config.refusal_delay > 0 and self.delayed_refusals < config.max_delayed_refusals:
            self.delayed_refusals += 1
            try:  # jittered, so refusals of calls opened together do not come back as one
                await asyncio.sleep(config.refusal_delay * (1.0 + random.random()))
            finally:
                self.delayed_refusals -= 1
        await context.abort(code, message)

    async def _read(self, request_type: Any, context: Any, max_bytes: int) -> Any:
        """The call's one request message, decoded (INVALID_ARGUMENT when it is not one,
        DEADLINE_EXCEEDED when it does not come in time)."""
        timeout = self.d.config.first_message_timeout
        try:
            async with asyncio.timeout(timeout):  # no task of its own, unlike wait_for
                data = await context.read()
        except TimeoutError:
            await context.abort(
                grpc.StatusCode.DEADLINE_EXCEEDED,
                f"no request message within {timeout:g} s of the call's headers",
            )
        if data is grpc.aio.EOF:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the call sent no request")
        if len(data) > max_bytes:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"the request is {len(data)} bytes; a {request_type.DESCRIPTOR.name} is at most "
                f"{max_bytes}",
            )
        try:
            return request_type.FromString(data)
        except (DecodeError, ValueError, RecursionError):
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"the request is not a valid {request_type.DESCRIPTOR.full_name} message",
            )

    async def _in_lane(self, lane: Lane, fn: Callable[[], Any]) -> Any:
        loop = asyncio.get_running_loop()
        if lane == "loop":  # memory only, microseconds: no thread hop, no queue behind one
            return fn()
        if lane == "cheap":
            with self.limits["cheap"].enter():
                return await loop.run_in_executor(self.cheap_pool, fn)
        with self.limits["work"].enter():
            return await loop.run_in_executor(self.work_pool, fn)

    async def _fail(self, name: str, started: float, exc: BaseException, context: Any) -> None:
        if isinstance(exc, JobsClosed):  # the transport's own state, as a client sees no daemon
            code, message = grpc.StatusCode.UNAVAILABLE, str(exc)
        else:
            code, message = translate.status_for(exc)
        log_call(name, started, code, message, exc)
        await context.abort(code, message, translate.error_metadata(exc, code))

    # -- unary -------------------------------------------------------------------------

    def _unary(self, full: str, name: str, request_type: Any) -> Callable[..., Any]:
        lane = LANES[name]

        async def behaviour(_requests: Any, context: Any) -> Any:
            request = await self._admit(full, request_type, context, _max_bytes(lane))
            started = time.monotonic()
            if lane == "health":
                return await self._check(name, request, context)
            method = getattr(self.d.servicer, name)
            try:
                reply = await self._in_lane(lane, lambda: method(request))
            except Exception as exc:
                await self._fail(name, started, exc, context)
            log_call(name, started, grpc.StatusCode.OK)
            return reply

        return behaviour

    async def _check(self, name: str, request: Any, context: Any) -> Any:
        if name == "List":
            return health_pb2.HealthListResponse(
                statuses={
                    service: health_pb2.HealthCheckResponse(status=status)
                    for service, status in self.d.health.all().items()
                }
            )
        status = self.d.health.get(request.service)
        if status is None:
            shown = request.service[:MAX_ECHO]
            await context.abort(grpc.StatusCode.NOT_FOUND, f"unknown service {shown!r}")
        return health_pb2.HealthCheckResponse(status=status)

    # -- server streaming --------------------------------------------------------------

    def _streaming(self, full: str, name: str, request_type: Any) -> Callable[..., Any]:
        async def behaviour(_requests: Any, context: Any) -> AsyncIterator[Any]:
            request = await self._admit(full, request_type, context, _max_bytes(LANES[name]))
            if name == "Watch":
                async for reply in self._watch(request, context):
                    yield reply
                return
            async for reply in self._job_stream(name, request, context):
                yield reply

        return behaviour

    async def _watch(self, request: Any, context: Any) -> AsyncIterator[Any]:
        with_token = self.auth.valid(context.invocation_metadata())
        try:
            with self.limits["watch" if with_token else "anonymous-watch"].enter():
                async with contextlib.aclosing(self.d.health.watch(request.service)) as changes:
                    async for status in changes:
                        yield health_pb2.HealthCheckResponse(status=status)
        except _Busy as exc:
            if with_token:
                await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc))
            await self._refuse(context, grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc))

    async def _job_stream(self, name: str, request: Any, context: Any) -> AsyncIterator[Any]:
        """Run the method's work as a job and stream its events; the result comes last."""
        started = time.monotonic()
        plan: JobPlan = getattr(self.d.servicer, name)(request)
        try:
            description, work = await self._in_lane("work", plan.prepare)
            job = self.d.jobs.submit(plan.kind, description, work, translate.classify)
        except Exception as exc:
            await self._fail(name, started, exc, context)
        event_type = plan.event_type
        followed = False
        try:
            yield event_type(job_id=job.id, accepted=translate.job_msg(job))
            async with contextlib.aclosing(_job_events(job)) as events:
                async for event in events:
                    if isinstance(event, Progress):
                        progress = pb.Progress(
                            stage=event.stage, fraction=event.fraction, message=event.message
                        )
                        yield event_type(job_id=job.id, progress=progress)
                    elif plan.other is not None:
                        message = plan.other(event)
                        message.job_id = job.id
                        yield message
            followed = True
        finally:
            if not followed:  # cancelled, gone, past its deadline: the job stops too
                remaining = context.time_remaining()
                # The client's clock runs the deadline and ends the call a little before the
                # server's copy expires: an end this close to the deadline is that deadline.
                if remaining is not None and remaining <= _DEADLINE_SLACK:
                    job.request_cancel("DEADLINE_EXCEEDED", "deadline exceeded")
                else:
                    job.request_cancel("CANCELLED", "the client cancelled or went away")
        if job.state is JobState.SUCCEEDED:
            self.d._freeze_heap(plan.kind)
            final = plan.result(job.result)
            final.job_id = job.id
            log_call(name, started, grpc.StatusCode.OK)
            yield final
            return
        code = getattr(grpc.StatusCode, job.error_code or "INTERNAL", grpc.StatusCode.INTERNAL)
        if job.state is JobState.CANCELLED and code is grpc.StatusCode.OK:
            code = grpc.StatusCode.CANCELLED
        log_call(name, started, code, job.error_message)
        trailers = translate.error_metadata(job.error, code) if job.error is not None else ()
        await context.abort(code, job.error_message or job.state.value, trailers)


async def _job_events(job: Job) -> AsyncGenerator[Any, None]:
    """A job's events as they come, until it is done; no thread waits for them."""
    loop = asyncio.get_running_loop()
    changed = asyncio.Event()

    def wake() -> None:
        with contextlib.suppress(RuntimeError):  # the loop has closed
            loop.call_soon_threadsafe(changed.set)

    stop_listening = job.listen(wake)
    try:
        while True:
            changed.clear()
            while True:
                try:
                    event = job.events.get_nowait()
                except queue.Empty:
                    break
                if event is DONE:
                    return
                yield event
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(changed.wait(), 1.0)
    finally:
        stop_listening()


def _serialize(message: Any) -> bytes:
    return message.SerializeToString()


def _bind(server: grpc.aio.Server, address: str, shown: object) -> int:
    try:
        port = server.add_insecure_port(address)
    except RuntimeError:
        port = 0
    if port == 0:
        raise ConfigError(f"{shown}: cannot listen there (in use, or no permission?)")
    return port


# --- the daemon -----------------------------------------------------------------------


class Daemon:
    """A running server: pipeline, jobs, gRPC server, health, discovery file."""

    def __init__(self, config: DaemonConfig, *, pipeline: Pipeline | None = None) -> None:
        check_grace(config.grace)
        self.config = config
        self.settings = Settings.from_env()
        if config.data_dir is not None:
            self.settings = replace(self.settings, data_dir=config.data_dir)
        self._pipeline = pipeline
        self.policy = PathPolicy.from_folders(config.excluded)
        self.jobs = JobManager(config.max_concurrent, config.max_queued)
        self.health = HealthState()
        self.servicer = Servicer(self)
        self.addresses: list[str] = []
        self.tcp_port: int | None = None
        self.socket_path: Path | None = None
        self._socket_identity: tuple[int, int] | None = None  # (device, inode) once bound
        self._bind_at: Path | None = None  # the path gRPC binds (paths.socket_bind_path)
        self._socket_link: Path | None = None
        self.started_at = 0.0
        self.model_id = ""
        self.model_error = ""
        self._server: grpc.aio.Server | None = None
        self._transport: _Transport | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: threading.Thread | None = None
        self._frozen: set[str] = set()
        self._stop_lock = threading.Lock()
        self._stop_requested = threading.Event()
        self._stopped = threading.Event()
        self._stopping = False
        self._grace = config.grace
        self._dir = paths.ensure_private_dir(paths.daemon_dir(self.settings.data_dir))
        self.token_file = paths.token_path(self.settings.data_dir)
        self.info_file = paths.info_path(self.settings.data_dir)
        self.lock = paths.DataFolderLock(paths.lock_path(self.settings.data_dir))

    @property
    def pipeline(self) -> Pipeline:
        if self._pipeline is None:
            self._pipeline = Pipeline(
                self.settings,
                model=self.config.model,
                weights=self.config.weights,
                store_backend=self.config.store_backend,
                excluded=self.config.excluded,
            )
        return self._pipeline

    def ensure_model(self) -> None:
        """Load the model if it is not yet (ModelError -> FAILED_PRECONDITION)."""
        if self.model_id:
            return
        try:
            self.model_id = self.pipeline.load_model()
            self.model_error = ""
        except Exception as exc:
            self.model_error = str(exc)
            raise
        self._freeze_heap("model")

    def _freeze_heap(self, kind: str = "") -> None:
        """gc.freeze once serving starts, once the model is loaded and after the first job
        of each kind (which imports what that kind needs); never again, so objects that
        die later are never kept by it."""
        if not self.config.freeze_heap or kind in self._frozen:
            return
        self._frozen.add(kind)
        gc.collect()
        gc.freeze()

    # -- life cycle --------------------------------------------------------------------

    def start(self) -> Daemon:
        """Lock the data folder, bind, serve, write ``daemon.json``; returns at once (see
        ``serve_forever``). ConfigError when another daemon holds the data folder, or the
        socket path is taken."""
        self.lock.acquire()
        try:
            self.lock.record_daemon()
            self._start()
        except BaseException:
            self._shutdown_loop()
            self.lock.release()
            raise
        return self

    def _start(self) -> None:
        config = self.config
        stale = paths.remove_stale_records(self.settings.data_dir)
        if stale is not None:
            log.info("removed the record of a daemon that was killed", extra={"pid": stale.pid})
        token = paths.ensure_token(self.token_file)
        tcp = _check_tcp(config.tcp, config.allow_remote) if config.tcp is not None else None
        if config.socket is not None or config.tcp is None:
            self.socket_path = Path(
                os.path.abspath(config.socket or paths.default_socket(self.settings.data_dir))
            )
            ours = self.socket_path == paths.default_socket(self.settings.data_dir).absolute()
            paths.free_socket_path(self.socket_path, ours=ours)
            self._bind_at, self._socket_link = paths.socket_bind_path(self.socket_path, self._dir)
        self._transport = _Transport(self, TokenAuth(token))
        self._loop = asyncio.new_event_loop()
        self._loop_thread = threading.Thread(
            target=self._loop.run_forever, name="sfxmatch-grpc", daemon=True
        )
        self._loop_thread.start()
        bound = asyncio.run_coroutine_threadsafe(self._serve(tcp), self._loop)
        self._server = bound.result(timeout=60)
        if self.socket_path is not None:
            os.chmod(self.socket_path, 0o600)
            self._socket_identity = paths.file_identity(self.socket_path)
        self.started_at = time.time()
        if config.write_info:
            me = paths.DaemonProcess.this_process()
            paths.write_info(
                self.info_file,
                paths.DaemonInfo(
                    pid=me.pid,
                    version=__version__,
                    addresses=tuple(self.addresses),
                    started_at=self.started_at,
                    token_file=str(self.token_file),
                    start_time=me.start_time,
                    host=me.host,
                    pid_ns=me.pid_ns,
                ),
            )
        ready = config.load_model != "eager"
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if ready
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for service in ("", SERVICE_NAME):
            self.health.set(service, status)
        if not ready:
            threading.Thread(target=self._load_eagerly, name="sfxmatch-load", daemon=True).start()
        self._freeze_heap()
        log.info(
            "daemon started",
            extra={
                "addresses": self.addresses,
                "pid": os.getpid(),
                "model": self.pipeline.model,
                "load_model": config.load_model,
                "max_concurrent": config.max_concurrent,
                "max_queued": config.max_queued,
            },
        )

    async def _serve(self, tcp: str | None) -> grpc.aio.Server:
        assert self._transport is not None
        server = grpc.aio.server(options=self.config.grpc_options())
        server.add_generic_rpc_handlers((self._transport,))
        if self.socket_path is not None:
            address = paths.socket_address(self.socket_path)
            bound = paths.socket_address(self._bind_at or self.socket_path)
            old = os.umask(0o177)  # the socket is born 0600
            try:
                _bind(server, bound, self.socket_path)
            finally:
                os.umask(old)
            self.addresses.append(address)
        if tcp is not None:
            port = _bind(server, tcp, tcp)
            self.tcp_port = port
            self.addresses.append(f"{tcp.rpartition(':')[0]}:{port}")
        await server.start()
        return server

    def _load_eagerly(self) -> None:
        started = time.monotonic()
        try:
            self.ensure_model()
            log.info(
                "model loaded",
                extra={"model_id": self.model_id, "seconds": round(time.monotonic() - started, 2)},
            )
        except Exception as exc:
            log.error("model could not be loaded", extra={"error": str(exc)})
        if not self._stopping:
            for service in ("", SERVICE_NAME):
                self.health.set(service, health_pb2.HealthCheckResponse.SERVING)

    def request_stop(self, grace: float | None = None) -> None:
        """Ask for a shutdown from any thread (the RPC, a signal); returns at once."""
        if grace is not None:
            self._grace = check_grace(grace)
        self._stop_requested.set()
        threading.Thread(target=self.stop, name="sfxmatch-stop", daemon=True).start()

    def stop(self, grace: float | None = None) -> None:
        """Refuse new work, let jobs finish for ``grace`` s, cancel the rest, close."""
        with self._stop_lock:
            wait = self._stopping
            self._stopping = True
        if wait:
            self._stopped.wait()
            return
        try:
            grace = check_grace(self._grace if grace is None else grace)
            log.info("daemon stopping", extra={"grace": grace})
            self.health.enter_graceful_shutdown()
            self.jobs.close(grace)
            self._shutdown_loop()
            with contextlib.suppress(Exception):
                if self._pipeline is not None:
                    self._pipeline.close()
            if self.config.write_info:
                info = paths.read_info(self.info_file)
                if info is not None and info.pid == os.getpid():
                    with contextlib.suppress(FileNotFoundError):
                        self.info_file.unlink()
            # Our socket only: not a file another program put there since.
            if self.socket_path is not None and paths.same_file(
                self.socket_path, self._socket_identity
            ):
                with contextlib.suppress(FileNotFoundError):
                    self.socket_path.unlink()
            log.info("daemon stopped")
        finally:
            self.lock.release()
            self._stopped.set()

    def _shutdown_loop(self) -> None:
        """Stop the gRPC server (in-flight calls get 2 s), then its event loop and pools."""
        if self._socket_link is not None:  # gRPC's removal of the bound path: nothing now
            with contextlib.suppress(FileNotFoundError):
                self._socket_link.unlink()
            self._socket_link = None
        loop, thread = self._loop, self._loop_thread
        if loop is None or thread is None:
            return
        if self._server is not None and loop.is_running():
            stopping = asyncio.run_coroutine_threadsafe(self._server.stop(2.0), loop)
            with contextlib.suppress(Exception):
                stopping.result(timeout=30)
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=30)
        if not thread.is_alive():
            loop.close()
        if self._transport is not None:
            self._transport.close()
        self._loop = self._loop_thread = None

    def handle_signals(self) -> Daemon:
        """SIGTERM and SIGINT ask for a graceful stop (from the main thread only). Call it
        before ``start`` in a daemon's own process: a signal that comes while it starts
        stops it cleanly too."""

        def on_signal(signum: int, _frame: Any) -> None:
            log.info("signal received", extra={"signal": signal.Signals(signum).name})
            self._stop_requested.set()

        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, on_signal)
            signal.signal(signal.SIGINT, on_signal)
        return self

    def serve_forever(self) -> None:
        """Serve until SIGTERM/SIGINT or the Shutdown RPC, then stop gracefully."""
        self.handle_signals()
        while not self._stop_requested.wait(timeout=1.0):
            pass
        self.stop()
        self._stopped.wait()

    @property
    def stopped(self) -> bool:
        return self._stopped.is_set()
