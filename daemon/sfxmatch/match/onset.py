"""Where a sound's own event starts: the sync point a sound editor would set, from the audio.

Library files rarely start on their event: recordists and libraries leave room tone, a
breath or a fade before it on purpose. :func:`detect_onset` finds the onset of the sound's
*main event*, to the sample where the attack allows it, and the time of its peak. Pure
numpy, no model: a few milliseconds per second of audio.

The detector is an **energy rise out of a noise floor**, measured on the audio minus its
trailing 20 ms mean (a DC offset or a slow drift is no sound; the filter is causal, so the
output of an attack starts on the attack's own sample):

1. Level per 1 ms frame (mean power, dB); the loudest frame sets the scale.
2. The **main event** is the first moment the level comes within ``MAIN_EVENT_DB`` (20 dB)
   of the loudest frame *and stays near it* (the median of its next 10 ms is at most 26 dB
   below the loudest): a lone tick before the sound does not qualify; a knock or a snap,
   which ring for a few milliseconds, does.
3. The **floor** is what the event rises out of: the 20th percentile of the frame levels
   before it (room tone, digital silence). The event's sound is what stays above the floor
   by ``RISE_DB`` (10 dB), and no more than ``RANGE_DB`` (50 dB) below the loudest frame:
   from the main event, walk back over frames above that (dips shorter than 5 ms bridged,
   so the gaps between the cycles of a low voice do not stop it).
4. In that stretch the onset is the **first attack**: where the mean level of the next
   10 ms is ``ATTACK_DB`` (15 dB) above that of the 10 ms before, into sound within
   ``LANDING_DB`` (30 dB) of the loudest frame (room tone starting out of digital silence
   lands too low to be one), at the largest such jump within 10 ms. Without an attack
   (a moo that starts quietly and swells for a second) the sound starts where it leaves
   the floor.
5. The sync point is the first sample from there whose magnitude passes the floor's
   threshold and 1.5 times every sample of the 10 ms before: above the room tone, so an
   attack out of noise is found on its own sample.

Spectral flux was the other candidate: it finds changes of timbre inside continuous sound,
which one-shot effects with a lead-in of room tone do not need, and it answers in hops of
its FFT rather than in samples. Against the onsets hand-marked on real recordings of the
test media (``tests/data/onsets.tsv``: ``tests/test_onset.py`` prints the errors) the
detector is within 3 ms of every clear attack and within 7 ms of every soft one; where a
quieter sound runs into the event (a breath before a bleat), it syncs the first of the two,
as the file says.

The peak is the loudest sample of the sound as it is (not filtered). Only the first
``ANALYSED_SECONDS`` are analysed: an effect whose event comes later has no sync point
worth the name, and a one-hour bed costs no more than a minute of it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

MAIN_EVENT_DB = 20.0
"""The main event comes within this many dB of the loudest frame (and stays near it)."""
SUSTAIN_DB = 6.0
"""... its next 10 ms have a median level at most ``MAIN_EVENT_DB + SUSTAIN_DB`` below it."""
RISE_DB = 10.0
"""The onset is where the level rises this far above the floor it comes out of."""
RANGE_DB = 50.0
"""Nothing more than this far below the loudest frame counts as the event."""
HIGH_PASS_SECONDS = 0.020
"""The trailing mean subtracted before levels are measured (it blocks DC and slow drift)."""
FRAME_SECONDS = 0.001
SUSTAIN_SECONDS = 0.010
BRIDGE_SECONDS = 0.005
FLOOR_PERCENTILE = 20.0
ATTACK_DB = 15.0
ATTACK_FRAMES = 10
LANDING_DB = 30.0
RISE_WINDOW_SECONDS = 0.010
NOISE_MARGIN = 1.5
ANALYSED_SECONDS = 60.0
_TINY = 1e-20


@dataclass(frozen=True, slots=True)
class Onset:
    """A sound's main event: where it starts (``time``, the sync point) and where it is
    loudest (``peak``), in seconds from the sound's first sample."""

    time: float
    peak: float

    def __post_init__(self) -> None:
        for name in ("time", "peak"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"onset {name} must be a time >= 0, not {value!r}")


def detect_onset(samples: np.ndarray, sample_rate: int) -> Onset:
    """The onset of the main event of ``samples`` (mono ``(n,)`` or ``(channels, n)``,
    float) and its peak, in seconds. A silent or empty sound has both at 0."""
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, not {sample_rate}")
    x = np.asarray(samples, dtype=np.float32)
    if x.ndim == 2:
        x = x.mean(axis=0, dtype=np.float32)
    x = x[: int(ANALYSED_SECONDS * sample_rate)]
    if x.size == 0:
        return Onset(0.0, 0.0)
    high, low = int(np.argmax(x)), int(np.argmin(x))
    peak = high if abs(float(x[high])) >= abs(float(x[low])) else low
    if not math.isfinite(float(x[peak])) or not np.isfinite(x.sum(dtype=np.float64)):
        return Onset(0.0, 0.0)
    if x[peak] == 0.0:
        return Onset(0.0, 0.0)
    at = onset_sample(high_pass(x, sample_rate), sample_rate)
    return Onset(at / sample_rate, peak / sample_rate)


def high_pass(x: np.ndarray, sample_rate: int) -> np.ndarray:
    """``x`` minus the mean of its last ``HIGH_PASS_SECONDS`` (itself included): causal, so
    the output of an attack starts on the attack's first sample."""
    m = max(1, round(HIGH_PASS_SECONDS * sample_rate))
    trailing = np.cumsum(x, dtype=np.float64)  # silence before the first sample
    if x.size > m:
        trailing[m:] -= trailing[:-m].copy()
    trailing *= -1.0 / m
    return (trailing + x).astype(np.float32)


def onset_sample(y: np.ndarray, sample_rate: int) -> int:
    """The sync point of (high-passed) ``y``, as a sample index (see the module notes)."""
    h = max(1, round(FRAME_SECONDS * sample_rate))
    n_frames = -(-y.size // h)
    whole = y.size // h
    squares = np.square(y, dtype=np.float64)
    power = np.empty(n_frames)
    power[:whole] = squares[: whole * h].reshape(whole, h).mean(axis=1)
    if n_frames > whole:  # the last, partial frame as if padded with silence
        power[whole] = squares[whole * h :].sum() / h
    level = 10 * np.log10(power + _TINY)
    loudest = float(level.max())
    main = _main_event(level, loudest, max(1, round(SUSTAIN_SECONDS / FRAME_SECONDS)))
    if main == 0:
        return _first_audible(y, loudest)
    floor = float(np.percentile(level[:main], FLOOR_PERCENTILE))
    threshold = max(floor + RISE_DB, loudest - RANGE_DB)
    # Walk back from the main event over frames that stay above the threshold, bridging
    # dips shorter than BRIDGE_SECONDS.
    bridge = max(1, round(BRIDGE_SECONDS / FRAME_SECONDS))
    held = _running_max(level, bridge)
    quiet = np.flatnonzero(held[:main] < threshold)
    start = int(quiet[-1]) + 1 if quiet.size else 0
    # The bridge may have carried the walk up to ``bridge - 1`` frames into the floor.
    loud = np.flatnonzero(level[start:main] >= threshold)
    start = start + int(loud[0]) if loud.size else main
    rise = _first_attack(power, start, main, loudest)
    # The first sample of the attack above the threshold and above every sample of the
    # RISE_WINDOW before it (room tone, or the quiet preamble the attack leaves behind).
    window = max(1, round(RISE_WINDOW_SECONDS * sample_rate))
    lo = rise * h
    noise = float(np.abs(y[max(0, lo - window) : lo]).max(initial=0.0))
    amplitude = max(math.sqrt(10 ** (threshold / 10)), NOISE_MARGIN * noise)
    return _first_above(y, lo, (main + bridge + 1) * h, amplitude, rise * h)


def _first_attack(power: np.ndarray, start: int, main: int, loudest: float) -> int:
    """The first attack in ``[start, main]``: where the mean level of the ATTACK_FRAMES
    after a frame is ATTACK_DB or more above that of the ATTACK_FRAMES before it, into sound
    within LANDING_DB of the loudest frame, at the frame of the largest such jump within
    ATTACK_FRAMES of the first (the windows are longer than the period of a low voice, so
    its cycles are no attacks; room tone that starts out of digital silence lands too low
    to be one). ``start`` when there is none: a sound that swells out of its floor starts
    where it leaves it."""
    w = ATTACK_FRAMES
    n = len(power)
    total = np.concatenate(([0.0], np.cumsum(power)))
    k = np.arange(max(start, 1), min(main + w, n - 1) + 1)
    lo, hi = np.maximum(k - w, 0), np.minimum(k + w, n)
    before = 10 * np.log10((total[k] - total[lo]) / (k - lo) + _TINY)
    after = 10 * np.log10((total[hi] - total[k]) / (hi - k) + _TINY)
    rise = after - before
    ok = (rise >= ATTACK_DB) & (after >= loudest - LANDING_DB) & (k <= main)
    if not ok.any():
        return start
    first = int(np.flatnonzero(ok)[0])
    near = slice(first, min(first + w + 1, len(k), int(np.searchsorted(k, main, "right"))))
    return int(k[near][int(np.argmax(rise[near]))])


def _main_event(level: np.ndarray, loudest: float, sustain: int) -> int:
    """The first frame within MAIN_EVENT_DB of the loudest whose next ``sustain`` frames
    have a median within MAIN_EVENT_DB + SUSTAIN_DB of it (the loudest frame always is)."""
    near = np.flatnonzero(level >= loudest - MAIN_EVENT_DB)
    for k in near:
        if float(np.median(level[k : k + sustain])) >= loudest - MAIN_EVENT_DB - SUSTAIN_DB:
            return int(k)
    return int(np.argmax(level))


def _running_max(level: np.ndarray, width: int) -> np.ndarray:
    """``out[k] = max(level[k : k + width])``: a frame counts as loud when one of the next
    few is (the walk goes backwards, towards quieter frames)."""
    out = level.copy()
    for shift in range(1, width):
        out[:-shift] = np.maximum(out[:-shift], level[shift:])
    return out


def _first_above(y: np.ndarray, lo: int, hi: int, amplitude: float, fallback: int) -> int:
    window = np.abs(y[lo:hi])
    above = np.flatnonzero(window >= amplitude)
    return lo + int(above[0]) if above.size else min(fallback, max(0, y.size - 1))


def _first_audible(y: np.ndarray, loudest: float) -> int:
    """A sound that starts at once: its first sample within RANGE_DB of the loudest frame."""
    amplitude = math.sqrt(10 ** ((loudest - RANGE_DB) / 10))
    above = np.flatnonzero(np.abs(y) >= amplitude)
    return int(above[0]) if above.size else 0
