"""Media I/O: probe, decode frames once for several consumers, load and write audio.

CONTRACT (types and signatures are fixed):
- Every failure on a user's file raises ``sfxmatch.errors.MediaError(path, problem)``; nothing
  from PyAV (``av.error.*``) and no ``OSError`` reaches the caller. Bad argument values (a
  negative rate, an unknown channel mode) raise ``sfxmatch.errors.ConfigError``.
- Frames are upright (rotation metadata applied) RGB ``uint8`` arrays of shape (H, W, 3). They
  are read-only: one array may be shared by several consumers and by held (repeated) frames.
- Audio samples are ``float32`` arrays of shape (channels, samples), nominally in [-1, 1]
  (float sources can exceed it; nothing is clipped on reading).
- Times are seconds from the start of the file: the earliest start of its audio/video streams
  (negative starts, such as encoder priming, count as 0). Frames and audio share that origin.
- A file with no picture starts where its sound starts: its first decoded sample is sample 0,
  whatever timestamp the demuxer gives it, as the reference decoders (FFmpeg's command line,
  libsndfile, libvorbisfile) have it. FFmpeg's libraries time some Ogg Vorbis streams from a
  first packet that decodes to nothing (minetest's ``doors_glass_door_open.ogg``: its first
  frame at 256 samples); padding that with silence shifted every event of the file late.
  Encoder priming is dropped as FFmpeg does (Opus pre-skip, an MP3's LAME/Xing encoder delay,
  an MP4's edit list or ``iTunSMPB`` priming), and the end is where FFmpeg's command line ends
  it, except that an MP4's stated length (edit list, ``iTunSMPB``) drops AAC's padding too.

Truncated files: when the container itself proves it (an index pointing past the end of the
file, a header promising more frames than the data holds) the file is refused as soon as it
is opened, by ``probe``, ``iter_frames`` and ``load_audio`` alike. Otherwise (say a Matroska
file cut short) frames are delivered up to the cut and then a ``MediaError`` says where the
file ends early; ``load_audio`` raises when the window it was asked for runs into the cut.
"""

from __future__ import annotations

import bisect
import contextlib
import functools
import itertools
import math
import os
import re
import struct
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal, cast, get_args

import av
import av.container
import av.error
import av.sidedata.sidedata
import av.video.reformatter
import numpy as np

from sfxmatch.errors import ConfigError, MediaError, MissingFileError
from sfxmatch.files import atomic_write

ChannelMode = Literal["mono", "first", "stereo", "keep"]
"""mono: mix-down of all channels; first: channel 0 only; stereo: 2 channels (mono is
duplicated, more than 2 are downmixed by FFmpeg); keep: the file's own channels."""

WavSubtype = Literal["float32", "pcm16", "pcm24"]


@dataclass(frozen=True)
class AudioStreamInfo:
    index: int
    codec: str
    sample_rate: int
    channels: int
    layout: str
    duration: float | None


@dataclass(frozen=True)
class VideoStreamInfo:
    index: int
    codec: str
    width: int  # displayed (upright) width, after rotation
    height: int
    rotation: int  # degrees clockwise the decoder output is turned to display: 0, 90, 180, 270
    fps: Fraction  # average frame rate
    variable_frame_rate: bool
    frame_count: int | None  # from the container; None when unknown


@dataclass(frozen=True)
class MediaInfo:
    path: Path
    duration: float  # seconds
    container: str
    video: VideoStreamInfo | None
    audio: tuple[AudioStreamInfo, ...]


@dataclass(frozen=True)
class Frame:
    index: int  # 0-based position among the frames this iterator delivered
    time: float  # presentation time in seconds, from the start of the file
    image: np.ndarray  # (H, W, 3) uint8 RGB, upright


@dataclass(frozen=True)
class Audio:
    samples: np.ndarray  # (channels, n) float32
    sample_rate: int

    @property
    def channels(self) -> int:
        return int(self.samples.shape[0])

    @property
    def duration(self) -> float:
        return self.samples.shape[1] / self.sample_rate


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

    def _decodes_all_from(self, packet: av.Packet | None, sent: int) -> bool:
        if sent == self.full_from:
            return True
        if self.full_at is None:
            return False
        if packet is None or packet.pts is None or not packet.time_base:
            return True
        # Every frame shown at or after full_at comes in this packet or a later one.
        return self._time(packet) >= self.full_at - 1e-6

    def _time(self, packet: av.Packet) -> float:
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
                packet: av.Packet | None = next(packets)
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
    stream: av.VideoStream, packet: av.Packet | None, errors: list[str]
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


# --------------------------------------------------------------------------- frames


@dataclass(frozen=True)
class FrameTable:
    """Every frame a video stream stores, read from its packets without decoding anything:
    presentation times (seconds from the file origin, ascending) and the keyframes among
    them. Numbers frames as a full ``iter_frames`` pass over an undamaged file does, so the
    frames of a sparse or partial pass (``reference_only``, ``start``) can be placed."""

    times: tuple[float, ...]
    keyframes: tuple[int, ...]  # indices into times, ascending; 0 is always one

    def __len__(self) -> int:
        return len(self.times)

    def index_of(self, time: float) -> int | None:
        """The frame shown from ``time`` exactly (a delivered ``Frame.time``), or None."""
        i = bisect.bisect_left(self.times, time)
        return i if i < len(self.times) and self.times[i] == time else None

    def keyframe_before(self, index: int) -> int:
        """The last keyframe at or before frame ``index``: where decoding it must start."""
        return self.keyframes[max(0, bisect.bisect_right(self.keyframes, index) - 1)]


def frame_table(path: str | Path) -> FrameTable | None:
    """The ``FrameTable`` of the first video stream: one pass over the packets, about a
    hundredth of the time decoding takes. None when the packets cannot number the frames
    (no timestamps, as in a raw ``.h264`` stream; repeated ones; a read error part way):
    only decoding can then count them. MediaError for unreadable files or no video.
    Remembered for the last few files, as long as their size and time stamp stay the same."""
    p = _checked_path(path)
    try:
        stat = p.stat()
    except OSError:
        return _frame_table(p)  # _checked_path's message is in there
    return _frame_table_of(p, stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _frame_table_of(path: Path, size: int, mtime_ns: int) -> FrameTable | None:
    return _frame_table(path)


def _frame_table(p: Path) -> FrameTable | None:
    with _guard(p, "cannot be read"):
        container = _open(p)
        try:
            video = _video_streams(container)
            if not video:
                raise MediaError(p, "has no video stream (audio only): there are no frames")
            stream = video[0]
            for other in container.streams:
                if other is not stream:
                    other.discard = av.stream.Discard.all
            tb, origin = stream.time_base, _origin(container)
            if not tb:
                return None
            times: list[float] = []
            keys: set[float] = set()
            try:
                for packet in container.demux(stream):
                    if packet.size == 0:  # end marker, or an empty AVI chunk (never decoded)
                        continue
                    if packet.pts is None:
                        return None
                    t = float(packet.pts * tb - origin)
                    times.append(t)
                    if packet.is_keyframe:
                        keys.add(t)
            except _ERROR_CLASSES:
                return None
        finally:
            container.close()
    ordered = sorted(times)
    if not ordered or len(set(ordered)) != len(ordered):
        return None
    keyframes = sorted({0, *(bisect.bisect_left(ordered, t) for t in keys)})
    return FrameTable(tuple(ordered), tuple(keyframes))


def iter_frames(
    path: str | Path,
    *,
    rate: float | Fraction | None = None,
    max_side: int | None = None,
    threads: int = 0,
    fast: bool = False,
    reference_only: bool = False,
    start: float | None = None,
) -> Iterator[Frame]:
    """Decode the first video stream once, lazily.

    rate: None gives every frame as stored (variable frame rate kept); a number gives frames at
    t = k / rate (the frame on screen at that instant). max_side: downscale in the decoder so the
    longer side is at most this many pixels (aspect kept). threads: decoder threads, 0 = auto.

    fast: for analysis passes that only compare small pictures (scene cuts), not for frames
    anyone looks at or embeds. The decoder skips its in-loop deblocking filter (H.264, HEVC,
    VP8/9, AV1: about a fifth of their decoding time; the picture drifts slightly blockier
    until the next keyframe) and downscaling uses swscale's fast bilinear filter instead of
    area averaging (a few times cheaper, a little more aliasing).

    reference_only: decode only the frames other frames are predicted from (libavcodec's
    ``skip_frame=nonref``; with x264's defaults about half of them, the cheaper half). What is
    delivered is pixel-identical to the same frames of a full decode, only sparser; streams
    without B-frames lose nothing. start: deliver the frames from this time (seconds) on,
    decoding from the keyframe before it. Both need ``rate=None``; ``Frame.index`` still counts
    the frames delivered, and ``frame_table`` numbers them among all the stored frames.

    The file is opened (and bad input refused) when this is called, not at the first frame.
    """
    if rate is not None and (reference_only or start is not None):
        raise ConfigError("reference_only and start are for passes over stored frames (rate=None)")
    if reference_only and start is not None:
        raise ConfigError("a reference_only pass covers the whole file: it takes no start")
    if start is not None and not (isinstance(start, (int, float)) and math.isfinite(start)):
        raise ConfigError(f"start must be a time in seconds, not {start!r}")
    step = _as_rate(rate) if rate is not None else None
    if max_side is not None and (not isinstance(max_side, int) or max_side < 1):
        raise ConfigError(f"max_side must be a positive whole number of pixels, not {max_side!r}")
    if not isinstance(threads, int) or threads < 0:
        raise ConfigError(f"threads must be 0 (auto) or more, not {threads!r}")
    p = _checked_path(path)
    with _guard(p, "cannot be read"):
        container = _open(p)
        try:
            stream, full_from = _set_up_decoder(p, container, threads, fast, reference_only)
        except BaseException:
            container.close()
            raise
    frames = _decoded(
        p,
        container,
        stream,
        start=float(start) if start is not None and start > 0 else None,
        full_from=full_from,
        # Frames skipped at the end of a reference-only pass are not a truncation.
        slack_frames=_MAX_B_FRAMES + 2 if reference_only else 2,
    )
    pictures = _Pictures(p, max_side, _FAST_INTERPOLATION if fast else "AREA")
    if step is None:
        return _every_frame(frames, pictures)
    return _sampled(frames, pictures, step)


def _set_up_decoder(
    path: Path,
    container: av.container.InputContainer,
    threads: int,
    fast: bool,
    reference_only: bool,
) -> tuple[av.VideoStream, int | None]:
    """The stream ``iter_frames`` decodes, its decoder configured; and, for a reference-only
    pass, the packet from which every frame is decoded."""
    video = _video_streams(container)
    if not video:
        raise MediaError(path, "has no video stream (audio only): there are no frames to read")
    stream = video[0]
    stream.thread_type = "AUTO"  # frame and slice threads
    stream.codec_context.thread_count = threads
    if fast:
        # Read when the decoder opens, at the first packet: still in time here.
        stream.codec_context.options = {**stream.codec_context.options, **_FAST_DECODER_OPTIONS}
    if not reference_only:
        return stream, None
    stream.codec_context.skip_frame = "NONREF"
    # The last packets are decoded in full, so the pass ends on the last frame shown (x264
    # puts at most 16 B-frames between references) and a consumer comparing neighbours has
    # no undecoded tail.
    count = stream.frames or len(frame_table(path) or ())
    return stream, (max(0, count - _MAX_B_FRAMES - 2) if count else None)


PASS_DECODER_THREADS = 8
"""Decoder threads for a pass over a whole file (scene scans, suggest's analysis pass), where
``threads=0`` would leave it to FFmpeg (cores + 1). More than the cores: frame threads wait for
the frames they are predicted from, and with more frames in flight those waits overlap. On 2
cores and 1080p H.264: a quick scene scan 3.36 → 2.47 s, a full decode to 448 px 5.09 → 4.34 s
(BENCHMARKS.md). Decoders without frame threads ignore it."""

_Interpolation = Literal["AREA", "FAST_BILINEAR"]
_FAST_DECODER_OPTIONS = {"skip_loop_filter": "all"}
"""libavcodec options of ``iter_frames(fast=True)``. Only the loop filter: skipping IDCT, or
frames that others are predicted from (``skip_frame=bidir``: x264's B-pyramid references
them), corrupts the frames after. ``reference_only`` skips the frames nothing refers to."""
_MAX_B_FRAMES = 16
_AVFMT_NOTIMESTAMPS = 0x80  # libavformat: the format stores no timestamps
_KEYFRAME_WAIT = 1000  # packets read after a seek in search of a keyframe before decoding anyway
_FAST_INTERPOLATION: _Interpolation = "FAST_BILINEAR"
"""swscale filter of ``iter_frames(fast=True)`` when downscaling."""


def _as_rate(rate: float | Fraction) -> Fraction:
    if isinstance(rate, bool) or not isinstance(rate, (int, float, Fraction)):
        raise ConfigError(f"rate must be a number of frames per second, not {rate!r}")
    if not math.isfinite(rate) or rate <= 0:
        raise ConfigError(f"rate must be positive, not {rate}")
    # 29.97002997... as a float becomes exactly 30000/1001; whole rates stay whole.
    return Fraction(rate).limit_denominator(1_000_000)


@dataclass
class _Decoded:
    time: Fraction  # seconds from the file origin
    frame: av.VideoFrame
    duration: Fraction | None  # seconds, when the stream says


def _decoded(
    path: Path,
    container: av.container.InputContainer,
    stream: av.VideoStream,
    *,
    start: float | None = None,
    full_from: int | None = None,
    slack_frames: int = 2,
) -> Generator[_Decoded, None, None]:
    """Frames in presentation order with exact times, from ``start`` seconds when given;
    MediaError at the end if the data stops more than ``slack_frames`` frames (and a quarter
    second) before the stated end. Owns the container: closes it however iteration ends."""
    tb = stream.time_base
    origin = _origin(container)
    source = _Frames(container, stream, full_from)
    last: _Decoded | None = None
    counted: Fraction | None = None  # the time of the last frame decoded, delivered or not
    try:
        frames = iter(source) if start is None else _seek_frames(container, source, start)
        for vf in frames:
            if vf.is_corrupt:
                # Concealed garbage (a packet cut short by truncation, a damaged one): a
                # consumer would see a false cut. Skipped; sampling holds the frame before.
                continue
            pts = vf.pts if vf.pts is not None else vf.dts
            if pts is None or not tb:  # no timestamps at all: count frames at the stated rate
                rate = stream.average_rate or stream.guessed_rate or Fraction(25)
                t = (counted + 1 / rate) if counted is not None else Fraction(0)
            else:
                t = pts * tb - origin
            counted = t
            if start is not None and float(t) < start:
                # Decoded from the keyframe before start only to build the picture. Compared
                # as the float Frame.time, so that start=frame.time delivers that frame.
                continue
            last = _Decoded(t, vf, vf.duration * tb if vf.duration and tb else None)
            yield last
        if last is None:
            why = source.decode_error or source.read_error
            raise MediaError(path, "no video frame could be decoded" + (f" ({why})" if why else ""))
        end = last.time + (last.duration or 0)
        slack = slack_frames / stream.average_rate if stream.average_rate else Fraction(0)
        early = _ends_early(path, container, stream, end, slack)
        if early is not None:
            raise early
        if source.read_error:
            raise MediaError(
                path, f"cannot be read past {float(end):.2f} s (damaged): {source.read_error}"
            )
    except _ERROR_CLASSES as exc:
        raise MediaError(path, f"video cannot be decoded: {_describe(exc)}") from exc
    finally:
        container.close()


def _seek_frames(
    container: av.container.InputContainer, source: _Frames, start: float
) -> Iterator[av.VideoFrame]:
    """Decoded frames from the keyframe at or before ``start`` (seconds from the file origin)
    on. A demuxer that lands after ``start`` (imprecise indexes, an open GOP's leading frames
    that cannot be decoded) is sent back further, one second, then two, four... until the
    first good frame comes at or before ``start``, or the file's start is reached.

    Unless the pass skips frames anyway, frames before ``start`` that nothing refers to are
    not decoded (they would be dropped): from a keyframe ten seconds back, that halves the
    work on x264's output."""
    stream = source.stream
    tb = stream.time_base
    if not tb or container.format.flags & _AVFMT_NOTIMESTAMPS:
        # A raw stream (.h264, .hevc): FFmpeg cannot seek in it, and a failed seek leaves
        # the reader at its end. Decode from the start; the caller drops what comes before.
        yield from source
        return
    origin = source.origin
    skip = stream.codec_context.skip_frame
    back = Fraction(0)
    while True:
        if skip == "DEFAULT":
            stream.codec_context.skip_frame = "NONREF"
            source.full_at = start
        target = Fraction(start) - back
        at_start = target <= 0
        if at_start:
            container.seek(0, backward=True)
        else:
            container.seek(math.floor((target + origin) / tb), stream=stream, backward=True)
        # Demuxers that seek by timestamp (MPEG-TS/PS) land anywhere: find the keyframe.
        source.keyframe_by = None if at_start else start
        source.landed_late = False
        frames = iter(source)
        first = next((vf for vf in frames if not vf.is_corrupt), None)
        late = source.landed_late or first is None
        if first is not None:
            pts = first.pts if first.pts is not None else first.dts
            late = pts is not None and float(pts * tb - origin) > start
        if at_start or not late:
            if first is not None:
                yield first
                yield from frames
            return
        back = max(Fraction(1), back * 2)


class _Pictures:
    """av frames to upright RGB arrays, downscaled by swscale while converting.

    One reformatter for the whole pass: it keeps its swscale context while the frames' size and
    format stay the same, where ``VideoFrame.reformat`` sets one up per frame (most of the cost
    for small outputs: 0.7 instead of 0.13 ms for 768x576 to 128x96 with AREA).
    ``interpolation`` is swscale's filter for downscaling: AREA averages the source pixels (no
    aliasing on large reductions); FAST_BILINEAR is cheaper and aliases."""

    def __init__(
        self, path: Path, max_side: int | None, interpolation: _Interpolation = "AREA"
    ) -> None:
        self.path = path
        self.max_side = max_side
        self.interpolation = interpolation
        self.reformatter = av.video.reformatter.VideoReformatter()
        self.orient: _Orientation | None = None

    def __call__(self, vf: av.VideoFrame) -> np.ndarray:
        with _guard(self.path, "a video frame cannot be converted"):
            return self._convert(vf)

    def _convert(self, vf: av.VideoFrame) -> np.ndarray:
        if self.orient is None:
            self.orient = _orientation(vf)
        w, h = vf.width, vf.height
        if self.max_side is not None and max(w, h) > self.max_side:
            scale = self.max_side / max(w, h)
            w, h = max(1, round(vf.width * scale)), max(1, round(vf.height * scale))
            rgb = self.reformatter.reformat(
                vf, width=w, height=h, format="rgb24", interpolation=self.interpolation
            )
        else:
            rgb = self.reformatter.reformat(vf, format="rgb24")
        image = np.ascontiguousarray(self.orient.apply(rgb.to_ndarray()))
        image.flags.writeable = False  # shared by consumers and held frames
        return image


def _every_frame(frames: Generator[_Decoded, None, None], pictures: _Pictures) -> Iterator[Frame]:
    with contextlib.closing(frames):
        for i, d in enumerate(frames):
            yield Frame(i, float(d.time), pictures(d.frame))


def _sampled(
    frames: Generator[_Decoded, None, None], pictures: _Pictures, rate: Fraction
) -> Iterator[Frame]:
    """The frame on screen at each t = k / rate (sample and hold), with exact arithmetic on
    timestamps. Before the first frame the first one is shown; a frame that is never on
    screen at a sampled instant is never converted."""
    k = 0
    held: _Decoded | None = None
    image: np.ndarray | None = None
    interval: Fraction | None = None
    ended_early: MediaError | None = None
    with contextlib.closing(frames):
        try:
            for d in frames:
                if held is not None:
                    if d.time > held.time:
                        interval = d.time - held.time
                    while k < d.time * rate:
                        if image is None:
                            image = pictures(held.frame)
                        yield Frame(k, float(k / rate), image)
                        k += 1
                held, image = d, None
        except MediaError as exc:  # a short file: deliver the last frame's instants first
            ended_early = exc
    if held is not None:
        # The last frame stays on screen for its duration (or the previous frame interval).
        end = held.time + (held.duration or interval or 1 / rate)
        while k < end * rate:
            if image is None:
                image = pictures(held.frame)
            yield Frame(k, float(k / rate), image)
            k += 1
    if ended_early is not None:
        raise ended_early


def broadcast(frames: Iterable[Frame], consumers: Sequence[Callable[[Frame], object]]) -> int:
    """Feed one pass of frames to several consumers (scene detector, segment sampler...).

    Returns the number of frames delivered. Nothing is decoded twice. Every consumer sees a
    frame before the next one is decoded; the frames' arrays are read-only, so one consumer
    cannot change what the next sees. If a consumer raises, decoding stops (file closed).
    """
    count = 0
    try:
        for frame in frames:
            for consume in consumers:
                consume(frame)
            count += 1
    finally:
        close = getattr(frames, "close", None)
        if callable(close):
            close()
    return count


# --------------------------------------------------------------------------- audio


def load_audio(
    path: str | Path,
    *,
    sample_rate: int | None = None,
    channels: ChannelMode = "mono",
    start: float = 0.0,
    duration: float | None = None,
    stream: int = 0,
) -> Audio:
    """Decode audio stream number ``stream`` (0 = first audio stream) as float32.

    sample_rate None keeps the file's rate. Raises MediaError when there is no audio stream.
    ``start`` and ``duration`` are seconds from the start of the file (for a file without
    pictures, from its first decoded sample: module notes); the result has exactly
    ``round(duration * rate)`` samples when the file covers the window (fewer when the file
    ends first, none when it ends before ``start``).
    """
    if sample_rate is not None and (
        isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or sample_rate <= 0
    ):
        raise ConfigError(f"sample_rate must be a positive whole number of Hz, not {sample_rate!r}")
    if channels not in get_args(ChannelMode):
        raise ConfigError(
            f"channels must be one of {', '.join(get_args(ChannelMode))}, not {channels!r}"
        )
    if not math.isfinite(start) or start < 0:
        raise ConfigError(f"start must be 0 or more seconds, not {start}")
    if duration is not None and (not math.isfinite(duration) or duration < 0):
        raise ConfigError(f"duration must be 0 or more seconds, not {duration}")
    if isinstance(stream, bool) or not isinstance(stream, int) or stream < 0:
        raise ConfigError(f"stream must be 0 or more, not {stream!r}")
    p = _checked_path(path)
    with _guard(p, "audio cannot be decoded"):
        container = _open(p)
        try:
            streams = container.streams.audio
            if not streams:
                kind = " (video only)" if _video_streams(container) else ""
                raise MediaError(p, f"has no audio stream{kind}")
            if stream >= len(streams):
                raise MediaError(
                    p, f"has {len(streams)} audio stream(s); stream {stream} was asked for"
                )
            return _load(p, container, streams[stream], sample_rate, channels, start, duration)
        finally:
            container.close()


def _load(
    path: Path,
    container: av.container.InputContainer,
    stream: av.AudioStream,
    sample_rate: int | None,
    mode: ChannelMode,
    start: float,
    duration: float | None,
) -> Audio:
    rate = sample_rate or int(stream.codec_context.sample_rate or 0)
    if rate <= 0:
        raise MediaError(path, "its audio stream has no sample rate")
    # Everything below counts output samples from the file origin: sample j is at j / rate.
    first = round(start * rate)
    wanted: int | None = first + round(duration * rate) if duration is not None else None
    container_origin = origin = _origin(container)
    # An audio file's sample 0 is its first decoded sample, the sound's own start, whatever
    # timestamp the demuxer gives it (module notes): ``head_at`` is that frame's time.
    audio_only = not _video_streams(container)
    head_at: Fraction | None = Fraction(0) if audio_only else None
    tagged = _itunes_length(container, stream) if audio_only else None
    seek_to: Fraction | None = None
    if start > 1 and stream.time_base:
        if head_at is not None:
            origin = _first_frame_time(path, stream.index, container_origin) - head_at
        # A second early: lands before ``start`` even where seeking is approximate (mp3).
        seek_to = Fraction(start) - 1 + origin
    decoded = _resampled(path, container, stream, rate, mode, origin, seek_to, first, head_at)
    if decoded is None:  # the seek landed after ``start``: decode from the beginning
        container.seek(0)
        stream.codec_context.flush_buffers()
        decoded = _resampled(path, container, stream, rate, mode, origin, None, first, head_at)
    assert decoded is not None
    if seek_to is None and head_at is not None and decoded.head_time is not None:
        origin = decoded.head_time - head_at
    stop = wanted
    stated = _stated_end(container, stream)
    if container.format.name in _TRUSTED_DURATION and stated is not None:
        # The container's end trims encoder padding (AAC decodes whole 1024-sample frames).
        stated_stop = round((stated + container_origin - origin) * rate)
        stop = stated_stop if stop is None else min(stop, stated_stop)
    if tagged is not None:  # the sound's own length: the encoder's padding goes
        tagged_stop = round(tagged * rate)
        stop = tagged_stop if stop is None else min(stop, tagged_stop)
    if stop is not None and stop <= first:
        decoded.close()
        n_channels = _out_channels(mode, stream.codec_context.layout.nb_channels)
        return Audio(np.zeros((n_channels, 0), dtype=np.float32), rate)
    begin, chunks, at_eof = decoded.begin, [], True
    pos = begin
    for chunk in decoded.chunks:
        chunks.append(chunk)
        pos += chunk.shape[1]
        if stop is not None and pos >= stop:
            at_eof = False  # enough: the rest is not decoded
            break
    decoded.close()
    empty = np.zeros((decoded.channels, 0), np.float32)
    data = np.concatenate(chunks, axis=1) if chunks else empty
    if begin > first:
        # Audio starting after the file origin (or after ``start``): silence keeps sync.
        pad = np.zeros((data.shape[0], begin - first), np.float32)
        data, begin = np.concatenate([pad, data], axis=1), first
    data = data[:, first - begin : None if stop is None else stop - begin]
    if at_eof:
        reached = Fraction(first + data.shape[1], rate)
        shift = origin - container_origin  # the sound's start on the container's clock
        early = _ends_early(path, container, stream, reached + shift) if stop is not None else None
        if early is not None:
            raise early
        if decoded.source.read_error:
            raise MediaError(
                path,
                f"cannot be read past {float(reached):.2f} s (damaged): "
                f"{decoded.source.read_error}",
            )
    return Audio(_remix(data, mode), rate)


def _first_frame_time(path: Path, index: int, fallback: Fraction) -> Fraction:
    """Seconds (on the container's clock) of the first frame the decoder gives for stream
    ``index``: a second reader, so the caller's stays where it is."""
    container = _open(path)
    try:
        stream = container.streams[index]
        tb = stream.time_base
        for frame in _Frames(container, cast(av.VideoStream | av.AudioStream, stream)):
            if frame.pts is not None and tb:
                return Fraction(frame.pts) * tb
            break
        return fallback
    finally:
        container.close()


_SMPB = re.compile(
    r"^\s*([0-9A-Fa-f]{8})\s+([0-9A-Fa-f]{8})\s+([0-9A-Fa-f]{8})\s+([0-9A-Fa-f]{16})"
)


def _itunes_length(
    container: av.container.InputContainer, stream: av.AudioStream
) -> Fraction | None:
    """The length in seconds of the original sound that an MP4's ``iTunSMPB`` tag states.

    iTunes and Apple's encoders write ``iTunSMPB`` as hex words: a zero, the encoder delay
    (priming, usually 2112 samples for AAC), the padding at the end and the number of
    samples of the original sound. FFmpeg drops the priming itself (the stream then starts
    after it) but decodes the padding as if it were sound; Apple's decoder stops at the
    stated length, and so do we."""
    if not container.format.name.startswith("mov,mp4"):
        return None
    match = _SMPB.match(container.metadata.get("iTunSMPB") or stream.metadata.get("iTunSMPB") or "")
    rate = stream.codec_context.sample_rate
    if match is None or not rate:
        return None
    length = int(match.group(4), 16)
    return Fraction(length, rate) if length > 0 else None


def _out_channels(mode: ChannelMode, n: int) -> int:
    if mode in ("mono", "first"):
        return 1
    return 2 if mode == "stereo" else max(1, n)


def _remix(data: np.ndarray, mode: ChannelMode) -> np.ndarray:
    if mode == "mono" and data.shape[0] > 1:
        data = data.mean(axis=0, dtype=np.float32, keepdims=True)
    elif mode == "first":
        data = data[:1]
    elif mode == "stereo" and data.shape[0] == 1:
        data = np.concatenate([data, data])
    return np.ascontiguousarray(data, dtype=np.float32)


@dataclass
class _Resampled:
    begin: int  # output sample index (from the origin) of the first sample in chunks
    channels: int
    chunks: Iterator[np.ndarray]
    source: _Frames  # knows whether reading stopped on an error
    head_time: Fraction | None = None  # the first frame's time on the container's clock

    def close(self) -> None:
        close = getattr(self.chunks, "close", None)
        if callable(close):
            close()


def _resampled(
    path: Path,
    container: av.container.InputContainer,
    stream: av.AudioStream,
    rate: int,
    mode: ChannelMode,
    origin: Fraction,
    seek_to: Fraction | None,
    first: int,
    head_at: Fraction | None = None,
) -> _Resampled | None:
    """Decode (after seeking to ``seek_to`` s) and resample to planar float32 at ``rate``.

    Returns None when a seek landed after output sample ``first``. The resampler keeps the
    time of its first input sample, so output sample i is at begin + i exactly. Without a
    seek, ``head_at`` (when given) is the time of the first decoded frame, whatever its
    timestamp says: an audio file starts where its sound starts."""
    tb = stream.time_base
    if seek_to is not None and tb:
        container.seek(int(seek_to / tb), stream=stream, backward=True)
    source = _Frames(container, stream)
    frames = iter(source)
    head = next(frames, None)
    if head is None:
        n = _out_channels(mode, stream.codec_context.layout.nb_channels)
        return _Resampled(first, n, iter(()), source)
    head_time = Fraction(head.pts) * tb if head.pts is not None and tb else None
    if seek_to is None and head_at is not None:
        begin = round(head_at * rate)
    elif head_time is not None:
        begin = round((head_time - origin) * rate)
    elif seek_to is None:
        begin = 0
    else:
        frames.close()
        return None
    if seek_to is not None and begin > first:
        frames.close()
        return None
    n_in = head.layout.nb_channels
    # swresample is asked for the input's own layout except when FFmpeg must downmix to
    # stereo: mono / first / keep are done on the exact channels.
    layout = "stereo" if mode == "stereo" and n_in > 2 else head.layout
    resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate)

    def chunks() -> Iterator[np.ndarray]:
        with contextlib.closing(frames):
            for frame in _chain(head, frames):
                for out in resampler.resample(frame):
                    yield out.to_ndarray()
            for out in resampler.resample(None):  # flush: the filter holds the tail back
                yield out.to_ndarray()

    channels = 2 if layout == "stereo" else n_in
    return _Resampled(begin, channels, chunks(), source, head_time)


def _chain(head: av.AudioFrame, rest: Iterator[av.AudioFrame]) -> Iterator[av.AudioFrame]:
    yield head
    yield from rest


# --------------------------------------------------------------------------- WAV writing

_RIFF_MAX = 2**32 - 1
_FORMAT_PCM = 0x0001
_FORMAT_FLOAT = 0x0003
_FORMAT_EXTENSIBLE = 0xFFFE
_GUID_TAIL = b"\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"  # KSDATAFORMAT_SUBTYPE_*
_CHANNEL_MASKS = {1: 0x4, 2: 0x3, 4: 0x33, 6: 0x3F, 8: 0x63F}  # mono, stereo, quad, 5.1, 7.1
_CHUNK_FRAMES = 1 << 18  # sample frames converted at a time (bounded extra memory)


def write_wav(path: str | Path, audio: Audio, *, subtype: WavSubtype = "float32") -> Path:
    """Write a WAV file atomically (temporary file, then rename) and return its path.

    float32 is WAVE_FORMAT_IEEE_FLOAT with a fact chunk, written bit for bit; pcm16 / pcm24
    clip to [-1, 1) and round (scale 2**15 / 2**23, what FFmpeg reads back exactly). More than
    two channels use WAVE_FORMAT_EXTENSIBLE. Files past the 4 GiB RIFF limit are refused.
    """
    p = Path(path)
    bits = {"float32": 32, "pcm16": 16, "pcm24": 24}.get(subtype)
    if bits is None:
        raise ConfigError(f"subtype must be float32, pcm16 or pcm24, not {subtype!r}")
    samples = np.asarray(audio.samples)
    if samples.ndim != 2 or samples.shape[0] < 1:
        raise ConfigError(f"audio samples must be (channels, n), got shape {samples.shape}")
    rate = audio.sample_rate
    if isinstance(rate, bool) or not isinstance(rate, (int, np.integer)) or not 0 < rate < 2**32:
        raise ConfigError(f"sample_rate must be a positive whole number of Hz, not {rate!r}")
    channels, n = samples.shape
    block = channels * bits // 8
    data_size = n * block
    is_float = subtype == "float32"
    tag = _FORMAT_FLOAT if is_float else _FORMAT_PCM
    fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * block, block, bits)
    if channels > 2:
        # Plain WAVE formats cannot say which speaker a channel is; EXTENSIBLE can.
        subformat = struct.pack("<I", tag) + _GUID_TAIL
        mask = _CHANNEL_MASKS.get(channels, 0)
        fmt = (
            struct.pack(
                "<HHIIHHHHI",
                _FORMAT_EXTENSIBLE,
                channels,
                rate,
                rate * block,
                block,
                bits,
                22,
                bits,
                mask,
            )
            + subformat
        )
    elif is_float:
        fmt += struct.pack("<H", 0)  # cbSize: non-PCM formats carry it
    chunks = b"fmt " + struct.pack("<I", len(fmt)) + fmt
    if is_float:
        chunks += b"fact" + struct.pack("<II", 4, n)  # required for non-PCM data
    pad = data_size % 2  # RIFF chunks are word aligned
    riff_size = 4 + len(chunks) + 8 + data_size + pad
    if riff_size > _RIFF_MAX:
        raise MediaError(
            p,
            f"too long for a WAV file: {data_size / 2**30:.1f} GiB of audio is past the 4 GiB "
            "RIFF limit; write shorter files or fewer channels",
        )
    header = b"RIFF" + struct.pack("<I", riff_size) + b"WAVE" + chunks
    header += b"data" + struct.pack("<I", data_size)
    try:
        with atomic_write(p) as tmp, open(tmp, "wb") as f:
            f.write(header)
            for a in range(0, n, _CHUNK_FRAMES):
                f.write(_wav_bytes(samples[:, a : a + _CHUNK_FRAMES], subtype))
            if pad:
                f.write(b"\x00")
    except OSError as exc:
        raise MediaError(p, f"cannot be written: {_describe(exc)}") from exc
    return p


def _wav_bytes(block: np.ndarray, subtype: WavSubtype) -> bytes:
    """Interleaved little-endian sample bytes of a (channels, n) block."""
    frames = block.T  # (n, channels): interleaved once made contiguous
    if subtype == "float32":
        return np.ascontiguousarray(frames, dtype="<f4").tobytes()
    full = 2.0 ** (15 if subtype == "pcm16" else 23)
    x = np.nan_to_num(frames.astype(np.float64), nan=0.0, posinf=1.0, neginf=-1.0)
    q = np.clip(np.rint(x * full), -full, full - 1)
    if subtype == "pcm16":
        return np.ascontiguousarray(q, dtype="<i2").tobytes()
    # 24-bit: the low three bytes of each little-endian int32.
    q32 = np.ascontiguousarray(q, dtype="<i4")
    return q32.view(np.uint8).reshape(*q32.shape, 4)[..., :3].tobytes()
