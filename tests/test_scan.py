"""Coarse-to-fine scans find the intervals a full scan finds, to within one segment.

Synthetic traces stand in for a full scan's scores: steady stretches with small wobbles and
events that rise (in a step or a ramp) and fall again, over scenes with cuts. The scan embeds
what its rules ask for (here: reads the trace there) and interpolates the rest; AutoSync then
runs on both series.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from sfxmatch.match.autosync import SyncParams, softmax_scores, sync_intervals
from sfxmatch.match.scan import ScanPlan, coarse_step, fill, gaps_to_refine, is_coarse, refine_gap

STEP = 0.1
PARAMS = SyncParams()
# The default step: AutoSync keeps no interval under min_duration (3 segments), and every 3
# consecutive segments hold a coarse one, so no kept interval can hide between two samples.
PLAN = ScanPlan(3, (PARAMS.t,), rise=PARAMS.d * PARAMS.t / 2)


def scan(full: np.ndarray, plan: ScanPlan, scene_of: np.ndarray) -> tuple[np.ndarray, int]:
    """What a coarse-to-fine scan would see of ``full``: (filled rows, segments read)."""
    count = len(full)
    cuts = frozenset(int(k) for k in np.flatnonzero(np.diff(scene_of)) + 1)
    embedded = {k: full[k] for k in range(count) if is_coarse(k, count, plan.step)}
    indices = sorted(embedded)
    for a, b in gaps_to_refine(indices, np.stack([full[k] for k in indices]), plan, cuts):
        embedded.update({k: full[k] for k in range(a + 1, b)})
    return fill(count, embedded, scene_of), len(embedded)


def intervals(scores: np.ndarray, scene_of: np.ndarray) -> list[tuple[int, int, float, float]]:
    """(scene, label, start, end), touching intervals of one label joined: where the report
    rule splits a steady presence in two, the split point is decided by noise (the run's mean
    creeping past the stability limit), in a full scan as in an interpolated one."""
    out: list[tuple[int, int, float, float]] = []
    times = np.arange(len(scores)) * STEP
    for scene in np.unique(scene_of):
        inside = np.flatnonzero(scene_of == scene)
        for label in range(scores.shape[1]):
            found = sync_intervals(
                times[inside], scores[inside, label], "report", PARAMS, step=STEP
            )
            for iv in found:
                if out and out[-1][:2] == (int(scene), label) and abs(out[-1][3] - iv.start) < 1e-6:
                    out[-1] = (*out[-1][:3], iv.end)
                else:
                    out.append((int(scene), label, iv.start, iv.end))
    return sorted(out)


def assert_same_within_a_segment(full: np.ndarray, filled: np.ndarray, scene_of: np.ndarray):
    want, got = intervals(full, scene_of), intervals(filled, scene_of)
    assert [(s, label) for s, label, *_ in got] == [(s, label) for s, label, *_ in want]
    for (_, _, a0, a1), (_, _, b0, b1) in zip(want, got, strict=True):
        assert abs(a0 - b0) <= STEP + 1e-9 and abs(a1 - b1) <= STEP + 1e-9


def trace(
    count: int,
    labels: int,
    events: list[tuple[int, int, int, int]],
    seed: int,
    wobble: float = 0.004,
) -> np.ndarray:
    """Softmax scores from logits: each label steady with a small ``wobble``; each event
    (label, start, length, ramp) lifts one label for ``length`` segments, rising and falling
    over ``ramp`` segments (0: a step)."""
    rng = np.random.default_rng(seed)
    base = rng.normal(0.0, 0.3, labels)
    logits = np.tile(base, (count, 1)) + rng.normal(0.0, wobble, (count, labels))
    for label, start, length, ramp in events:
        shape = np.zeros(count)
        end = min(count, start + length)
        shape[start:end] = 1.0
        for i in range(ramp):
            level = (i + 1) / (ramp + 1)
            if start - ramp + i >= 0:
                shape[start - ramp + i] = level
            if end + ramp - 1 - i < count:
                shape[end + ramp - 1 - i] = level
        logits[:, label] += 3.0 * shape
    return softmax_scores(logits * 0.01, 0.01)


@settings(max_examples=60, deadline=None)
@given(
    labels=st.integers(2, 12),
    events=st.lists(
        st.tuples(st.integers(0, 11), st.integers(0, 260), st.integers(3, 60), st.integers(0, 6)),
        max_size=6,
    ),
    cuts=st.lists(st.integers(8, 290), max_size=4, unique=True),
    seed=st.integers(0, 2**16),
)
def test_the_same_intervals_as_a_full_scan_within_one_segment(labels, events, cuts, seed):
    count = 300
    events = [(label % labels, start, length, ramp) for label, start, length, ramp in events]
    # What the scan cannot see is a change of the scores that comes and goes between two
    # coarse samples. Each event's own rise and fall last its length, but two events whose
    # edges are closer than a step make such a change between them (the softmax couples the
    # labels): keep edges a step apart.
    edges = sorted(e for _, start, length, ramp in events for e in (start - ramp, start + length))
    assume(all(b - a >= PLAN.step for a, b in itertools.pairwise(edges)))
    # No wobble: where the report rule splits a steady presence in two, wobble alone decides
    # the point (the run's mean creeping past its stability limit), and interpolation smooths
    # wobble, so the split can move (test_suggest_scan runs real, wobbling traces).
    full = trace(count, labels, events, seed, wobble=0.0)
    scene_of = np.zeros(count, np.int64)
    for cut in sorted(cuts):
        scene_of[cut:] += 1
    filled, read = scan(full, PLAN, scene_of)
    assert_same_within_a_segment(full, filled, scene_of)
    assert read <= count


def test_a_steady_picture_costs_one_segment_in_three():
    count = 600
    full = trace(count, 60, [], seed=3)  # every label far under the threshold
    filled, read = scan(full, PLAN, np.zeros(count, np.int64))
    assert read == 200 + 1  # every third, and the last
    assert np.abs(filled - full).max() < PLAN.rise
    assert intervals(filled, np.zeros(count, np.int64)) == intervals(
        full, np.zeros(count, np.int64)
    )


def test_an_event_between_two_samples_is_read_in_full():
    full = trace(100, 4, [(2, 43, 12, 0)], seed=1)  # a step up at 43, down at 55
    filled, read = scan(full, PLAN, np.zeros(100, np.int64))
    np.testing.assert_array_equal(filled[42:46], full[42:46])  # the gap at the rise, refined
    np.testing.assert_array_equal(filled[54:58], full[54:58])  # and at the fall
    assert read < 50
    assert intervals(filled, np.zeros(100, np.int64)) == intervals(full, np.zeros(100, np.int64))


def test_a_cut_refines_its_gap_and_scores_never_cross_it():
    rows = np.zeros((20, 1))
    rows[:11] = 0.02
    rows[11:] = 0.9  # a new scene from segment 11, between coarse 10 and 15
    scene_of = np.where(np.arange(20) >= 11, 1, 0)
    filled, _ = scan(rows, PLAN, scene_of)
    np.testing.assert_array_equal(filled, rows)
    # Without the cut's refinement, interpolation stays inside each scene all the same.
    embedded = {0: rows[0], 5: rows[5], 10: rows[10], 15: rows[15], 19: rows[19]}
    inside = fill(20, embedded, scene_of)
    assert inside[11:15].min() == pytest.approx(0.9) and inside[6:11].max() == pytest.approx(0.02)


def test_refine_gap_rules():
    plan = ScanPlan(5, (0.1, 0.2), rise=0.025)
    assert refine_gap([0.05], [0.15], plan)  # crosses 0.1
    assert refine_gap([0.15], [0.25], plan)  # crosses 0.2
    assert refine_gap([0.3], [0.34], plan)  # moves more than rise above the floor
    assert not refine_gap([0.3], [0.32], plan)
    assert refine_gap([0.09], [0.09], plan)  # hovering at a threshold: may cross in between
    assert not refine_gap([0.01], [0.07], plan)  # both well under the floor: nothing there
    assert refine_gap([0.01], [0.01], plan, cut_between=True)
    assert not refine_gap(np.zeros(0), np.zeros(0), plan)  # no labels at all


def test_coarse_step_fits_every_scene():
    assert coarse_step(5, 0.1, 0.6) == 5
    assert coarse_step(10, 0.1, 0.6) == 6  # a 0.6 s scene still holds a coarse segment
    assert coarse_step(5, 0.1, 0.0) == 1
    with pytest.raises(ValueError):
        coarse_step(0, 0.1, 0.6)
    with pytest.raises(ValueError):
        ScanPlan(0, (0.1,), 0.01)
    with pytest.raises(ValueError):
        ScanPlan(5, (), 0.01)


def test_fill_refuses_what_it_cannot_do():
    with pytest.raises(ValueError, match="nothing was embedded"):
        fill(3, {}, np.zeros(3))
    with pytest.raises(ValueError, match="3 scene numbers"):
        fill(3, {0: [1.0]}, np.zeros(2))
    # A scene with no embedded segment of its own borrows the nearest neighbour's.
    np.testing.assert_array_equal(fill(4, {0: [1.0]}, np.array([0, 0, 1, 1])), [[1.0]] * 4)
