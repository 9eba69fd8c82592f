"""Coarse-to-fine: embed the segments where the picture's story can change, interpolate the rest.

Every 0.1 s segment costs a video-tower pass (for PE-AV a 0.4 TFLOP frame). Most of an edit
is steady: a label's score drifts slowly or stays far below the threshold. So a scan first
embeds every ``step``-th segment, then, between two neighbours, every segment where something
could happen that AutoSync would see at full resolution:

* a scene cut lies between them (a scene's scores must not be read across its cut);
* any label crosses one of AutoSync's thresholds between them, or sits within ``rise`` of one
  at either end (it may cross and cross back in between);
* any label that reaches the lowest threshold at either end changes by more than ``rise``
  between them (a run's stability, which AutoSync tests against the run's mean, can break).

Around every gap refined for its scores, the gap before and the gap after are refined too:
AutoSync bridges dropouts of up to ``max_gap`` and keeps runs of ``min_duration``, so a
one-segment peak a few segments from an event can join it, and that peak may lie in a gap
whose two ends look alike. With the coarse step at most ``max_gap`` + 1 segments, such a peak
is always in a neighbouring gap.

Segments left out get vectors interpolated between the nearest embedded ones of their scene.
Where the picture is steady that is what a full scan would have measured; what a coarse scan
cannot see is a change that starts and ends between two coarse samples and leaves both alike
(a flash shorter than the step). Pure numpy; the decode pass drives it (``sfxmatch.suggest``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True, slots=True)
class ScanPlan:
    """How a coarse-to-fine scan decides. ``thresholds``: every level AutoSync's rule
    compares scores with (a crossing between two samples is refined)."""

    step: int
    thresholds: tuple[float, ...]
    rise: float

    def __post_init__(self) -> None:
        if self.step < 1:
            raise ValueError(f"the coarse step must be at least 1 segment, not {self.step}")
        if not self.thresholds or not all(math.isfinite(t) for t in self.thresholds):
            raise ValueError("a scan needs AutoSync's thresholds")
        if not (math.isfinite(self.rise) and self.rise > 0):
            raise ValueError(f"rise must be a positive number, not {self.rise}")

    @property
    def floor(self) -> float:
        """Labels under this at both ends of a gap cannot form an interval inside it."""
        return min(self.thresholds)


def coarse_step(step: int, segment: float, min_scene_len: float) -> int:
    """``step``, or less so that every scene (at least ``min_scene_len`` long) holds a
    coarse segment of its own."""
    if step < 1:
        raise ValueError(f"the coarse step must be at least 1 segment, not {step}")
    fits = math.floor(min_scene_len / segment + 1e-9) if min_scene_len > 0 else 1
    return max(1, min(step, fits))


def is_coarse(index: int, count: int, step: int) -> bool:
    """Segments embedded first: every ``step``-th, and the last."""
    return index % step == 0 or index == count - 1


def refine_gap(
    first: npt.ArrayLike, second: npt.ArrayLike, plan: ScanPlan, *, cut_between: bool = False
) -> bool:
    """Whether the segments between two embedded neighbours with these scores (one per
    label) must be embedded too."""
    if cut_between:
        return True
    a = np.asarray(first, np.float64)
    b = np.asarray(second, np.float64)
    if a.size == 0:
        return False
    alive = np.maximum(a, b) >= plan.floor
    for level in plan.thresholds:
        if np.any((a >= level) != (b >= level)):
            return True
        if np.any(np.abs(a - level) <= plan.rise) or np.any(np.abs(b - level) <= plan.rise):
            return True
    return bool(np.any(alive & (np.abs(a - b) > plan.rise)))


def gaps_to_refine(
    indices: Sequence[int],
    scores: npt.ArrayLike,
    plan: ScanPlan,
    cuts: frozenset[int] = frozenset(),
) -> list[tuple[int, int]]:
    """(a, b) pairs of consecutive embedded segments (``indices``, sorted, with ``scores``
    one row each) whose segments in between must be embedded. ``cuts``: segments a scene
    starts in."""
    rows = np.asarray(scores, np.float64)
    gaps = len(indices) - 1
    moved = [refine_gap(rows[i], rows[i + 1], plan) for i in range(gaps)]
    out = []
    for i in range(gaps):
        a, b = indices[i], indices[i + 1]
        near = moved[i] or (i > 0 and moved[i - 1]) or (i + 1 < gaps and moved[i + 1])
        if b - a >= 2 and (near or any(a < c <= b for c in cuts)):
            out.append((a, b))
    return out


def fill(
    count: int, embedded: Mapping[int, npt.ArrayLike], scene_of: npt.ArrayLike
) -> npt.NDArray[np.float64]:
    """Rows for segments ``0..count-1``: embedded ones as they are, the others linearly
    interpolated between the nearest embedded segments of the same scene (the nearest one
    beyond a scene's first or last). ``scene_of``: each segment's scene number."""
    scenes = np.asarray(scene_of)
    if scenes.shape != (count,):
        raise ValueError(f"scene_of must give {count} scene numbers")
    if not embedded:
        raise ValueError("nothing was embedded")
    width = len(np.asarray(next(iter(embedded.values()))))
    out = np.empty((count, width), np.float64)
    for scene in np.unique(scenes):
        members = np.flatnonzero(scenes == scene)
        have = [int(i) for i in members if int(i) in embedded]
        if not have:  # a scene without an embedded segment borrows its nearest neighbours'
            have = sorted(embedded, key=lambda i: (abs(i - members[0]), i))[:1]
        known = np.stack([np.asarray(embedded[i], np.float64) for i in have])
        for column in range(width):
            out[members, column] = np.interp(members, have, known[:, column])
    return out
