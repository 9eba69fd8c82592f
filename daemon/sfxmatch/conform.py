"""Sounds editors cannot import, conformed once into Broadcast WAV that every editor does.

DaVinci Resolve's manual lists WAV/BWF, AIFF, MP3, AAC, CAF and AC3 as the audio formats it
imports; Premiere reads a few more, but neither reads Ogg Vorbis or Opus, and FLAC is not on
Resolve's list. The library indexes all of these. Before a timeline (OTIO, FCP7 XML, either
editor's flavour) or the Resolve script's clip list points at a sound, a sound in another
format is **conformed**: decoded with sfxmatch's own decoder (so sample 0 is the sample every
sync point and placement was measured from), resampled to 48 kHz and written as 24-bit PCM
Broadcast WAV with a ``bext`` chunk whose description carries our label and the original
file's name. The conform is kept in a per-library cache (``<library dir>/conform/<library
id>/``; sounds outside every library share ``conform/other``) under a name that holds the
original's stem and a key of its real path, size and modification time: it is reused until the
source changes, and written atomically (a temporary file, then a rename), so two processes
conforming the same sound at once each leave a whole file.

:func:`conform_suggestions` swaps every path in a ``Suggestions`` (placements, their
alternatives, every slot's candidates) for the conformed one, leaving importable formats
alone. ``SuggestOptions.keep_original_formats`` (``--keep-original-formats``) skips it for
editors that read the originals.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import struct
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from sfxmatch.errors import ConformError, MediaError
from sfxmatch.files import atomic_write

__all__ = [
    "CONFORM_RATE",
    "IMPORTABLE_AUDIO",
    "ConformCache",
    "conform_suggestions",
    "importable",
    "read_bext_description",
]

IMPORTABLE_AUDIO = frozenset(
    {".wav", ".wave", ".bwf", ".aif", ".aiff", ".aifc", ".mp3", ".aac", ".m4a", ".caf", ".ac3"}
)
"""Audio formats Resolve imports (its manual's list: WAV/BWF, AIFF, MP3, AAC, CAF, AC3);
Premiere reads them all too. Judged by suffix, as editors' media browsers do."""

CONFORM_RATE = 48000
CONFORM_BITS = 24
_BEXT_DESCRIPTION = 256


def importable(path: str | os.PathLike[str]) -> bool:
    """Whether editors import this sound as it is (by its suffix)."""
    return Path(path).suffix.lower() in IMPORTABLE_AUDIO


def _bext(description: str, original: str) -> bytes:
    """A version 1 ``bext`` chunk's body: description, originator, reference, date, time,
    time reference 0, version 1, no UMID, reserved, coding history naming the original."""
    now = time.gmtime()
    text = description.encode("ascii", "replace")[: _BEXT_DESCRIPTION - 1]
    history = f"A=PCM,F={CONFORM_RATE},W={CONFORM_BITS},T=sfxmatch conform of {original}\r\n"
    return b"".join(
        (
            text.ljust(_BEXT_DESCRIPTION, b"\0"),
            b"sfxmatch".ljust(32, b"\0"),
            os.path.basename(original).encode("ascii", "replace")[:31].ljust(32, b"\0"),
            time.strftime("%Y-%m-%d", now).encode("ascii"),
            time.strftime("%H:%M:%S", now).encode("ascii"),
            struct.pack("<IIH", 0, 0, 1),
            b"\0" * 64,  # UMID
            b"\0" * 190,  # loudness fields (version 2) unused, then reserved
            history.encode("ascii", "replace"),
        )
    )


def _chunk(tag: bytes, body: bytes) -> bytes:
    pad = b"\0" if len(body) % 2 else b""
    return tag + struct.pack("<I", len(body)) + body + pad


def _bwf_bytes(samples: np.ndarray, description: str, original: str) -> bytes:
    channels, n = samples.shape
    block = channels * CONFORM_BITS // 8
    ints = np.clip(np.rint(samples.T * 2**23), -(2**23), 2**23 - 1).astype("<i4")
    data = ints.view(np.uint8).reshape(n, channels, 4)[:, :, :3].tobytes()
    fmt = struct.pack(
        "<HHIIHH", 1, channels, CONFORM_RATE, CONFORM_RATE * block, block, CONFORM_BITS
    )
    body = b"WAVE" + _chunk(b"bext", _bext(description, original)) + _chunk(b"fmt ", fmt)
    body += _chunk(b"data", data)
    if len(body) + 8 >= 2**32:
        raise ValueError("longer than a RIFF file holds")
    return b"RIFF" + struct.pack("<I", len(body)) + body


def read_bext_description(path: str | os.PathLike[str]) -> str:
    """The description of a WAV file's ``bext`` chunk ('' without one)."""
    data = Path(path).read_bytes()
    at = 12
    while at + 8 <= len(data):
        tag, size = data[at : at + 4], struct.unpack("<I", data[at + 4 : at + 8])[0]
        if tag == b"bext":
            return data[at + 8 : at + 8 + _BEXT_DESCRIPTION].split(b"\0")[0].decode("ascii")
        at += 8 + size + (size % 2)
    return ""


class ConformCache:
    """Conformed copies of a library's sounds: see the module notes.

    ``folder_for(path)`` says which folder a sound's conform goes in (the cache's own
    ``other`` folder when not given). ``conformed`` counts the conforms this cache wrote
    (reuses do not count)."""

    def __init__(
        self, root: str | os.PathLike[str], folder_for: Callable[[str], str] | None = None
    ) -> None:
        self.root = Path(root)
        self.folder_for = folder_for or (lambda _path: "other")
        self.conformed = 0

    def target(self, path: str | os.PathLike[str]) -> Path:
        """Where the conform of ``path`` is (whether or not it exists yet): its key changes
        when the source's real path, size or modification time does."""
        real = os.path.realpath(path)
        try:
            st = os.stat(real)
        except OSError as exc:
            raise ConformError(Path(path), f"cannot be read ({exc.strerror or exc})") from None
        key = hashlib.sha256(f"{real}\0{st.st_size}\0{st.st_mtime_ns}".encode()).hexdigest()
        stem = Path(real).stem[:80]
        suffix = Path(real).suffix.lower().lstrip(".") or "audio"
        return self.root / self.folder_for(real) / f"{stem}.{suffix}.{key[:16]}.wav"

    def conform(self, path: str | os.PathLike[str], label: str = "") -> str:
        """The path of an importable version of ``path``: itself when editors import it,
        else its conform (made now, or reused). Raises ConformError."""
        if importable(path):
            return os.fspath(path)
        target = self.target(path)
        if target.is_file():
            return str(target)
        from sfxmatch.media import load_audio

        try:
            audio = load_audio(Path(path), sample_rate=CONFORM_RATE, channels="keep")
        except MediaError as exc:
            raise ConformError(
                Path(path), f"cannot be conformed for editors: {exc.problem}"
            ) from None
        name = os.path.basename(os.fspath(path))
        description = f"{label} (from {name})" if label else f"from {name}"
        samples = np.asarray(audio.samples, dtype=np.float64)
        try:
            blob = _bwf_bytes(samples, description, name)
            with atomic_write(target) as tmp:
                tmp.write_bytes(blob)
        except (OSError, ValueError) as exc:
            raise ConformError(
                Path(path), f"its conform cannot be written to {target} ({exc})"
            ) from None
        self.conformed += 1
        return str(target)


def conform_suggestions(suggestions: Any, cache: ConformCache) -> Any:
    """``suggestions`` with every sound path an editor cannot import replaced by its
    conform (each file conformed once, however often it is named)."""
    done: dict[str, str] = {}

    def swap(path: str, label: str) -> str:
        if importable(path):
            return path
        if path not in done:
            done[path] = cache.conform(path, label)
        return done[path]

    def walk(value: Any) -> Any:
        if isinstance(value, tuple):
            return tuple(walk(v) for v in value)
        if not dataclasses.is_dataclass(value) or isinstance(value, type):
            return value
        changes = {}
        for f in dataclasses.fields(value):
            if f.name == "edit":
                continue  # the picture is the editor's own media
            old = getattr(value, f.name)
            new = walk(old)
            if f.name == "path" and isinstance(old, str) and hasattr(value, "sound_id"):
                new = swap(old, str(getattr(value, "label", "") or ""))
            if new is not old:
                changes[f.name] = new
        return dataclasses.replace(value, **changes) if changes else value

    return walk(suggestions)


def not_importable(paths: Iterable[str]) -> list[str]:
    """The paths an editor would refuse (for messages and tests)."""
    return [p for p in paths if not importable(p)]
