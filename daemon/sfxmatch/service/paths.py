"""Where a daemon keeps its socket, token and records; how a client finds it; how anyone
tells whether it still runs.

Everything lives in ``<data dir>/daemon/`` (``$SFXMATCH_DATA_DIR`` or the per-user data dir,
``~/.local/share/sfxmatch`` on Linux), a folder created mode 0700:

- ``daemon.lock``: locked (``flock``, exclusive) by the daemon for its whole life. One
  daemon per data folder: a second one cannot take the lock and says which daemon holds
  it. The kernel drops the lock when the process dies, however it dies, so "is a daemon
  running on this data folder" is asked of the lock, never of a pid that may have been
  reused. Whoever takes the lock empties the file; only the daemon then writes its record
  there (``DaemonProcess``: tagged as the daemon, its pid, process start time, host name
  and PID namespace), for messages and for ``daemon stop``'s last resort: a signal, only to
  that very process, and only from the same host and PID namespace (a ``daemon stop``
  tidying stale records holds the lock for a moment too, and writes no record);
- ``token``: the shared secret every call carries (``authorization: Bearer <token>``),
  created 0600 at the daemon's first start and kept across restarts;
- ``sfxmatch.sock``: the default Unix socket (chmod 0600 once bound);
- ``daemon.json``: written 0600 while a daemon runs (pid, process start time, version,
  addresses), removed when it stops; ``find_daemon`` starts from it. One left behind by a
  killed daemon is stale: the next daemon (or ``daemon stop``) removes it, and the sockets
  it names when nobody listens on them.

Folders are created 0700 by us; an existing folder is never chmod-ed (a token file may sit
in a shared folder), but one that another user owns, or that others may write to without
the sticky bit, is refused.

Standard library only: the client imports this, and it must stay light.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import stat
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from sfxmatch.config import (
    ENV_DAEMON_ADDRESS,
    ENV_DAEMON_TOKEN_FILE,
    ENV_DATA_DIR,
    default_data_dir,
    env_path,
)
from sfxmatch.errors import ConfigError
from sfxmatch.files import try_lock, unlock, write_text_atomic

__all__ = ["ENV_DAEMON_ADDRESS", "ENV_DAEMON_TOKEN_FILE"]  # defined in config, named here too
SOCKET_NAME = "sfxmatch.sock"
TOKEN_NAME = "token"
INFO_NAME = "daemon.json"
LOCK_NAME = "daemon.lock"
MAX_SOCKET_PATH = 100  # sun_path is 108 bytes on Linux, 104 on macOS


def daemon_dir(data_dir: Path | None = None) -> Path:
    """``<data dir>/daemon``: the daemon's socket, token, lock and info file."""
    return (data_dir or env_path(ENV_DATA_DIR) or default_data_dir()) / "daemon"


# --- folders --------------------------------------------------------------------------


def ensure_private_dir(folder: Path) -> Path:
    """``folder``, created mode 0700 when missing (its missing parents get the usual mode).

    An existing folder is used as it is and never chmod-ed. It is refused when another user
    owns it (root excepted: the system temp folder) or when others may write to it without
    the sticky bit (they could swap the files in it)."""
    created = False
    if not folder.exists():
        folder.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.mkdir(folder, 0o700)
            created = True
        except FileExistsError:
            pass
    try:
        info = folder.stat()
    except OSError as exc:
        raise ConfigError(f"{folder}: cannot use this folder ({exc.strerror or exc})") from None
    if not stat.S_ISDIR(info.st_mode):
        raise ConfigError(f"{folder}: is not a folder")
    if created and stat.S_IMODE(info.st_mode) != 0o700:
        os.chmod(folder, 0o700)  # ours, just made: the umask may have taken bits away
        return folder
    if hasattr(os, "getuid") and info.st_uid not in (os.getuid(), 0):
        raise ConfigError(f"{folder}: belongs to another user; refusing to use it")
    if info.st_mode & 0o022 and not info.st_mode & stat.S_ISVTX:
        raise ConfigError(
            f"{folder}: other users can write to this folder (mode "
            f"{stat.S_IMODE(info.st_mode):o}), so they could replace the daemon's files; "
            "use a folder only you can write to"
        )
    return folder


def default_socket(data_dir: Path | None = None) -> Path:
    return daemon_dir(data_dir) / SOCKET_NAME


# --- token ----------------------------------------------------------------------------


def token_path(data_dir: Path | None = None) -> Path:
    override = env_path(ENV_DAEMON_TOKEN_FILE)
    return override or daemon_dir(data_dir) / TOKEN_NAME


def ensure_token(path: Path) -> str:
    """The token in ``path``, created (0600, 32 random bytes as hex) when missing.

    An existing file that others can read, or that is not ours, is refused: the secret
    would be no secret."""
    ensure_private_dir(path.parent)
    if not path.exists():
        _create_token(path)
    return read_token(path)


def _create_token(path: Path) -> None:
    """Write a new token beside ``path`` (mkstemp makes it 0600), then hard-link it into
    place: a client polling for the file never reads it half written, and, as with O_EXCL,
    the first of two daemons starting at once wins. Without hard links (FAT, some network
    shares) it falls back to O_EXCL and a plain write."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(secrets.token_hex(32) + "\n")
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        except OSError:
            with contextlib.suppress(FileExistsError):
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w", encoding="ascii") as f:
                    f.write(Path(tmp).read_text(encoding="ascii"))
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def read_token(path: Path) -> str:
    """Read a token file, refusing one that other users could read or change."""
    try:
        info = path.stat()
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no daemon token (start the daemon first)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the daemon token ({exc})") from None
    if info.st_mode & 0o077 or not stat.S_ISREG(info.st_mode):
        raise ConfigError(f"{path}: token file must be a file only you can read (chmod 600)")
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        raise ConfigError(f"{path}: token file belongs to another user; refusing it")
    if len(text) < 32:
        raise ConfigError(f"{path}: token is too short; delete the file and restart the daemon")
    return text


# --- sockets --------------------------------------------------------------------------


def socket_address(path: Path) -> str:
    """gRPC target for a Unix socket path (checks the length limit)."""
    absolute = Path(os.path.abspath(path))
    if len(os.fsencode(absolute)) > MAX_SOCKET_PATH:
        raise ConfigError(
            f"{absolute}: socket path longer than {MAX_SOCKET_PATH} bytes; "
            "give a shorter one with --socket"
        )
    return f"unix://{absolute}"


def socket_path_of(address: str) -> Path | None:
    """The file of a ``unix://`` or ``unix:`` address, else None."""
    for prefix in ("unix://", "unix:"):
        if address.startswith(prefix):
            return Path(address[len(prefix) :])
    return None


def socket_listening(path: Path, timeout: float = 2.0) -> bool:
    """Whether something may be listening on the Unix socket ``path``. Only a refused
    connection (ECONNREFUSED: a socket file nobody listens on) or no file says no: a
    listener too busy to accept (a full backlog, a timeout) or one this user may not
    connect to counts as listening, so that its socket is never taken for a stale one."""
    if not hasattr(socket, "AF_UNIX"):
        return False
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.settimeout(timeout)
        probe.connect(os.fspath(path))
    except (ConnectionRefusedError, FileNotFoundError):
        return False
    except OSError:
        return True
    finally:
        probe.close()
    return True


SOCKET_LINK_PREFIX = "socket-folder-"


def socket_bind_path(socket_path: Path, private_dir: Path) -> tuple[Path, Path | None]:
    """Where to bind the socket ``socket_path``, and the link made for it (or None).

    gRPC removes whatever socket file sits at the path it bound when its server stops,
    even one another program put there since. A socket in the daemon's own private folder
    is bound as it is (nobody else can write there); one elsewhere is bound through a link,
    in the private folder, to its folder, and the daemon removes that link before stopping
    its server: gRPC's removal then finds nothing, and the daemon removes its socket itself,
    only if it is still the file it bound (``same_file``)."""
    folder = Path(os.path.realpath(socket_path.parent))
    if folder == Path(os.path.realpath(private_dir)):
        return socket_path, None
    link = private_dir / f"{SOCKET_LINK_PREFIX}{os.getpid()}"
    through = link / socket_path.name
    if len(os.fsencode(through)) > MAX_SOCKET_PATH:  # a long data folder: bound as given
        return socket_path, None
    with contextlib.suppress(FileNotFoundError):
        link.unlink()
    os.symlink(folder, link)
    return through, link


def same_file(path: Path, identity: tuple[int, int] | None) -> bool:
    """Whether ``path`` (not followed if a link) is still the file ``identity`` (its device
    and inode, from ``file_identity``) names."""
    try:
        info = path.lstat()
    except OSError:
        return False
    return identity is not None and (info.st_dev, info.st_ino) == identity


def file_identity(path: Path) -> tuple[int, int] | None:
    """The device and inode of ``path`` (not followed if a link), or None."""
    try:
        info = path.lstat()
    except OSError:
        return None
    return info.st_dev, info.st_ino


def free_socket_path(path: Path, *, ours: bool) -> None:
    """Make ``path`` free for a new socket, or raise ConfigError saying why not.

    Nothing there: fine. A socket nobody listens on that a daemon of this data folder left
    (``ours``): removed. Anything else is left alone and refused: a file, a folder, a link,
    a socket someone listens on, or a stale socket that is not ours to remove."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        return
    except OSError as exc:
        raise ConfigError(f"{path}: cannot check the socket path ({exc.strerror or exc})") from None
    if not stat.S_ISSOCK(info.st_mode):
        what = (
            "a symbolic link"
            if stat.S_ISLNK(info.st_mode)
            else "a folder"
            if stat.S_ISDIR(info.st_mode)
            else "a file"
            if stat.S_ISREG(info.st_mode)
            else "not a socket"
        )
        raise ConfigError(
            f"{path}: exists and is {what}, not a socket; refusing to replace it "
            "(give another --socket path)"
        )
    if socket_listening(path):
        raise ConfigError(
            f"{path}: another program is listening on this socket; give another --socket "
            "path, or stop it (`sfxmatch daemon stop` if it is an sfxmatch daemon)"
        )
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        ours = False  # another user's, whatever a record of ours says
    if not ours:
        raise ConfigError(
            f"{path}: a socket nobody listens on, but not one an sfxmatch daemon of this data "
            "folder left behind; remove it yourself if it is yours, or give another --socket"
        )
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


# --- processes ------------------------------------------------------------------------


def process_start_time(pid: int) -> int | None:
    """When process ``pid`` started, in clock ticks since boot (Linux); None when unknown.

    With the pid it names one process: a pid reused later has another start time."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
        return int(text.rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists (and is not a zombie we could see)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, another user's
    except OSError:
        return False
    with contextlib.suppress(OSError, IndexError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        if fields and fields[0] == "Z":
            return False
    return True


def same_process(pid: int, start_time: int | None) -> bool:
    """Whether ``pid`` still names the process that started at ``start_time`` (a pid reused
    by another program does not). Where start times cannot be read, only the pid counts."""
    if not pid_alive(pid):
        return False
    now = process_start_time(pid)
    return start_time is None or now is None or now == start_time


def pid_namespace() -> int | None:
    """This process's PID namespace (the inode of ``/proc/self/ns/pid``; None where there
    is none): a pid means the same process only inside one namespace."""
    try:
        return os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return None


DAEMON_ROLE = "daemon"


@dataclass(frozen=True)
class DaemonProcess:
    """A daemon process as it recorded itself: enough to tell it from any process that
    later gets its pid, on this machine or another sharing the data folder."""

    pid: int
    start_time: int | None  # process_start_time, clock ticks since boot (None: unknown)
    host: str
    pid_ns: int | None  # pid_namespace (None: the platform has none)

    @classmethod
    def this_process(cls) -> DaemonProcess:
        pid = os.getpid()
        return cls(pid, process_start_time(pid), socket.gethostname(), pid_namespace())

    def to_dict(self) -> dict[str, object]:
        return {
            "role": DAEMON_ROLE,
            "pid": self.pid,
            "start_time": self.start_time,
            "host": self.host,
            "pid_ns": self.pid_ns,
        }

    @classmethod
    def from_dict(cls, data: object) -> DaemonProcess | None:
        """The record in ``data``; None unless it is a daemon's, whole."""
        if not isinstance(data, dict) or data.get("role") != DAEMON_ROLE:
            return None
        try:
            start, ns = data.get("start_time"), data.get("pid_ns")
            return cls(
                int(data["pid"]),
                int(start) if start is not None else None,
                str(data["host"]),
                int(ns) if ns is not None else None,
            )
        except (KeyError, TypeError, ValueError):
            return None

    @property
    def here(self) -> bool:
        """Whether its pid means a process of this machine and PID namespace."""
        return self.host == socket.gethostname() and self.pid_ns == pid_namespace()

    @property
    def running(self) -> bool:
        """Whether it still runs (False when it is not ``here``: that cannot be told)."""
        return self.here and same_process(self.pid, self.start_time)

    def describe(self) -> str:
        if self.host != socket.gethostname():
            return f"pid {self.pid} on {self.host}"
        if self.pid_ns != pid_namespace():
            return f"pid {self.pid} in another PID namespace (a container?)"
        return f"pid {self.pid}"

    def signal(self, signum: int) -> bool:
        """Send ``signum`` to this very process; False, sending nothing, when it is not
        ``here`` or no longer runs. On Linux the process is pinned by a pidfd before it is
        checked, so the pid cannot pass to another process between the check and the
        signal."""
        if not self.here or self.pid <= 0:
            return False
        pidfd = None
        if hasattr(os, "pidfd_open") and hasattr(signal, "pidfd_send_signal"):
            try:
                pidfd = os.pidfd_open(self.pid)
            except ProcessLookupError:
                return False
            except OSError:  # a kernel without pidfds: check, then kill
                pidfd = None
        try:
            if not same_process(self.pid, self.start_time):
                return False
            if pidfd is not None:
                signal.pidfd_send_signal(pidfd, signum)
            else:
                os.kill(self.pid, signum)
        except ProcessLookupError:
            return False
        finally:
            if pidfd is not None:
                os.close(pidfd)
        return True


# --- records --------------------------------------------------------------------------


@dataclass(frozen=True)
class DaemonInfo:
    """What ``daemon.json`` says about a running daemon."""

    pid: int
    version: str
    addresses: tuple[str, ...]
    started_at: float
    token_file: str
    start_time: int | None = None  # the process's start, in clock ticks (process_start_time)
    host: str | None = None  # where it runs (None: not recorded, taken as this machine)
    pid_ns: int | None = None  # its PID namespace (pid_namespace)

    def to_json(self) -> str:
        return json.dumps(
            {
                "pid": self.pid,
                "start_time": self.start_time,
                "host": self.host,
                "pid_ns": self.pid_ns,
                "version": self.version,
                "addresses": list(self.addresses),
                "started_at": self.started_at,
                "token_file": self.token_file,
            },
            indent=2,
        )

    @property
    def alive(self) -> bool:
        """Whether the recorded process may still run: not when its pid names no process, or
        another one (reused); a daemon of another host or PID namespace cannot be told dead."""
        elsewhere = self.host is not None and (
            self.host != socket.gethostname() or self.pid_ns != pid_namespace()
        )
        return elsewhere or same_process(self.pid, self.start_time)

    @property
    def sockets(self) -> tuple[Path, ...]:
        return tuple(p for a in self.addresses if (p := socket_path_of(a)) is not None)


def info_path(data_dir: Path | None = None) -> Path:
    return daemon_dir(data_dir) / INFO_NAME


def write_info(path: Path, info: DaemonInfo) -> None:
    """Write ``daemon.json`` atomically, mode 0600."""
    ensure_private_dir(path.parent)
    write_text_atomic(path, info.to_json(), private=True)


def read_info(path: Path) -> DaemonInfo | None:
    """The info file's content, or None when there is none or it is unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        start, host, ns = data.get("start_time"), data.get("host"), data.get("pid_ns")
        return DaemonInfo(
            pid=int(data["pid"]),
            version=str(data.get("version", "")),
            addresses=tuple(str(a) for a in data["addresses"]),
            started_at=float(data.get("started_at", 0.0)),
            token_file=str(data.get("token_file", "")),
            start_time=int(start) if start is not None else None,
            host=str(host) if host is not None else None,
            pid_ns=int(ns) if ns is not None else None,
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


# --- the lock -------------------------------------------------------------------------


def lock_path(data_dir: Path | None = None) -> Path:
    return daemon_dir(data_dir) / LOCK_NAME


@dataclass(frozen=True)
class LockOwner:
    """Who holds a data folder's lock: the daemon's record, or None when the holder wrote
    none (not a daemon, such as a ``daemon stop`` tidying stale records; or a daemon in its
    first milliseconds)."""

    daemon: DaemonProcess | None

    def describe(self) -> str:
        if self.daemon is None:
            return "a process that wrote no daemon record"
        return self.daemon.describe()


def _read_owner(path: Path) -> LockOwner:
    try:
        return LockOwner(DaemonProcess.from_dict(json.loads(path.read_text(encoding="utf-8"))))
    except (OSError, ValueError):
        return LockOwner(None)


class DataFolderLock:
    """The exclusive lock a daemon holds on its data folder for its whole life.

    ``acquire`` waits up to ``wait`` seconds (a ``daemon status`` probing the lock at that
    moment holds it for microseconds) and raises ConfigError naming the daemon that holds
    it; it empties the file, and ``record_daemon`` (the daemon's own call, nobody else's)
    writes the daemon's record there. The kernel releases the lock when the process ends,
    even by SIGKILL."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, wait: float = 1.0) -> DataFolderLock:
        ensure_private_dir(self.path.parent)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        pause = threading.Event()
        waited = 0.0
        try:
            while not try_lock(fd, exclusive=True):
                if waited >= wait:
                    owner = _read_owner(self.path)
                    raise ConfigError(
                        f"{self.path.parent.parent}: this data folder is in use by another "
                        f"sfxmatch daemon ({owner.describe()}); stop it with "
                        "`sfxmatch daemon stop`, or give this one another data folder"
                        if owner.daemon is not None
                        else f"{self.path.parent.parent}: this data folder is locked by "
                        f"another sfxmatch process ({owner.describe()}); try again"
                    )
                pause.wait(0.05)
                waited += 0.05
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        with contextlib.suppress(OSError):  # a killed daemon's record is no one's now
            os.ftruncate(fd, 0)
        return self

    def record_daemon(self) -> DaemonProcess:
        """Write this process's record as the daemon's (only the daemon calls this, while
        it holds the lock)."""
        if self._fd is None:
            raise RuntimeError("record_daemon() needs the lock held")
        record = DaemonProcess.this_process()
        data = json.dumps(record.to_dict()).encode("utf-8")
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, data, 0)
        return record

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        unlock(fd)
        os.close(fd)

    def __enter__(self) -> DataFolderLock:
        return self if self.held else self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def lock_owner(data_dir: Path | None = None) -> LockOwner | None:
    """Who holds the data folder's daemon lock, or None when no daemon holds it.

    A shared lock is tried and dropped at once: it cannot be had while a daemon holds the
    exclusive one, and it never creates the lock file."""
    path = lock_path(data_dir)
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        if try_lock(fd, exclusive=False):
            unlock(fd)
            return None
    finally:
        os.close(fd)
    return _read_owner(path)


def remove_stale_records(data_dir: Path | None = None) -> DaemonInfo | None:
    """Remove what a daemon of this data folder left when it was killed: ``daemon.json``
    and the sockets it names that nobody listens on and that this user owns. Call only
    while holding the lock (no daemon runs then). A socket that cannot be removed (another
    user's, in a shared folder) is left as it is. Returns the stale record, if any."""
    path = info_path(data_dir)
    info = read_info(path)
    if info is not None:
        for sock in info.sockets:
            with contextlib.suppress(ConfigError, OSError):
                free_socket_path(sock, ours=True)
    folder = daemon_dir(data_dir)
    if folder.is_dir():
        for link in folder.glob(f"{SOCKET_LINK_PREFIX}*"):
            if link.is_symlink():  # socket_bind_path's, left by a killed daemon
                with contextlib.suppress(OSError):
                    link.unlink()
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    return info
