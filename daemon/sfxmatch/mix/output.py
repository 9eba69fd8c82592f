"""Writing the mix and its stems as WAV files (each one atomically, via media.write_wav)."""

from __future__ import annotations

import contextlib
import re
import tempfile
import unicodedata
from pathlib import Path

import numpy as np

from sfxmatch import media
from sfxmatch.errors import MediaError
from sfxmatch.files import atomic_write

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


COMPRESSED_FORMATS = {".flac": "flac", ".mp3": "mp3", ".ogg": "ogg", ".m4a": "ipod"}


def write_mix(
    path: str | Path,
    mix: np.ndarray,
    sample_rate: int,
    *,
    subtype: media.WavSubtype = "float32",
) -> Path:
    """Write a ``(channels, n)`` mix as one file (temporary file, then rename).

    ``.wav`` is written here; ``.flac``, ``.mp3``, ``.ogg`` and ``.m4a`` go through pydub and
    the system ``ffmpeg`` binary from a 24-bit WAV (the formats editors and clients ask for).
    """
    out = Path(path)
    audio = media.Audio(np.asarray(mix, np.float32), sample_rate)
    fmt = COMPRESSED_FORMATS.get(out.suffix.lower())
    if fmt is None:
        return media.write_wav(out, audio, subtype=subtype)
    from pydub import AudioSegment

    with (
        atomic_write(out, suffix=out.suffix) as tmp,
        tempfile.TemporaryDirectory(dir=out.parent) as work,
    ):
        wav = media.write_wav(Path(work) / "mix.wav", audio, subtype="pcm24")
        try:
            AudioSegment.from_wav(wav).export(tmp, format=fmt)
        except (OSError, RuntimeError, ValueError) as exc:
            raise MediaError(
                out, f"cannot be encoded as {fmt} (is ffmpeg installed?): {exc}"
            ) from exc
    return out


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
