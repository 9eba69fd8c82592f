"""Loading audio: resampled, remixed, from the file's first decoded sample, encoder priming
and padding dropped as FFmpeg's command line drops them."""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import cast, get_args

import av
import av.container
import av.error
import av.sidedata.sidedata
import av.video.reformatter
import numpy as np

from sfxmatch.errors import ConfigError, MediaError
from sfxmatch.media.probe import (
    _TRUSTED_DURATION,
    _checked_path,
    _ends_early,
    _Frames,
    _guard,
    _open,
    _origin,
    _stated_end,
    _video_streams,
)
from sfxmatch.media.values import Audio, ChannelMode

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
