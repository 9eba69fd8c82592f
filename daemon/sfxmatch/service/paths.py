"""Where a daemon keeps its socket, token and info file; how a client finds them.

Everything lives in ``<data dir>/daemon/`` (``$SFXMATCH_DATA_DIR`` or the per-user data dir,
``~/.local/share/sfxmatch`` on Linux), a folder created mode 0700:

- ``token``: the shared secret every call carries (``authorization: Bearer <token>``),
  created 0600 at the daemon's first start and kept across restarts;
- ``sfxmatch.sock``: the default Unix socket (chmod 0600 once bound);
- ``daemon.json``: written 0600 while a daemon runs (pid, version, addresses), removed when
  it stops; ``find_daemon`` starts from it.

Standard library only: the client imports this, and it must stay light.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sfxmatch.config import ENV_DATA_DIR, default_data_dir, env_path
from sfxmatch.errors import ConfigError

ENV_DAEMON_ADDRESS = "SFXMATCH_DAEMON_ADDRESS"  # a client connects here instead of daemon.json
ENV_DAEMON_TOKEN_FILE = "SFXMATCH_DAEMON_TOKEN_FILE"
SOCKET_NAME = "sfxmatch.sock"
TOKEN_NAME = "token"
INFO_NAME = "daemon.json"
MAX_SOCKET_PATH = 100  # sun_path is 108 bytes on Linux, 104 on macOS


def daemon_dir(data_dir: Path | None = None) -> Path:
    """``<data dir>/daemon``: the daemon's socket, token and info file."""
    return (data_dir or env_path(ENV_DATA_DIR) or default_data_dir()) / "daemon"


def ensure_private_dir(folder: Path) -> Path:
    """Create ``folder`` (0700) if needed; refuse one that others can write to."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    info = folder.stat()
    if info.st_uid != os.getuid():
        raise ConfigError(f"{folder}: belongs to another user; refusing to use it")
    if info.st_mode & 0o077:
        os.chmod(folder, 0o700)
    return folder


def default_socket(data_dir: Path | None = None) -> Path:
    return daemon_dir(data_dir) / SOCKET_NAME


def token_path(data_dir: Path | None = None) -> Path:
    override = env_path(ENV_DAEMON_TOKEN_FILE)
    return override or daemon_dir(data_dir) / TOKEN_NAME


def ensure_token(path: Path) -> str:
    """The token in ``path``, created (0600, 32 random bytes as hex) when missing.

    An existing file that others can read is refused: the secret would be no secret.
    """
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
    if len(text) < 32:
        raise ConfigError(f"{path}: token is too short; delete the file and restart the daemon")
    return text


def socket_address(path: Path) -> str:
    """gRPC target for a Unix socket path (checks the length limit)."""
    absolute = Path(os.path.abspath(path))
    if len(os.fsencode(absolute)) > MAX_SOCKET_PATH:
        raise ConfigError(
            f"{absolute}: socket path longer than {MAX_SOCKET_PATH} bytes; "
            "give a shorter one with --socket"
        )
    return f"unix://{absolute}"


@dataclass(frozen=True)
class DaemonInfo:
    """What ``daemon.json`` says about a running daemon."""

    pid: int
    version: str
    addresses: tuple[str, ...]
    started_at: float
    token_file: str

    def to_json(self) -> str:
        return json.dumps(
            {
                "pid": self.pid,
                "version": self.version,
                "addresses": list(self.addresses),
                "started_at": self.started_at,
                "token_file": self.token_file,
            },
            indent=2,
        )


def info_path(data_dir: Path | None = None) -> Path:
    return daemon_dir(data_dir) / INFO_NAME


def write_info(path: Path, info: DaemonInfo) -> None:
    """Write ``daemon.json`` atomically, mode 0600."""
    ensure_private_dir(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=".daemon.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(info.to_json())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def read_info(path: Path) -> DaemonInfo | None:
    """The info file's content, or None when there is none or it is unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return DaemonInfo(
            pid=int(data["pid"]),
            version=str(data.get("version", "")),
            addresses=tuple(str(a) for a in data["addresses"]),
            started_at=float(data.get("started_at", 0.0)),
            token_file=str(data.get("token_file", "")),
        )
    except (OSError, ValueError, KeyError, TypeError):
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
    with contextlib.suppress(OSError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        if fields and fields[0] == "Z":
            return False
    return True
