"""AutoSync: turn a label's similarity time series into intervals where that sound is on screen.

Every 0.1 s video segment is scored against the library's effect labels (:func:`softmax_scores`);
each label's series then goes through one of three rules, chosen by name (``SyncRule``):

- ``"report"``: the MIT report's rule. A track is a run of consecutive segments above ``t``
  whose values all stay within ``d`` (relative) of the run's mean: *strongly* (above ``t``)
  and *stably* (no member strays far from the run's level) on screen.
- ``"threshold"``: Soundify's plain rule, runs above ``t``.
- ``"hysteresis"``: enter above ``t_high``, leave below ``t_low``. Run offline, an
  excursion above ``t_low`` counts when it reaches ``t_high`` somewhere, and spans all of
  it, so the onset is where the rise began rather than where it crossed ``t_high``.

All rules share one post-processing: short gaps are bridged and short intervals dropped
(:class:`SyncParams`). Segment ``i`` covers ``[times[i], times[i] + step)``; intervals are in
the same seconds as ``times`` and lie within ``[times[0], times[-1] + step]``.

Pure numpy; nothing here knows about models, files or scenes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import get_args

import numpy as np
import numpy.typing as npt

from sfxmatch.suggestions import SyncRule, Trace

__all__ = [
    "DEFAULT_STEP",
    "DEFAULT_TEMPERATURE",
    "SYNC_RULES",
    "Interval",
    "SyncParams",
    "softmax_scores",
    "sync_intervals",
    "sync_labels",
    "sync_trace",
]

SYNC_RULES: tuple[str, ...] = get_args(SyncRule)

DEFAULT_STEP = 0.1
"""Seconds per video segment: the report's segment length, used when ``times`` has one entry."""

DEFAULT_TEMPERATURE = 0.01
"""Softmax temperature for cosine similarities (logits = cos / temperature).

ImageBind's own zero-shot recipe is ``softmax(vision @ text.T)`` with text scaled by its
learned logit scale, which upstream caps at 100 (temperature 0.01), the value CLIP's scale
also saturates at. The report's ``t = 0.1`` was tuned on that recipe, so 0.01 is the default
that keeps ``t`` meaningful. It matters: cosines of a clear match beat the rest by only about
0.02-0.1, so at 0.05 a label with 100 rivals would need a 0.12 margin to reach 0.1 and hardly
any would. With a different encoder, tune it (``sfxmatch.match.tuning``).
"""

_EPS = 1e-9  # slack for comparing seconds computed from float sums of 0.1


@dataclass(frozen=True, slots=True)
class SyncParams:
    """The knobs of the three rules and of the shared post-processing.

    ``t`` and ``d`` are the report's tuned values. ``max_gap`` bridges dropouts of up to two
    0.1 s segments: a frame or two of occlusion, motion blur or a cut-away embedding badly
    should not split one sound into two placements, while two hits 0.3 s apart stay two.
    ``min_duration`` drops intervals under three segments: an isolated segment or two above
    ``t`` is mostly noise, and a 0.1-0.2 s placement is too short to be heard as synced.
    Hysteresis thresholds default to ``t_low = t`` (intervals span what ``"threshold"``
    would) and ``t_high = 2 t`` (only excursions that peak at twice that count), which on the
    synthetic benchmark rejects most noise spikes at no loss of recall; ``t_low = t / 2``
    instead let noise excursions grow long and tripled the false alarms (BENCHMARKS.md).
    """

    t: float = 0.1
    d: float = 0.5
    max_gap: float = 0.2
    min_duration: float = 0.3
    t_high: float | None = None
    t_low: float | None = None

    def __post_init__(self) -> None:
        for name in ("t", "d", "max_gap", "min_duration"):
            value = getattr(self, name)
            if not math.isfinite(value):
                raise ValueError(f"SyncParams.{name} must be finite, not {value!r}")
        for name in ("d", "max_gap", "min_duration"):
            if getattr(self, name) < 0:
                raise ValueError(f"SyncParams.{name} must be >= 0, not {getattr(self, name)!r}")
        for name in ("t_high", "t_low"):
            value = getattr(self, name)
            if value is not None and not math.isfinite(value):
                raise ValueError(f"SyncParams.{name} must be finite, not {value!r}")
        if self.high < self.low:
            raise ValueError(
                f"hysteresis needs t_low <= t_high, not t_low={self.low} > t_high={self.high}"
            )

    @property
    def high(self) -> float:
        """The hysteresis entry threshold in effect."""
        return 2 * self.t if self.t_high is None else self.t_high

    @property
    def low(self) -> float:
        """The hysteresis exit threshold in effect."""
        return self.t if self.t_low is None else self.t_low


@dataclass(frozen=True, slots=True)
class Interval:
    """Where a label is on screen: ``[start, end)`` seconds over segments ``[first, stop)``.

    ``confidence`` is the mean value of the detected segments (gap segments bridged by
    ``max_gap`` are not counted): the label's typical score while it was detected, comparable
    across rules and immune to a single spike, unlike the maximum.
    """

    start: float
    end: float
    confidence: float
    first: int
    stop: int
    label: str = ""

    @property
    def duration(self) -> float:
        return self.end - self.start


def softmax_scores(
    similarity: npt.ArrayLike, temperature: float = DEFAULT_TEMPERATURE
) -> npt.NDArray[np.float64]:
    """Per-segment probabilities over labels from cosine similarities ``(n_segments, n_labels)``.

    Logits are ``cos / temperature`` (see :data:`DEFAULT_TEMPERATURE`). A softmax makes a
    label's score relative to its rivals, so one threshold works whatever the encoder's
    absolute cosine level. Rows sum to 1; an empty input gives an empty result.
    """
    if not (math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be a finite number > 0, not {temperature!r}")
    sims = np.asarray(similarity, dtype=np.float64)
    if sims.ndim != 2:
        raise ValueError(f"similarity must be 2-D (n_segments, n_labels), not shape {sims.shape}")
    _check_finite(sims, "similarity")
    if sims.size == 0:
        return sims.copy()
    logits = sims / temperature
    logits -= logits.max(axis=1, keepdims=True)  # stable: exp of <= 0
    expd = np.exp(logits)
    return expd / expd.sum(axis=1, keepdims=True)


def sync_intervals(
    times: npt.ArrayLike,
    values: npt.ArrayLike,
    rule: SyncRule = "report",
    params: SyncParams | None = None,
    *,
    step: float | None = None,
    label: str = "",
) -> list[Interval]:
    """One label's intervals, sorted and non-overlapping, by ``rule`` then post-processing.

    ``times`` are segment start times (strictly increasing), ``values`` their scores. ``step``
    is the segment length; by default the median spacing of ``times`` (0.1 s for one segment).
    """
    params = params or SyncParams()
    t, v, step = _validate(times, values, step)
    runs = _detect(v, rule, params)
    return _postprocess(runs, t, v, step, params, label)


def sync_labels(
    times: npt.ArrayLike,
    scores: npt.ArrayLike,
    labels: Sequence[str],
    rule: SyncRule = "report",
    params: SyncParams | None = None,
    *,
    step: float | None = None,
) -> list[Interval]:
    """Intervals of every label of ``scores`` ``(n_segments, n_labels)``, sorted by start, label.

    Labels are synced independently: two sounds can be on screen at once.
    """
    params = params or SyncParams()
    matrix = np.asarray(scores, dtype=np.float64)
    if matrix.ndim != 2:
        raise ValueError(f"scores must be 2-D (n_segments, n_labels), not shape {matrix.shape}")
    if matrix.shape[1] != len(labels):
        raise ValueError(f"scores have {matrix.shape[1]} label columns but {len(labels)} labels")
    _check_finite(matrix, "scores")
    t, _, step = _validate(times, np.zeros(matrix.shape[0]), step)
    out: list[Interval] = []
    for column, name in enumerate(labels):
        v = matrix[:, column]
        out.extend(_postprocess(_detect(v, rule, params), t, v, step, params, name))
    out.sort(key=lambda iv: (iv.start, iv.label))
    return out


def sync_trace(
    trace: Trace,
    rule: SyncRule = "report",
    params: SyncParams | None = None,
    *,
    step: float | None = None,
) -> list[Interval]:
    """:func:`sync_intervals` over a :class:`~sfxmatch.suggestions.Trace`, labelled with it."""
    return sync_intervals(trace.times, trace.values, rule, params, step=step, label=trace.label)


# --- internals (also used by sfxmatch.match.tuning to reuse detections across a grid) -----


def _validate(
    times: npt.ArrayLike, values: npt.ArrayLike, step: float | None
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], float]:
    t = np.asarray(times, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    if t.ndim != 1:
        raise ValueError(f"times must be 1-D, not shape {t.shape}")
    if v.ndim != 1:
        raise ValueError(f"values must be 1-D, not shape {v.shape}")
    if len(t) != len(v):
        raise ValueError(f"times has {len(t)} entries but values has {len(v)}")
    _check_finite(t, "times")
    _check_finite(v, "values")
    if len(t) > 1:
        diffs = np.diff(t)
        if np.any(diffs <= 0):
            bad = int(np.argmax(diffs <= 0)) + 1
            raise ValueError(f"times must be strictly increasing; times[{bad}] = {t[bad]} is not")
    if step is None:
        step = float(np.median(np.diff(t))) if len(t) > 1 else DEFAULT_STEP
    if not (math.isfinite(step) and step > 0):
        raise ValueError(f"step must be a finite number of seconds > 0, not {step!r}")
    return t, v, step


def _check_finite(array: npt.NDArray[np.float64], name: str) -> None:
    bad = ~np.isfinite(array)
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        where = index[0] if len(index) == 1 else index
        raise ValueError(
            f"{name} must be finite; {name}[{where}] is {array[index]} "
            "(a NaN score usually means a zero-length embedding upstream)"
        )


def _runs_above(v: npt.NDArray[np.float64], level: float) -> list[tuple[int, int]]:
    """Maximal ``[first, stop)`` runs with ``v > level``."""
    above = np.concatenate(([False], v > level, [False]))
    edges = np.flatnonzero(above[1:] != above[:-1])
    return list(zip(edges[0::2].tolist(), edges[1::2].tolist(), strict=True))


def _detect(v: npt.NDArray[np.float64], rule: str, params: SyncParams) -> list[tuple[int, int]]:
    """Raw ``[first, stop)`` runs of one series under ``rule``, before post-processing."""
    if rule == "threshold":
        return _runs_above(v, params.t)
    if rule == "hysteresis":
        # Excursions above t_low that reach t_high somewhere: the whole excursion counts, so
        # the onset is where the rise began rather than where it crossed t_high.
        return [(a, b) for a, b in _runs_above(v, params.low) if v[a:b].max() > params.high]
    if rule == "report":
        runs: list[tuple[int, int]] = []
        for a, b in _runs_above(v, params.t):
            runs.extend(_stable_runs(v, a, b, params.d))
        return runs
    raise ValueError(f"unknown sync rule {rule!r}; choose one of {', '.join(SYNC_RULES)}")


def _stable_runs(v: npt.NDArray[np.float64], a: int, b: int, d: float) -> list[tuple[int, int]]:
    """Split ``v[a:b]`` (all above t) greedily into runs whose members stay within d of the mean.

    A run grows while adding the next value keeps every member (the new one included) within
    ``d * mean`` of the updated mean; only the run's min and max need checking. Otherwise the
    run closes and the value starts the next one, so a jump to a new level starts a new track.
    """
    runs: list[tuple[int, int]] = []
    start = a
    total = lo = hi = float(v[a])
    for i in range(a + 1, b):
        x = float(v[i])
        new_total = total + x
        mean = new_total / (i + 1 - start)
        new_lo, new_hi = min(lo, x), max(hi, x)
        if mean - new_lo <= d * mean + _EPS and new_hi - mean <= d * mean + _EPS:
            total, lo, hi = new_total, new_lo, new_hi
        else:
            runs.append((start, i))
            start, total, lo, hi = i, x, x, x
    runs.append((start, b))
    return runs


def _postprocess(
    runs: list[tuple[int, int]],
    t: npt.NDArray[np.float64],
    v: npt.NDArray[np.float64],
    step: float,
    params: SyncParams,
    label: str,
) -> list[Interval]:
    """Bridge gaps of at most ``max_gap`` s, drop intervals under ``min_duration`` s.

    Runs that touch (gap 0, as the report rule's level changes make) are not joined: that
    split is the rule's decision, not a dropout.
    """
    merged: list[list[int]] = []  # [first, stop, first, stop, ...] member runs per interval
    for a, b in runs:
        if merged:
            last_stop = merged[-1][-1]
            gap = t[a] - (t[last_stop - 1] + step)
            if a > last_stop and gap <= params.max_gap + _EPS:
                merged[-1].extend((a, b))
                continue
        merged.append([a, b])
    out: list[Interval] = []
    for members in merged:
        first, stop = members[0], members[-1]
        start, end = float(t[first]), float(t[stop - 1] + step)
        if end - start + _EPS < params.min_duration:
            continue
        pairs = list(zip(members[0::2], members[1::2], strict=True))
        total = sum(float(v[a:b].sum()) for a, b in pairs)
        count = sum(b - a for a, b in pairs)
        out.append(Interval(start, end, total / count, first, stop, label))
    return out
