"""The daemon under attack and under bad luck (issue 13): each case through a real daemon
process, over its Unix socket and loopback TCP, with real signals.

1. ``daemon stop`` never signals a process that reused a killed daemon's pid;
2. calls without a token that stall (headers, never a message) starve nothing;
3. a pathological kind-override glob cannot freeze the daemon;
4. ``--socket`` at an existing file (or a live socket) is refused, the file kept;
5. one daemon per data folder;
6. links inside a library never reach an excluded folder;
7. the token's folder is never chmod-ed;
8. what a client may persist is bounded;
9. failures are typed: a full disk is RESOURCE_EXHAUSTED in words, undecodable or
   absurd requests INVALID_ARGUMENT, and nothing a client sends crashes the daemon;
10. a cancelled or late index ends within a second, even in the middle of a long scan.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket as sockets
import stat
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sfxmatch._generated.sfxmatch.v1 import sfxmatch_pb2 as pb
from sfxmatch.client import Cancelled, Client
from sfxmatch.errors import SfxmatchError, StorageFullError, StoreError
from sfxmatch.service import paths
from sfxmatch.service.auth import bearer
from sfxmatch.testing import synth
from test_service_support import (
    REPO,
    connect_spawned,
    daemon_logs,
    make_library,
    short_dir,
    spawn_daemon,
    status_of,
    stop_spawned,
    wait_for,
)

FAST = 1.0  # seconds: what "answers at once" and "ends within a second" mean here


@pytest.fixture
def root() -> Iterator[Path]:
    folder = short_dir("sfxr-")
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def _cli(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, SFXMATCH_DATA_DIR=str(data))
    return subprocess.run(
        [sys.executable, "-m", "sfxmatch", "daemon", *args],
        env=env, capture_output=True, text=True, cwd=REPO, timeout=180,
    )  # fmt: skip


@dataclass
class Spawned:
    """A daemon process, a client on its socket, and its loopback TCP address."""

    process: subprocess.Popen[str]
    client: Client
    data: Path
    socket: Path
    tcp: str
    token: str


@pytest.fixture(scope="module")
def shared() -> Iterator[Spawned]:
    """One daemon process for the cases that do not stop it: Unix socket and loopback TCP,
    two excluded folders (one of them inside a library)."""
    folder = short_dir("sfxs-")
    data, sock = folder / "data", folder / "d.sock"
    (folder / "excluded").mkdir()
    (folder / "lib6" / "inner").mkdir(parents=True)
    process = spawn_daemon(
        data, sock, "--tcp", "127.0.0.1:0", "--load-model", "lazy",
        "--exclude", str(folder / "excluded"), "--exclude", str(folder / "lib6" / "inner"),
    )  # fmt: skip
    try:
        client = connect_spawned(process, data, sock)
        info = wait_for(lambda: paths.read_info(paths.info_path(data)), 30, "daemon.json")
        tcp = next(a for a in info.addresses if not a.startswith("unix:"))
        yield Spawned(process, client, data, sock, tcp, paths.read_token(paths.token_path(data)))
        client.close()
        assert stop_spawned(process) == 0, daemon_logs(folder)
    finally:
        process.kill()
        shutil.rmtree(folder, ignore_errors=True)


def _wav_named(path: Path, freq: float = 300.0) -> Path:
    """A 1 s WAV at ``path`` whatever its name (audio is found by content)."""
    made = path.with_name("tmp-tone.wav")
    synth.make_tone_file(made, freq=freq, duration=1.0, sample_rate=16000, channels=1)
    made.rename(path)
    return path


def _raw(target: str, method: str, payload: bytes, token: str | None, timeout: float = 10):
    """Call ``method`` with ``payload`` as the request's bytes; the raised RpcError."""
    with grpc.insecure_channel(target) as channel:
        streaming = method.endswith(("Index", "Suggest", "Render"))
        call = channel.unary_stream(method) if streaming else channel.unary_unary(method)
        with pytest.raises(grpc.RpcError) as failed:
            reply = call(payload, metadata=bearer(token) if token else None, timeout=timeout)
            if not isinstance(reply, bytes):
                list(reply)
        return failed.value


# --- 1 --------------------------------------------------------------------------------


def test_stop_never_signals_a_process_that_reused_a_killed_daemons_pid(root: Path) -> None:
    data, sock = root / "data", root / "d.sock"
    first = spawn_daemon(data, sock, "--load-model", "lazy")
    try:
        connect_spawned(first, data, sock).close()
        first.kill()  # SIGKILL: daemon.json and the socket stay behind
        first.wait(timeout=60)
    finally:
        first.kill()
    record = paths.read_info(paths.info_path(data))
    assert record is not None and sock.exists()
    # Another program now runs under the dead daemon's pid (as after a reboot): here, a
    # process of ours whose pid the leftover record is made to name.
    other = subprocess.Popen(["sleep", "600"])
    try:
        left = json.loads(paths.info_path(data).read_text())
        left["pid"] = other.pid
        paths.info_path(data).write_text(json.dumps(left))

        stop = _cli(data, "stop")
        assert stop.returncode == 0, stop.stderr
        assert "no sfxmatch daemon is running" in stop.stdout
        assert other.poll() is None, "daemon stop signalled a process that is not the daemon"
        assert not paths.info_path(data).exists() and not sock.exists()  # stale: tidied

        second = spawn_daemon(data, sock, "--load-model", "lazy")  # not "already running"
        try:
            client = connect_spawned(second, data, sock)
            assert client.version().pid == second.pid
            client.close()
            status = _cli(data, "status", "--json")
            assert json.loads(status.stdout)["pid"] == second.pid
            stopped = _cli(data, "stop")
            assert stopped.returncode == 0 and f"pid {second.pid}) stopped" in stopped.stdout
            assert second.wait(timeout=60) == 0
        finally:
            second.kill()
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()


_HOLDER = """
import json, sys
from sfxmatch.service import paths
lock = paths.DataFolderLock(paths.lock_path()).acquire(wait=5)
if sys.argv[1] != "none":  # a daemon's own record, some fields changed to say where it runs
    record = lock.record_daemon().to_dict()
    record.update(json.loads(sys.argv[1]))
    paths.lock_path().write_text(json.dumps(record))
print("held", flush=True)
sys.stdin.readline()
"""


def _lock_holder(data: Path, record: str) -> subprocess.Popen[str]:
    """A process that holds the data folder's lock: as ``daemon stop`` does while it tidies
    stale records (``record="none"``), or as a daemon that does not answer (a JSON object
    of record fields to change, "{}" for none)."""
    env = dict(os.environ, SFXMATCH_DATA_DIR=str(data))
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, record],
        env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO,
    )  # fmt: skip
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    return holder


@pytest.mark.parametrize(
    ("record", "said"),
    [
        ("none", "locked by a process that is not a daemon"),
        ('{"host": "another-machine"}', "on another-machine"),
        ('{"pid_ns": 1}', "in another PID namespace"),
    ],
)
def test_stop_signals_only_a_daemon_of_this_host_and_namespace(
    root: Path, record: str, said: str
) -> None:
    data = root / "data"
    holder = _lock_holder(data, record)
    try:
        stop = _cli(data, "stop", "--timeout", "5")
        assert stop.returncode == 1 and said in stop.stderr, stop.stderr
        assert holder.poll() is None, "daemon stop signalled a process it must not"
    finally:
        holder.kill()
        holder.wait()


def test_stop_signals_a_daemon_that_holds_the_lock_but_does_not_answer(root: Path) -> None:
    data = root / "data"
    holder = _lock_holder(data, "{}")  # its record is right; it has no socket
    try:
        stop = _cli(data, "stop", "--timeout", "30")
        assert stop.returncode == 0 and f"pid {holder.pid}) stopped" in stop.stdout, stop.stderr
        assert holder.wait(timeout=30) == -signal.SIGTERM
    finally:
        holder.kill()
        holder.wait()


# --- 2 --------------------------------------------------------------------------------


class _Stalls:
    """Calls that send their headers and never their request message."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.channels: list[grpc.Channel] = []
        self.calls: list[grpc.Future] = []

    def _never(self) -> Iterator[bytes]:
        self.release.wait()
        return
        yield b""  # pragma: no cover - makes this a generator

    def open(self, target: str, method: str, count: int, metadata=None, per_channel=8) -> list:
        opened = []
        for start in range(0, count, per_channel):
            # A connection of its own, as each attacking program would have.
            channel = grpc.insecure_channel(
                target, options=(("grpc.use_local_subchannel_pool", 1),)
            )
            self.channels.append(channel)
            call = channel.stream_unary(method)
            for _ in range(min(per_channel, count - start)):
                opened.append(call.future(self._never(), metadata=metadata))
        self.calls += opened
        return opened

    def close(self) -> None:
        self.release.set()
        for call in self.calls:
            call.cancel()
        for channel in self.channels:
            channel.close()


def test_stalled_calls_without_a_token_starve_nothing(shared: Spawned) -> None:
    unix = f"unix://{shared.socket}"
    stalls = _Stalls()
    try:
        refused, health = [], []
        for target in (unix, shared.tcp):
            for method in ("Version", "LibraryIndex", "Suggest"):
                refused += stalls.open(target, f"/sfxmatch.v1.Sfxmatch/{method}", 48)
            refused += stalls.open(target, "/sfxmatch.v1.Sfxmatch/ListJobs", 48, bearer("x" * 64))
            # The health check needs no token: four of these are read at once, until the
            # first message's timeout; the others are refused at once.
            health += stalls.open(target, "/grpc.health.v1.Health/Check", 48)
        for target in (unix, shared.tcp):
            with Client(target, shared.token) as c:
                began = time.monotonic()
                assert c.health(timeout=FAST), f"no health answer on {target} within {FAST} s"
                assert c.version(timeout=FAST).pid == shared.process.pid
                assert c.list_jobs() is not None
                assert time.monotonic() - began < 2 * FAST
        # Refused from their headers alone, while they still hold back their message.
        codes = {call.exception(timeout=10).code() for call in refused}
        assert codes == {grpc.StatusCode.UNAUTHENTICATED}
        ends = [call.exception(timeout=30).code() for call in health]
        late = ends.count(grpc.StatusCode.DEADLINE_EXCEEDED)
        assert set(ends) == {grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.RESOURCE_EXHAUSTED}
        assert late <= 8, f"{late} stalled health calls were read at once"  # 4 per 5 s
        # ... after a tarpit's delay, which bounds how fast one connection can churn them.
        with grpc.insecure_channel(shared.tcp) as channel:
            began = time.monotonic()
            with pytest.raises(grpc.RpcError) as refusal:
                channel.unary_unary("/sfxmatch.v1.Sfxmatch/Version")(b"", timeout=10)
            assert refusal.value.code() == grpc.StatusCode.UNAUTHENTICATED
            assert time.monotonic() - began >= 0.5
    finally:
        stalls.close()
    assert shared.client.health()


def _anonymous_check(target: str, service: str, timeout: float = 10) -> grpc.RpcError | int:
    """A health check without the token on a connection of its own: its status, or the
    RpcError it ended with."""
    options = (("grpc.use_local_subchannel_pool", 1), ("grpc.max_send_message_length", 1 << 26))
    with grpc.insecure_channel(target, options=options) as channel:
        try:
            return (
                health_pb2_grpc.HealthStub(channel)
                .Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
                .status
            )
        except grpc.RpcError as error:
            return error


def test_health_calls_without_the_token_are_small_and_few(shared: Spawned) -> None:
    """The health service needs no token: its requests are refused undecoded past 1 KiB,
    what it echoes is cut short, and at most four such calls are read at once."""
    for target in (f"unix://{shared.socket}", shared.tcp):
        huge = _anonymous_check(target, "x" * (8 << 20))
        assert isinstance(huge, grpc.RpcError)
        assert huge.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "at most 1024" in huge.details() and len(huge.details()) < 200
        unknown = _anonymous_check(target, "y" * 1000)
        assert isinstance(unknown, grpc.RpcError) and unknown.code() == grpc.StatusCode.NOT_FOUND
        assert "yyyy" in unknown.details() and len(unknown.details()) < 120
    stalls = _Stalls()
    try:
        stalled = stalls.open(shared.tcp, "/grpc.health.v1.Health/Check", 4)
        # Those four are being read (their message never comes): a fifth waits for none.
        busy = wait_for(
            lambda: isinstance(e := _anonymous_check(shared.tcp, ""), grpc.RpcError) and e,
            10, "a refusal",
        )  # fmt: skip
        assert busy.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        began = time.monotonic()
        assert shared.client.health(timeout=FAST)  # the client sends its token: not refused
        assert time.monotonic() - began < FAST
        # A stalled call ends at the first-message timeout (5 s), freeing its place.
        for call in stalled:
            error = call.exception(timeout=30)
            assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            assert "no request message within 5 s" in error.details()
        assert _anonymous_check(shared.tcp, "") == health_pb2.HealthCheckResponse.SERVING
    finally:
        stalls.close()
    assert shared.process.poll() is None


def test_watches_without_the_token_cannot_take_every_watch(shared: Spawned) -> None:
    channel = grpc.insecure_channel(shared.tcp)  # no token
    hogs = []
    try:
        stub = health_pb2_grpc.HealthStub(channel)
        for _ in range(8):
            hog = stub.Watch(health_pb2.HealthCheckRequest(service=""))
            assert next(hog).status == health_pb2.HealthCheckResponse.SERVING  # holds a place
            hogs.append(hog)
        with pytest.raises(grpc.RpcError) as ninth:
            next(stub.Watch(health_pb2.HealthCheckRequest(service=""), timeout=10))
        assert ninth.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        for target in (f"unix://{shared.socket}", shared.tcp):
            with Client(target, shared.token) as c:
                began = time.monotonic()
                assert c.wait_ready(timeout=10)  # its Watch carries the token
                assert time.monotonic() - began < FAST
    finally:
        for hog in hogs:
            hog.cancel()
        channel.close()


def test_a_wrong_token_file_is_said_in_words_not_as_no_daemon(shared: Spawned) -> None:
    other = shared.socket.parent / "other-token"
    other.write_text("f" * 64 + "\n")
    other.chmod(0o600)
    env = dict(
        os.environ, SFXMATCH_DATA_DIR=str(shared.data), SFXMATCH_DAEMON_TOKEN_FILE=str(other)
    )
    for args in (["daemon", "status"], ["library", "index"], ["daemon", "stop"]):
        done = subprocess.run(
            [sys.executable, "-m", "sfxmatch", *args],
            env=env, capture_output=True, text=True, cwd=REPO, timeout=120,
        )  # fmt: skip
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert f"answers at unix://{shared.socket} but refuses the token in {other}" in (
            done.stderr
        ), done.stderr
    assert shared.process.poll() is None  # `daemon stop` with the wrong token stopped nothing


# --- 3 --------------------------------------------------------------------------------


def test_a_pathological_glob_cannot_freeze_the_daemon(root: Path) -> None:
    data, sock = root / "data", root / "d.sock"
    sounds = root / "sounds"
    sounds.mkdir()
    _wav_named(sounds / ("a" * 200))  # no match: the case that backtracked exponentially
    _wav_named(sounds / ("a" * 60 + "b"), freq=500.0)  # matches
    glob = "*a" * 30 + "*b"
    daemon = spawn_daemon(data, sock, "--load-model", "lazy")
    try:
        client = connect_spawned(daemon, data, sock)
        client.library_add(sounds, "globs", kind_overrides=[(glob, "music")])
        seen: list[bool] = []
        watcher = Client(f"unix://{sock}", paths.read_token(paths.token_path(data)))
        (report,) = client.stream_index(["globs"], timeout=60).run(
            on_file=lambda _f: seen.append(watcher.health(timeout=FAST))
        )
        assert report.indexed == 2 and report.failed == 0
        assert seen and all(seen)  # the health check answered all along
        (status,) = client.library_status("globs")
        assert status.by_kind.get("music") == 1  # the override applies where it matches
        watcher.close()
        client.close()
        assert stop_spawned(daemon, timeout=30) == 0  # SIGTERM is heard
    finally:
        daemon.kill()
    # The glob is kept; the next daemon starts and indexes with it again.
    again = spawn_daemon(data, sock, "--load-model", "lazy")
    try:
        client = connect_spawned(again, data, sock)
        assert client.library_status("globs")[0].library.kind_overrides == ((glob, "music"),)
        (report,) = client.stream_index(["globs"], timeout=60).run()
        assert report.indexed == 2
        client.close()
        assert stop_spawned(again, timeout=30) == 0
    finally:
        again.kill()


# --- 4 --------------------------------------------------------------------------------


def test_a_socket_path_that_is_not_a_stale_socket_of_ours_is_refused(root: Path) -> None:
    data = root / "data"
    precious = root / "notes.txt"
    precious.write_text("the editor's notes\n")
    folder = root / "a-folder"
    folder.mkdir()
    listening = sockets.socket(sockets.AF_UNIX, sockets.SOCK_STREAM)
    busy = root / "busy.sock"
    listening.bind(str(busy))
    listening.listen()
    # A listener too busy to accept: its backlog full, a new connection is not refused but
    # cannot be had now (EAGAIN). Still a live socket.
    swamped = sockets.socket(sockets.AF_UNIX, sockets.SOCK_STREAM)
    full = root / "full.sock"
    swamped.bind(str(full))
    swamped.listen(0)
    waiting = sockets.socket(sockets.AF_UNIX, sockets.SOCK_STREAM)
    waiting.connect(str(full))
    cases = ((precious, "is a file"), (folder, "is a folder"), (busy, "listening"))
    try:
        for path, said in (*cases, (full, "listening")):
            daemon = spawn_daemon(data, path, "--load-model", "lazy")
            try:
                assert daemon.wait(timeout=120) == 2  # a user error, one line
            finally:
                daemon.kill()
            log = daemon_logs(root)
            assert str(path) in log and said in log
        assert precious.read_text() == "the editor's notes\n"
        assert folder.is_dir() and stat.S_ISSOCK(busy.stat().st_mode)
        assert stat.S_ISSOCK(full.stat().st_mode)
    finally:
        listening.close()
        waiting.close()
        swamped.close()


def test_a_daemon_removes_only_its_own_socket_when_it_stops(root: Path) -> None:
    data, sock = root / "data", root / "d.sock"
    daemon = spawn_daemon(data, sock, "--load-model", "lazy")
    try:
        connect_spawned(daemon, data, sock).close()
        sock.unlink()  # another program takes the path while the daemon runs
        other = sockets.socket(sockets.AF_UNIX, sockets.SOCK_STREAM)
        other.bind(str(sock))
        other.listen()
        try:
            assert stop_spawned(daemon) == 0
            assert stat.S_ISSOCK(sock.stat().st_mode), "the daemon removed another's socket"
            assert not list(paths.daemon_dir(data).glob("socket-folder-*"))  # its link, gone
        finally:
            other.close()
    finally:
        daemon.kill()


# --- 5 --------------------------------------------------------------------------------


def test_one_daemon_per_data_folder(root: Path) -> None:
    data = root / "data"
    first = spawn_daemon(data, root / "a.sock", "--load-model", "lazy")
    try:
        client = connect_spawned(first, data, root / "a.sock")
        second = spawn_daemon(data, root / "b.sock", "--load-model", "lazy", "--tcp", "127.0.0.1:0")
        try:
            assert second.wait(timeout=120) == 2
        finally:
            second.kill()
        log = daemon_logs(root)
        assert "in use by another sfxmatch daemon" in log and f"pid {first.pid}" in log
        assert not (root / "b.sock").exists()
        assert client.version().pid == first.pid  # the first one is untouched
        client.close()
        assert stop_spawned(first) == 0
    finally:
        first.kill()


# --- 6 --------------------------------------------------------------------------------


def test_links_inside_a_library_never_reach_an_excluded_folder(shared: Spawned) -> None:
    top = shared.socket.parent
    secret = make_library(top / "excluded" / "private", effects=3, beds=0)
    _wav_named(top / "excluded" / "one.wav")
    library = top / "lib6"
    _wav_named(library / "mine.wav")
    (library / "linked-folder").symlink_to(secret)
    (library / "linked-file.wav").symlink_to(top / "excluded" / "one.wav")
    make_library(library / "inner", effects=2, beds=0)  # an excluded folder inside the library
    c = shared.client
    c.library_add(library, "linked")
    (report,) = c.stream_index(["linked"], timeout=120).run()
    assert report.indexed == 1
    excluded = sorted(Path(f.path).name for f in report.faults if f.kind == "excluded")
    assert excluded == ["inner", "linked-file.wav", "linked-folder"]
    hits = c.library_search("door slam", library="linked", top_k=50)
    assert [Path(h.path).name for h in hits] == ["mine.wav"]
    with pytest.raises(SfxmatchError) as refused:
        c.library_add(secret, "direct")
    assert status_of(refused.value) == "PERMISSION_DENIED"


# --- 7 --------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", [0o755, 0o1777])
def test_the_token_folder_is_never_chmodded(root: Path, mode: int) -> None:
    data, sock = root / "data", root / "d.sock"
    shared_folder = root / "shared"
    shared_folder.mkdir()
    shared_folder.chmod(mode)  # readable by others; or like the system temp folder
    token_file = shared_folder / "token"
    daemon = spawn_daemon(
        data, sock, "--load-model", "lazy", env={paths.ENV_DAEMON_TOKEN_FILE: str(token_file)}
    )
    try:
        client = connect_spawned(daemon, data, sock, token_file=token_file)
        assert client.version().pid == daemon.pid
        client.close()
        assert stat.S_IMODE(shared_folder.stat().st_mode) == mode
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        assert stat.S_IMODE(paths.daemon_dir(data).stat().st_mode) == 0o700  # made by us
        assert stop_spawned(daemon) == 0
    finally:
        daemon.kill()


# --- 8 --------------------------------------------------------------------------------


def test_what_a_client_may_persist_is_bounded(shared: Spawned) -> None:
    folder = make_library(shared.socket.parent / "lib8", effects=1, beds=0)
    c = shared.client
    for overrides, bound in (
        ([(f"x{i}/**", "ambience") for i in range(200_000)], "at most 100"),
        ([(f"x{i}/**", "ambience") for i in range(101)], "at most 100"),
        ([("a" * 300, "music")], "256 characters"),
        ([("x/**", "music" + "z" * 1000)], "unknown sound kind 'musiczzz"),
    ):
        with pytest.raises(SfxmatchError) as refused:
            c.library_add(folder, "bounded", kind_overrides=overrides)
        assert status_of(refused.value) == "INVALID_ARGUMENT" and bound in str(refused.value)
        assert len(str(refused.value)) < 200
    added = c.library_add(folder, "bounded", kind_overrides=[("x/**", "ambience")] * 100)
    assert len(added.kind_overrides) == 100
    assert c.library_status("bounded")[0].library.name == "bounded"
    registry = shared.data / "libraries" / "libraries.json"
    assert registry.stat().st_size < 64 * 1024
    for call, bound in (
        (lambda: c.library_search("x", library=[f"n{i}" for i in range(65)]), "at most 64"),
        (lambda: c.get_job("j" * 201), "200 characters"),
    ):
        with pytest.raises(SfxmatchError) as refused:
            call()
        assert status_of(refused.value) == "INVALID_ARGUMENT" and bound in str(refused.value)
    assert c.library_remove("bounded") == 0


# --- concurrent writers ----------------------------------------------------------------


def test_libraries_added_at_once_are_all_kept(shared: Spawned) -> None:
    """Forty LibraryAdd calls at once, each on a connection of its own: every one answered
    OK is registered (the lane refuses those past its bound, and says so)."""
    top = shared.socket.parent / "race"
    for i in range(40):
        (top / f"lib{i}").mkdir(parents=True)
    barrier = threading.Barrier(40)
    added: list[str] = []
    refused: list[SfxmatchError] = []

    def add(i: int) -> None:
        with Client(f"unix://{shared.socket}", shared.token, timeout=60) as mine:
            mine.version()
            barrier.wait()
            try:
                added.append(mine.library_add(top / f"lib{i}", f"race{i}").name)
            except SfxmatchError as error:
                refused.append(error)

    threads = [threading.Thread(target=add, args=(i,)) for i in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    registered = {s.library.name for s in shared.client.library_status()}
    try:
        assert len(added) + len(refused) == 40 and added
        assert {status_of(e) for e in refused} <= {"RESOURCE_EXHAUSTED"}
        assert set(added) <= registered, f"lost: {sorted(set(added) - registered)}"
    finally:
        for name in registered:
            if name.startswith("race"):
                shared.client.library_remove(name)


_ADDER = """
import sys
from pathlib import Path
from sfxmatch.library.registry import LibraryConfig, Registry
folder, who = Path(sys.argv[1]), sys.argv[2]
while not (folder / "go").exists():  # all start together
    pass
registry = Registry(folder)
for i in range(10):
    registry.add(LibraryConfig(f"{who}-{i}", f"/sounds/{who}/{i}"))
"""


def test_processes_changing_the_library_list_at_once_lose_nothing(root: Path) -> None:
    adders = [
        subprocess.Popen([sys.executable, "-c", _ADDER, str(root), f"p{n}"], cwd=REPO)
        for n in range(4)
    ]
    (root / "go").touch()
    assert [adder.wait(timeout=120) for adder in adders] == [0] * 4
    from sfxmatch.library.registry import Registry

    names = {library.name for library in Registry(root).all()}
    assert names == {f"p{n}-{i}" for n in range(4) for i in range(10)}


def test_one_process_at_a_time_updates_a_models_index(root: Path) -> None:
    """The daemon and a local `library index` never update one model's index at once: the
    second waits a moment, then says which process holds it."""
    data, sock = root / "data", root / "d.sock"
    daemon = spawn_daemon(data, sock, "--load-model", "lazy")
    env = dict(os.environ, SFXMATCH_DATA_DIR=str(data), SFXMATCH_CACHE_DIR=str(root / "cache"))
    env["SFXMATCH_MODEL"] = "imagebind-tiny"
    local = [sys.executable, "-m", "sfxmatch", "library", "index", "--local", "small"]
    try:
        client = connect_spawned(daemon, data, sock)
        client.library_add(_big_library(root / "big", files=400), "big")
        client.library_add(make_library(root / "small", effects=1, beds=0), "small")
        stream = client.stream_index(["big"])
        for event in stream:
            if event.file is not None:  # the daemon is inside its index run
                break
        os.kill(daemon.pid, signal.SIGSTOP)  # ... and stays there while the CLI tries
        try:
            busy = subprocess.run(local, env=env, capture_output=True, text=True, cwd=REPO)
        finally:
            os.kill(daemon.pid, signal.SIGCONT)
        assert busy.returncode == 2, busy.stderr
        assert f"is in use by another sfxmatch process (pid {daemon.pid}: " in busy.stderr
        assert "sfxmatch daemon run" in busy.stderr and "try again when it is done" in busy.stderr
        stream.cancel()
        wait_for(lambda: not client.list_jobs(active_only=True), 30, "the index's end")
        # The run over, the index is free again (a BusyError here would fail the test).
        from sfxmatch.files import exclusive

        (index_lock,) = (data / "libraries").glob("*/index.lock")
        with exclusive(index_lock, "the index", wait=5.0):
            pass
        client.close()
        assert stop_spawned(daemon) == 0
    finally:
        daemon.kill()  # stopped or not


# --- 9 --------------------------------------------------------------------------------


def test_undecodable_and_absurd_requests_are_invalid_argument(shared: Spawned) -> None:
    for target in (f"unix://{shared.socket}", shared.tcp):
        for method in ("Version", "LibraryAdd", "Suggest", "LibraryIndex"):
            error = _raw(target, f"/sfxmatch.v1.Sfxmatch/{method}", b"\xff\xff\xff", shared.token)
            assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, (method, error.details())
            assert "not a valid" in error.details()
    deep = pb.RenderRequest(
        suggestions_json="[" * 200_000 + "]" * 200_000, mix=str(shared.socket.parent / "m.wav")
    )
    error = _raw(shared.tcp, "/sfxmatch.v1.Sfxmatch/Render", deep.SerializeToString(), shared.token)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "nests too deeply" in error.details()
    long_edit = pb.SuggestRequest(
        edit=pb.Edit(
            clips=[pb.SourceClip(path="/x.mp4", source_out=1e12)],
            fps=pb.Rational(numerator=25, denominator=1),
        )
    )
    error = _raw(
        shared.tcp, "/sfxmatch.v1.Sfxmatch/Suggest", long_edit.SerializeToString(), shared.token
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert shared.process.poll() is None and shared.client.health()


def test_a_huge_grace_period_is_refused_and_the_daemon_lives_on(root: Path) -> None:
    data, sock = root / "data", root / "d.sock"
    daemon = spawn_daemon(data, sock, "--load-model", "lazy")
    try:
        client = connect_spawned(daemon, data, sock)
        for grace in (1e300, float("inf"), float("nan"), -5.0):
            with pytest.raises(SfxmatchError) as refused:
                client.shutdown(grace)
            assert status_of(refused.value) == "INVALID_ARGUMENT" and "grace" in str(refused.value)
        assert client.health() and daemon.poll() is None
        assert sock.exists() and paths.info_path(data).exists()
        client.shutdown(0.5)
        client.close()
        assert daemon.wait(timeout=60) == 0
    finally:
        daemon.kill()
    assert not sock.exists() and not paths.info_path(data).exists()


def test_a_damaged_vector_store_is_said_in_words_without_the_engines_text(root: Path) -> None:
    from sfxmatch.config import Settings
    from sfxmatch.pipeline import Pipeline
    from sfxmatch.store.lance import LanceStore

    data, sock, stores = root / "data", root / "d.sock", root / "store"
    settings = Settings(cache_dir=root / "cache", data_dir=data)
    spec = Pipeline(settings, model="imagebind-tiny")
    store = stores / spec.model_key
    LanceStore(store, dim=spec.dim).close()
    versions = list(store.rglob("_versions/*"))
    assert versions
    for version in versions:  # the table's manifests, damaged
        version.write_bytes(b"garbage")
    env = {"SFXMATCH_STORE_DIR": str(stores)}
    daemon = spawn_daemon(data, sock, "--load-model", "lazy", env=env)
    try:
        client = connect_spawned(daemon, data, sock)
        client.library_add(make_library(root / "sounds", effects=1, beds=0), "damaged")
        with pytest.raises(SfxmatchError) as failed:
            client.library_remove("damaged")
        error = failed.value
        assert isinstance(error, StoreError), (type(error), str(error))
        assert status_of(error) == "FAILED_PRECONDITION"
        assert "cannot open the vector store" in str(error) and str(store) in str(error)
        for internal in (".rs", ".cargo", "LanceError", "lance error", "garbage"):
            assert internal not in str(error)
        assert ".cargo" in daemon_logs(root)  # the engine's own words are in the log
        client.close()
        assert stop_spawned(daemon) == 0
    finally:
        daemon.kill()


def _can_mount_a_small_disk(folder: Path) -> bool:
    probe = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
         f'mount -t tmpfs -o size=64k tmpfs "{folder}"'],
        capture_output=True,
    )  # fmt: skip
    return probe.returncode == 0


def test_a_full_disk_while_indexing_is_resource_exhausted_in_words(root: Path) -> None:
    data, sock, store = root / "data", root / "d.sock", root / "store"
    store.mkdir()
    if shutil.which("unshare") is None or not _can_mount_a_small_disk(store):
        pytest.skip("needs user and mount namespaces (unshare) for a small disk of its own")
    files = 48
    library = make_library(root / "sounds", effects=files, beds=0)
    # The store lives on a 128 KiB disk of the daemon's own (a tmpfs in its namespace).
    wrapper = (
        "unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
        'mount -t tmpfs -o size=128k tmpfs "$SFXMATCH_STORE_DIR" && exec "$@"', "sh",
    )  # fmt: skip
    env = {"SFXMATCH_STORE_DIR": str(store), "SFXMATCH_INDEX_BATCH": "4"}
    daemon = spawn_daemon(data, sock, "--load-model", "lazy", env=env, wrapper=wrapper)
    try:
        client = connect_spawned(daemon, data, sock)
        client.library_add(library, "full")
        with pytest.raises(SfxmatchError) as full:
            client.stream_index(["full"], timeout=120).run()
        error = full.value
        assert isinstance(error, StorageFullError), (type(error), str(error))
        assert status_of(error) == "RESOURCE_EXHAUSTED"
        assert "no space left" in str(error) and "vector store" in str(error)
        for internal in (".rs", "os error", "lance", "Error(", ".cargo"):
            assert internal not in str(error)
        # What was committed before the disk filled up is kept, and the daemon serves on.
        (status,) = client.library_status("full")
        assert 0 < status.sounds < files
        hits = client.library_search("door slam", library="full", top_k=files)
        assert len(hits) == status.sounds
        client.close()
        assert stop_spawned(daemon) == 0
    finally:
        daemon.kill()


# --- 10 -------------------------------------------------------------------------------


def _big_library(folder: Path, files: int = 4000) -> Path:
    """Files that take the scan long to hash (1 MiB each, sparse: no disk space)."""
    folder.mkdir(parents=True)
    header = b"RIFF" + struct.pack("<I", 36) + b"WAVE" + b"fmt "
    header += struct.pack("<IHHIIHH", 16, 1, 1, 16000, 32000, 2, 16) + b"data" + bytes(4)
    for i in range(files):
        fd = os.open(folder / f"f{i:05d}.wav", os.O_WRONLY | os.O_CREAT, 0o644)
        os.write(fd, header)
        os.ftruncate(fd, 1 << 20)
        os.close(fd)
    return folder


def test_cancel_and_deadline_end_an_index_within_a_second_even_mid_scan(shared: Spawned) -> None:
    c = shared.client
    c.library_add(_big_library(shared.socket.parent / "lib10"), "big")
    stream = c.stream_index(["big"])
    cancelled_at = 0.0
    with pytest.raises(Cancelled):
        for event in stream:
            if event.file is not None and event.file.stage == "scan" and not cancelled_at:
                cancelled_at = time.monotonic()
                c.cancel_job(event.job_id)
    took = time.monotonic() - cancelled_at
    assert cancelled_at and took < FAST, f"the index ended {took:.2f} s after its cancel"
    job = c.get_job(stream.job_id)
    assert job.state == "cancelled" and job.error_code == "CANCELLED"
    assert c.library_status("big")[0].sounds == 0  # a cancelled scan changes nothing

    deadline = 1.5
    with pytest.raises(SfxmatchError) as late:
        c.stream_index(["big"], timeout=deadline).run()
    assert status_of(late.value) == "DEADLINE_EXCEEDED"
    job = max(c.list_jobs(), key=lambda j: j.created_at)
    job = wait_for(lambda: (j := c.get_job(job.id)).finished_at and j, 30, "the late job's end")
    assert job.state == "cancelled" and job.error_code == "DEADLINE_EXCEEDED"
    assert job.finished_at - job.created_at < deadline + FAST
    assert c.library_remove("big") == 0
