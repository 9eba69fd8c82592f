"""Writing files so that a crash or a full disk never leaves a half-written one; locks that
processes (and threads) take around a read-modify-write of shared files; and the one test of
"is this path inside that folder" that every exclusion check uses.

Standard library only (the client and the daemon's records import this)."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from sfxmatch.errors import BusyError, StorageFullError, is_storage_full


@contextlib.contextmanager
def storage_writes(what: str, folder: str | os.PathLike[str] | None = None) -> Iterator[None]:
    """Raise :class:`StorageFullError` (``what``, ``folder``) where a write in the block
    fails for want of space; every other error passes unchanged."""
    try:
        yield
    except StorageFullError:
        raise
    except Exception as exc:
        if is_storage_full(exc):
            raise StorageFullError(what, None if folder is None else Path(folder)) from exc
        raise


def umask() -> int:
    """The process's file-mode creation mask, read without changing it where the system says
    it (Linux's /proc; changing it to read it would race with other threads' writes)."""
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status") as status:
        for line in status:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


_UMASK_LOCK = threading.Lock()


def normal_mode(target: str | os.PathLike[str]) -> int:
    """The mode a file at ``target`` gets as the user's own programs would make it: an
    existing file's mode is kept; a new one is 0666 less the umask (0644 with umask 022). A
    temporary file from ``mkstemp`` is 0600, unreadable to the others of a shared project."""
    with contextlib.suppress(OSError):
        return os.stat(target).st_mode & 0o7777
    return 0o666 & ~umask()


@contextlib.contextmanager
def atomic_write(
    path: str | os.PathLike[str], *, private: bool = False, suffix: str = ".tmp"
) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block succeeds, what was written
    there replaces ``path`` atomically: flushed to disk (fsync), renamed, and the folder
    synced so the rename survives a power cut. Readers see the old file or the new one,
    never a mix. On any error the temporary file is removed and ``path`` is as it was.

    The folder is created if needed. The file gets the user's normal mode
    (:func:`normal_mode`); ``private`` keeps it 0600. ``suffix`` ends the temporary name
    (writers that choose a format by extension need the real one). A full disk raises
    StorageFullError."""
    target = Path(path)
    with storage_writes(target.name, target.parent):
        target.parent.mkdir(parents=True, exist_ok=True)
        mode = 0o600 if private else normal_mode(target)
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix, dir=target.parent)
        os.close(fd)
        tmp = Path(name)
        try:
            if mode != 0o600 and sys.platform != "win32":
                os.chmod(tmp, mode)  # not mkstemp's 0600
            yield tmp
            _fsync_file(tmp)
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        fsync_folder(target.parent)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_folder(folder: Path) -> None:
    """Flush a folder's entries (a rename into it) to disk; nothing on Windows."""
    if sys.platform == "win32":  # no directory handles to sync; NTFS journals the rename
        return
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_text_atomic(path: str | os.PathLike[str], text: str, *, private: bool = False) -> Path:
    """Write ``text`` (UTF-8) to ``path`` through :func:`atomic_write`."""
    with atomic_write(path, private=private) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


# --- locks ------------------------------------------------------------------------------


def try_lock(fd: int, exclusive: bool) -> bool:
    """Take a lock on open file ``fd`` without waiting; False when another holds it. The
    lock belongs to this open file: another ``open`` of the same file, in this process or
    another, conflicts with it (``flock``); the kernel drops it when the process dies."""
    if sys.platform == "win32":  # pragma: no cover - no flock there
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return False
        raise
    return True


def unlock(fd: int) -> None:
    if sys.platform == "win32":  # pragma: no cover
        import msvcrt

        with contextlib.suppress(OSError):
            msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
        return
    import fcntl

    with contextlib.suppress(OSError):
        fcntl.flock(fd, fcntl.LOCK_UN)


def _command_line() -> str:
    """This process's command line, short: ``sfxmatch daemon run ...`` (``python -m
    sfxmatch`` and the console script alike)."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    program = spec.name.removesuffix(".__main__") if spec is not None else Path(sys.argv[0]).name
    return " ".join([program, *sys.argv[1:]])[:200]


def _holder_text(fd: int) -> str:
    """Who wrote itself into a held lock file, in words."""
    try:
        data = json.loads(os.pread(fd, 4096, 0) or b"{}")
        pid, host, program = data.get("pid"), data.get("host"), data.get("program")
    except (OSError, ValueError, AttributeError):
        return "a process that did not say which"
    where = f" on {host}" if host and host != socket.gethostname() else ""
    return f"pid {pid}{where}: {program}" if program else f"pid {pid}{where}"


@contextlib.contextmanager
def exclusive(path: str | os.PathLike[str], what: str, *, wait: float) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (made if missing, with its folder) for the block:
    between processes and between threads alike. Waits up to ``wait`` seconds for another
    holder, then raises :class:`BusyError` naming ``what`` and the holder (which writes its
    pid, host and command line into the file while it holds it)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(target, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + wait
        pause = threading.Event()
        while not try_lock(fd, exclusive=True):
            if time.monotonic() >= deadline:
                raise BusyError(
                    f"{what} is in use by another sfxmatch process ({_holder_text(fd)}); "
                    "try again when it is done"
                )
            pause.wait(0.02)
        me = {"pid": os.getpid(), "host": socket.gethostname(), "program": _command_line()}
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(me).encode("utf-8"), 0)
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            unlock(fd)
    finally:
        os.close(fd)


# --- folders inside folders -------------------------------------------------------------


def real_paths(folders: Iterable[str | os.PathLike[str]]) -> tuple[str, ...]:
    """``folders`` as real paths (links resolved), for :func:`inside`."""
    return tuple(os.path.realpath(os.fspath(folder)) for folder in folders)


def inside(real: str | os.PathLike[str], folders: Iterable[str]) -> str | None:
    """The first of ``folders`` (real paths) that the real path ``real`` is, or lies in;
    None when it is in none. Compared by whole components: ``/a/bc`` is not inside ``/a/b``."""
    text = os.fspath(real)
    for folder in folders:
        if text == folder or text.startswith(folder.rstrip(os.sep) + os.sep):
            return folder
    return None
