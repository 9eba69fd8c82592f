"""Writing the mix and its stems as WAV files (each one atomically, via media.write_wav)."""

from __future__ import annotations

import contextlib
import re
import unicodedata
from pathlib import Path

import numpy as np

from sfxmatch import media
from sfxmatch.errors import MediaError

from .render import Stems

_UNSAFE = re.compile(r"[^A-Za-z0-9._ -]+")
_RESERVED = frozenset(
    {
        "CON",
        "PRN",
        "AUX",
        "NUL",
        *(f"COM{i}" for i in range(1, 10)),
        *(f"LPT{i}" for i in range(10)),
    }
)


def safe_filename(name: str, *, default: str = "track") -> str:
    """``name`` as a file name that is valid on Linux, macOS and Windows: accents folded,
    anything but letters, digits, ``. _ -`` and spaces replaced by ``_``, no leading dots or
    trailing dots/spaces, no reserved Windows device names, at most 100 characters."""
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    clean = _UNSAFE.sub("_", folded).strip(" ._")[:100].strip(" ._")
    if not clean:
        clean = default
    if clean.split(".")[0].upper() in _RESERVED:
        clean = f"_{clean}"
    return clean


def write_mix(
    path: str | Path,
    mix: np.ndarray,
    sample_rate: int,
    *,
    subtype: media.WavSubtype = "float32",
) -> Path:
    """Write a ``(channels, n)`` mix as one WAV file (temporary file, then rename)."""
    return media.write_wav(
        path, media.Audio(np.asarray(mix, np.float32), sample_rate), subtype=subtype
    )


def stem_paths(
    directory: str | Path, names: tuple[str, ...], *, prefix: str = ""
) -> dict[str, Path]:
    """One WAV path per track name, unique even when two names clean up to the same file."""
    folder = Path(directory)
    taken: set[str] = set()
    out: dict[str, Path] = {}
    for name in names:
        base = safe_filename(f"{prefix}{name}")
        candidate, n = base, 2
        while candidate.lower() in taken:
            candidate, n = f"{base}_{n}", n + 1
        taken.add(candidate.lower())
        out[name] = folder / f"{candidate}.wav"
    return out


def write_stems(
    directory: str | Path,
    stems: Stems,
    *,
    prefix: str = "",
    subtype: media.WavSubtype = "float32",
) -> dict[str, Path]:
    """Write one stereo WAV per track into ``directory`` (created if needed); returns
    ``{track name: path}``. When one file fails, those already written by this call are
    removed again and the MediaError names the one that failed."""
    folder = Path(directory)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MediaError(folder, f"cannot be created: {exc.strerror or exc}") from exc
    paths = stem_paths(folder, stems.names, prefix=prefix)
    written: list[Path] = []
    try:
        for name, samples in stems.tracks:
            written.append(
                media.write_wav(
                    paths[name], media.Audio(samples, stems.sample_rate), subtype=subtype
                )
            )
    except BaseException:
        for p in written:
            with contextlib.suppress(OSError):
                p.unlink()
        raise
    return paths
