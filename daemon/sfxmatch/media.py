"""Media I/O: probe, decode frames once for several consumers, load and write audio.

CONTRACT (types and signatures are fixed; bodies are being written):
- Every failure on a user's file raises ``sfxmatch.errors.MediaError(path, problem)``.
- Frames are upright (rotation metadata applied) RGB ``uint8`` arrays of shape (H, W, 3).
- Audio samples are ``float32`` arrays of shape (channels, samples), values in [-1, 1].
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal

import numpy as np

ChannelMode = Literal["mono", "first", "stereo", "keep"]
"""mono: mix-down of all channels; first: channel 0 only; stereo: 2 channels (mono is
duplicated, more than 2 are downmixed by FFmpeg); keep: the file's own channels."""


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


def probe(path: str | Path) -> MediaInfo:
    """Describe a media file. Raises MediaError for anything that is not readable media."""
    raise NotImplementedError


def iter_frames(
    path: str | Path,
    *,
    rate: float | None = None,
    max_side: int | None = None,
    threads: int = 0,
) -> Iterator[Frame]:
    """Decode the first video stream once, lazily.

    rate: None gives every frame as stored (variable frame rate kept); a number gives frames at
    t = k / rate (the frame on screen at that instant). max_side: downscale in the decoder so the
    longer side is at most this many pixels (aspect kept). threads: decoder threads, 0 = auto.
    """
    raise NotImplementedError


def broadcast(frames: Iterable[Frame], consumers: Sequence[Callable[[Frame], object]]) -> int:
    """Feed one pass of frames to several consumers (scene detector, segment sampler...).

    Returns the number of frames delivered. Nothing is decoded twice.
    """
    raise NotImplementedError


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
    """
    raise NotImplementedError


def write_wav(path: str | Path, audio: Audio, *, subtype: Literal["float32", "pcm16", "pcm24"] = "float32") -> Path:
    """Write a WAV file atomically (temporary file, then rename) and return its path."""
    raise NotImplementedError
