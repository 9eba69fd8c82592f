"""Writing files so that a crash or a full disk never leaves a half-written one."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from sfxmatch.errors import StorageFullError, is_storage_full


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
            raise StorageFullError(what, folder) from exc
        raise


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) through a temporary file beside ``path``, fsync, then rename:
    readers see the old file or the new one, never a mix. Creates the folder if needed.
    A full disk raises StorageFullError and leaves the old file as it was."""
    target = Path(path)
    with storage_writes(target.name, target.parent):
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    return target
