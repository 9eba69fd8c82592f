"""Session fixtures: synthetic media with exact ground truth (sfxmatch.testing.synth).

Each file is built once per test session; every fixture returns ``(path, truth)`` except
``audio_only_files``, a dict ``{ext: (path, truth)}``. Treat the files as read-only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pytest
from sfxmatch.testing import synth

__all__ = [
    "audio_only_files",
    "av_file",
    "b_frame_cut_video",
    "cut_video",
    "moving_object_video",
    "rotated_video",
    "synth_dir",
    "vfr_video",
    "video_only_file",
]


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("synth")


@pytest.fixture(scope="session")
def cut_video(synth_dir: Path) -> tuple[Path, synth.CutVideoTruth]:
    """25 fps 320x240 H.264 mp4, shots of 40/55/30/50 frames (cuts at 40, 95, 125), a moving
    square in every shot, no audio."""
    truth = synth.make_cut_video(synth_dir / "cuts.mp4", shot_lengths=(40, 55, 30, 50))
    return truth.path, truth


@pytest.fixture(scope="session")
def b_frame_cut_video(synth_dir: Path) -> tuple[Path, synth.CutVideoTruth]:
    """As x264 encodes by default (3 B-frames, B-pyramid) with one keyframe: cuts at 41, 95,
    126 and 176 of 209 frames fall on frames nothing refers to and on references alike."""
    truth = synth.make_cut_video(
        synth_dir / "b_frames.mp4", shot_lengths=(41, 54, 31, 50, 33), b_frames=3
    )
    return truth.path, truth


@pytest.fixture(scope="session")
def video_only_file(synth_dir: Path) -> tuple[Path, synth.CutVideoTruth]:
    """A second container and codec: MPEG-4 part 2 in AVI, 25 fps, shots of 20/25 frames."""
    truth = synth.make_cut_video(synth_dir / "video_only.avi", shot_lengths=(20, 25), codec="mpeg4")
    return truth.path, truth


@pytest.fixture(scope="session")
def moving_object_video(synth_dir: Path) -> tuple[Path, synth.MovingObjectTruth]:
    """One 3 s shot: a square crossing left to right at constant speed (see x_centre_at)."""
    truth = synth.make_moving_object_video(synth_dir / "moving.mp4", frame_count=75)
    return truth.path, truth


@pytest.fixture(scope="session")
def vfr_video(synth_dir: Path) -> tuple[Path, synth.VfrVideoTruth]:
    """60 frames alternating 1/30 s and 1/15 s (time base 1/90000, mp4), 3 s in all."""
    truth = synth.make_vfr_video(synth_dir / "vfr.mp4", frame_count=60)
    return truth.path, truth


@pytest.fixture(scope="session")
def rotated_video(synth_dir: Path) -> tuple[Path, synth.RotatedVideoTruth]:
    """Stored 240x320, displayed 320x240 after a 90° clockwise turn (phone-style metadata)."""
    truth = synth.make_rotated_video(synth_dir / "rotated.mp4", 90, frame_count=10)
    return truth.path, truth


@pytest.fixture(scope="session")
def av_file(synth_dir: Path) -> tuple[Path, synth.AvFileTruth]:
    """2 s mp4: H.264 25 fps + AAC 48 kHz stereo with clicks at 0.5, 1.0 and 1.5 s."""
    truth = synth.make_av_file(synth_dir / "av.mp4")
    return truth.path, truth


# Rates and channel counts differ on purpose: readers must resample and remix.
_AUDIO_FILES: dict[str, tuple[str, int, int, Literal["s16", "f32"]]] = {
    "wav": ("tone.wav", 48000, 2, "s16"),
    "f32.wav": ("tone_f32.wav", 8000, 1, "f32"),
    "ogg": ("tone.ogg", 44100, 2, "s16"),
    "flac": ("tone.flac", 22050, 1, "s16"),
    "mp3": ("tone.mp3", 44100, 1, "s16"),
    "m4a": ("tone.m4a", 48000, 2, "s16"),
}


@pytest.fixture(scope="session")
def audio_only_files(synth_dir: Path) -> dict[str, tuple[Path, synth.AudioFileTruth]]:
    """``{ext: (path, truth)}`` for wav, f32.wav, ogg, flac, mp3, m4a: a 440 Hz sine of
    amplitude 0.5 lasting 1 s; truth has sample_rate, channels, n_samples, tone_hz, lossy."""
    out: dict[str, tuple[Path, synth.AudioFileTruth]] = {}
    for key, (name, rate, channels, fmt) in _AUDIO_FILES.items():
        truth = synth.make_tone_file(
            synth_dir / name,
            freq=440.0,
            duration=1.0,
            sample_rate=rate,
            channels=channels,
            amplitude=0.5,
            sample_format=fmt,
        )
        out[key] = (truth.path, truth)
    return out
