"""A bounded job queue: ``max_concurrent`` worker threads (the GPU jobs that run at once)
and at most ``max_queued`` jobs waiting behind them; a job past that is refused.

A job is a callable ``work(job)`` that reports ``Progress`` through ``job.report`` and
watches ``job.cancel`` (a ``threading.Event``, handed to the pipeline as is). Its events
reach the one RPC that submitted it through ``job.events``; anyone can read its state.
Nothing here knows about gRPC or the pipeline beyond those two conventions.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sfxmatch.errors import ResourceExhaustedError
from sfxmatch.progress import Progress

log = logging.getLogger("sfxmatch.service.jobs")


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)


class QueueFull(ResourceExhaustedError):
    """Every worker is busy and the waiting line is full."""


class ShuttingDown(Exception):
    """The manager takes no new jobs."""


DONE = object()  # the last item on a job's event queue


@dataclass(eq=False)
class Job:
    id: str
    kind: str
    description: str
    work: Callable[[Job], Any]
    classify: Callable[[BaseException], tuple[str, str]]
    created_at: float = field(default_factory=time.time)
    state: JobState = JobState.QUEUED
    progress: Progress = field(default_factory=lambda: Progress("queued", 0.0))
    started_at: float = 0.0
    finished_at: float = 0.0
    error_code: str = ""
    error_message: str = ""
    error: BaseException | None = None  # what the work raised, for its class on the wire
    result: Any = None
    cancel: threading.Event = field(default_factory=threading.Event)
    events: queue.Queue[Any] = field(default_factory=queue.Queue)
    done: threading.Event = field(default_factory=threading.Event)
    _cancel_code: str = ""
    _cancel_message: str = ""
    _listeners: list[Callable[[], None]] = field(default_factory=list)

    def listen(self, wake: Callable[[], None]) -> Callable[[], None]:
        """Call ``wake()`` (from the job's thread) after each event is queued; returns the
        function that stops it. How an event loop waits for events without a thread."""
        self._listeners.append(wake)
        return lambda: self._listeners.remove(wake) if wake in self._listeners else None

    def _put(self, event: Any) -> None:
        self.events.put(event)
        for wake in list(self._listeners):
            try:
                wake()
            except Exception:  # a listener gone (its loop closed): the queue still has it
                log.debug("job listener failed", exc_info=True)

    def report(self, progress: Progress) -> None:
        """Record progress and pass it to the listening RPC."""
        self.progress = progress
        self._put(progress)

    def emit(self, event: Any) -> None:
        """Pass any other event (e.g. per-file index progress) to the listening RPC."""
        self._put(event)

    def request_cancel(self, code: str = "CANCELLED", message: str = "cancelled") -> bool:
        """Ask the job to stop; False when it had already finished."""
        if self.done.is_set():
            return False
        if not self.cancel.is_set():
            self._cancel_code, self._cancel_message = code, message
            self.cancel.set()
        return True


class JobManager:
    """Runs jobs on ``max_concurrent`` threads with at most ``max_queued`` waiting."""

    def __init__(self, max_concurrent: int = 1, max_queued: int = 8, history: int = 200) -> None:
        if max_concurrent < 1 or max_queued < 0:
            raise ValueError("max_concurrent must be >= 1 and max_queued >= 0")
        self.max_concurrent = max_concurrent
        self.max_queued = max_queued
        self._history = history
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._pending: queue.Queue[Job | None] = queue.Queue()
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._closed = False
        self._counter = itertools.count(1)
        self._workers = [
            threading.Thread(target=self._worker, name=f"sfxmatch-job-{i}", daemon=True)
            for i in range(max_concurrent)
        ]
        for worker in self._workers:
            worker.start()

    # -- asking ------------------------------------------------------------------------

    def counts(self) -> tuple[int, int]:
        """(running, queued)."""
        with self._lock:
            running = sum(j.state is JobState.RUNNING for j in self._jobs.values())
            queued = sum(j.state is JobState.QUEUED for j in self._jobs.values())
        return running, queued

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def list(self, active_only: bool = False) -> list[Job]:
        with self._lock:
            jobs = list(self._jobs.values())
        return [j for j in jobs if not (active_only and j.state.finished)]

    # -- changing ----------------------------------------------------------------------

    def submit(
        self,
        kind: str,
        description: str,
        work: Callable[[Job], Any],
        classify: Callable[[BaseException], tuple[str, str]],
    ) -> Job:
        """Queue ``work``; raises ``QueueFull`` or ``ShuttingDown`` instead of waiting."""
        with self._lock:
            if self._closed:
                raise ShuttingDown("the daemon is shutting down")
            active = sum(not j.state.finished for j in self._jobs.values())
            if active >= self.max_concurrent + self.max_queued:
                raise QueueFull(
                    f"job queue full: {active} jobs running or waiting "
                    f"(at most {self.max_concurrent} running, {self.max_queued} waiting)"
                )
            job_id = f"{kind}-{next(self._counter)}-{uuid.uuid4().hex[:8]}"
            job = Job(job_id, kind, description, work, classify)
            self._jobs[job_id] = job
            self._trim()
        self._pending.put(job)
        log.info("job queued", extra={"job": job_id, "kind": kind, "what": description})
        return job

    def cancel(self, job_id: str, code: str = "CANCELLED", message: str = "cancelled") -> Job:
        job = self.get(job_id)
        if job is None:
            raise KeyError(job_id)
        if job.request_cancel(code, message):
            log.info("job cancel requested", extra={"job": job_id, "code": code})
        return job

    def close(self, grace: float) -> None:
        """Take no new jobs; let running ones finish for ``grace`` seconds, then cancel the
        rest and wait for the workers to stop."""
        with self._lock:
            self._closed = True
            for job in self._jobs.values():
                if job.state is JobState.QUEUED:
                    job.request_cancel("UNAVAILABLE", "the daemon is shutting down")
        deadline = time.monotonic() + max(grace, 0.0)
        with self._changed:
            self._changed.wait_for(self._all_finished, timeout=max(grace, 0.0))
        for job in self.list(active_only=True):
            job.request_cancel("UNAVAILABLE", "the daemon is shutting down")
        for _ in self._workers:
            self._pending.put(None)
        for worker in self._workers:
            worker.join(timeout=max(5.0, deadline - time.monotonic()))

    def _all_finished(self) -> bool:
        return all(j.state.finished for j in self._jobs.values())

    def _trim(self) -> None:
        finished = [k for k, j in self._jobs.items() if j.state.finished]
        for key in finished[: max(0, len(self._jobs) - self._history)]:
            del self._jobs[key]

    # -- running -----------------------------------------------------------------------

    def _set(self, job: Job, **changes: Any) -> None:
        with self._changed:
            for name, value in changes.items():
                setattr(job, name, value)
            self._changed.notify_all()

    def _worker(self) -> None:
        while True:
            job = self._pending.get()
            if job is None:
                return
            self._run(job)

    def _run(self, job: Job) -> None:
        if job.cancel.is_set():
            self._finish(job, JobState.CANCELLED, job._cancel_code, job._cancel_message)
            return
        self._set(job, state=JobState.RUNNING, started_at=time.time())
        job.report(Progress("start", 0.0, job.description))
        log.info("job started", extra={"job": job.id, "kind": job.kind})
        try:
            job.result = job.work(job)
        except BaseException as exc:
            code, message = job.classify(exc)
            if job.cancel.is_set() and code == "CANCELLED":
                code, message = job._cancel_code or code, job._cancel_message or message
            state = (
                JobState.CANCELLED
                if code in ("CANCELLED", "DEADLINE_EXCEEDED")
                else (JobState.FAILED)
            )
            if job.cancel.is_set() and job._cancel_code == "UNAVAILABLE":
                state = JobState.CANCELLED
            level = logging.ERROR if code == "INTERNAL" else logging.INFO
            log.log(
                level,
                "job ended",
                extra={"job": job.id, "code": code, "error": message},
                exc_info=code == "INTERNAL",
            )
            # Kept for its class on the wire; without its frames (they may hold arrays).
            exc.__traceback__ = exc.__context__ = exc.__cause__ = None
            job.error = exc
            self._finish(job, state, code, message)
            return
        if job.cancel.is_set():
            self._finish(job, JobState.CANCELLED, job._cancel_code, job._cancel_message)
        else:
            self._finish(job, JobState.SUCCEEDED, "", "")

    def _finish(self, job: Job, state: JobState, code: str, message: str) -> None:
        if state is JobState.SUCCEEDED:
            job.progress = Progress("done", 1.0, "")
        self._set(job, state=state, error_code=code, error_message=message, finished_at=time.time())
        job.done.set()
        job._put(DONE)
        log.info(
            "job finished",
            extra={
                "job": job.id,
                "state": state.value,
                "seconds": round(job.finished_at - (job.started_at or job.created_at), 3),
            },
        )
