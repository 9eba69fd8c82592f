"""Decoding pictures: upright RGB frames, once per pass for several consumers, sampled at a
rate or every frame, from a keyframe before ``start``."""

from __future__ import annotations

import bisect
import contextlib
import functools
import math
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal

import av
import av.container
import av.error
import av.sidedata.sidedata
import av.video.reformatter
import numpy as np

from sfxmatch.errors import ConfigError, MediaError
from sfxmatch.media.probe import (
    _ERROR_CLASSES,
    _checked_path,
    _describe,
    _ends_early,
    _Frames,
    _guard,
    _open,
    _Orientation,
    _orientation,
    _origin,
    _video_streams,
)
from sfxmatch.media.values import Frame

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
