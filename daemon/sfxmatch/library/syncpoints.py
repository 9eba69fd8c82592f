"""A sound's sync point: where its own event is, so it can be spotted on the picture's event.

Where it comes from, most trusted first (:func:`choose`):

1. ``override``: the user set it for this sound (``sfxmatch library sync PATH SECONDS``, or
   the API); kept while the file's content stays the same.
2. ``catalogue``: a sync column of the user's catalogue (``sync``, ``sync point``,
   ``sync_ms``, ``cue``...; seconds unless the header or the value says ms).
3. ``file``: what the file itself marks. A Broadcast WAV / RIFF ``cue `` point (its name from
   the ``LIST``/``adtl`` ``labl`` or ``ltxt``); an iXML ``SYNC_POINT_LIST`` entry (not the
   recorder's ``PRE_RECORD_SAMPLECOUNT``, nor autoplay markers); an AIFF ``MARK``. A marker
   named like a sync point ("sync", "SP", "hit", "impact") wins over the others, then an iXML
   sync point, then the earliest marker.
4. ``sidecar``: a ``sync = 0.37`` (or ``sync: 370 ms``) line in the ``name.txt`` beside the
   sound, the sidecar Tux Paint-style libraries already describe their sounds in.
5. ``detector``: :func:`sfxmatch.match.onset.detect_onset` on the audio, at index time.
6. ``start``: nothing known yet (a library indexed before sync points existed, until its next
   index run): the first sample, as before.

Pure parsing here; the file reading is :mod:`sfxmatch.library.metadata`'s.
"""

from __future__ import annotations

import math
import struct
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

import regex

SyncSource = Literal["override", "catalogue", "file", "sidecar", "detector", "start"]
SYNC_SOURCES: tuple[SyncSource, ...] = (
    "override",
    "catalogue",
    "file",
    "sidecar",
    "detector",
    "start",
)
MAX_SYNC_SECONDS = 24 * 3600.0  # a sync point past a day into a file is a broken value


class BadTime(ValueError):
    """A time that cannot be read (the text is named in the message)."""


@dataclass(frozen=True, slots=True)
class Mark:
    """A point a file, catalogue or sidecar declares: seconds into the sound, and where."""

    time: float
    detail: str  # "BWF cue 'Sync'", "iXML SLATE_GENERIC", "sounds.csv line 4", "door.txt"


@dataclass(frozen=True, slots=True)
class SyncPoint:
    """The sync point a sound is placed by, where it came from, and its peak (seconds)."""

    time: float
    source: SyncSource
    detail: str = ""
    peak: float | None = None

    def describe(self) -> str:
        """``0.370 s (BWF cue 'Sync')``: for listings."""
        where = self.detail or self.source
        return f"{self.time:.3f} s ({where})"


def choose(
    *,
    override: float | None = None,
    catalogue: Mark | None = None,
    file: Mark | None = None,
    sidecar: Mark | None = None,
    detected: float | None = None,
    peak: float | None = None,
    duration: float | None = None,
) -> SyncPoint:
    """The sync point by precedence (module notes). A declared point at or past the end of
    the sound (``duration``, when known) is ignored: it cannot be a point of this sound."""

    def fits(t: float) -> bool:
        return math.isfinite(t) and t >= 0 and (duration is None or duration <= 0 or t < duration)

    if override is not None and fits(override):
        return SyncPoint(override, "override", "set by the user", peak)
    for source, mark in (("catalogue", catalogue), ("file", file), ("sidecar", sidecar)):
        if mark is not None and fits(mark.time):
            return SyncPoint(mark.time, source, mark.detail, peak)  # type: ignore[arg-type]
    if detected is not None and fits(detected):
        return SyncPoint(detected, "detector", "onset of the main event", peak)
    return SyncPoint(0.0, "start", "not analysed yet", peak)


# --------------------------------------------------------------------------- times in text

_TIME = regex.compile(
    r"^\s*(?:(?P<h>\d+):)?(?:(?P<m>\d+):)?(?P<s>\d+(?:\.\d*)?|\.\d+)\s*"
    r"(?P<unit>ms|msec|milliseconds?|s|sec|secs|seconds?)?\s*$",
    regex.IGNORECASE,
)


def parse_time(text: str, *, default_unit: Literal["s", "ms"] = "s") -> float:
    """Seconds from ``"0.37"``, ``"0.37 s"``, ``"370ms"``, ``"0:00.370"`` or
    ``"1:02:03.5"``; a bare number is in ``default_unit``. Raises :class:`BadTime`."""
    match = _TIME.match(text or "")
    if match is None:
        raise BadTime(f"{text!r} is not a time (write seconds, e.g. 0.37, or 370ms)")
    hours, minutes = match.group("h"), match.group("m")
    if hours is not None and minutes is None:  # "m:ss": the first group took the minutes
        hours, minutes = None, hours
    value = float(match.group("s"))
    unit = (match.group("unit") or "").lower()
    is_ms = unit.startswith("m") if unit else (default_unit == "ms" and minutes is None)
    if is_ms:
        value /= 1000.0
    value += 60.0 * int(minutes or 0) + 3600.0 * int(hours or 0)
    if not (math.isfinite(value) and 0 <= value <= MAX_SYNC_SECONDS):
        raise BadTime(f"{text!r} is not a time within a day")
    return value


_SIDECAR_LINE = regex.compile(
    r"^\s*(?:sync(?:[\s_-]*point)?|syncpoint)\s*[:=]\s*(?P<value>.+?)\s*$", regex.IGNORECASE
)


def is_sync_line(line: str) -> bool:
    """Whether a sidecar line gives a sync point (it is not the sound's description)."""
    return _SIDECAR_LINE.match(line) is not None


def sidecar_mark(text: str, name: str) -> Mark | None:
    """A ``sync = 0.37`` / ``sync point: 370 ms`` line of a sidecar text (``name``)."""
    for line in text.splitlines():
        match = _SIDECAR_LINE.match(line)
        if match is None:
            continue
        try:
            return Mark(parse_time(match.group("value")), f"{name} sync line")
        except BadTime:
            return None
    return None


def catalogue_value(value: str, header: str) -> float | None:
    """A catalogue cell of a sync column, in seconds (ms when the header says so); None when
    empty or not a time."""
    if not value.strip():
        return None
    folded = regex.sub(r"[^a-z]", "", header.lower())
    unit: Literal["s", "ms"] = "ms" if folded.endswith("ms") or "millisec" in folded else "s"
    try:
        return parse_time(value, default_unit=unit)
    except BadTime:
        return None


SYNC_HEADERS: tuple[str, ...] = ("sync", "syncpoint", "syncs", "syncms", "syncpointms", "synctime")
SYNC_HEADERS += ("cue", "cuepoint", "syncoffset", "hit", "hitpoint", "hittime")


# --------------------------------------------------------------------------- in the file

_SYNC_NAME = regex.compile(r"\b(sync|sp|hit|impact|spot|sync\s*point)\b", regex.IGNORECASE)
_NOT_SYNC_FUNCTIONS = {"PRE_RECORD_SAMPLECOUNT", "MARKER_AUTOPLAY", "MARKER_AUTOPLAYSTOP"}
_NOT_SYNC_FUNCTIONS |= {"MARKER_AUTOPLAYLOOP"}


@dataclass(frozen=True, slots=True)
class _Candidate:
    samples: int
    detail: str
    named: bool  # named like a sync point
    rank: int  # 0 iXML sync point, 1 cue / AIFF marker


def file_mark(chunks: Mapping[bytes, list[bytes]], *, little_endian: bool = True) -> Mark | None:
    """The sync point a RIFF/BWF or AIFF file marks, from its chunks by id (``fmt `` or
    ``COMM`` for the rate; ``cue ``, ``LIST``/``adtl``, ``iXML``, ``MARK``, ``bext``)."""
    rate = _riff_rate(chunks) if little_endian else _aiff_rate(chunks)
    if not rate:
        return None
    found: list[_Candidate] = []
    if little_endian:
        labels = _adtl_labels(chunks.get(b"LIST", []))
        for cue_id, position in _cue_points(chunks.get(b"cue ", [])):
            name = labels.get(cue_id, "")
            detail = f"BWF cue {name!r}" if name else f"BWF cue #{cue_id}"
            found.append(_Candidate(position, detail, bool(_SYNC_NAME.search(name)), 1))
        origin = _bext_time_reference(chunks.get(b"bext", []))
        for raw in chunks.get(b"iXML", []):
            found += _ixml_sync_points(raw, origin)
    else:
        for marker_id, position, name in _aiff_markers(chunks.get(b"MARK", [])):
            detail = f"AIFF marker {name!r}" if name else f"AIFF marker #{marker_id}"
            found.append(_Candidate(position, detail, bool(_SYNC_NAME.search(name)), 1))
    if not found:
        return None
    best = min(found, key=lambda c: (not c.named, c.rank, c.samples))
    return Mark(best.samples / rate, best.detail)


def _riff_rate(chunks: Mapping[bytes, list[bytes]]) -> int:
    for raw in chunks.get(b"fmt ", []):
        if len(raw) >= 8:
            return int(struct.unpack("<I", raw[4:8])[0])
    return 0


def _aiff_rate(chunks: Mapping[bytes, list[bytes]]) -> int:
    """The sample rate of an AIFF ``COMM`` chunk (an 80-bit IEEE extended float)."""
    for raw in chunks.get(b"COMM", []):
        if len(raw) >= 18:
            exponent, mantissa = struct.unpack(">HQ", raw[8:18])
            if exponent == 0 or mantissa == 0:
                return 0
            value = mantissa * 2.0 ** ((exponent & 0x7FFF) - 16383 - 63)
            return round(value) if math.isfinite(value) and value > 0 else 0
    return 0


def _cue_points(raws: Iterable[bytes]) -> list[tuple[int, int]]:
    """(cue id, sample frame) of a ``cue `` chunk: a count, then 24-byte points of id,
    position (in play order), data chunk id, chunk start, block start and sample offset.
    The sample offset is the frame in the ``data`` chunk; writers that leave it 0 put the
    frame in the position."""
    out = []
    for raw in raws:
        if len(raw) < 4:
            continue
        count = struct.unpack("<I", raw[:4])[0]
        for i in range(min(count, (len(raw) - 4) // 24)):
            ident, position, chunk, _start, _block, offset = struct.unpack(
                "<II4sIII", raw[4 + 24 * i : 28 + 24 * i]
            )
            frame = offset if chunk == b"data" and (offset or not position) else position
            out.append((ident, frame))
    return out


def _adtl_labels(lists: Iterable[bytes]) -> dict[int, str]:
    """Cue id -> name, from ``labl`` (or ``note``, or ``ltxt``) in ``LIST``/``adtl``."""
    names: dict[int, str] = {}
    notes: dict[int, str] = {}
    for raw in lists:
        if raw[:4] != b"adtl":
            continue
        pos = 4
        while pos + 8 <= len(raw):
            sub, size = raw[pos : pos + 4], struct.unpack("<I", raw[pos + 4 : pos + 8])[0]
            body = raw[pos + 8 : pos + 8 + size]
            if len(body) >= 4:
                ident = struct.unpack("<I", body[:4])[0]
                if sub == b"labl":
                    names[ident] = _text(body[4:])
                elif sub == b"note":
                    notes[ident] = _text(body[4:])
                elif sub == b"ltxt" and len(body) >= 20:
                    notes.setdefault(ident, _text(body[20:]))
            pos += 8 + size + (size & 1)
    return {**notes, **names}


def _text(raw: bytes) -> str:
    raw = raw.split(b"\x00", 1)[0]
    try:
        return raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        return raw.decode("cp1252", "replace").strip()


def _bext_time_reference(raws: Iterable[bytes]) -> int | None:
    """Samples since midnight of the file's first sample (BWF ``bext`` TimeReference)."""
    for raw in raws:
        if len(raw) >= 346:
            low, high = struct.unpack("<II", raw[338:346])
            return (high << 32) | low
    return None


def _ixml_sync_points(raw: bytes, origin: int | None) -> list[_Candidate]:
    """iXML ``SYNC_POINT_LIST`` entries that mark an event. RELATIVE points count samples
    from the start of the file; ABSOLUTE ones since midnight, so the file's own time stamp
    (BWF TimeReference, else iXML's TIMESTAMP_SAMPLES_SINCE_MIDNIGHT) is taken off."""
    try:
        root = ET.fromstring(_text(raw))
    except ET.ParseError:
        return []
    if origin is None:
        hi = root.findtext("./SPEED/TIMESTAMP_SAMPLES_SINCE_MIDNIGHT_HI")
        lo = root.findtext("./SPEED/TIMESTAMP_SAMPLES_SINCE_MIDNIGHT_LO")
        if lo is not None and lo.strip().isdigit():
            origin = (int(hi) << 32 if hi and hi.strip().isdigit() else 0) | int(lo)
    out = []
    for point in root.iter("SYNC_POINT"):
        function = (point.findtext("SYNC_POINT_FUNCTION") or "").strip().upper()
        if function in _NOT_SYNC_FUNCTIONS:
            continue
        low = (point.findtext("SYNC_POINT_LOW") or "").strip()
        high = (point.findtext("SYNC_POINT_HIGH") or "0").strip()
        if not low.isdigit() or not high.isdigit():
            continue
        samples = (int(high) << 32) | int(low)
        if (point.findtext("SYNC_POINT_TYPE") or "").strip().upper() == "ABSOLUTE":
            if origin is None or samples < origin:
                continue
            samples -= origin
        comment = (point.findtext("SYNC_POINT_COMMENT") or "").strip()
        detail = f"iXML {function or 'SYNC_POINT'}" + (f" {comment!r}" if comment else "")
        out.append(_Candidate(samples, detail, bool(_SYNC_NAME.search(comment)), 0))
    return out


def _aiff_markers(raws: Iterable[bytes]) -> list[tuple[int, int, str]]:
    """(id, sample frame, name) of an AIFF ``MARK`` chunk: a count, then per marker an id
    (int16), a position (uint32 frames) and a Pascal string padded to an even length."""
    out = []
    for raw in raws:
        if len(raw) < 2:
            continue
        count = struct.unpack(">H", raw[:2])[0]
        pos = 2
        for _ in range(count):
            if pos + 7 > len(raw):
                break
            ident, position, length = struct.unpack(">hIB", raw[pos : pos + 7])
            name = _text(raw[pos + 7 : pos + 7 + length])
            out.append((ident, position, name))
            pos += 7 + length + ((length + 1) & 1)
    return out
