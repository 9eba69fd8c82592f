"""Talk to a running sfxmatch daemon: a ``sfxmatch.backend.Backend``, as ``Pipeline`` is.

This module never imports torch or the pipeline (a test checks it), so plugins and a CLI that
only forwards work start fast::

    from sfxmatch.client import find_daemon

    client = find_daemon()          # None when no daemon answers
    if client is not None:
        with client:
            hits = client.library_search("rain on a tin roof", top_k=5)
            suggestions = client.suggest("/abs/video.mp4", progress=print)

Discovery (:func:`find_daemon`): ``$SFXMATCH_DAEMON_ADDRESS`` when set, otherwise the
addresses in ``<data dir>/daemon/daemon.json`` that a running daemon writes (Unix socket
first), otherwise the default socket ``<data dir>/daemon/sfxmatch.sock``. The token comes
from ``$SFXMATCH_DAEMON_TOKEN_FILE`` or ``<data dir>/daemon/token`` (it must be mode 0600).
The data dir is ``$SFXMATCH_DATA_DIR`` or the per-user one (``~/.local/share/sfxmatch``).

Long calls (``library_index``, ``suggest``, ``render``) take ``progress`` (called with
``Progress(stage, fraction, message)``) and ``cancel`` (a ``threading.Event``: setting it
cancels the call, and the daemon cancels the job); the ``stream_*`` variants yield the raw
events instead. A failure on the daemon raises the class it raised there, with its message
(``sfxmatch.errors``: ``NotFoundError``, ``ModelError``, ``Cancelled``...), exactly as the
pipeline in this process would; cancelling raises ``Cancelled``. Failures of the connection
itself are ``DaemonError`` (``.code`` is the gRPC status code's name): ``DaemonUnavailable``,
``TokenRefused``, a deadline.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from sfxmatch._generated.sfxmatch.v1 import sfxmatch_pb2 as pb
from sfxmatch._generated.sfxmatch.v1 import sfxmatch_pb2_grpc as pb_grpc
from sfxmatch.backend import LibraryStatus, SoundSync
from sfxmatch.config import env_text
from sfxmatch.errors import Cancelled, ConfigError, SfxmatchError
from sfxmatch.library.registry import LibraryConfig, RecordedFault, RunRecord
from sfxmatch.library.scan import ScanFault
from sfxmatch.library.syncpoints import SyncPoint
from sfxmatch.progress import IndexProgress, IndexReport, Progress
from sfxmatch.service import paths, translate
from sfxmatch.service.auth import bearer
from sfxmatch.store.base import Kind
from sfxmatch.suggestions import (
    Candidate,
    Edit,
    RenderRequest,
    RenderResult,
    Suggestions,
    SuggestOptions,
    from_dict,
    to_dict,
)

_OPTIONS = (
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
)
_JOB_STATES = {
    pb.JOB_STATE_QUEUED: "queued",
    pb.JOB_STATE_RUNNING: "running",
    pb.JOB_STATE_SUCCEEDED: "succeeded",
    pb.JOB_STATE_FAILED: "failed",
    pb.JOB_STATE_CANCELLED: "cancelled",
}


# --- values -------------------------------------------------------------------------


@dataclass(frozen=True)
class JobInfo:
    id: str
    kind: str
    state: str  # queued, running, succeeded, failed, cancelled
    progress: Progress
    description: str
    created_at: float
    started_at: float | None
    finished_at: float | None
    error_code: str
    error_message: str


@dataclass(frozen=True)
class DaemonStatus:
    version: str
    api: str
    model: str
    model_id: str
    model_loaded: bool
    model_error: str
    meaningless: bool
    pid: int
    started_at: float
    jobs_running: int
    jobs_queued: int
    max_concurrent_jobs: int
    max_queued_jobs: int
    addresses: tuple[str, ...]


@dataclass(frozen=True)
class Event:
    """One message of a long call: ``accepted`` (a ``JobInfo``), ``progress``, ``file`` or
    ``result`` is set."""

    job_id: str
    accepted: JobInfo | None = None
    progress: Progress | None = None
    file: IndexProgress | None = None
    result: Any = None


class DaemonError(SfxmatchError):
    """The connection to the daemon failed (no daemon, a refused token, a deadline) or it
    answered with a status no class stands for; ``code`` is the gRPC status code's name."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class DaemonUnavailable(DaemonError):
    """No daemon answers at that address (or it is shutting down)."""


class TokenRefused(DaemonError):
    """The daemon answers but refuses the token this client sent (UNAUTHENTICATED)."""


_TRANSPORT = {
    grpc.StatusCode.UNAVAILABLE: DaemonUnavailable,
    grpc.StatusCode.UNAUTHENTICATED: TokenRefused,
}


def _error(exc: grpc.RpcError) -> SfxmatchError:
    """The class the daemon named (``translate.ERROR_KEY``) with its message; else the
    category of the status (``translate.STATUS``); else a ``DaemonError``."""
    code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
    details = (exc.details() if hasattr(exc, "details") else "") or str(code)
    trailers = exc.trailing_metadata() if hasattr(exc, "trailing_metadata") else None
    error = translate.error_from_status(code, details, trailers)
    if error is not None:
        return error
    return _TRANSPORT.get(code, DaemonError)(code.name, details)


def _library(m: pb.Library) -> LibraryConfig:
    return LibraryConfig(
        name=m.name,
        root=m.root,
        catalogue=m.catalogue or None,
        kind_overrides=tuple((o.glob, o.kind) for o in m.kind_overrides),
        added_at=m.added_at,
    )


def _report(m: pb.IndexReport) -> IndexReport:
    return IndexReport(
        library=m.library,
        scanned=m.scanned,
        added=m.added,
        changed=m.changed,
        moved=m.moved,
        deleted=m.deleted,
        relabelled=m.relabelled,
        unchanged=m.unchanged,
        failed=m.failed,
        faults=tuple(ScanFault(Path(f.path), cast(Any, f.kind), f.reason) for f in m.faults),
        seconds=m.seconds,
        decode_seconds=0.0,  # the daemon keeps its timings to itself
        model_seconds=0.0,
        cancelled=m.cancelled,
        indexed=m.indexed,
        analysed=m.analysed,
    )


def _progress(m: pb.Progress) -> Progress:
    return Progress(m.stage, m.fraction, m.message)


def _job(m: pb.Job) -> JobInfo:
    return JobInfo(
        id=m.id,
        kind=m.kind,
        state=_JOB_STATES.get(m.state, "unknown"),
        progress=_progress(m.progress),
        description=m.description,
        created_at=m.created_at,
        started_at=m.started_at or None,
        finished_at=m.finished_at or None,
        error_code=m.error_code,
        error_message=m.error_message,
    )


def _candidate(m: pb.Candidate) -> Candidate:
    return Candidate(
        sound_id=m.sound_id,
        label=m.label,
        path=m.path,
        score=m.score,
        kind=m.kind,  # type: ignore[arg-type]
        duration=m.duration,
        ucs_category=m.ucs_category,
        sync_point=m.sync_point,
        sync_source=m.sync_source,
        peak=m.peak if m.HasField("peak") else None,
    )


def _sound_sync(m: pb.SoundSync) -> SoundSync:
    peak = m.peak if m.HasField("peak") else None
    return SoundSync(
        path=m.path,
        library=m.library,
        sound_id=m.sound_id,
        kind=m.kind,
        label=m.label,
        duration=m.duration,
        point=SyncPoint(m.sync_point, cast(Any, m.source), m.detail, peak),
        detected=m.detected if m.HasField("detected") else None,
    )


def _status(m: pb.LibraryStatus) -> LibraryStatus:
    name = m.library.name
    last_run = None
    if m.last_run_json:
        # The daemon sends the run's summary and when it finished (not when it started).
        finished = m.last_indexed_at
        last_run = RunRecord(name, finished, finished, json.loads(m.last_run_json))
    return LibraryStatus(
        library=_library(m.library),
        sounds=m.sounds,
        by_kind={k.kind: k.sounds for k in m.by_kind},
        faults=tuple(RecordedFault(name, f.path, f.kind, f.reason, 0.0) for f in m.faults),
        last_run=last_run,
        root_exists=m.root_exists,
        sync_sources={c.source: c.sounds for c in m.sync_sources},
    )


def _absolute(path: str | os.PathLike[str]) -> str:
    return os.path.abspath(os.fspath(path))


# --- the client ---------------------------------------------------------------------


class Client:
    """One connection to a daemon. Thread-safe; close it (or use ``with``) when done."""

    def __init__(self, target: str, token: str, *, timeout: float | None = None) -> None:
        self.target = target
        self.timeout = timeout  # default deadline of short calls (None: none)
        self._metadata = bearer(token)
        self._channel = grpc.insecure_channel(target, options=_OPTIONS)
        self._stub = pb_grpc.SfxmatchStub(self._channel)
        self._health = health_pb2_grpc.HealthStub(self._channel)

    @classmethod
    def connect(
        cls,
        address: str | None = None,
        *,
        data_dir: Path | None = None,
        token: str | None = None,
        timeout: float | None = None,
    ) -> Client:
        """Connect to ``address`` (default: what discovery finds, else the default socket)
        with ``token`` (default: the token file). Does not check that anyone answers."""
        if address is None:
            found = _addresses(data_dir)
            address = found[0] if found else paths.socket_address(paths.default_socket(data_dir))
        if token is None:
            token = paths.read_token(paths.token_path(data_dir))
        return cls(address, token, timeout=timeout)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client({self.target!r})"

    def _call(self, method: Callable[..., Any], request: Any, timeout: float | None = None) -> Any:
        try:
            return method(
                request, metadata=self._metadata, timeout=timeout if timeout else self.timeout
            )
        except grpc.RpcError as exc:
            raise _error(exc) from None

    # -- daemon ------------------------------------------------------------------------

    def health(self, timeout: float = 2.0, service: str = "") -> bool:
        """True when the daemon answers SERVING. The health service needs no token; the
        client sends it all the same, so that its checks are not among those of programs
        without it (which the daemon serves from smaller pools)."""
        try:
            reply = self._health.Check(
                health_pb2.HealthCheckRequest(service=service),
                metadata=self._metadata,
                timeout=timeout,
            )
        except grpc.RpcError:
            return False
        return reply.status == health_pb2.HealthCheckResponse.SERVING

    def wait_ready(self, timeout: float = 30.0) -> bool:
        """Block until the daemon reports SERVING (model loaded when it loads eagerly), at
        most ``timeout`` seconds. Watches the health status; where the daemon refuses the
        Watch (all its streams taken, or a server without Watch), polls the health check."""
        deadline = time.monotonic() + timeout
        request = health_pb2.HealthCheckRequest(service="")
        try:
            replies = self._health.Watch(
                request, metadata=self._metadata, timeout=timeout, wait_for_ready=True
            )
            for reply in replies:
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return True
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                return False
        else:
            return False  # the daemon ended the stream: it is stopping
        pause = threading.Event()
        while (left := deadline - time.monotonic()) > 0:
            if self.health(timeout=min(2.0, left)):
                return True
            pause.wait(min(0.1, max(0.0, deadline - time.monotonic())))
        return False

    def version(self, timeout: float | None = None) -> DaemonStatus:
        m = self._call(self._stub.Version, pb.VersionRequest(), timeout)
        return DaemonStatus(
            version=m.version,
            api=m.api,
            model=m.model,
            model_id=m.model_id,
            model_loaded=m.model_loaded,
            model_error=m.model_error,
            meaningless=m.meaningless,
            pid=m.pid,
            started_at=m.started_at,
            jobs_running=m.jobs_running,
            jobs_queued=m.jobs_queued,
            max_concurrent_jobs=m.max_concurrent_jobs,
            max_queued_jobs=m.max_queued_jobs,
            addresses=tuple(m.addresses),
        )

    @property
    def model(self) -> str:
        """The daemon's model (its registry name)."""
        return self.version().model

    @property
    def meaningless(self) -> bool:
        """True when the daemon's model has random weights."""
        return self.version().meaningless

    def shutdown(self, grace: float = 0.0) -> None:
        """Ask the daemon to stop (running jobs get ``grace`` seconds; 0: its default)."""
        self._call(self._stub.Shutdown, pb.ShutdownRequest(grace_seconds=grace))

    # -- library -----------------------------------------------------------------------

    def library_add(
        self,
        path: str | os.PathLike[str],
        name: str | None = None,
        *,
        catalogue: str | os.PathLike[str] | None = None,
        kind_overrides: Sequence[tuple[str, str]] = (),
    ) -> LibraryConfig:
        request = pb.LibraryAddRequest(
            path=_absolute(path),
            name=name or "",
            catalogue=_absolute(catalogue) if catalogue else "",
            kind_overrides=[pb.KindOverride(glob=g, kind=k) for g, k in kind_overrides],
        )
        return _library(self._call(self._stub.LibraryAdd, request).library)

    def library_remove(self, name: str) -> int:
        reply = self._call(self._stub.LibraryRemove, pb.LibraryRemoveRequest(name=name))
        return int(reply.sounds_removed)

    def library_status(self, name: str | None = None) -> list[LibraryStatus]:
        reply = self._call(self._stub.LibraryStatus, pb.LibraryStatusRequest(name=name or ""))
        return [_status(s) for s in reply.libraries]

    def sound_sync(self, path: str | os.PathLike[str]) -> SoundSync:
        """A sound's sync point (what it is placed by, and where that comes from)."""
        request = pb.LibrarySoundSyncRequest(path=_absolute(path))
        return _sound_sync(self._call(self._stub.LibrarySoundSync, request))

    def library_set_sync(self, path: str | os.PathLike[str], seconds: float | None) -> SoundSync:
        """Set the user's sync point of a sound (seconds into it), or remove it (None)."""
        request = pb.LibrarySetSyncRequest(path=_absolute(path))
        if seconds is not None:
            request.seconds = seconds
        return _sound_sync(self._call(self._stub.LibrarySetSync, request))

    def library_search(
        self,
        text: str,
        *,
        kind: Kind | None = None,
        library: str | Sequence[str] | None = None,
        top_k: int = 10,
    ) -> list[Candidate]:
        libraries = [library] if isinstance(library, str) else list(library or ())
        request = pb.LibrarySearchRequest(
            text=text, kind=kind or "", libraries=libraries, top_k=top_k
        )
        return [_candidate(c) for c in self._call(self._stub.LibrarySearch, request).candidates]

    def stream_index(
        self, names: Sequence[str] | None = None, *, timeout: float | None = None
    ) -> _Stream:
        request = pb.LibraryIndexRequest(names=list(names or ()))
        return _Stream(self, self._stub.LibraryIndex, request, timeout, _index_result, "indexing")

    def library_index(
        self,
        names: Sequence[str] | None = None,
        *,
        progress: Callable[[Progress], None] | None = None,
        cancel: threading.Event | None = None,
        on_file: Callable[[IndexProgress], None] | None = None,
    ) -> list[IndexReport]:
        """Index libraries on the daemon; returns one report per library (with a deadline:
        ``stream_index(names, timeout=...).run(...)``)."""
        stream = self.stream_index(names)
        return stream.run(progress=progress, cancel=cancel, on_file=on_file)

    # -- suggest and render ------------------------------------------------------------

    def stream_suggest(
        self,
        source: str | os.PathLike[str] | Edit,
        options: SuggestOptions | None = None,
        *,
        timeout: float | None = None,
    ) -> _Stream:
        options_msg = translate.options_msg(options or SuggestOptions())
        if isinstance(source, Edit):
            absolute = Edit(
                clips=tuple(
                    type(c)(_absolute(c.path), c.source_in, c.source_out, c.record_start, c.name)
                    for c in source.clips
                ),
                fps=source.fps,
                width=source.width,
                height=source.height,
                start_timecode=source.start_timecode,
                name=source.name,
            )
            request = pb.SuggestRequest(edit=translate.edit_msg(absolute), options=options_msg)
        else:
            request = pb.SuggestRequest(video_path=_absolute(source), options=options_msg)
        return _Stream(self, self._stub.Suggest, request, timeout, _suggest_result, "suggest")

    def suggest(
        self,
        source: str | os.PathLike[str] | Edit,
        options: SuggestOptions | None = None,
        *,
        progress: Callable[[Progress], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> Suggestions:
        """Suggestions for a video file or an edit (its clips' paths made absolute here)."""
        stream = self.stream_suggest(source, options)
        return stream.run(progress=progress, cancel=cancel)

    def stream_render(
        self,
        suggestions: Suggestions,
        request: RenderRequest,
        *,
        timeout: float | None = None,
    ) -> _Stream:
        absolute = RenderRequest(
            mix=_absolute(request.mix) if request.mix else None,
            stems_dir=_absolute(request.stems_dir) if request.stems_dir else None,
            mux=_absolute(request.mux) if request.mux else None,
            timeline=_absolute(request.timeline) if request.timeline else None,
            flavour=request.flavour,
            plot=_absolute(request.plot) if request.plot else None,
            target_lufs=request.target_lufs,
            true_peak_dbtp=request.true_peak_dbtp,
            sample_rate=request.sample_rate,
        )
        message = translate.render_request_msg(
            json.dumps(to_dict(suggestions), ensure_ascii=False), absolute
        )
        return _Stream(self, self._stub.Render, message, timeout, _render_result, "render")

    def render(
        self,
        suggestions: Suggestions,
        request: RenderRequest,
        *,
        progress: Callable[[Progress], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> RenderResult:
        """Write the mix, stems, timeline, plot or muxed video that ``request`` names."""
        stream = self.stream_render(suggestions, request)
        return stream.run(progress=progress, cancel=cancel)

    # -- jobs --------------------------------------------------------------------------

    def get_job(self, job_id: str) -> JobInfo:
        return _job(self._call(self._stub.GetJob, pb.GetJobRequest(job_id=job_id)))

    def list_jobs(self, active_only: bool = False) -> list[JobInfo]:
        reply = self._call(self._stub.ListJobs, pb.ListJobsRequest(active_only=active_only))
        return [_job(j) for j in reply.jobs]

    def cancel_job(self, job_id: str) -> JobInfo:
        return _job(self._call(self._stub.CancelJob, pb.CancelJobRequest(job_id=job_id)))


def _index_result(m: pb.LibraryIndexResult) -> list[IndexReport]:
    return [_report(r) for r in m.reports]


def _suggest_result(m: pb.SuggestResult) -> Suggestions:
    return from_dict(json.loads(m.suggestions_json))


def _render_result(m: pb.RenderResult) -> RenderResult:
    return RenderResult(
        files=tuple((f.what, f.path) for f in m.files),
        loudness_lufs=m.loudness_lufs if m.HasField("loudness_lufs") else None,
        true_peak_dbtp=m.true_peak_dbtp if m.HasField("true_peak_dbtp") else None,
        gain_db=m.gain_db if m.HasField("gain_db") else None,
        loudness_note=m.loudness_note,
    )


class _Stream:
    """One long call: iterate it for ``Event`` values, ``cancel()`` it, or ``run`` it."""

    def __init__(
        self,
        client: Client,
        method: Callable[..., Any],
        request: Any,
        timeout: float | None,
        convert: Callable[[Any], Any],
        what: str = "the call",
    ) -> None:
        self._what = what  # says what was cancelled, in the pipeline's words
        try:
            self._call = method(request, metadata=client._metadata, timeout=timeout)
        except grpc.RpcError as exc:
            raise _error(exc) from None
        self._convert = convert
        self.job_id = ""

    def cancel(self) -> None:
        self._call.cancel()

    def __iter__(self) -> Iterator[Event]:
        try:
            for m in self._call:
                self.job_id = m.job_id
                which = m.WhichOneof("event")
                if which == "accepted":
                    yield Event(m.job_id, accepted=_job(m.accepted))
                elif which == "progress":
                    yield Event(m.job_id, progress=_progress(m.progress))
                elif which == "file":
                    f = m.file
                    yield Event(
                        m.job_id, file=IndexProgress(f.library, f.stage, f.done, f.total, f.message)
                    )
                elif which == "result":
                    yield Event(m.job_id, result=self._convert(m.result))
        except grpc.RpcError as exc:
            raise _error(exc) from None

    def run(
        self,
        *,
        progress: Callable[[Progress], None] | None = None,
        cancel: threading.Event | None = None,
        on_file: Callable[[IndexProgress], None] | None = None,
    ) -> Any:
        """Drive the call to its end; the result, or ``Cancelled``/``DaemonError``."""
        finished = threading.Event()
        if cancel is not None:

            def watch() -> None:
                while True:  # looked at first: an event set before the call cancels it at once
                    if cancel.is_set():
                        self._call.cancel()
                        return
                    if finished.wait(0.05):
                        return

            threading.Thread(target=watch, name="sfxmatch-client-cancel", daemon=True).start()
        try:
            for event in self:
                if event.progress is not None and progress is not None:
                    progress(event.progress)
                elif event.file is not None and on_file is not None:
                    on_file(event.file)
                elif event.result is not None:
                    return event.result
        except Cancelled:
            if cancel is None or not cancel.is_set():
                raise
            # Cancelled here: the daemon's answer never comes, gRPC says only "locally
            # cancelled"; say it as the pipeline in this process does.
            raise Cancelled(f"{self._what} was cancelled") from None
        except KeyboardInterrupt:
            self._call.cancel()  # the daemon cancels the job when its caller goes
            raise
        finally:
            finished.set()
        raise DaemonError("UNKNOWN", "the daemon ended the call without a result")


# --- discovery ----------------------------------------------------------------------


def _addresses(data_dir: Path | None) -> list[str]:
    override = env_text(paths.ENV_DAEMON_ADDRESS)
    if override:
        return [override]
    info = paths.read_info(paths.info_path(data_dir))
    if info is not None and info.alive:  # not a record whose pid another program reused
        return sorted(info.addresses, key=lambda a: not a.startswith("unix:"))
    socket = paths.default_socket(data_dir)
    return [paths.socket_address(socket)] if socket.exists() else []


def find_daemon(data_dir: Path | None = None, *, timeout: float = 2.0) -> Client | None:
    """A connected ``Client`` when a daemon answers, else None (use the pipeline in-process).

    Looks at ``$SFXMATCH_DAEMON_ADDRESS``, then ``<data dir>/daemon/daemon.json`` (left by a
    running daemon; a dead pid there is ignored), then the default socket. A candidate
    counts only when its health check says SERVING and an authenticated ``Version`` call
    succeeds with the token file's token, so a stale socket gives None. A daemon that
    answers but refuses the token raises :class:`TokenRefused` saying so (running in
    this process instead, beside a daemon on the same data, would be the wrong answer).
    The caller owns (and closes) the client.
    """
    try:
        addresses = _addresses(data_dir)
        if not addresses:
            return None
        token_file = paths.token_path(data_dir)
        token = paths.read_token(token_file)
    except ConfigError:
        return None
    for address in addresses:
        client = Client(address, token)
        try:
            if client.health(timeout=timeout):
                client.version(timeout=timeout)
                return client
        except TokenRefused:
            client.close()
            raise TokenRefused(
                "UNAUTHENTICATED",
                f"an sfxmatch daemon answers at {address} but refuses the token in "
                f"{token_file}: that is not the running daemon's token file (point "
                f"${paths.ENV_DAEMON_TOKEN_FILE} at the daemon's, or restart the daemon)",
            ) from None
        except DaemonError:
            pass
        client.close()
    return None


__all__ = [
    "Cancelled",
    "Client",
    "DaemonError",
    "DaemonStatus",
    "DaemonUnavailable",
    "Event",
    "IndexProgress",
    "IndexReport",
    "JobInfo",
    "LibraryStatus",
    "Progress",
    "SoundSync",
    "TokenRefused",
    "find_daemon",
]
