"""Synthetic media with exact ground truth, written with PyAV.

Every ``make_*`` function writes one file and returns a small frozen dataclass saying what
is in it (cut frames, object trajectory, timestamps, rotation, click times...), so tests can
check a reader or a detector to the frame or to the sample.

Conventions:
- Sizes are ``(width, height)``; frames are upright RGB ``uint8`` arrays of shape (H, W, 3).
- Every video carries its frame number burned into a strip of black/white cells along its
  (upright) bottom edge; :func:`read_frame_number` reads it back from a decoded frame.
- Sounds are ``float32`` arrays of shape (channels, samples) in [-1, 1].

Run ``python -m sfxmatch.testing.synth cuts OUT.mp4`` for a demo video with known cuts.
"""

from __future__ import annotations

import argparse
import colorsys
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal, cast

import av
import numpy as np

from sfxmatch.errors import ConfigError, MediaError

Size = tuple[int, int]
VideoCodec = Literal["libx264", "mpeg4"]

# Frame-number strip: two rows of cells, the second the inverse of the first, so a reader
# can tell a real strip from any picture that happens to be there.
STRIP_BITS = 12
STRIP_ROW_HEIGHT = 8
STRIP_HEIGHT = 2 * STRIP_ROW_HEIGHT

# Orientation markers of rotated videos, in upright picture coordinates.
MARKER_TOP_LEFT = (255, 0, 0)
MARKER_TOP_RIGHT = (0, 0, 255)

OBJECT_COLOUR = (255, 255, 255)


# --------------------------------------------------------------------------- sounds


def _n_samples(duration: float, sample_rate: int) -> int:
    if duration < 0 or sample_rate <= 0:
        raise ConfigError(f"need duration >= 0 and sample_rate > 0, got {duration}, {sample_rate}")
    return round(duration * sample_rate)


def silence(duration: float, sample_rate: int, *, channels: int = 1) -> np.ndarray:
    """Zeros of shape (channels, round(duration * sample_rate))."""
    return np.zeros((channels, _n_samples(duration, sample_rate)), dtype=np.float32)


def tone(
    freq: float,
    duration: float,
    sample_rate: int,
    amplitude: float = 0.5,
    *,
    channels: int = 1,
    phase: float = 0.0,
) -> np.ndarray:
    """A sine of ``freq`` Hz, the same on every channel."""
    t = np.arange(_n_samples(duration, sample_rate), dtype=np.float64) / sample_rate
    wave = amplitude * np.sin(2 * np.pi * freq * t + phase)
    return np.tile(wave.astype(np.float32), (channels, 1))


def clicks(
    times: Iterable[float],
    sample_rate: int,
    duration: float,
    *,
    amplitude: float = 1.0,
    width: int = 1,
    channels: int = 1,
) -> np.ndarray:
    """Silence with an impulse of ``width`` samples starting at sample ``round(t * sample_rate)``
    for every ``t`` in ``times`` (clicks past the end are an error, not silently dropped)."""
    out = silence(duration, sample_rate, channels=channels)
    for t in times:
        start = round(t * sample_rate)
        if not 0 <= start < out.shape[1]:
            raise ConfigError(f"click at {t} s is outside the {duration} s signal")
        out[:, start : start + width] = amplitude
    return out


def click_samples(times: Iterable[float], sample_rate: int) -> tuple[int, ...]:
    """The sample index where :func:`clicks` puts each click."""
    return tuple(round(t * sample_rate) for t in times)


def noise_burst(
    duration: float,
    sample_rate: int,
    *,
    start: float = 0.0,
    length: float | None = None,
    amplitude: float = 0.5,
    seed: int = 0,
    channels: int = 1,
) -> np.ndarray:
    """Silence with uniform white noise from ``start`` for ``length`` seconds (default: to the
    end). Seeded, so the same arguments give the same samples."""
    out = silence(duration, sample_rate, channels=channels)
    a = round(start * sample_rate)
    b = out.shape[1] if length is None else min(out.shape[1], a + round(length * sample_rate))
    rng = np.random.default_rng(seed)
    out[:, a:b] = rng.uniform(-amplitude, amplitude, size=(channels, max(0, b - a)))
    return out


@dataclass(frozen=True)
class SyncSoundTruth:
    """A sound effect as libraries ship them: ``lead`` seconds of room tone, then the event
    (its first sample is ``onset``), ringing out under the room tone that goes on."""

    samples: np.ndarray  # (channels, n) float32
    sample_rate: int
    onset: int  # sample index of the event's first sample: round(lead * sample_rate)
    peak: int  # sample index of the loudest sample

    @property
    def onset_seconds(self) -> float:
        return self.onset / self.sample_rate


def sync_sound(
    lead: float,
    sample_rate: int,
    *,
    tail: float = 0.6,
    room_tone_db: float = -50.0,
    kind: Literal["knock", "burst"] = "knock",
    amplitude: float = 0.8,
    seed: int = 0,
    channels: int = 1,
) -> SyncSoundTruth:
    """Room tone (Gaussian noise ``room_tone_db`` dBFS RMS, seeded) for ``lead`` seconds, then
    an event that starts at full amplitude on sample ``round(lead * sample_rate)``: a knock (a
    1.2 kHz cosine decaying over 60 ms) or a burst (noise decaying over 40 ms, its first
    sample at ``amplitude``). The room tone runs under the event to the end (``tail`` s after
    it)."""
    onset = round(lead * sample_rate)
    n = onset + round(tail * sample_rate)
    rng = np.random.default_rng(seed)
    out = rng.normal(0.0, 10 ** (room_tone_db / 20), n)
    t = np.arange(n - onset) / sample_rate
    if kind == "knock":
        event = amplitude * np.cos(2 * np.pi * 1200.0 * t) * np.exp(-t / 0.06)
    else:
        event = rng.normal(0.0, amplitude / 3, n - onset) * np.exp(-t / 0.04)
        event[0] = amplitude
    out[onset:] += event
    signal = np.tile(out.astype(np.float32), (channels, 1))
    return SyncSoundTruth(signal, sample_rate, onset, int(np.argmax(np.abs(out))))


def make_bwf_file(
    path: str | os.PathLike[str],
    signal: np.ndarray,
    sample_rate: int,
    *,
    cues: Sequence[tuple[int, str]] = (),
    ixml: str | None = None,
    time_reference: int = 0,
    description: str = "",
) -> Path:
    """A Broadcast WAV (16-bit PCM) as recorders and library tools write it: ``bext`` (its
    TimeReference in samples since midnight), ``data``, then a ``cue `` chunk with one point
    per ``(sample frame, label)`` (labels in ``LIST``/``adtl``/``labl``; "" for none) and an
    optional ``iXML`` chunk."""
    import struct

    x = np.atleast_2d(np.asarray(signal, dtype=np.float64))
    channels = x.shape[0]
    pcm = np.clip(np.rint(x.T * 32767.0), -32768, 32767).astype("<i2").tobytes()

    def chunk(cid: bytes, body: bytes) -> bytes:
        return cid + struct.pack("<I", len(body)) + body + (b"\0" if len(body) % 2 else b"")

    fmt = struct.pack(
        "<HHIIHH", 1, channels, sample_rate, sample_rate * 2 * channels, 2 * channels, 16
    )
    bext = description.encode()[:256].ljust(256, b"\0") + b"\0" * (32 + 32 + 10 + 8)
    bext += struct.pack("<II", time_reference & 0xFFFFFFFF, time_reference >> 32)
    bext += struct.pack("<H", 1) + b"\0" * (64 + 10 + 180)
    body = chunk(b"fmt ", fmt) + chunk(b"bext", bext) + chunk(b"data", pcm)
    if cues:
        points = struct.pack("<I", len(cues))
        labels = b"adtl"
        for ident, (frame, label) in enumerate(cues, start=1):
            points += struct.pack("<II4sIII", ident, frame, b"data", 0, 0, frame)
            if label:
                labels += chunk(b"labl", struct.pack("<I", ident) + label.encode() + b"\0")
        body += chunk(b"cue ", points) + chunk(b"LIST", labels)
    if ixml is not None:
        body += chunk(b"iXML", ixml.encode())
    out = Path(path)
    out.write_bytes(b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WAVE" + body)
    return out


# --------------------------------------------------------------------------- audio files


@dataclass(frozen=True)
class AudioFileTruth:
    path: Path
    codec: str  # FFmpeg encoder name used
    sample_rate: int
    channels: int
    n_samples: int  # samples per channel written (decoders of lossy codecs may pad or trim)
    lossy: bool
    tone_hz: float | None = None  # set by make_tone_file
    amplitude: float | None = None

    @property
    def duration(self) -> float:
        return self.n_samples / self.sample_rate


_LOSSY = {"vorbis": True, "libvorbis": True, "libmp3lame": True, "aac": True}


def _audio_codec_for(path: Path, sample_format: str) -> str:
    ext = path.suffix.lower()
    if ext == ".wav":
        return {"s16": "pcm_s16le", "f32": "pcm_f32le"}[sample_format]
    codecs = {".ogg": "libvorbis", ".flac": "flac", ".mp3": "libmp3lame", ".m4a": "aac"}
    if ext not in codecs:
        raise ConfigError(f"{path.name}: audio extension must be one of .wav .ogg .flac .mp3 .m4a")
    return codecs[ext]


def _layout(channels: int) -> str:
    if channels not in (1, 2):
        raise ConfigError(f"synthetic audio has 1 or 2 channels, not {channels}")
    return "mono" if channels == 1 else "stereo"


def _encode_audio(
    container: av.container.OutputContainer,
    stream: av.AudioStream,
    signal: np.ndarray,
    sample_rate: int,
) -> None:
    """Feed ``signal`` in 4096-sample frames; PyAV re-frames and converts to the codec's format."""
    data = np.ascontiguousarray(np.clip(signal, -1.0, 1.0), dtype=np.float32)
    for start in range(0, data.shape[1], 4096):
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(data[:, start : start + 4096]),
            format="fltp",
            layout=stream.layout.name,
        )
        frame.sample_rate = sample_rate
        frame.pts = start
        frame.time_base = Fraction(1, sample_rate)
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode(None):
        container.mux(packet)


def _add_audio_stream(
    container: av.container.OutputContainer, codec: str, sample_rate: int, channels: int
) -> av.AudioStream:
    stream = cast(
        av.AudioStream, container.add_stream(codec, rate=sample_rate, layout=_layout(channels))
    )
    if codec == "vorbis":
        # FFmpeg's own Vorbis encoder is flagged experimental (libvorbis is not in PyAV's wheel).
        stream.codec_context.options = {"strict": "experimental"}
    if codec in ("aac", "libmp3lame", "vorbis", "libvorbis"):
        stream.codec_context.bit_rate = 128_000 * channels
    return stream


def make_audio_file(
    path: str | Path,
    signal: np.ndarray,
    sample_rate: int,
    *,
    sample_format: Literal["s16", "f32"] = "s16",
) -> AudioFileTruth:
    """Write ``signal`` (channels, n) to ``path``; the codec follows the extension: .wav
    (pcm_s16le, or pcm_f32le with ``sample_format="f32"``), .ogg (Vorbis), .flac, .mp3, .m4a (AAC).

    Ogg uses the ``ffmpeg`` CLI's libvorbis when it is installed (what real libraries contain);
    without it, PyAV's built-in Vorbis encoder, which only writes stereo.
    """
    path = Path(path)
    signal = np.atleast_2d(np.asarray(signal, dtype=np.float32))
    channels = signal.shape[0]
    codec = _audio_codec_for(path, sample_format)
    if codec == "libvorbis":
        if shutil.which("ffmpeg"):
            _ogg_via_cli(path, signal, sample_rate)
            return AudioFileTruth(path, "libvorbis", sample_rate, channels, signal.shape[1], True)
        if channels != 2:
            raise MediaError(path, "mono Ogg Vorbis needs the ffmpeg CLI (Debian package ffmpeg)")
        codec = "vorbis"
    with av.open(str(path), "w") as container:
        stream = _add_audio_stream(container, codec, sample_rate, channels)
        _encode_audio(container, stream, signal, sample_rate)
    return AudioFileTruth(
        path, codec, sample_rate, channels, signal.shape[1], _LOSSY.get(codec, False)
    )


def _ogg_via_cli(path: Path, signal: np.ndarray, sample_rate: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "in.wav"
        make_audio_file(wav, signal, sample_rate, sample_format="f32")
        cmd = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(wav), "-c:a", "libvorbis"]
        done = subprocess.run([*cmd, "-q:a", "6", str(path)], capture_output=True, text=True)
    if done.returncode != 0:
        raise MediaError(path, f"ffmpeg could not write Ogg Vorbis: {done.stderr.strip()[-300:]}")


def make_tone_file(
    path: str | Path,
    *,
    freq: float = 440.0,
    duration: float = 1.0,
    sample_rate: int = 44100,
    channels: int = 1,
    amplitude: float = 0.5,
    sample_format: Literal["s16", "f32"] = "s16",
) -> AudioFileTruth:
    """A sine tone file; the truth records its frequency and amplitude."""
    signal = tone(freq, duration, sample_rate, amplitude, channels=channels)
    truth = make_audio_file(path, signal, sample_rate, sample_format=sample_format)
    return AudioFileTruth(
        truth.path,
        truth.codec,
        sample_rate,
        channels,
        truth.n_samples,
        truth.lossy,
        freq,
        amplitude,
    )


# --------------------------------------------------------------------------- pictures


def _even(value: int) -> int:
    return value - value % 2


def _check_size(size: Size) -> Size:
    w, h = size
    if w % 2 or h % 2 or w < 96 or h < 64:
        raise ConfigError(f"video size must be even and at least 96x64, got {w}x{h}")
    return w, h


def _texture(size: Size, index: int) -> np.ndarray:
    """A static background for shot ``index``: consecutive indices differ in hue, brightness
    and pattern, so a content detector sees a cut between any two of them."""
    w, h = size
    hue = (index * 0.38) % 1.0  # golden-ish step: neighbours are far apart on the wheel
    light = (0.75, 0.3, 0.55)[index % 3]
    base = np.array(colorsys.hls_to_rgb(hue, light, 0.9)) * 255
    alt = np.array(colorsys.hls_to_rgb(hue, light * 0.5, 0.9)) * 255
    yy, xx = np.mgrid[0:h, 0:w]
    scale = (6, 14, 10, 20, 8)[index % 5]
    kind = index % 5
    if kind == 0:
        mask = (xx // scale + yy // scale) % 2 == 0
    elif kind == 1:
        mask = (yy // scale) % 2 == 0
    elif kind == 2:
        mask = (np.hypot(xx % scale - scale / 2, yy % scale - scale / 2)) < scale / 3
    elif kind == 3:
        mask = (xx // scale) % 2 == 0
    else:
        mask = ((xx + yy) // scale) % 2 == 0
    return np.where(mask[..., None], base, alt).astype(np.uint8)


def _burn_frame_number(img: np.ndarray, number: int) -> None:
    """Draw ``number`` as STRIP_BITS black/white cells (MSB first) along the bottom edge."""
    h, w = img.shape[:2]
    if not 0 <= number < 2**STRIP_BITS:
        raise ConfigError(f"frame number {number} does not fit in {STRIP_BITS} bits")
    cell = w // STRIP_BITS
    top = h - STRIP_HEIGHT
    img[top:, :] = 128
    for bit in range(STRIP_BITS):
        on = (number >> (STRIP_BITS - 1 - bit)) & 1
        x = bit * cell
        img[top : top + STRIP_ROW_HEIGHT, x : x + cell] = 255 if on else 0
        img[top + STRIP_ROW_HEIGHT :, x : x + cell] = 0 if on else 255


def read_frame_number(rgb: np.ndarray) -> int | None:
    """The frame number burned into an upright decoded frame, or None when the strip is not
    there (wrong orientation, another picture, or a frame too damaged to read)."""
    h, w = rgb.shape[:2]
    cell = w // STRIP_BITS
    if cell < 4 or h < STRIP_HEIGHT * 2:
        return None
    luma = rgb[h - STRIP_HEIGHT :, : cell * STRIP_BITS].astype(np.float32).mean(axis=2)
    number = 0
    for bit in range(STRIP_BITS):
        x = bit * cell
        # Sample the middle of each cell: edges blur under chroma subsampling and compression.
        upper = luma[2 : STRIP_ROW_HEIGHT - 2, x + 2 : x + cell - 2].mean()
        lower = luma[STRIP_ROW_HEIGHT + 2 : -2, x + 2 : x + cell - 2].mean()
        if abs(upper - lower) < 100:
            return None
        number = number * 2 + int(upper > lower)
    return number


def _draw_object(img: np.ndarray, x0: int, y0: int, side: int) -> None:
    h, w = img.shape[:2]
    img[max(0, y0) : min(h, y0 + side), max(0, x0) : min(w, x0 + side)] = OBJECT_COLOUR


def _object_side(size: Size) -> int:
    return _even(size[0] // 6)


# --------------------------------------------------------------------------- video encoding


def _open_video(
    container: av.container.OutputContainer,
    codec: str,
    size: Size,
    fps: Fraction,
    *,
    time_base: Fraction | None = None,
    b_frames: int = 0,
) -> av.VideoStream:
    if codec not in ("libx264", "mpeg4"):
        raise ConfigError(f"video codec must be libx264 or mpeg4, not {codec!r}")
    if b_frames and codec != "libx264":
        raise ConfigError("B-frames are made with libx264 only")
    stream = cast(av.VideoStream, container.add_stream(codec, rate=fps))
    stream.width, stream.height = size
    stream.pix_fmt = "yuv420p"
    cc = stream.codec_context
    if time_base is not None:
        cc.time_base = time_base
        stream.time_base = time_base
    if b_frames:
        # As x264 encodes by default, B-pyramid included, but with one keyframe in ten
        # seconds and none at scene changes: cuts then fall on any kind of frame.
        cc.max_b_frames = b_frames
        cc.gop_size = max(1, round(10 * fps))
        cc.options = {
            "crf": "14",
            "preset": "veryfast",
            "x264-params": f"bframes={b_frames}:b-pyramid=normal:b-adapt=0:scenecut=0",
        }
        return stream
    # No B-frames and a keyframe every second: decode order = display order, cheap seeks.
    cc.max_b_frames = 0
    cc.gop_size = max(1, round(fps))
    if codec == "libx264":
        # forced-idr: frames we mark I (shot starts) become real IDR keyframes.
        cc.options = {"crf": "14", "preset": "veryfast", "forced-idr": "1"}
    else:
        cc.bit_rate = 40 * size[0] * size[1]  # generous: blocky mpeg4 would blur the strip
    return stream


def _write_frames(
    container: av.container.OutputContainer,
    stream: av.VideoStream,
    frames: Iterable[tuple[np.ndarray, int, bool]],
) -> None:
    """Encode (rgb, pts in the codec time base, force keyframe) triples."""
    for rgb, pts, key in frames:
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        frame.pts = pts
        if key:
            frame.pict_type = av.video.frame.PictureType.I
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode(None):
        container.mux(packet)


# --------------------------------------------------------------------------- cut video


@dataclass(frozen=True)
class CutVideoTruth:
    path: Path
    fps: Fraction
    size: Size
    frame_count: int
    shot_starts: tuple[int, ...]  # first frame of every shot, 0 included
    cut_frames: tuple[int, ...]  # first frame of every shot after the first: where cuts are
    object_centres: tuple[tuple[float, float], ...]  # (x, y) per frame; () without an object
    codec: str
    click_times: tuple[float, ...]  # audio clicks (at the cuts) when made with audio=True
    sample_rate: int | None

    @property
    def cut_times(self) -> tuple[float, ...]:
        return tuple(float(f / self.fps) for f in self.cut_frames)

    @property
    def duration(self) -> float:
        return float(self.frame_count / self.fps)

    @property
    def shots(self) -> tuple[tuple[int, int], ...]:
        """(first frame, end frame exclusive) of every shot."""
        ends = (*self.shot_starts[1:], self.frame_count)
        return tuple(zip(self.shot_starts, ends, strict=True))


def make_cut_video(
    path: str | Path,
    *,
    size: Size = (320, 240),
    fps: int | Fraction = 25,
    shot_lengths: Sequence[int] = (40, 55, 30, 50),
    moving_object: bool = True,
    codec: VideoCodec = "libx264",
    audio: bool = False,
    sample_rate: int = 48000,
    b_frames: int = 0,
) -> CutVideoTruth:
    """Consecutive shots with static, very different backgrounds (colour and pattern) and,
    in each, a bright square crossing the frame left to right, so a detector must cut at
    shot starts and nowhere else. Shot starts are forced keyframes, unless ``b_frames``
    (libx264 only) asks for that many B-frames between references, B-pyramid as x264's
    defaults, one keyframe in ten seconds and none at the cuts. With ``audio``, a stereo
    track (AAC in mp4/mov/mkv) with a click at every cut."""
    path = Path(path)
    size = _check_size(size)
    fps = Fraction(fps)
    if not shot_lengths or min(shot_lengths) < 2:
        raise ConfigError("need at least one shot, each of 2 frames or more")
    w, h = size
    side = _object_side(size)
    y0 = (h - STRIP_HEIGHT - side) // 2
    starts = tuple(int(s) for s in np.cumsum([0, *shot_lengths[:-1]]))
    total = sum(shot_lengths)
    centres: list[tuple[float, float]] = []

    def frames() -> Iterator[tuple[np.ndarray, int, bool]]:
        for shot, (start, length) in enumerate(zip(starts, shot_lengths, strict=True)):
            background = _texture(size, shot)
            for i in range(length):
                img = background.copy()
                if moving_object:
                    x0 = round(i * (w - side) / (length - 1))
                    _draw_object(img, x0, y0, side)
                    centres.append((x0 + side / 2, y0 + side / 2))
                _burn_frame_number(img, start + i)
                yield img, start + i, i == 0 and not b_frames

    cut_times = tuple(float(s / fps) for s in starts[1:])
    with av.open(str(path), "w") as container:
        stream = _open_video(container, codec, size, fps, b_frames=b_frames)
        astream = _add_audio_stream(container, "aac", sample_rate, 2) if audio else None
        _write_frames(container, stream, frames())
        if astream is not None:
            signal = clicks(
                cut_times, sample_rate, float(total / fps), amplitude=0.9, width=4, channels=2
            )
            _encode_audio(container, astream, signal, sample_rate)
    return CutVideoTruth(
        path=path,
        fps=fps,
        size=size,
        frame_count=total,
        shot_starts=starts,
        cut_frames=starts[1:],
        object_centres=tuple(centres),
        codec=codec,
        click_times=cut_times if audio else (),
        sample_rate=sample_rate if audio else None,
    )


# --------------------------------------------------------------------------- moving object


@dataclass(frozen=True)
class MovingObjectTruth:
    path: Path
    fps: Fraction
    size: Size
    frame_count: int
    object_size: int  # side of the square, pixels
    centres: tuple[tuple[float, float], ...]  # (x, y) per frame, pixel i spans [i, i + 1)

    @property
    def duration(self) -> float:
        return float(self.frame_count / self.fps)

    def x_centre_at(self, t: float) -> float:
        """Object x-centre at time ``t`` seconds (linear between frames, clamped at the ends)."""
        xs = [c[0] for c in self.centres]
        return float(np.interp(t * float(self.fps), np.arange(len(xs)), xs))

    def x_norm_at(self, t: float) -> float:
        """x-centre as -1 (left edge) .. +1 (right edge): what a pan law wants."""
        return 2 * self.x_centre_at(t) / self.size[0] - 1


def make_moving_object_video(
    path: str | Path,
    *,
    size: Size = (320, 240),
    fps: int | Fraction = 25,
    frame_count: int = 75,
    codec: VideoCodec = "libx264",
) -> MovingObjectTruth:
    """One shot: a bright square moves at constant speed from the left edge (fully visible)
    to the right edge over a static dark texture."""
    path = Path(path)
    size = _check_size(size)
    fps = Fraction(fps)
    if frame_count < 2:
        raise ConfigError("a moving object needs at least 2 frames")
    w, h = size
    side = _object_side(size)
    y0 = (h - STRIP_HEIGHT - side) // 2
    background = (_texture(size, 1) // 3).astype(np.uint8)  # dark, so the object stands out
    xs = [round(i * (w - side) / (frame_count - 1)) for i in range(frame_count)]

    def frames() -> Iterator[tuple[np.ndarray, int, bool]]:
        for i, x0 in enumerate(xs):
            img = background.copy()
            _draw_object(img, x0, y0, side)
            _burn_frame_number(img, i)
            yield img, i, i == 0

    with av.open(str(path), "w") as container:
        _write_frames(container, _open_video(container, codec, size, fps), frames())
    centres = tuple((x0 + side / 2, y0 + side / 2) for x0 in xs)
    return MovingObjectTruth(path, fps, size, frame_count, side, centres)


# --------------------------------------------------------------------------- VFR


@dataclass(frozen=True)
class VfrVideoTruth:
    path: Path
    size: Size
    time_base: Fraction
    pts: tuple[int, ...]  # per frame, in time_base
    durations: tuple[int, ...]  # per frame, in time_base
    codec: str

    @property
    def frame_count(self) -> int:
        return len(self.pts)

    @property
    def timestamps(self) -> tuple[float, ...]:
        """Presentation time of every frame, seconds."""
        return tuple(float(p * self.time_base) for p in self.pts)

    @property
    def duration(self) -> float:
        return float((self.pts[-1] + self.durations[-1]) * self.time_base)

    @property
    def average_fps(self) -> float:
        return self.frame_count / self.duration

    def frame_at(self, t: float) -> int:
        """Index of the frame on screen at time ``t`` seconds."""
        return max(0, int(np.searchsorted(np.asarray(self.timestamps), t, side="right")) - 1)


def frame_colour(number: int) -> tuple[int, int, int]:
    """Background colour of frame ``number`` in VFR and A/V videos (a coarse check beside the
    exact strip)."""
    r, g, b = colorsys.hsv_to_rgb((number * 0.618034) % 1.0, 0.8, 0.9)
    return round(r * 255), round(g * 255), round(b * 255)


def make_vfr_video(
    path: str | Path,
    *,
    size: Size = (320, 240),
    frame_count: int = 60,
    durations: Sequence[Fraction | float] = (Fraction(1, 30), Fraction(1, 15)),
    time_base: Fraction = Fraction(1, 90000),
    codec: VideoCodec = "libx264",
) -> VfrVideoTruth:
    """Variable frame rate: frame i lasts ``durations[i % len(durations)]`` seconds (default
    alternating 1/30 and 1/15 s). Each frame's background is :func:`frame_colour` and its number
    is in the strip. Use .mp4/.mov (their time base is kept; Matroska would round to 1 ms)."""
    path = Path(path)
    size = _check_size(size)
    ticks = [Fraction(d) / time_base for d in durations]
    if any(t.denominator != 1 or t <= 0 for t in ticks):
        raise ConfigError(f"every duration must be a positive whole number of {time_base} s")
    per_frame = [int(ticks[i % len(ticks)]) for i in range(frame_count)]
    pts = tuple(int(p) for p in np.cumsum([0, *per_frame[:-1]]))

    def frames() -> Iterator[tuple[np.ndarray, int, bool]]:
        for i, p in enumerate(pts):
            img = np.empty((size[1], size[0], 3), dtype=np.uint8)
            img[:] = frame_colour(i)
            _burn_frame_number(img, i)
            yield img, p, False

    avg = Fraction(frame_count) / (sum(per_frame) * time_base)
    with av.open(str(path), "w") as container:
        stream = _open_video(
            container, codec, size, avg.limit_denominator(1000), time_base=time_base
        )
        _write_frames(container, stream, frames())
    return VfrVideoTruth(path, size, time_base, pts, tuple(per_frame), codec)


# --------------------------------------------------------------------------- rotation


@dataclass(frozen=True)
class RotatedVideoTruth:
    path: Path
    rotation: int  # degrees clockwise the stored picture is turned for display (0/90/180/270)
    stored_size: Size  # (w, h) as encoded
    upright_size: Size  # (w, h) as displayed
    fps: Fraction
    frame_count: int


def is_upright(rgb: np.ndarray) -> bool:
    """True when a decoded frame of a rotated video shows its markers where the upright picture
    has them: red in the top-left corner, blue in the top-right."""
    h, w = rgb.shape[:2]
    m = max(4, min(w, h) // 8)

    def near(patch: np.ndarray, colour: tuple[int, int, int]) -> bool:
        mean = patch[2 : m - 2, 2 : m - 2].reshape(-1, 3).mean(axis=0)
        return bool(np.abs(mean - np.array(colour)).max() < 60)

    return near(rgb[:m, :m], MARKER_TOP_LEFT) and near(rgb[:m, w - m :], MARKER_TOP_RIGHT)


def _upright_picture(size: Size, number: int) -> np.ndarray:
    w, h = size
    img = (_texture(size, 2) // 2).astype(np.uint8)
    m = max(4, min(w, h) // 8)
    img[:m, :m] = MARKER_TOP_LEFT
    img[:m, w - m :] = MARKER_TOP_RIGHT
    _burn_frame_number(img, number)
    return img


def make_rotated_video(
    path: str | Path,
    rotation: int = 90,
    *,
    size: Size = (320, 240),
    fps: int | Fraction = 25,
    frame_count: int = 25,
    codec: VideoCodec = "libx264",
) -> RotatedVideoTruth:
    """An .mp4/.mov whose display matrix says: turn the stored picture ``rotation`` degrees
    clockwise (as phones do for portrait video; ffprobe reports it as ``-rotation``). ``size``
    is the upright (displayed) size. Upright, the picture has a red marker top-left, a blue
    one top-right (see :func:`is_upright`) and the frame number along the bottom."""
    path = Path(path)
    if rotation % 90 or not 0 <= rotation < 360:
        raise ConfigError(f"rotation must be 0, 90, 180 or 270, not {rotation}")
    size = _check_size(size)
    fps = Fraction(fps)
    quarter_turns = rotation // 90
    # Stored = upright turned counter-clockwise, so that the display's clockwise turn undoes it.
    stored_size = size if quarter_turns % 2 == 0 else (size[1], size[0])
    with_pyav = hasattr(av.VideoStream, "set_display_rotation")
    target = path if with_pyav else path.with_name(f".{path.stem}.norot{path.suffix}")

    def frames() -> Iterator[tuple[np.ndarray, int, bool]]:
        for i in range(frame_count):
            stored = np.rot90(_upright_picture(size, i), k=quarter_turns)
            yield np.ascontiguousarray(stored), i, False

    with av.open(str(target), "w") as container:
        stream = _open_video(container, codec, stored_size, fps)
        if with_pyav:
            stream.set_display_rotation(-rotation)  # PyAV counts counter-clockwise
        _write_frames(container, stream, frames())
    if not with_pyav:
        _rotate_via_cli(target, path, rotation)
    return RotatedVideoTruth(path, rotation, stored_size, size, fps, frame_count)


def _rotate_via_cli(source: Path, path: Path, rotation: int) -> None:
    """Older PyAV cannot write a display matrix: let the ffmpeg CLI add it (its ``rotate``
    tag is clockwise; -display_rotation only exists from FFmpeg 6)."""
    if not shutil.which("ffmpeg"):
        raise MediaError(path, "this PyAV cannot write rotation metadata and ffmpeg is missing")
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(source), "-c", "copy"]
    done = subprocess.run(
        [*cmd, "-metadata:s:v:0", f"rotate={rotation}", str(path)], capture_output=True, text=True
    )
    source.unlink(missing_ok=True)
    if done.returncode != 0:
        raise MediaError(path, f"ffmpeg could not add rotation: {done.stderr.strip()[-300:]}")


# --------------------------------------------------------------------------- video + audio


@dataclass(frozen=True)
class AvFileTruth:
    path: Path
    fps: Fraction
    size: Size
    frame_count: int
    video_codec: str
    audio_codec: str
    sample_rate: int
    channels: int
    n_samples: int
    click_times: tuple[float, ...]  # seconds from the start of the file, on every channel

    @property
    def duration(self) -> float:
        return float(self.frame_count / self.fps)


def make_av_file(
    path: str | Path,
    *,
    size: Size = (320, 240),
    fps: int | Fraction = 25,
    duration: float = 2.0,
    sample_rate: int = 48000,
    channels: int = 2,
    click_times: Sequence[float] = (0.5, 1.0, 1.5),
    signal: np.ndarray | None = None,
    video_codec: VideoCodec = "libx264",
    audio_codec: str = "aac",
) -> AvFileTruth:
    """Video (frame colour and number per frame, a moving square) plus audio: clicks at
    ``click_times`` unless a ``signal`` (channels, n) is given. Both start at time 0."""
    path = Path(path)
    size = _check_size(size)
    fps = Fraction(fps)
    frame_count = round(duration * fps)
    if signal is None:
        signal = clicks(
            click_times, sample_rate, duration, amplitude=0.9, width=4, channels=channels
        )
    else:
        signal = np.atleast_2d(np.asarray(signal, dtype=np.float32))
        channels = signal.shape[0]
        click_times = ()
    w, h = size
    side = _object_side(size)
    y0 = (h - STRIP_HEIGHT - side) // 2

    def frames() -> Iterator[tuple[np.ndarray, int, bool]]:
        for i in range(frame_count):
            img = np.empty((h, w, 3), dtype=np.uint8)
            img[:] = frame_colour(i)
            _draw_object(img, round(i * (w - side) / max(1, frame_count - 1)), y0, side)
            _burn_frame_number(img, i)
            yield img, i, False

    with av.open(str(path), "w") as container:
        stream = _open_video(container, video_codec, size, fps)
        astream = _add_audio_stream(container, audio_codec, sample_rate, channels)
        _write_frames(container, stream, frames())
        _encode_audio(container, astream, signal, sample_rate)
    return AvFileTruth(
        path,
        fps,
        size,
        frame_count,
        video_codec,
        audio_codec,
        sample_rate,
        channels,
        signal.shape[1],
        tuple(float(t) for t in click_times),
    )


# --------------------------------------------------------------------------- CLI


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m sfxmatch.testing.synth KIND OUT``: write a demo file, ground truth to stderr."""
    parser = argparse.ArgumentParser(
        prog="python -m sfxmatch.testing.synth", description=main.__doc__
    )
    parser.add_argument("kind", choices=["cuts", "moving", "vfr", "rotated", "av"])
    parser.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(f".{args.out.name}.{os.getpid()}{args.out.suffix}")
    try:
        # Written beside and renamed: a half-written demo file never looks finished.
        if args.kind == "cuts":
            t = make_cut_video(tmp, size=(640, 360), shot_lengths=(75, 100, 60, 90, 125))
            cuts = " ".join(map(str, t.cut_frames))
            info = f"cut frames: {cuts} ({t.fps} fps, {t.frame_count} frames)"
        elif args.kind == "moving":
            m = make_moving_object_video(tmp)
            xs = f"{m.centres[0][0]} to {m.centres[-1][0]} px"
            info = f"object x from {xs} over {m.frame_count} frames"
        elif args.kind == "vfr":
            v = make_vfr_video(tmp)
            info = f"{v.frame_count} frames, timestamps {v.timestamps[:4]}..., {v.duration:.3f} s"
        elif args.kind == "rotated":
            r = make_rotated_video(tmp)
            info = f"rotation {r.rotation} cw, stored {r.stored_size}, upright {r.upright_size}"
        else:
            a = make_av_file(tmp)
            info = f"{a.frame_count} frames at {a.fps} fps, clicks at {a.click_times} s"
        tmp.replace(args.out)
    finally:
        tmp.unlink(missing_ok=True)
    print(f"{args.out}: {info}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
