"""Render placements into per-track stereo stems: the mixing maths, with file reading at the edge.

Conventions (all of them tested in ``tests/test_mix_render.py``):

- Output is float32 stereo at ``sample_rate`` (48 kHz by default), ``round(duration * rate)``
  samples long. Times become sample indices with Python's ``round`` (half to even), the same
  rule as :func:`sfxmatch.media.load_audio` and :mod:`sfxmatch.testing.synth`: a placement
  occupies samples ``round(record_start * rate)`` up to (not including)
  ``round(record_end * rate)``, so back-to-back placements tile without gap or overlap, and
  its first sample is the file's sample ``round(source_start * rate)``.
- What falls outside ``[0, duration)`` is cut off; a placement wholly past the end is skipped.
  Fades belong to the placement as placed: a cut at the end of the render cuts into its fade.
- A file shorter than its slot plays once and then silence, unless ``loop`` is set: then it
  loops (first pass from ``source_start`` to the end of the file, every later pass from the
  start of the file) with an equal-power crossfade of the placement's ``loop_crossfade``
  seconds at each seam, clamped to half the shorter of the first pass and the file. Each
  later pass starts one crossfade before the previous pass ends. The schedule is
  :func:`sfxmatch.suggestions.loop_schedule`, run here in samples: the timeline exporter
  and the Resolve script place their clips by the same rule (in seconds).
- Fades in and out use the same equal-power quarter-sine curve: ``sin(pi/2 * x)`` rising,
  ``cos(pi/2 * x)`` falling, evaluated at sample centres ``x = (i + 0.5) / n``. A fade-out
  and a fade-in over the same samples (the crossfade of two overlapping ambience placements
  at a scene cut) therefore keep the summed power of uncorrelated beds constant.
- Pan law, ``theta = (pan + 1) * pi / 4``: a mono source goes to left ``cos(theta)`` and
  right ``sin(theta)`` (constant power: centre is -3 dB on each side, hard left leaves the
  right channel silent). A stereo source is balanced, not re-panned: each side is
  ``min(1, sqrt(2) * cos(theta))`` / ``min(1, sqrt(2) * sin(theta))``, so centre leaves it
  untouched and hard left keeps only its left channel. Files with more than two channels are
  downmixed to stereo by FFmpeg when loaded.
- ``automation`` keyframes (times from the clip start) replace the constant ``gain_db`` and
  ``pan`` when present: both are interpolated linearly per sample (gain in dB), held before
  the first and after the last keyframe.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sfxmatch import media
from sfxmatch.errors import Cancelled, ConfigError
from sfxmatch.progress import Progress, ProgressFn
from sfxmatch.suggestions import (
    LOOP_CROSSFADE,
    Keyframe,
    Placement,
    loop_schedule,
    ordered_tracks,
)

DEFAULT_SAMPLE_RATE = 48000
DEFAULT_LOOP_CROSSFADE = LOOP_CROSSFADE  # seconds, when a placement does not say
MIN_GAIN_DB = -200.0  # automation below this is treated as this (silence, without inf maths)

Loader = Callable[[str], np.ndarray]
"""Returns a file's samples at the render rate as float32 ``(1 or 2, n)``."""

"""``progress(stage, fraction, message)``: stage names a step ("load", "render", "loudness",
"write", "mux"); fraction runs from 0 to 1 within the stage."""


def check_cancel(cancel: threading.Event | None, stage: str) -> None:
    """Raise :class:`~sfxmatch.errors.Cancelled` when ``cancel`` is set."""
    if cancel is not None and cancel.is_set():
        raise Cancelled(f"cancelled during {stage}")


def report(progress: ProgressFn | None, stage: str, fraction: float, message: str = "") -> None:
    """Call ``progress`` when there is one, with ``fraction`` clamped into [0, 1]."""
    if progress is not None:
        progress(Progress(stage, min(1.0, max(0.0, float(fraction))), message))


# --------------------------------------------------------------------------- loading


class SoundCache:
    """A loader that decodes each path once (stereo files stay stereo, mono stays mono).

    One cache lives for one render by default; pass the same instance to several renders to
    share decoded sounds between them.
    """

    def __init__(self, sample_rate: int = DEFAULT_SAMPLE_RATE) -> None:
        _check_rate(sample_rate)
        self.sample_rate = sample_rate
        self._cache: dict[str, np.ndarray] = {}
        self.decoded = 0  # how many files were actually decoded (for tests and logs)

    def __call__(self, path: str) -> np.ndarray:
        key = str(path)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        audio = media.load_audio(key, sample_rate=self.sample_rate, channels="keep")
        samples = audio.samples
        if samples.shape[0] > 2:
            # FFmpeg's own downmix knows the speaker layout; a plain mean would not.
            samples = media.load_audio(key, sample_rate=self.sample_rate, channels="stereo").samples
        samples = np.ascontiguousarray(samples, dtype=np.float32)
        samples.setflags(write=False)
        self._cache[key] = samples
        self.decoded += 1
        return samples


# --------------------------------------------------------------------------- stems


@dataclass(frozen=True)
class Stems:
    """One stereo float32 array ``(2, n_samples)`` per track, in track order."""

    sample_rate: int
    n_samples: int
    tracks: tuple[tuple[str, np.ndarray], ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.tracks)

    @property
    def duration(self) -> float:
        return self.n_samples / self.sample_rate

    def __getitem__(self, name: str) -> np.ndarray:
        for track, samples in self.tracks:
            if track == name:
                return samples
        raise KeyError(name)

    def scaled(self, gain: float) -> Stems:
        """Every stem multiplied by the same linear ``gain``."""
        g = np.float32(gain)
        return Stems(
            self.sample_rate,
            self.n_samples,
            tuple((name, (s * g).astype(np.float32)) for name, s in self.tracks),
        )


def mix_down(stems: Stems) -> np.ndarray:
    """The sum of the stems, ``(2, n_samples)`` float32 (zeros when there are none)."""
    out = np.zeros((2, stems.n_samples), dtype=np.float32)
    for _, samples in stems.tracks:
        out += samples
    return out


def track_order(names: Iterable[str]) -> list[str]:
    """The stems' order: :func:`sfxmatch.suggestions.track_order`, the timelines' own."""
    return list(ordered_tracks(names))


def render_stems(
    placements: Sequence[Placement],
    duration: float,
    *,
    sample_rate: int = DEFAULT_SAMPLE_RATE,
    loop_crossfade: float | None = None,
    loader: Loader | None = None,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> Stems:
    """Render ``placements`` over ``duration`` seconds into one stereo stem per track.

    ``loop_crossfade`` (seconds), when given, replaces every placement's own
    ``loop_crossfade``; pass the same value to :func:`sfxmatch.timeline.to_otio` for a
    timeline that matches. ``loader`` defaults to a fresh :class:`SoundCache` (each file
    decoded once). A missing or unreadable sound raises :class:`~sfxmatch.errors.MediaError`
    naming it. ``cancel`` is checked before every placement; when set,
    :class:`~sfxmatch.errors.Cancelled` is raised.
    """
    _check_rate(sample_rate)
    if not math.isfinite(duration) or duration < 0:
        raise ConfigError(f"render duration must be a finite time >= 0, not {duration!r}")
    _check_crossfade(loop_crossfade)
    load = loader if loader is not None else SoundCache(sample_rate)
    n_total = round(duration * sample_rate)
    stems = {
        name: np.zeros((2, n_total), dtype=np.float32)
        for name in track_order(p.track for p in placements)
    }
    total = len(placements)
    report(progress, "render", 0.0, f"{total} placement(s)")
    for i, p in enumerate(placements):
        check_cancel(cancel, "render")
        start, stop = placement_span(p, sample_rate)
        a, b = max(start, 0), min(stop, n_total)
        if b > a:
            source = load(p.path)
            block = render_placement(p, source, sample_rate, loop_crossfade=loop_crossfade)
            stems[p.track][:, a:b] += block[:, a - start : b - start]
        report(progress, "render", (i + 1) / total, Path(p.path).name)
    report(progress, "render", 1.0, "done")
    return Stems(sample_rate, n_total, tuple(stems.items()))


# --------------------------------------------------------------------------- pure maths


def placement_span(p: Placement, sample_rate: int) -> tuple[int, int]:
    """The samples ``[start, stop)`` a placement occupies on the timeline (before trimming)."""
    start = round(p.record_start * sample_rate)
    return start, round(p.record_end * sample_rate)


def render_placement(
    p: Placement,
    source: np.ndarray,
    sample_rate: int,
    *,
    loop_crossfade: float | None = None,
) -> np.ndarray:
    """One placement as a stereo float32 block of its full length (see the module notes);
    ``loop_crossfade`` replaces the placement's own when given."""
    _check_crossfade(loop_crossfade)
    start, stop = placement_span(p, sample_rate)
    n = stop - start
    src = np.atleast_2d(np.asarray(source, dtype=np.float32))
    if src.shape[0] not in (1, 2):
        raise ConfigError(f"a source must have 1 or 2 channels, not {src.shape[0]}")
    offset = round(p.source_start * sample_rate)
    xfade = round((p.loop_crossfade if loop_crossfade is None else loop_crossfade) * sample_rate)
    body = looped(src, offset, n, xfade) if p.loop else trimmed(src, offset, n)
    body = body * fade_envelope(
        n, round(p.fade_in * sample_rate), round(p.fade_out * sample_rate)
    ).astype(np.float32)
    gain_db, pan = gain_pan_curves(p, n, sample_rate)
    return apply_gain_pan(body, gain_db, pan)


def trimmed(src: np.ndarray, offset: int, n: int) -> np.ndarray:
    """``n`` samples of ``src`` from ``offset``, silence where the file has ended."""
    out = np.zeros((src.shape[0], n), dtype=np.float32)
    piece = src[:, offset : offset + n]
    out[:, : piece.shape[1]] = piece
    return out


def looped(src: np.ndarray, offset: int, n: int, crossfade: int) -> np.ndarray:
    """``n`` samples of ``src`` from ``offset``, looped with equal-power crossfades if short
    (the passes where :func:`~sfxmatch.suggestions.loop_schedule` puts them)."""
    length = src.shape[1]
    if length == 0:
        return np.zeros((src.shape[0], n), dtype=np.float32)
    c, passes = loop_schedule(offset, length, n, crossfade)
    if len(passes) == 1:
        return trimmed(src, passes[0][1], n)
    fade_in = fade_curve(c, rising=True).astype(np.float32)
    fade_out = fade_curve(c, rising=False).astype(np.float32)
    out = np.zeros((src.shape[0], n), dtype=np.float32)
    last = len(passes) - 1
    for index, (at, source, duration) in enumerate(passes):
        seg = src[:, source : source + duration].copy()
        if index > 0 and c:
            k = min(c, seg.shape[1])
            seg[:, :k] *= fade_in[:k]
        if index < last and c:
            seg[:, -c:] *= fade_out
        out[:, at : at + duration] += seg
    return out


def fade_curve(n: int, *, rising: bool) -> np.ndarray:
    """The equal-power quarter-sine over ``n`` samples, at sample centres (float64)."""
    x = (np.arange(n, dtype=np.float64) + 0.5) / max(n, 1)
    return np.sin(0.5 * np.pi * x) if rising else np.cos(0.5 * np.pi * x)


def fade_envelope(n: int, fade_in: int, fade_out: int) -> np.ndarray:
    """Gain over ``n`` samples: a rising fade over the first ``fade_in``, a falling one over
    the last ``fade_out`` (each clamped to ``n``; where they overlap they multiply)."""
    env = np.ones(n, dtype=np.float64)
    fi, fo = min(max(fade_in, 0), n), min(max(fade_out, 0), n)
    if fi:
        env[:fi] *= fade_curve(fi, rising=True)
    if fo:
        env[n - fo :] *= fade_curve(fo, rising=False)
    return env


def gain_pan_curves(
    p: Placement, n: int, sample_rate: int
) -> tuple[np.ndarray | float, np.ndarray | float]:
    """Gain (dB) and pan per sample from the keyframes, or the constants when there are none."""
    if not p.automation:
        return max(p.gain_db, MIN_GAIN_DB), p.pan
    return interpolate_keyframes(p.automation, n, sample_rate)


def interpolate_keyframes(
    keys: Sequence[Keyframe], n: int, sample_rate: int
) -> tuple[np.ndarray, np.ndarray]:
    """Linear interpolation of gain (dB) and pan at every sample time ``i / sample_rate``."""
    ordered = sorted(keys, key=lambda k: k.time)
    times = np.array([k.time for k in ordered], dtype=np.float64)
    gains = np.array([max(k.gain_db, MIN_GAIN_DB) for k in ordered], dtype=np.float64)
    pans = np.clip(np.array([k.pan for k in ordered], dtype=np.float64), -1.0, 1.0)
    t = np.arange(n, dtype=np.float64) / sample_rate
    return np.interp(t, times, gains), np.interp(t, times, pans)


def pan_gains(
    pan: np.ndarray | float, channels: int
) -> tuple[np.ndarray | float, np.ndarray | float]:
    """Left and right gains for ``pan`` (-1 left .. +1 right): constant-power pan for a mono
    source, constant-power balance normalised to unity at centre for a stereo one."""
    theta = (np.clip(pan, -1.0, 1.0) + 1.0) * (np.pi / 4)
    left, right = np.cos(theta), np.sin(theta)
    if channels == 2:
        left = np.minimum(1.0, np.sqrt(2.0) * left)
        right = np.minimum(1.0, np.sqrt(2.0) * right)
    return left, right


def apply_gain_pan(
    body: np.ndarray, gain_db: np.ndarray | float, pan: np.ndarray | float
) -> np.ndarray:
    """A mono or stereo block to stereo float32, with gain (dB) and pan, constants or curves."""
    gain = np.power(10.0, np.asarray(gain_db, dtype=np.float64) / 20.0)
    left, right = pan_gains(pan, body.shape[0])
    out = np.empty((2, body.shape[1]), dtype=np.float32)
    out[0] = body[0] * (gain * left)
    out[1] = body[-1] * (gain * right)
    return out


def _check_crossfade(loop_crossfade: float | None) -> None:
    if loop_crossfade is not None and (not math.isfinite(loop_crossfade) or loop_crossfade < 0):
        raise ConfigError(f"loop_crossfade must be >= 0 seconds, not {loop_crossfade!r}")


def _check_rate(sample_rate: int) -> None:
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or sample_rate <= 0:
        raise ConfigError(f"sample_rate must be a positive whole number of Hz, not {sample_rate!r}")
