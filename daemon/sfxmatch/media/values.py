"""The values media I/O returns: stream descriptions, frames, audio."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal

import numpy as np

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
