"""A daemon process killed with SIGKILL mid-index: restart, the index resumes and is complete.
Also the CLI's `daemon status` / `daemon stop`, and SIGTERM's clean exit."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sfxmatch.client import Client
from sfxmatch.errors import SfxmatchError
from sfxmatch.service import paths
from test_service_support import REPO, make_library, short_dir, spawn_daemon, wait_for

pytestmark = pytest.mark.slow
FILES = 64  # four commit batches of 16


@pytest.fixture
def root() -> Iterator[Path]:
    folder = short_dir("sfxk-")
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def _connect(data: Path, socket: Path, process: subprocess.Popen[str]) -> Client:
    token_file = paths.token_path(data)
    wait_for(lambda: token_file.exists() or process.poll() is not None, 120, "token")
    assert process.poll() is None, "daemon exited at start"
    client = Client(f"unix://{socket}", paths.read_token(token_file), timeout=300)
    wait_for(lambda: client.health(timeout=2) or process.poll() is not None, 120, "health")
    assert process.poll() is None
    return client


def _cli(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, SFXMATCH_DATA_DIR=str(data))
    return subprocess.run(
        [sys.executable, "-m", "sfxmatch", "daemon", *args],
        env=env, capture_output=True, text=True, cwd=REPO, timeout=180,
    )  # fmt: skip


def test_kill_9_during_index_then_resume(root: Path) -> None:
    data, socket = root / "data", root / "d.sock"
    library = make_library(root / "sounds", effects=FILES, beds=0)
    first = spawn_daemon(data, socket, "--load-model", "lazy")
    try:
        client = _connect(data, socket, first)
        client.library_add(library, "crash")
        done = 0
        for event in client.stream_index(["crash"]):
            if event.file is not None and event.file.stage == "index":
                done = event.file.done
                if done >= 20:  # at least one batch committed, the run far from over
                    first.send_signal(signal.SIGKILL)
                    break
        client.close()
        assert first.wait(timeout=60) == -signal.SIGKILL
        assert 20 <= done < FILES
    finally:
        first.kill()
    assert socket.exists()  # left behind by the killed daemon

    second = spawn_daemon(data, socket, "--load-model", "eager")
    try:
        client = _connect(data, socket, second)
        (before,) = client.library_status("crash")
        assert 0 < before.sounds < FILES  # what was committed survived
        (report,) = client.library_index(["crash"])
        assert report.indexed == FILES and report.failed == 0
        assert report.added == FILES - before.sounds  # resumed, not redone
        hits = client.library_search("door slam", library="crash", top_k=200)
        assert len(hits) == FILES and len({h.sound_id for h in hits}) == FILES
        assert len({h.path for h in hits}) == FILES
        client.close()

        status = _cli(data, "status", "--json")
        assert status.returncode == 0, status.stderr
        assert json.loads(status.stdout)["pid"] == second.pid
        stop = _cli(data, "stop")
        assert stop.returncode == 0 and "stopped" in stop.stdout, stop.stderr
        assert second.wait(timeout=60) == 0
    finally:
        second.kill()
    assert not socket.exists() and not paths.info_path(data).exists()
    after = _cli(data, "status")
    assert after.returncode == 3 and "no sfxmatch daemon" in after.stdout


def test_sigterm_stops_cleanly_and_a_second_daemon_is_refused(root: Path) -> None:
    data, socket = root / "data", root / "d.sock"
    daemon = spawn_daemon(data, socket, "--load-model", "lazy")
    try:
        client = _connect(data, socket, daemon)
        assert client.version().pid == daemon.pid
        rival = spawn_daemon(data, socket, "--load-model", "lazy")
        assert rival.wait(timeout=120) == 2  # "already running", exit code of user errors
        assert client.version().pid == daemon.pid  # the first one is untouched
        daemon.send_signal(signal.SIGTERM)
        try:
            code = daemon.wait(timeout=60)
        except subprocess.TimeoutExpired:
            daemon.send_signal(signal.SIGUSR1)  # the daemon dumps its threads' stacks
            logs = "\n".join(p.read_text()[-4000:] for p in root.glob("daemon-*.log"))
            pytest.fail(f"the daemon did not stop after SIGTERM; its log:\n{logs}")
        assert code == 0
        with pytest.raises(SfxmatchError):
            client.version(timeout=5)
        client.close()
    finally:
        daemon.kill()
    assert not socket.exists() and not paths.info_path(data).exists()
    logs = [
        json.loads(line)
        for p in root.glob("daemon-*.log")
        for line in p.read_text().splitlines()
        if line.startswith("{")
    ]
    assert any(r["msg"] == "signal received" and r["signal"] == "SIGTERM" for r in logs)
    assert any(r["msg"] == "daemon stopped" for r in logs)
