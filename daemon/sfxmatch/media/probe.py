"""Opening media files (errors in words, truncation caught at open, the decode loop shared by
frames and audio) and describing them (:func:`probe`)."""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import re
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import av.container
import av.error
import av.sidedata.sidedata
import av.video.reformatter
import numpy as np

from sfxmatch.errors import MediaError, MissingFileError
from sfxmatch.media.values import AudioStreamInfo, MediaInfo, VideoStreamInfo

# --------------------------------------------------------------------------- opening files

# Containers whose stated stream durations come from an index or a header, not from a
# bitrate guess: only for these is "the data ends well before the stated end" a truncation
# (a VBR mp3 without a Xing header routinely "ends early" by its estimated duration).
_TRUSTED_DURATION = frozenset(
    {"mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm", "avi", "wav", "w64", "flac", "aiff"}
)
_END_TOLERANCE = Fraction(1, 4)  # seconds of slack before "ends early" is called
_VFR_PACKETS = 120  # video packets whose timestamps probe() inspects
_ERROR_CLASSES = (av.error.FFmpegError, OSError, EOFError, UnicodeError)


def _checked_path(path: str | Path) -> Path:
    """Refuse, with a clear message, what FFmpeg would report confusingly (or block on)."""
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise MissingFileError(p) from None
    except OSError as exc:
        raise MediaError(p, f"cannot be read: {exc.strerror or exc}") from None
    if p.is_dir():
        raise MediaError(p, "is a directory, not a media file")
    if not p.is_file():
        raise MediaError(p, "is not a regular file")  # a FIFO or device would block or never end
    if st.st_size == 0:
        raise MediaError(p, "is empty (0 bytes)")
    return p


def _describe(exc: BaseException) -> str:
    """FFmpeg's own words without the file name it appends (MediaError names the file)."""
    if isinstance(exc, av.error.FFmpegError) and exc.strerror:
        return str(exc.strerror)
    if isinstance(exc, OSError) and exc.strerror:
        return str(exc.strerror)
    return str(exc) or type(exc).__name__


@contextlib.contextmanager
def _guard(path: Path, doing: str) -> Iterator[None]:
    """Turn PyAV and OS errors into MediaError naming the file."""
    try:
        yield
    except MediaError:
        raise
    except _ERROR_CLASSES as exc:
        raise MediaError(path, f"{doing}: {_describe(exc)}") from exc


def _open(path: Path) -> av.container.InputContainer:
    """Open for reading and refuse files that cannot be used or are provably truncated."""
    try:
        # "file:" + an absolute path: FFmpeg would read "clip: take 2.mp4" as a URL scheme.
        container = av.open("file:" + os.fspath(path.absolute()), metadata_errors="replace")
    except _ERROR_CLASSES as exc:
        kind = _sniff(path)
        if isinstance(exc, (av.error.InvalidDataError, EOFError)):
            if kind:  # says "your file is broken" rather than "this is not media"
                problem = (
                    f"is truncated or damaged: it starts like {kind} but FFmpeg cannot read it"
                )
            else:
                problem = "is not a media file FFmpeg can read"
            raise MediaError(path, f"{problem} ({_describe(exc)})") from exc
        raise MediaError(path, f"cannot be opened: {_describe(exc)}") from exc
    try:
        if not _video_streams(container) and not container.streams.audio:
            kind = _sniff(path)
            raise MediaError(
                path,
                f"is truncated or damaged: it starts like {kind} but holds no audio or video "
                "stream FFmpeg can find"
                if kind
                else "holds no audio or video stream",
            )
        _check_not_truncated(path, container)
    except BaseException:
        container.close()
        raise
    return container


def _sniff(path: Path) -> str | None:
    """The container a file's first bytes announce, for messages about broken files."""
    try:
        with open(path, "rb") as f:
            head = f.read(12)
    except OSError:
        return None
    if head[4:8] in (b"ftyp", b"moov", b"mdat", b"free", b"wide"):
        return "an MP4/QuickTime file"
    if head[:4] == b"RIFF":
        return {b"WAVE": "a WAV file", b"AVI ": "an AVI file"}.get(head[8:12], "a RIFF file")
    magic = {
        b"\x1a\x45\xdf\xa3": "a Matroska/WebM file",
        b"OggS": "an Ogg file",
        b"fLaC": "a FLAC file",
        b"FORM": "an AIFF file",
        b"ID3": "an MP3 file",
    }
    return next((kind for m, kind in magic.items() if head.startswith(m)), None)


def _video_streams(container: av.container.InputContainer) -> list[av.VideoStream]:
    """Video streams that are moving pictures (cover art of an mp3 or m4a is not)."""
    return [
        s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic
    ]


def _check_not_truncated(path: Path, container: av.container.InputContainer) -> None:
    """Cheap checks on what the container states, before anything is decoded."""
    size = os.path.getsize(path)
    for stream in [*_video_streams(container), *container.streams.audio]:
        entries = stream.index_entries
        # The index is in timestamp order; its last entries are the furthest into the file.
        needed = max(
            (e.pos + e.size for e in entries[max(0, len(entries) - 8) :] if e.pos >= 0),
            default=0,
        )
        if needed > size:
            raise MediaError(
                path,
                f"is truncated: its index refers to data up to byte {needed:,} "
                f"but the file has only {size:,} bytes",
            )
    video = _video_streams(container)
    if video:
        # AVI: the header counts the frames; the duration is what the data really holds.
        s = video[0]
        rate = s.average_rate
        if s.frames and rate and s.duration and s.time_base:
            promised = Fraction(s.frames) / rate
            held = s.duration * s.time_base
            if promised > held * Fraction(11, 10) + 2 / rate:
                raise MediaError(
                    path,
                    f"is truncated: its header promises {s.frames} frames "
                    f"({float(promised):.2f} s) but the data ends at about {float(held):.2f} s",
                )


def _origin(container: av.container.InputContainer) -> Fraction:
    """Time zero of the file, in seconds (exact: each stream's start in its own time base)."""
    starts = [
        s.start_time * s.time_base
        for s in [*_video_streams(container), *container.streams.audio]
        if s.start_time is not None and s.time_base
    ]
    return max(Fraction(0), min(starts)) if starts else Fraction(0)


_MKV_DURATION = re.compile(r"^(\d+):(\d\d):(\d\d(?:\.\d+)?)$")


def _stated_end(
    container: av.container.InputContainer, stream: av.stream.Stream
) -> Fraction | None:
    """Where the container says ``stream`` ends, in seconds from the file origin."""
    origin = _origin(container)
    tb = stream.time_base
    start = (stream.start_time or 0) * tb if tb else Fraction(0)
    ends: list[Fraction] = []
    if stream.duration and tb:
        ends.append(start + stream.duration * tb)
    if isinstance(stream, av.VideoStream) and stream.frames and stream.average_rate:
        ends.append(start + Fraction(stream.frames) / stream.average_rate)
    match = _MKV_DURATION.match(stream.metadata.get("DURATION", ""))
    if match:  # Matroska keeps each track's end time in a tag
        h, m, s = match.groups()
        ends.append(int(h) * 3600 + int(m) * 60 + Fraction(s))
    n_streams = len(_video_streams(container)) + len(container.streams.audio)
    if not ends and n_streams == 1 and container.duration:
        # One stream: the container's duration is that stream's.
        ends.append(
            Fraction(container.start_time or 0, av.time_base)
            + Fraction(container.duration, av.time_base)
        )
    return max(ends) - origin if ends else None


def _ends_early(
    path: Path,
    container: av.container.InputContainer,
    stream: av.stream.Stream,
    reached: Fraction,
    slack: Fraction = Fraction(0),
) -> MediaError | None:
    """The error to raise when decoding stopped at ``reached`` s well before the stated end."""
    if container.format.name not in _TRUSTED_DURATION:
        return None
    stated = _stated_end(container, stream)
    if stated is None or reached >= stated - _END_TOLERANCE - slack:
        return None
    return MediaError(
        path,
        f"ends early: its {stream.type} stops at {float(reached):.2f} s but the file says "
        f"{float(stated):.2f} s (truncated or damaged)",
    )


class _Frames:
    """Frames of one stream, in order. Damaged packets are skipped (FFmpeg conceals and goes
    on, and so do we); a demuxer that cannot go on ends the stream. Both are remembered."""

    def __init__(
        self,
        container: av.container.InputContainer,
        stream: av.VideoStream | av.AudioStream,
        full_from: int | None = None,
    ) -> None:
        self.container = container
        self.stream = stream
        self.origin = _origin(container)
        # Where a decoder skipping frames (skip_frame) starts decoding them all: from the
        # full_from-th packet, or from the first packet at or after full_at seconds.
        self.full_from = full_from
        self.full_at: float | None = None
        # After a seek: packets before the first keyframe are not decoded (they cannot be),
        # and the pass stops at once if that keyframe comes after ``keyframe_by`` seconds.
        self.keyframe_by: float | None = None
        self.landed_late = False
        self.read_error: str | None = None
        self.decode_error: str | None = None

    def _decodes_all_from(self, packet: av.Packet[Any] | None, sent: int) -> bool:
        if sent == self.full_from:
            return True
        if self.full_at is None:
            return False
        if packet is None or packet.pts is None or not packet.time_base:
            return True
        # Every frame shown at or after full_at comes in this packet or a later one.
        return self._time(packet) >= self.full_at - 1e-6

    def _time(self, packet: av.Packet[Any]) -> float:
        """Seconds from the file origin (-inf without a timestamp: never late)."""
        if packet.pts is None or not packet.time_base:
            return -math.inf
        return float(packet.pts * packet.time_base - self.origin)

    def __iter__(self) -> Generator[Any, None, None]:  # video or audio frames, as the stream
        for other in self.container.streams:
            if other is not self.stream:
                # Lets the demuxer skip the other streams' data instead of reading it.
                other.discard = av.stream.Discard.all
        packets = self.container.demux(self.stream)
        sent = skipped = 0
        while True:
            try:
                packet: av.Packet[Any] | None = next(packets)
            except StopIteration:
                packet = None
            except _ERROR_CLASSES as exc:
                self.read_error, packet = _describe(exc), None
            # Empty packets are PyAV's end-of-stream markers (or empty AVI chunks): sending
            # one would end decoding, so the flush below is the only one.
            if packet is not None and packet.size == 0:
                continue
            if self.keyframe_by is not None and packet is not None:
                if not packet.is_keyframe and skipped < _KEYFRAME_WAIT:
                    skipped += 1
                    continue
                late = packet.is_keyframe and self._time(packet) > self.keyframe_by
                self.keyframe_by = None
                if late:
                    self.landed_late = True
                    return
            if self._decodes_all_from(packet, sent):
                # Read per packet, by frame threads too (FFmpeg copies it to them).
                self.stream.codec_context.skip_frame = "DEFAULT"
                self.full_from = self.full_at = None
            sent += 1
            try:
                frames = self.stream.decode(packet)
            except av.error.FFmpegError as exc:
                self.decode_error, frames = _describe(exc), []
            yield from frames
            if packet is None:
                return


_KEYFRAME_WAIT = 1000  # packets read after a seek in search of a keyframe before decoding anyway


# --------------------------------------------------------------------------- orientation


@dataclass(frozen=True)
class _Orientation:
    """How to turn a decoded picture upright, from FFmpeg's display matrix: a display pixel
    (p', q') shows the stored pixel (p, q) with p' = a*p + c*q, q' = b*p + d*q (+ offsets)."""

    transpose: bool = False
    flip_rows: bool = False  # after the transpose
    flip_cols: bool = False
    rotation: int = 0  # degrees clockwise, as VideoStreamInfo reports it

    def apply(self, image: np.ndarray) -> np.ndarray:
        if self.transpose:
            image = image.transpose(1, 0, 2)
        if self.flip_rows:
            image = image[::-1]
        if self.flip_cols:
            image = image[:, ::-1]
        return image


def _orientation(frame: av.VideoFrame) -> _Orientation:
    sides: Iterable[Any] = frame.side_data  # PyAV's stub types the container, not its items
    for side in sides:
        if side.type == av.sidedata.sidedata.Type.DISPLAYMATRIX:
            m = np.frombuffer(bytes(side), dtype=np.int32)
            break
    else:
        return _Orientation()
    a, b, c, d = (int(np.sign(round(v / 65536))) for v in (m[0], m[1], m[3], m[4]))
    rotation = (-round(frame.rotation / 90) * 90) % 360  # FFmpeg counts counter-clockwise
    if a and d and not b and not c:
        return _Orientation(False, d < 0, a < 0, rotation)
    if b and c and not a and not d:
        # p' = c*q, q' = b*p: the display's rows are the stored columns.
        return _Orientation(True, b < 0, c < 0, rotation)
    return _Orientation()  # not a quarter turn (or a broken matrix): show as stored


# --------------------------------------------------------------------------- probe


def probe(path: str | Path) -> MediaInfo:
    """Describe a media file. Raises MediaError for anything that is not readable media."""
    p = _checked_path(path)
    with _guard(p, "cannot be read"):
        container = _open(p)
        try:
            duration = _duration(p, container)
            video = _video_streams(container)
            vinfo = _probe_video(p, container, video[0]) if video else None
            ainfo = tuple(_audio_info(s) for s in container.streams.audio)
            return MediaInfo(
                path=p,
                duration=duration,
                container=container.format.name,
                video=vinfo,
                audio=ainfo,
            )
        finally:
            container.close()


def _duration(path: Path, container: av.container.InputContainer) -> float:
    if container.duration:
        return container.duration / av.time_base
    ends = [
        e
        for s in [*_video_streams(container), *container.streams.audio]
        if (e := _stated_end(container, s)) is not None
    ]
    if ends:
        return float(max(ends))
    # Nothing stated (raw streams): walk the packets, which is cheap next to decoding, in a
    # second reader so that the first one stays at the start of the file.
    walker = _open(path)
    try:
        origin = _origin(walker)
        end = Fraction(0)
        for packet in walker.demux(*_video_streams(walker), *walker.streams.audio):
            if packet.pts is not None and packet.time_base:
                end = max(end, (packet.pts + (packet.duration or 0)) * packet.time_base - origin)
        return float(end)
    finally:
        walker.close()


def _audio_info(stream: av.AudioStream) -> AudioStreamInfo:
    cc = stream.codec_context
    duration = (
        float(stream.duration * stream.time_base) if stream.duration and stream.time_base else None
    )
    return AudioStreamInfo(
        index=stream.index,
        codec=cc.name,
        sample_rate=int(cc.sample_rate or 0),
        channels=int(cc.layout.nb_channels),
        layout=cc.layout.name,
        duration=duration,
    )


def _probe_video(
    path: Path, container: av.container.InputContainer, stream: av.VideoStream
) -> VideoStreamInfo:
    """Decode the first frame (the display matrix rides on frames) and read the timestamps of
    the first packets (variable frame rate), in one pass over the start of the file."""
    pts: list[int] = []
    first: av.VideoFrame | None = None
    errors: list[str] = []
    try:
        for packet in container.demux(stream):
            if packet.size == 0:  # PyAV's end-of-stream marker: the drain below flushes
                continue
            if packet.pts is not None:
                pts.append(packet.pts)
            if first is None:
                first = _decode_first(stream, packet, errors)
            if first is not None and len(pts) >= _VFR_PACKETS:
                break
    except _ERROR_CLASSES as exc:  # a damaged file: judge by what was read
        errors.append(_describe(exc))
    if first is None:
        first = _decode_first(stream, None, errors)  # drain the decoder: short files
    if first is None:
        why = f": {errors[-1]}" if errors else ""
        raise MediaError(
            path, f"its video stream ({stream.codec_context.name}) cannot be decoded{why}"
        )
    orient = _orientation(first)
    w = int(stream.codec_context.width or first.width)
    h = int(stream.codec_context.height or first.height)
    if orient.transpose:
        w, h = h, w
    tb = stream.time_base or Fraction(1, 90000)
    deltas = _pts_deltas(pts)
    fps = stream.average_rate or stream.guessed_rate or stream.base_rate
    if not fps and deltas:
        fps = 1 / (Fraction(int(np.median(deltas))) * tb)
    return VideoStreamInfo(
        index=stream.index,
        codec=stream.codec_context.name,
        width=w,
        height=h,
        rotation=orient.rotation,
        fps=Fraction(fps or 0),
        variable_frame_rate=_is_vfr(deltas, tb, stream.average_rate),
        frame_count=int(stream.frames) or None,
    )


def _decode_first(
    stream: av.VideoStream, packet: av.Packet[Any] | None, errors: list[str]
) -> av.VideoFrame | None:
    try:
        frames = stream.decode(packet)
    except av.error.FFmpegError as exc:  # one bad packet is not yet a broken stream
        errors.append(_describe(exc))
        return None
    return frames[0] if frames else None


def _pts_deltas(pts: list[int]) -> list[int]:
    """Frame durations, in time-base ticks, from packet timestamps in decode order."""
    ordered = sorted(set(pts))
    # With B-frames the last few of a window of packets can miss a smaller timestamp that
    # comes later in decode order: drop them.
    if len(ordered) > 24:
        ordered = ordered[:-8]
    return [b - a for a, b in itertools.pairwise(ordered)]


def _is_vfr(deltas: list[int], tb: Fraction, average_rate: Fraction | None) -> bool:
    """Variable frame rate when frame durations differ by more than timestamp rounding
    (Matroska's 1 ms ticks make 29.97 fps alternate 33/34 ms), or when the average rate over
    the whole stream disagrees with the rate of its first frames."""
    if len(deltas) < 2:
        return False
    median = Fraction(int(np.median(deltas)))
    tolerance = max(Fraction(3, 2), median / 50)
    if any(abs(d - median) > tolerance for d in deltas):
        return True
    if average_rate:
        observed = 1 / (median * tb)
        return abs(observed - average_rate) > average_rate / 50
    return False
