"""The gRPC daemon: one ``Pipeline``, a bounded job queue, token auth, health, JSON logs.

``Daemon(config).start()`` binds (a Unix socket by default, loopback TCP when asked),
writes ``daemon.json`` and serves; ``stop(grace)`` (also on SIGTERM/SIGINT through
``serve_forever`` and on the ``Shutdown`` RPC) refuses new jobs, lets running ones finish
for ``grace`` seconds, cancels the rest, and removes its socket and info file.

The servicer translates and checks requests (:mod:`sfxmatch.service.translate`) and calls
the facade; long calls run as jobs (:mod:`sfxmatch.service.jobs`) whose progress streams
back. A call that is cancelled, disconnects or passes its deadline cancels its job.
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import json
import logging
import os
import queue
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from sfxmatch import __version__
from sfxmatch._generated.sfxmatch.v1 import sfxmatch_pb2 as pb
from sfxmatch._generated.sfxmatch.v1 import sfxmatch_pb2_grpc as pb_grpc
from sfxmatch.config import Settings
from sfxmatch.errors import ConfigError
from sfxmatch.pipeline import Pipeline
from sfxmatch.progress import Progress
from sfxmatch.service import paths, translate
from sfxmatch.service.auth import TokenAuth
from sfxmatch.service.jobs import DONE, Job, JobManager, JobState, QueueFull
from sfxmatch.service.jobs import ShuttingDown as JobsClosed
from sfxmatch.service.translate import PathPolicy, RequestError

SERVICE_NAME = "sfxmatch.v1.Sfxmatch"
API = "sfxmatch.v1"
MAX_MESSAGE = 64 * 1024 * 1024
GRPC_OPTIONS = (
    ("grpc.max_receive_message_length", MAX_MESSAGE),
    ("grpc.max_send_message_length", MAX_MESSAGE),
    ("grpc.so_reuseport", 0),
)
log = logging.getLogger("sfxmatch.service")

_DEADLINE_SLACK = 0.5  # seconds


# --- the facade, per thread -------------------------------------------------------------


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
    max_rpcs: int = 128  # calls in flight before gRPC answers RESOURCE_EXHAUSTED
    load_model: Literal["eager", "lazy"] = "lazy"
    grace: float = 30.0  # seconds running jobs get at shutdown
    excluded: tuple[Path, ...] = ()  # clients may not name paths inside these
    model: str | None = None
    weights: Literal["checkpoint", "random"] | None = None
    store_backend: str = "lance"
    write_info: bool = True
    extra: dict[str, Any] = field(default_factory=dict)


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


# --- the servicer ---------------------------------------------------------------------


def _unary(method: Callable[..., Any]) -> Callable[..., Any]:
    """Map exceptions to status codes and log the call."""

    @functools.wraps(method)
    def wrapper(self: Servicer, request: Any, context: grpc.ServicerContext) -> Any:
        started = time.monotonic()
        try:
            reply = method(self, request, context)
        except Exception as exc:
            code, message = translate.status_for(exc)
            self._log_call(method.__name__, started, code, message, exc)
            context.abort(code, message)
        self._log_call(method.__name__, started, grpc.StatusCode.OK, "", None)
        return reply

    return wrapper


class Servicer(pb_grpc.SfxmatchServicer):
    """Each RPC: check and translate, call the facade, translate back."""

    def __init__(self, daemon: Daemon) -> None:
        self.d = daemon

    @property
    def pipeline(self) -> Pipeline:
        return self.d.pipeline

    def _log_call(
        self,
        name: str,
        started: float,
        code: grpc.StatusCode,
        message: str,
        exc: BaseException | None,
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

    # -- daemon ------------------------------------------------------------------------

    @_unary
    def Version(self, request: pb.VersionRequest, context: grpc.ServicerContext) -> Any:
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

    @_unary
    def Shutdown(self, request: pb.ShutdownRequest, context: grpc.ServicerContext) -> Any:
        grace = request.grace_seconds if request.grace_seconds > 0 else self.d.config.grace
        self.d.request_stop(grace)
        return pb.ShutdownReply()

    # -- library -----------------------------------------------------------------------

    @_unary
    def LibraryAdd(self, request: pb.LibraryAddRequest, context: grpc.ServicerContext) -> Any:
        root = self.d.policy.existing(request.path, "library folder", folder=True)
        catalogue = (
            self.d.policy.existing(request.catalogue, "catalogue") if request.catalogue else None
        )
        name = translate.check_text(request.name, "library name", required=False) or None
        overrides = [(o.glob, o.kind) for o in request.kind_overrides]
        library = self.pipeline.library_add(
            root, name, catalogue=catalogue, kind_overrides=overrides
        )
        return pb.LibraryAddReply(library=translate.library_msg(library))

    @_unary
    def LibraryRemove(self, request: pb.LibraryRemoveRequest, context: grpc.ServicerContext) -> Any:
        name = translate.check_text(request.name, "library name")
        self._known_libraries([name])
        return pb.LibraryRemoveReply(sounds_removed=self.pipeline.library_remove(name))

    @_unary
    def LibraryStatus(self, request: pb.LibraryStatusRequest, context: grpc.ServicerContext) -> Any:
        name = translate.check_text(request.name, "library name", required=False) or None
        if name:
            self._known_libraries([name])
        statuses = self.pipeline.library_status(name)
        return pb.LibraryStatusReply(libraries=[translate.status_msg(s) for s in statuses])

    @_unary
    def LibrarySearch(self, request: pb.LibrarySearchRequest, context: grpc.ServicerContext) -> Any:
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
            top_k=top_k,  # type: ignore[arg-type]
        )
        return pb.LibrarySearchReply(candidates=[translate.candidate_msg(c) for c in found])

    def LibraryIndex(
        self, request: pb.LibraryIndexRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.LibraryIndexEvent]:
        def prepare() -> tuple[str, Callable[[Job], Any]]:
            names = translate.names(request.names, "library name")
            self._known_libraries(names)
            if not names and not self.pipeline.libraries():
                raise RequestError(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    "no library to index: add one with LibraryAdd first",
                )

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

        return self.d.stream(
            "LibraryIndex", "index", context, prepare, pb.LibraryIndexEvent, result, other
        )

    def _known_libraries(self, names: list[str]) -> None:
        if not names:
            return
        known = {lib.name for lib in self.pipeline.libraries()}
        for name in names:
            if name not in known:
                listed = ", ".join(sorted(known)) or "none yet"
                raise RequestError(
                    grpc.StatusCode.NOT_FOUND, f"no library named {name!r} (known: {listed})"
                )

    # -- suggest and render ------------------------------------------------------------

    def Suggest(
        self, request: pb.SuggestRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.SuggestEvent]:
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
                raise RequestError(
                    grpc.StatusCode.UNIMPLEMENTED, "this daemon's pipeline cannot suggest yet"
                )

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

        return self.d.stream("Suggest", "suggest", context, prepare, pb.SuggestEvent, result)

    def Render(
        self, request: pb.RenderRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.RenderEvent]:
        def prepare() -> tuple[str, Callable[[Job], Any]]:
            render_request = translate.render_request_from_msg(request, self.d.policy)
            suggestions = translate.suggestions_from_json(request.suggestions_json, self.d.policy)
            render = getattr(self.pipeline, "render", None)
            if render is None:
                raise RequestError(
                    grpc.StatusCode.UNIMPLEMENTED, "this daemon's pipeline cannot render yet"
                )

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

        return self.d.stream("Render", "render", context, prepare, pb.RenderEvent, result)

    # -- jobs --------------------------------------------------------------------------

    def _job(self, job_id: str) -> Job:
        job = self.d.jobs.get(translate.check_text(job_id, "job id"))
        if job is None:
            raise RequestError(grpc.StatusCode.NOT_FOUND, f"no job {job_id[:80]!r}")
        return job

    @_unary
    def GetJob(self, request: pb.GetJobRequest, context: grpc.ServicerContext) -> Any:
        return translate.job_msg(self._job(request.job_id))

    @_unary
    def ListJobs(self, request: pb.ListJobsRequest, context: grpc.ServicerContext) -> Any:
        jobs = self.d.jobs.list(active_only=request.active_only)
        return pb.ListJobsReply(jobs=[translate.job_msg(j) for j in jobs])

    @_unary
    def CancelJob(self, request: pb.CancelJobRequest, context: grpc.ServicerContext) -> Any:
        job = self._job(request.job_id)
        self.d.jobs.cancel(job.id, "CANCELLED", "cancelled by CancelJob")
        return translate.job_msg(job)


# --- the daemon -----------------------------------------------------------------------


class Daemon:
    """A running server: pipeline, jobs, gRPC server, health, discovery file."""

    def __init__(self, config: DaemonConfig, *, pipeline: Pipeline | None = None) -> None:
        self.config = config
        self.settings = Settings.from_env()
        if config.data_dir is not None:
            from dataclasses import replace

            self.settings = replace(self.settings, data_dir=config.data_dir)
        self._pipeline = pipeline
        self.policy = PathPolicy.from_folders(config.excluded)
        self.jobs = JobManager(config.max_concurrent, config.max_queued)
        self.health = health.HealthServicer()
        self.addresses: list[str] = []
        self.tcp_port: int | None = None
        self.socket_path: Path | None = None
        self.started_at = 0.0
        self.model_id = ""
        self.model_error = ""
        self._server: grpc.Server | None = None
        self._stop_lock = threading.Lock()
        self._stop_requested = threading.Event()
        self._stopped = threading.Event()
        self._stopping = False
        self._grace = config.grace
        self._dir = paths.ensure_private_dir(paths.daemon_dir(self.settings.data_dir))
        self.token_file = paths.token_path(self.settings.data_dir)
        self.info_file = paths.info_path(self.settings.data_dir)

    @property
    def pipeline(self) -> Pipeline:
        if self._pipeline is None:
            self._pipeline = Pipeline(
                self.settings,
                model=self.config.model,
                weights=self.config.weights,
                store_backend=self.config.store_backend,
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

    # -- streams -----------------------------------------------------------------------

    def stream(
        self,
        name: str,
        kind: str,
        context: grpc.ServicerContext,
        prepare: Callable[[], tuple[str, Callable[[Job], Any]]],
        event_type: Any,
        result: Callable[[Any], Any],
        other: Callable[[Any], Any] | None = None,
    ) -> Iterator[Any]:
        """Run ``prepare``'s work as a job and stream its events; the result comes last."""
        started = time.monotonic()
        servicer = self._servicer
        try:
            description, work = prepare()
            job = self.jobs.submit(kind, description, work, translate.classify)
        except QueueFull as exc:
            servicer._log_call(name, started, grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc), exc)
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc))
        except JobsClosed as exc:
            servicer._log_call(name, started, grpc.StatusCode.UNAVAILABLE, str(exc), exc)
            context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
        except Exception as exc:
            code, message = translate.status_for(exc)
            servicer._log_call(name, started, code, message, exc)
            context.abort(code, message)

        def on_end() -> None:
            remaining = context.time_remaining()
            # The client's clock runs the deadline and ends the call a little before the
            # server's copy of it expires: an end this close to the deadline is that deadline.
            if remaining is not None and remaining <= _DEADLINE_SLACK:
                job.request_cancel("DEADLINE_EXCEEDED", "deadline exceeded")
            else:
                job.request_cancel("CANCELLED", "the client cancelled or went away")

        context.add_callback(on_end)
        yield event_type(job_id=job.id, accepted=translate.job_msg(job))
        while True:
            try:
                event = job.events.get(timeout=0.25)
            except queue.Empty:
                if not context.is_active():
                    on_end()
                continue
            if event is DONE:
                break
            if isinstance(event, Progress):
                progress = pb.Progress(
                    stage=event.stage, fraction=event.fraction, message=event.message
                )
                yield event_type(job_id=job.id, progress=progress)
            elif other is not None:
                message = other(event)
                message.job_id = job.id
                yield message
        if job.state is JobState.SUCCEEDED:
            final = result(job.result)
            final.job_id = job.id
            servicer._log_call(name, started, grpc.StatusCode.OK, "", None)
            yield final
            return
        code = getattr(grpc.StatusCode, job.error_code or "INTERNAL", grpc.StatusCode.INTERNAL)
        if job.state is JobState.CANCELLED and code is grpc.StatusCode.OK:
            code = grpc.StatusCode.CANCELLED
        servicer._log_call(name, started, code, job.error_message, None)
        context.abort(code, job.error_message or job.state.value)

    # -- life cycle --------------------------------------------------------------------

    def start(self) -> Daemon:
        """Bind, serve, write ``daemon.json``; returns at once (see ``serve_forever``)."""
        config = self.config
        token = paths.ensure_token(self.token_file)
        self._servicer = Servicer(self)
        threads = config.max_concurrent + config.max_queued + 16
        server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="sfxmatch-rpc"),
            interceptors=[TokenAuth(token)],
            options=GRPC_OPTIONS,
            maximum_concurrent_rpcs=max(config.max_rpcs, threads),
        )
        pb_grpc.add_SfxmatchServicer_to_server(self._servicer, server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        if config.socket is not None or config.tcp is None:
            self.socket_path = Path(
                os.path.abspath(config.socket or paths.default_socket(self.settings.data_dir))
            )
            self._clear_stale_socket(self.socket_path)
            address = paths.socket_address(self.socket_path)
            old = os.umask(0o177)  # the socket is born 0600
            try:
                server.add_insecure_port(address)
            finally:
                os.umask(old)
            self.addresses.append(address)
        if config.tcp is not None:
            tcp = _check_tcp(config.tcp, config.allow_remote)
            port = server.add_insecure_port(tcp)
            if port == 0:
                raise ConfigError(f"{tcp}: cannot listen there (in use?)")
            self.tcp_port = port
            self.addresses.append(f"{tcp.rpartition(':')[0]}:{port}")
        server.start()
        if self.socket_path is not None:
            os.chmod(self.socket_path, 0o600)
        self._server = server
        self.started_at = time.time()
        if config.write_info:
            paths.write_info(
                self.info_file,
                paths.DaemonInfo(
                    pid=os.getpid(),
                    version=__version__,
                    addresses=tuple(self.addresses),
                    started_at=self.started_at,
                    token_file=str(self.token_file),
                ),
            )
        ready = config.load_model != "eager"
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if ready
            else (health_pb2.HealthCheckResponse.NOT_SERVING)
        )
        for service in ("", SERVICE_NAME):
            self.health.set(service, status)
        if not ready:
            threading.Thread(target=self._load_eagerly, name="sfxmatch-load", daemon=True).start()
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
        return self

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

    def _clear_stale_socket(self, path: Path) -> None:
        if not path.exists() and not path.is_symlink():
            return
        info = paths.read_info(self.info_file)
        if info is not None and info.pid != os.getpid() and paths.pid_alive(info.pid):
            raise ConfigError(
                f"{path}: a daemon (pid {info.pid}) is already running; "
                "stop it with `sfxmatch daemon stop`"
            )
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.settimeout(2.0)
            probe.connect(os.fspath(path))
        except OSError:
            pass  # nobody listens: left behind by a daemon that was killed
        else:
            raise ConfigError(
                f"{path}: another daemon is listening there; stop it with `sfxmatch daemon stop`"
            )
        finally:
            probe.close()
        with contextlib.suppress(FileNotFoundError):
            path.unlink()

    def request_stop(self, grace: float | None = None) -> None:
        """Ask for a shutdown from any thread (the RPC, a signal); returns at once."""
        if grace is not None:
            self._grace = grace
        self._stop_requested.set()
        threading.Thread(target=self.stop, name="sfxmatch-stop", daemon=True).start()

    def stop(self, grace: float | None = None) -> None:
        """Refuse new work, let jobs finish for ``grace`` s, cancel the rest, close."""
        with self._stop_lock:
            if self._stopping:
                wait = True
            else:
                self._stopping = wait = False
                self._stopping = True
        if wait:
            self._stopped.wait()
            return
        grace = self._grace if grace is None else grace
        log.info("daemon stopping", extra={"grace": grace})
        self.health.enter_graceful_shutdown()
        self.jobs.close(grace)
        if self._server is not None:
            self._server.stop(grace=2.0).wait()
        with contextlib.suppress(Exception):
            if self._pipeline is not None:
                self._pipeline.close()
        if self.config.write_info:
            info = paths.read_info(self.info_file)
            if info is not None and info.pid == os.getpid():
                with contextlib.suppress(FileNotFoundError):
                    self.info_file.unlink()
        if self.socket_path is not None:
            with contextlib.suppress(FileNotFoundError):
                self.socket_path.unlink()
        log.info("daemon stopped")
        self._stopped.set()

    def serve_forever(self) -> None:
        """Serve until SIGTERM/SIGINT or the Shutdown RPC, then stop gracefully."""

        def on_signal(signum: int, _frame: Any) -> None:
            log.info("signal received", extra={"signal": signal.Signals(signum).name})
            self._stop_requested.set()

        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, on_signal)
            signal.signal(signal.SIGINT, on_signal)
        while not self._stop_requested.wait(timeout=1.0):
            pass
        self.stop()
        self._stopped.wait()

    @property
    def stopped(self) -> bool:
        return self._stopped.is_set()
