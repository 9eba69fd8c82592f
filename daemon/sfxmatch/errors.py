"""Typed errors. ``str(error)`` is one line a user can act on; the CLI prints it as is.

Each failure is raised as its class where it happens; the edges map classes (never message
text) to what they speak: the daemon to gRPC status codes (``service.translate``), the CLI
to exit codes.
"""

from __future__ import annotations

import errno
import sys
from pathlib import Path


class SfxmatchError(Exception):
    """Base of every error sfxmatch raises on purpose (user mistakes, bad input, missing files)."""


class MediaError(SfxmatchError):
    """A media file that cannot be used: names the file and what is wrong with it."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class ConformError(MediaError):
    """A sound an editor cannot import could not be conformed into one it can (names the
    file and why: undecodable, or its conform could not be written)."""


class ModelError(SfxmatchError):
    """The model cannot be built or its weights cannot be had (says how to provide them)."""


class ConfigError(SfxmatchError):
    """An option or configuration value that does not make sense."""


class LimitError(ConfigError):
    """A value over one of the documented bounds (how many overrides, how long a glob...)."""


class NotFoundError(ConfigError):
    """Something a request names does not exist: a library, a folder, a catalogue file."""


class AccessDeniedError(ConfigError):
    """A file or folder a request names that this process may not read (or write)."""


class PreconditionError(SfxmatchError):
    """A sound request that cannot be served yet: nothing to index, nothing indexed, the
    library list unreadable. Says what to do first."""


class BusyError(SfxmatchError):
    """Another process is doing the same work on the same data now (indexing one model's
    index): names it; try again when it is done."""


class UnknownSoundError(NotFoundError):
    """A sound path that lies in no registered library (names the path)."""


class NotIndexedError(PreconditionError):
    """A sound of a library that has not been indexed yet (says to index it)."""


class Cancelled(SfxmatchError):
    """The caller cancelled the work (nothing half-written is left behind)."""


class StorageFullError(SfxmatchError):
    """A disk or quota filled up while writing; what was committed before is kept.

    The message says what was being written and where, in words, never the storage
    engine's own text (which carries its source paths and error numbers)."""

    def __init__(self, what: str, folder: str | Path | None = None) -> None:
        self.what = what
        self.folder = Path(folder) if folder is not None else None
        where = f" (in {self.folder})" if self.folder is not None else ""
        super().__init__(
            f"no space left to write {what}{where}: free some disk space and try again; "
            "nothing already saved was lost"
        )


# errno values that mean "this storage is full": no space, quota, a file-size limit.
STORAGE_FULL_ERRNOS = frozenset(
    code for code in (errno.ENOSPC, getattr(errno, "EDQUOT", None), errno.EFBIG) if code
)
_SQLITE_FULL = 13
# What storage engines without typed errors (Lance, Arrow: Rust errors surfaced as
# RuntimeError/OSError/ValueError) put in their text for ENOSPC/EDQUOT/EFBIG. The one place
# sfxmatch reads an error's text: those engines give nothing else to go by (no errno, no
# class per cause). It is read only where a write failed, to raise StorageFullError there;
# the text itself is logged, never sent to a client.
_ENGINE_MARKS = (
    *(f"(os error {code})" for code in sorted(STORAGE_FULL_ERRNOS)),
    "No space left on device",
    "Disk quota exceeded",
)


def is_storage_full(exc: BaseException) -> bool:
    """Whether ``exc`` (from the OS, SQLite or an embedded engine) says the disk is full.

    Used only where a write fails, to raise :class:`StorageFullError` there; the engines
    that report failures as untyped text are recognised by the OS error they carry."""
    if isinstance(exc, StorageFullError):
        return True
    if isinstance(exc, OSError) and exc.errno in STORAGE_FULL_ERRNOS:
        return True
    sqlite3 = sys.modules.get("sqlite3")  # not imported here: clients import this module
    if sqlite3 is not None and isinstance(exc, sqlite3.Error):
        return getattr(exc, "sqlite_errorcode", None) == _SQLITE_FULL
    if isinstance(exc, OSError | RuntimeError | ValueError):
        text = str(exc)
        return any(mark in text for mark in _ENGINE_MARKS)
    return False
