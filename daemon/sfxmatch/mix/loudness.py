"""Loudness normalisation of the mix: BS.1770 / EBU R128 integrated loudness and true peak.

Integrated loudness is pyloudnorm's (K-weighting, 400 ms blocks, absolute and relative gates).
True peak is measured here with 4x oversampling: a polyphase interpolator built from a
Kaiser-windowed sinc (32 taps per phase), numpy only. Its phase 0 is the original samples, so
the true peak is never below the sample peak.

Strategy when the true peak would pass the ceiling: **gain reduction, no limiter**. The gain
is what reaches the target loudness, lowered just enough that the true peak lands on the
ceiling; the report then says the target was not reached (``peak_limited``) and by how much.
Nothing changes the dynamics, so nothing can pump or distort, and since true peak scales
with gain no sample can pass the ceiling.

Short, empty and silent mixes never give ``nan`` (it is not valid JSON, and a nan gain would
turn the whole mix into nan):

- A mix shorter than one 400 ms gating block has no BS.1770 integrated loudness. It is
  measured as *one block over all its samples*: the K-weighted mean square of the whole mix,
  with the -70 LUFS absolute gate (the relative gate cannot drop the only block). Nothing is
  padded: zeros would lower the loudness. For a steady sound that is what a longer
  measurement would say; the report's ``single_block`` and note say it was done.
- An empty mix (no samples) and a silent one (all zeros, or under the -70 LUFS gate) measure
  ``-inf`` and get no loudness gain (only the ceiling could lower them, and they have no peak).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pyloudnorm

from sfxmatch.errors import ConfigError

from .render import Stems, mix_down

DEFAULT_TARGET_LUFS = -23.0  # EBU R128
DEFAULT_TRUE_PEAK_DBTP = -1.0  # EBU R128 maximum true peak
OVERSAMPLE = 4
_HALF_TAPS = 16  # interpolator taps either side of the wanted point, per phase
_KAISER_BETA = 8.0
_BLOCK = (1 << 16) - 2 * _HALF_TAPS  # samples per FFT block (FFT size 2**16)
_SAFETY_DB = 0.001  # aim this far under the ceiling: float32 rounding cannot cross it


@dataclass(frozen=True)
class LoudnessReport:
    """What normalisation measured and did. Loudness in LUFS, peaks in dBTP, gain in dB."""

    target_lufs: float
    ceiling_dbtp: float
    loudness_before: float  # -inf: silent or empty (never nan)
    loudness_after: float
    true_peak_before: float  # -inf when silent
    true_peak_after: float
    gain_db: float  # applied to the mix and to every stem (always finite)
    peak_limited: bool  # the ceiling, not the target, decided the gain
    note: str = ""
    single_block: bool = False  # under 400 ms: measured as one block over all its samples

    @property
    def shortfall_lu(self) -> float:
        """How far below the target the result stays (0 when it was reached)."""
        if not math.isfinite(self.loudness_after):
            return 0.0
        return max(0.0, self.target_lufs - self.loudness_after)


# --------------------------------------------------------------------------- measuring


_BLOCK_SECONDS = 0.4  # BS.1770 gating block
_ABSOLUTE_GATE = -70.0  # LUFS
_CHANNEL_WEIGHTS = (1.0, 1.0, 1.0, 1.41, 1.41)  # BS.1770 (L, R, C, Ls, Rs), as pyloudnorm's


def is_single_block(n_samples: int, sample_rate: int) -> bool:
    """Whether ``n_samples`` (> 0) are too few for BS.1770 gating (at most one 400 ms block)."""
    return 0 < n_samples <= round(_BLOCK_SECONDS * sample_rate)


def integrated_loudness(audio: np.ndarray, sample_rate: int) -> float:
    """BS.1770 integrated loudness (LUFS) of ``(channels, n)`` audio; -inf when silent or
    empty. Audio no longer than one 400 ms gating block is measured as one block over all
    its samples (see the module notes). Never nan."""
    x = np.atleast_2d(np.asarray(audio, dtype=np.float64))
    if x.shape[1] == 0 or not np.any(x):
        return -math.inf
    if is_single_block(x.shape[1], sample_rate):
        return single_block_loudness(x, sample_rate)
    value = float(pyloudnorm.Meter(sample_rate).integrated_loudness(x.T))
    return value if not math.isnan(value) else -math.inf


def single_block_loudness(audio: np.ndarray, sample_rate: int) -> float:
    """BS.1770 loudness of ``(channels, n)`` audio taken as one gating block of all ``n``
    samples: K-weighting (pyloudnorm's own filters), the weighted mean square of every
    channel, then the -70 LUFS absolute gate (-inf below it, or when empty)."""
    x = np.atleast_2d(np.asarray(audio, dtype=np.float64))
    if x.shape[1] == 0:
        return -math.inf
    if x.shape[0] > len(_CHANNEL_WEIGHTS):
        raise ConfigError(f"loudness is measured on up to 5 channels, not {x.shape[0]}")
    stages = pyloudnorm.Meter(sample_rate)._filters.values()  # K-weighting, as it measures
    power = 0.0
    for weight, channel in zip(_CHANNEL_WEIGHTS, x, strict=False):
        y = channel.copy()
        for stage in stages:
            y = stage.apply_filter(y)
        power += weight * float(np.mean(np.square(y)))
    if power <= 0.0:
        return -math.inf
    value = -0.691 + 10.0 * math.log10(power)
    return value if value >= _ABSOLUTE_GATE else -math.inf


def _interpolator() -> np.ndarray:
    """Coefficients ``(2 * _HALF_TAPS + 1, OVERSAMPLE - 1)``: column p - 1 gives the value at
    ``n + p / OVERSAMPLE`` from samples ``n - _HALF_TAPS .. n + _HALF_TAPS``."""
    width = _HALF_TAPS + 1
    j = np.arange(-_HALF_TAPS, _HALF_TAPS + 1, dtype=np.float64)
    cols = []
    for p in range(1, OVERSAMPLE):
        t = p / OVERSAMPLE - j  # distance from each input sample to the wanted point
        window = np.i0(_KAISER_BETA * np.sqrt(np.clip(1.0 - (t / width) ** 2, 0.0, None)))
        taps = np.sinc(t) * window / np.i0(_KAISER_BETA)
        cols.append(taps / taps.sum())  # unity gain at DC
    return np.stack(cols, axis=1)


_COEFFS = _interpolator()


def true_peak(audio: np.ndarray) -> float:
    """The largest absolute value of ``(channels, n)`` audio oversampled 4x (linear, >= the
    sample peak). Samples before the start and after the end count as silence."""
    x = np.atleast_2d(np.asarray(audio, dtype=np.float64))
    if x.size == 0:
        return 0.0
    peak = float(np.max(np.abs(x)))
    h = _HALF_TAPS
    taps = 2 * h + 1
    nfft = _BLOCK + taps - 1
    # Convolution with the reversed coefficients = the interpolation sums (a correlation).
    spectra = np.fft.rfft(_COEFFS[::-1].T, nfft, axis=1)  # (OVERSAMPLE - 1, nfft // 2 + 1)
    for channel in x:
        padded = np.pad(channel, (h, h))
        for a in range(0, channel.shape[0], _BLOCK):
            b = min(channel.shape[0], a + _BLOCK)
            segment = np.fft.rfft(padded[a : b + 2 * h], nfft)
            between = np.fft.irfft(segment[None, :] * spectra, nfft, axis=1)
            # Full convolution index k + 2h is the window starting at input k.
            peak = max(peak, float(np.max(np.abs(between[:, 2 * h : 2 * h + b - a]))))
    return peak


def to_db(linear: float) -> float:
    return 20.0 * math.log10(linear) if linear > 0 else -math.inf


def true_peak_dbtp(audio: np.ndarray) -> float:
    """:func:`true_peak` in dBTP (-inf for silence)."""
    return to_db(true_peak(audio))


# --------------------------------------------------------------------------- normalising


def loudness_gain(
    audio: np.ndarray,
    sample_rate: int,
    *,
    target_lufs: float = DEFAULT_TARGET_LUFS,
    true_peak_dbtp: float = DEFAULT_TRUE_PEAK_DBTP,
) -> tuple[float, LoudnessReport]:
    """The gain (dB) normalisation would apply, and the report of applying it."""
    _check_levels(target_lufs, true_peak_dbtp)
    x = np.atleast_2d(np.asarray(audio))
    n = x.shape[1]
    before = integrated_loudness(x, sample_rate)
    single = is_single_block(n, sample_rate)
    peak_before = true_peak(x)
    peak_db = to_db(peak_before)
    notes = []
    if math.isfinite(before):
        gain = target_lufs - before
        if single:
            notes.append(
                f"shorter than one 400 ms gating block: loudness measured as one block over "
                f"its {n / sample_rate:.3f} s"
            )
    else:  # -inf: nothing to measure, so nothing to aim at
        gain = 0.0
        notes.append("empty: nothing to measure, no gain" if n == 0 else "silent: no gain")
    limited = False
    if peak_before > 0 and peak_db + gain > true_peak_dbtp - _SAFETY_DB:
        gain = true_peak_dbtp - _SAFETY_DB - peak_db
        limited = True
        if math.isfinite(before):
            notes.append(
                f"true peak ceiling {true_peak_dbtp:g} dBTP reached: loudness stays "
                f"{target_lufs - before - gain:.2f} LU under the {target_lufs:g} LUFS target"
            )
        else:
            notes.append(f"lowered to the {true_peak_dbtp:g} dBTP ceiling")
    after = before + gain if math.isfinite(before) else before
    partial = LoudnessReport(
        target_lufs=target_lufs,
        ceiling_dbtp=true_peak_dbtp,
        loudness_before=before,
        loudness_after=after,
        true_peak_before=peak_db,
        true_peak_after=peak_db + gain,
        gain_db=gain,
        peak_limited=limited,
        note="; ".join(notes),
        single_block=single and math.isfinite(before),
    )
    return gain, partial


def normalize(
    audio: np.ndarray,
    sample_rate: int,
    target_lufs: float = DEFAULT_TARGET_LUFS,
    true_peak_dbtp: float = DEFAULT_TRUE_PEAK_DBTP,
) -> tuple[np.ndarray, LoudnessReport]:
    """Scale ``(channels, n)`` audio to ``target_lufs`` under a ``true_peak_dbtp`` ceiling.

    Returns float32 audio and a report measured on the result (see the module notes for what
    happens when the ceiling binds).
    """
    gain, planned = loudness_gain(
        audio, sample_rate, target_lufs=target_lufs, true_peak_dbtp=true_peak_dbtp
    )
    out = _scaled(audio, gain)
    return out, _measured(planned, out, sample_rate)


def normalize_stems(
    stems: Stems,
    target_lufs: float = DEFAULT_TARGET_LUFS,
    true_peak_dbtp: float = DEFAULT_TRUE_PEAK_DBTP,
) -> tuple[Stems, np.ndarray, LoudnessReport]:
    """Normalise the mix of ``stems`` and apply the same gain to every stem, so the returned
    stems still sum to the returned mix."""
    mix = mix_down(stems)
    gain, planned = loudness_gain(
        mix, stems.sample_rate, target_lufs=target_lufs, true_peak_dbtp=true_peak_dbtp
    )
    out = _scaled(mix, gain)
    return stems.scaled(10.0 ** (gain / 20.0)), out, _measured(planned, out, stems.sample_rate)


def _scaled(audio: np.ndarray, gain_db: float) -> np.ndarray:
    x = np.asarray(audio, dtype=np.float32)
    return (x * np.float32(10.0 ** (gain_db / 20.0))).astype(np.float32)


def _measured(planned: LoudnessReport, out: np.ndarray, sample_rate: int) -> LoudnessReport:
    """The plan's report with the result's own loudness and true peak."""
    return LoudnessReport(
        target_lufs=planned.target_lufs,
        ceiling_dbtp=planned.ceiling_dbtp,
        loudness_before=planned.loudness_before,
        loudness_after=integrated_loudness(out, sample_rate),
        true_peak_before=planned.true_peak_before,
        true_peak_after=true_peak_dbtp(out),
        gain_db=planned.gain_db,
        peak_limited=planned.peak_limited,
        note=planned.note,
        single_block=planned.single_block,
    )


def _check_levels(target_lufs: float, ceiling: float) -> None:
    if not math.isfinite(target_lufs) or target_lufs >= 0:
        raise ConfigError(f"target loudness must be below 0 LUFS, not {target_lufs!r}")
    if not math.isfinite(ceiling) or ceiling > 0:
        raise ConfigError(
            f"true peak ceiling must be at most 0 dBTP (above it would clip), not {ceiling!r}"
        )
