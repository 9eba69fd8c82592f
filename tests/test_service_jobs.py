"""Jobs: backpressure, cancellation, vanished clients, deadlines, graceful stop."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sfxmatch.client import Cancelled, Client
from sfxmatch.errors import SfxmatchError
from sfxmatch.service.server import Daemon
from test_service_support import *  # noqa: F403  (fixtures)
from test_service_support import GatedPipeline, gated_client, make_library, status_of, wait_for


def _start_index(client: Client, name: str = "g") -> tuple[object, str]:
    stream = client.stream_index([name])
    events = iter(stream)
    accepted = next(events).accepted
    assert accepted is not None
    return stream, accepted.id


@pytest.fixture
def gated_ready(gated: Daemon, tmp_path: Path) -> Daemon:
    with gated_client(gated) as c:
        c.library_add(make_library(tmp_path / "g", effects=1, beds=0), "g")
    return gated


def test_queue_full_is_resource_exhausted_and_frees_up(gated_ready: Daemon) -> None:
    pipeline = gated_ready.pipeline
    assert isinstance(pipeline, GatedPipeline)
    with gated_client(gated_ready) as c:
        first, first_id = _start_index(c)
        assert pipeline.entered.acquire(timeout=30)  # running
        second, second_id = _start_index(c)  # waiting
        assert c.get_job(second_id).state == "queued"
        with pytest.raises(SfxmatchError) as full:
            _start_index(c)
        assert status_of(full.value) == "RESOURCE_EXHAUSTED" and "queue full" in str(full.value)
        assert c.version().jobs_running == 1 and c.version().jobs_queued == 1
        pipeline.gate.set()
        assert first.run() == [] and second.run() == []
        assert c.get_job(first_id).state == "succeeded"
        assert c.get_job(second_id).state == "succeeded"
        third, _ = _start_index(c)  # room again
        assert third.run() == []


def test_cancel_job_stops_it_and_the_next_job_runs(gated_ready: Daemon) -> None:
    pipeline = gated_ready.pipeline
    assert isinstance(pipeline, GatedPipeline)
    with gated_client(gated_ready) as c:
        stream, job_id = _start_index(c)
        assert pipeline.entered.acquire(timeout=30)
        assert c.get_job(job_id).state == "running"
        assert c.cancel_job(job_id).id == job_id
        with pytest.raises(Cancelled):
            stream.run()
        job = wait_for(lambda: (j := c.get_job(job_id)).state == "cancelled" and j, what="cancel")
        assert job.error_code == "CANCELLED" and pipeline.cancelled_runs == 1
        assert c.list_jobs(active_only=True) == []
        pipeline.gate.set()
        assert c.library_index(["g"]) == []


def test_client_cancel_event_cancels_the_job(gated_ready: Daemon) -> None:
    pipeline = gated_ready.pipeline
    with gated_client(gated_ready) as c:
        cancel = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            try:
                c.library_index(["g"], cancel=cancel)
            except BaseException as exc:
                errors.append(exc)

        worker = threading.Thread(target=run)
        worker.start()
        assert pipeline.entered.acquire(timeout=30)  # type: ignore[attr-defined]
        cancel.set()
        worker.join(timeout=30)
        assert not worker.is_alive() and isinstance(errors[0], Cancelled)
        (job,) = c.list_jobs()
        wait_for(lambda: c.get_job(job.id).state == "cancelled", what="job cancelled")


_VANISHING = """
import sys
from sfxmatch.client import Client
client = Client(sys.argv[1], open(sys.argv[2]).read().strip())
for event in client.stream_index(["g"]):
    if event.progress is not None and event.progress.stage == "index gated":
        print(event.job_id, flush=True)
        sys.stdin.readline()  # parent kills us here
"""


def test_a_vanished_client_cancels_its_job(gated_ready: Daemon) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", _VANISHING, gated_ready.addresses[0], str(gated_ready.token_file)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        job_id = child.stdout.readline().strip()  # type: ignore[union-attr]
        assert job_id.startswith("index-")
        with gated_client(gated_ready) as c:
            assert c.get_job(job_id).state == "running"
            child.kill()
            child.wait(timeout=30)
            job = wait_for(lambda: (j := c.get_job(job_id)).state == "cancelled" and j, 60)
            assert job.error_code == "CANCELLED"
            gated_ready.pipeline.gate.set()  # type: ignore[attr-defined]
            assert c.library_index(["g"]) == []  # the daemon goes on serving
    finally:
        child.kill()


def test_deadline_cancels_the_job(gated_ready: Daemon) -> None:
    with gated_client(gated_ready) as c:
        with pytest.raises(SfxmatchError) as late:
            c.stream_index(["g"], timeout=1.0).run()
        assert status_of(late.value) == "DEADLINE_EXCEEDED"
        (job,) = c.list_jobs()
        done = wait_for(lambda: (j := c.get_job(job.id)).state == "cancelled" and j, 30)
        assert done.error_code == "DEADLINE_EXCEEDED"


def test_graceful_stop_cancels_running_jobs_and_cleans_up(gated_ready: Daemon) -> None:
    pipeline = gated_ready.pipeline
    with gated_client(gated_ready) as c:
        stream, _job_id = _start_index(c)
        assert pipeline.entered.acquire(timeout=30)  # type: ignore[attr-defined]
        c.shutdown(grace=0.1)
        with pytest.raises(SfxmatchError) as ended:
            stream.run()
        assert status_of(ended.value) in ("UNAVAILABLE", "CANCELLED")
    wait_for(lambda: gated_ready.stopped, 30, "daemon stopped")
    assert pipeline.cancelled_runs == 1  # type: ignore[attr-defined]
    assert gated_ready.socket_path is not None and not gated_ready.socket_path.exists()
    assert not gated_ready.info_file.exists()


def test_real_index_cancelled_mid_run_then_completed(daemon: Daemon, token: str, tmp_path: Path):
    folder = make_library(tmp_path / "big", effects=48, beds=0)
    with Client(daemon.addresses[0], token, timeout=300) as c:
        c.library_add(folder, "big")
        stream = c.stream_index(["big"])
        job_id = ""
        with pytest.raises(Cancelled):
            for event in stream:
                job_id = event.job_id
                if event.file is not None and event.file.stage == "index" and event.file.done:
                    c.cancel_job(job_id)
        job = wait_for(lambda: (j := c.get_job(job_id)).state == "cancelled" and j, 60)
        assert job.finished_at is not None
        (partial,) = c.library_status("big")
        assert partial.sounds < 48
        (report,) = c.library_index(["big"])
        assert report.indexed == 48 and report.added == 48 - partial.sounds
        assert c.library_remove("big") == 48
