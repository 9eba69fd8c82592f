"""Typed errors. ``str(error)`` is one line a user can act on; the CLI prints it as is.

Each failure is raised as its class where it happens; the edges map classes (never message
text) to what they speak: the daemon to gRPC status codes (``service.translate.STATUS``),
the CLI to exit codes (``cli.EXIT_CODES``). The categories:

- invalid input: :class:`ConfigError` (:class:`LimitError`, :class:`TimelineError`) and
  :class:`MediaError`;
- not found: :class:`NotFoundError` (:class:`UnknownLibraryError`,
  :class:`UnknownSoundError`, :class:`MissingFileError`);
- access denied: :class:`AccessDeniedError`;
- precondition: :class:`PreconditionError` (:class:`NotIndexedError`, :class:`ModelError`:
  the model unavailable, its weights missing);
- busy: :class:`BusyError`; resource exhausted: :class:`ResourceExhaustedError`
  (:class:`StorageFullError`); cancelled: :class:`Cancelled`; unsupported
  (:class:`UnsupportedError`); :class:`InternalError`.

A daemon sends the class's name with the message (``wire_name``); the client raises the same
class with the same message (``from_wire``), so a local run and a daemon run fail alike.
"""

from __future__ import annotations

import errno
import sys
from pathlib import Path
from typing import Any


class SfxmatchError(Exception):
    """Base of every error sfxmatch raises on purpose (user mistakes, bad input, missing files)."""

    def wire_fields(self) -> dict[str, str]:
        """The attributes besides the message a daemon sends, so the client's copy has them."""
        return {}

    @classmethod
    def from_wire(cls, message: str, fields: dict[str, str]) -> SfxmatchError:
        """This class with ``message`` as it came from a daemon (no constructor re-run: the
        message is kept word for word)."""
        error = cls.__new__(cls)
        Exception.__init__(error, message)
        return error


class MediaError(SfxmatchError):
    """A media file that cannot be used: names the file and what is wrong with it."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")

    def wire_fields(self) -> dict[str, str]:
        return {"path": str(self.path), "problem": self.problem}

    @classmethod
    def from_wire(cls, message: str, fields: dict[str, str]) -> SfxmatchError:
        error = super().from_wire(message, fields)
        assert isinstance(error, MediaError)
        error.path = Path(fields.get("path", ""))
        error.problem = fields.get("problem", message)
        return error


class ConformError(MediaError):
    """A sound an editor cannot import could not be conformed into one it can (names the
    file and why: undecodable, or its conform could not be written)."""


class ConfigError(SfxmatchError):
    """An option or configuration value that does not make sense."""


class LimitError(ConfigError):
    """A value over one of the documented bounds (how many overrides, how long a glob...)."""


class TimelineError(ConfigError, ValueError):
    """Suggestions that cannot become this timeline (an unknown format, overlapping clips)."""


class NotFoundError(ConfigError):
    """Something a request names does not exist: a library, a folder, a catalogue file."""


class UnknownLibraryError(NotFoundError):
    """A library name that is not registered (lists the known ones)."""

    def __init__(self, name: str, known: list[str] | tuple[str, ...]) -> None:
        listed = ", ".join(sorted(known)) or "none yet"
        super().__init__(f"no library named {name!r} (known: {listed})")


class MissingFileError(MediaError, NotFoundError):
    """A file or folder a request names that does not exist."""

    def __init__(self, path: str | Path, problem: str = "no such file") -> None:
        super().__init__(path, problem)


class AccessDeniedError(ConfigError):
    """A file or folder a request names that this process may not read (or write)."""


class PreconditionError(SfxmatchError):
    """A sound request that cannot be served yet: nothing to index, nothing indexed, the
    library list unreadable. Says what to do first."""


class ModelError(PreconditionError):
    """The model is unavailable: it cannot be built or its weights cannot be had (says how
    to provide them)."""


class BusyError(SfxmatchError):
    """Another process is doing the same work on the same data now (indexing one model's
    index): names it; try again when it is done."""


class UnknownSoundError(NotFoundError):
    """A sound path that lies in no registered library (names the path)."""


class NotIndexedError(PreconditionError):
    """A sound of a library that has not been indexed yet (says to index it)."""


class Cancelled(SfxmatchError):
    """The caller cancelled the work (nothing half-written is left behind)."""


class ResourceExhaustedError(SfxmatchError):
    """A limit of this machine or of the daemon was reached: memory, disk, a full queue."""


class StoreError(SfxmatchError):
    """The store cannot do what was asked (unreachable service, rejected write, bad data)."""


class UnsupportedError(SfxmatchError):
    """What this daemon's pipeline cannot do (a test double without ``suggest``)."""


class InternalError(SfxmatchError):
    """An unexpected failure inside the daemon, sent as its class only (its log has it)."""


class StorageFullError(ResourceExhaustedError):
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

    def wire_fields(self) -> dict[str, str]:
        return {"what": self.what, "folder": str(self.folder or "")}

    @classmethod
    def from_wire(cls, message: str, fields: dict[str, str]) -> SfxmatchError:
        error = super().from_wire(message, fields)
        assert isinstance(error, StorageFullError)
        error.what = fields.get("what", "")
        error.folder = Path(fields["folder"]) if fields.get("folder") else None
        return error


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


# Every class a daemon may name to a client. A class defined elsewhere is sent as its
# nearest ancestor here; only these names are ever turned back into classes.
_WIRE: dict[str, type[SfxmatchError]] = {
    cls.__name__: cls
    for cls in (
        SfxmatchError,
        MediaError,
        ConformError,
        ConfigError,
        LimitError,
        TimelineError,
        NotFoundError,
        UnknownLibraryError,
        MissingFileError,
        AccessDeniedError,
        PreconditionError,
        ModelError,
        BusyError,
        UnknownSoundError,
        NotIndexedError,
        Cancelled,
        ResourceExhaustedError,
        StoreError,
        UnsupportedError,
        InternalError,
        StorageFullError,
    )
}


def wire_name(error: BaseException) -> str | None:
    """The name a daemon sends for ``error``: its nearest class a client knows, or None."""
    for cls in type(error).__mro__:
        if _WIRE.get(cls.__name__) is cls:
            return cls.__name__
    return None


def from_wire(name: str, message: str, fields: dict[str, Any]) -> SfxmatchError | None:
    """The error a daemon named, with its message; None for a name this side does not know."""
    cls = _WIRE.get(name)
    if cls is None:
        return None
    return cls.from_wire(message, {str(k): str(v) for k, v in fields.items()})
