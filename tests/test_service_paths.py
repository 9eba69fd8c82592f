"""The daemon's records, lock, folders and socket paths, without a daemon."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from sfxmatch.errors import ConfigError
from sfxmatch.service import paths


def test_a_missing_folder_is_made_0700_and_an_existing_one_never_chmodded(tmp_path: Path) -> None:
    made = paths.ensure_private_dir(tmp_path / "new" / "daemon")
    assert stat.S_IMODE(made.stat().st_mode) == 0o700
    for mode in (0o755, 0o750, 0o1777, 0o700):
        folder = tmp_path / f"existing-{mode:o}"
        folder.mkdir()
        folder.chmod(mode)
        assert paths.ensure_private_dir(folder) == folder
        assert stat.S_IMODE(folder.stat().st_mode) == mode
    writable = tmp_path / "group-writable"
    writable.mkdir()
    writable.chmod(0o775)  # others could swap the socket or the token: refused, not changed
    with pytest.raises(ConfigError, match="other users can write"):
        paths.ensure_private_dir(writable)
    assert stat.S_IMODE(writable.stat().st_mode) == 0o775


def test_the_lock_is_exclusive_names_its_owner_and_dies_with_the_process(tmp_path: Path) -> None:
    assert paths.lock_owner(tmp_path) is None
    held = paths.DataFolderLock(paths.lock_path(tmp_path)).acquire()
    try:
        owner = paths.lock_owner(tmp_path)  # held, by something that is not a daemon
        assert owner is not None and owner.daemon is None
        with pytest.raises(ConfigError, match="locked by another sfxmatch process"):
            paths.DataFolderLock(paths.lock_path(tmp_path)).acquire(wait=0.1)
        held.record_daemon()  # as only the daemon does
        owner = paths.lock_owner(tmp_path)
        assert owner is not None and owner.daemon == paths.DaemonProcess.this_process()
        assert owner.daemon.here and owner.daemon.running
        assert owner.daemon.start_time == paths.process_start_time(os.getpid())
        with pytest.raises(
            ConfigError, match=f"in use by another sfxmatch daemon \\(pid {os.getpid()}\\)"
        ):
            paths.DataFolderLock(paths.lock_path(tmp_path)).acquire(wait=0.1)
    finally:
        held.release()
    assert paths.lock_owner(tmp_path) is None
    # Held by a process that is then killed: free again, whatever its record says.
    code = (
        "import sys, os; from pathlib import Path; from sfxmatch.service import paths;"
        "paths.DataFolderLock(paths.lock_path(Path(sys.argv[1]))).acquire().record_daemon();"
        "print('held', flush=True); sys.stdin.readline()"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "held"
        owner = paths.lock_owner(tmp_path)
        assert owner is not None and owner.daemon is not None and owner.daemon.pid == child.pid
        child.kill()
        child.wait(timeout=30)
        assert paths.lock_owner(tmp_path) is None
        with paths.DataFolderLock(paths.lock_path(tmp_path)):
            assert paths.lock_owner(tmp_path) is not None
    finally:
        child.kill()


def test_a_record_names_one_process_not_a_pid(tmp_path: Path) -> None:
    me = os.getpid()
    started = paths.process_start_time(me)
    assert started is not None
    assert paths.same_process(me, started)
    assert not paths.same_process(me, started + 1)  # the pid, reused by another process
    info = paths.DaemonInfo(me, "0", ("unix:///x.sock", "127.0.0.1:1"), 0.0, "", started + 1)
    path = tmp_path / "daemon.json"
    paths.write_info(path, info)
    assert json.loads(path.read_text())["start_time"] == started + 1
    again = paths.read_info(path)
    assert again == info and not again.alive and again.sockets == (Path("/x.sock"),)


def test_a_daemon_record_is_signalled_only_here_and_only_while_it_runs() -> None:
    me = paths.DaemonProcess.this_process()
    assert paths.DaemonProcess.from_dict(me.to_dict()) == me
    assert paths.DaemonProcess.from_dict({**me.to_dict(), "role": "stop"}) is None
    assert paths.DaemonProcess.from_dict({"pid": me.pid}) is None  # not tagged: not a daemon
    elsewhere = paths.DaemonProcess(me.pid, me.start_time, "another-machine", me.pid_ns)
    other_ns = paths.DaemonProcess(me.pid, me.start_time, me.host, (me.pid_ns or 0) + 1)
    reused = paths.DaemonProcess(me.pid, (me.start_time or 0) + 1, me.host, me.pid_ns)
    for record in (elsewhere, other_ns, reused):
        assert not record.running
        assert not record.signal(0)  # nothing sent
    assert me.running and me.signal(0)  # signal 0: the check without a signal


def test_socket_paths_are_freed_only_when_they_are_stale_sockets_of_ours(tmp_path: Path) -> None:
    paths.free_socket_path(tmp_path / "absent.sock", ours=False)  # nothing there: fine
    note = tmp_path / "note.txt"
    note.write_text("keep me")
    with pytest.raises(ConfigError, match="is a file, not a socket"):
        paths.free_socket_path(note, ours=True)
    assert note.read_text() == "keep me"
    link = tmp_path / "link.sock"
    link.symlink_to(note)
    with pytest.raises(ConfigError, match="symbolic link"):
        paths.free_socket_path(link, ours=True)
    stale = tmp_path / "stale.sock"
    listening = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listening.bind(str(stale))
    listening.listen()
    try:
        with pytest.raises(ConfigError, match="another program is listening"):
            paths.free_socket_path(stale, ours=True)
    finally:
        listening.close()  # the file stays: a socket nobody listens on
    with pytest.raises(ConfigError, match="not one an sfxmatch daemon"):
        paths.free_socket_path(stale, ours=False)
    paths.free_socket_path(stale, ours=True)
    assert not stale.exists()


def test_stale_records_are_removed_with_their_sockets_only(tmp_path: Path) -> None:
    folder = paths.ensure_private_dir(paths.daemon_dir(tmp_path))
    sock = folder / "old.sock"
    left = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    left.bind(str(sock))
    left.close()
    note = tmp_path / "not-a-socket"
    note.write_text("x")
    info = paths.DaemonInfo(1, "0", (f"unix://{sock}", f"unix://{note}", "127.0.0.1:9"), 0.0, "")
    paths.write_info(paths.info_path(tmp_path), info)
    assert paths.remove_stale_records(tmp_path) == info
    assert not sock.exists() and note.exists() and not paths.info_path(tmp_path).exists()
    assert paths.remove_stale_records(tmp_path) is None


def test_stale_sockets_that_cannot_be_removed_are_left(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = paths.ensure_private_dir(paths.daemon_dir(tmp_path))
    socks = [folder / "theirs.sock", folder / "locked.sock"]
    for sock in socks:
        left = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        left.bind(str(sock))
        left.close()
    info = paths.DaemonInfo(1, "0", tuple(f"unix://{s}" for s in socks), 0.0, "")
    paths.write_info(paths.info_path(tmp_path), info)
    if os.getuid() == 0:
        os.chown(socks[0], 12345, 12345)  # another user's stale socket: never ours to remove
    real_unlink = Path.unlink

    def refuse(path: Path, missing_ok: bool = False) -> None:
        if path == socks[1]:
            raise PermissionError(13, "Permission denied", str(path))
        real_unlink(path, missing_ok=missing_ok)

    monkeypatch.setattr(Path, "unlink", refuse)
    assert paths.remove_stale_records(tmp_path) == info  # no PermissionError: a daemon starts
    assert socks[1].exists() and not paths.info_path(tmp_path).exists()
    if os.getuid() == 0:
        assert socks[0].exists()
        with pytest.raises(ConfigError, match="not one an sfxmatch daemon"):
            paths.free_socket_path(socks[0], ours=True)


def test_a_token_of_another_user_is_refused(tmp_path: Path) -> None:
    token = tmp_path / "d" / "token"
    paths.ensure_token(token)
    if os.getuid() != 0:
        pytest.skip("only root can give a file to another user")
    os.chown(token, 12345, 12345)
    with pytest.raises(ConfigError, match="another user"):
        paths.read_token(token)
