"""AutoSync: softmax scores, the three interval rules and their shared post-processing."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sfxmatch.match import Interval, SyncParams, softmax_scores, sync_intervals, sync_labels
from sfxmatch.match.autosync import SYNC_RULES, sync_trace
from sfxmatch.match.events import evaluate_files, events_from_intervals
from sfxmatch.match.tuning import synthetic_corpus
from sfxmatch.suggestions import Trace

STEP = 0.1


def grid(n: int, start: float = 0.0) -> np.ndarray:
    return start + np.arange(n) * STEP


def spans(intervals: list[Interval]) -> list[tuple[int, int]]:
    return [(iv.first, iv.stop) for iv in intervals]


# --- softmax ---------------------------------------------------------------------------


def test_softmax_rows_sum_to_one_and_keep_the_order_of_cosines() -> None:
    sims = np.array([[0.20, 0.25, 0.22], [0.30, 0.10, 0.10]])
    probs = softmax_scores(sims, temperature=0.01)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    assert probs[0].argmax() == 1 and probs[1].argmax() == 0
    assert probs[0, 1] > probs[0, 2] > probs[0, 0]
    # logits are cos / temperature: a 0.05 margin at 0.01 is a factor e^5
    assert probs[0, 1] / probs[0, 0] == pytest.approx(math.exp(5.0))


def test_softmax_temperature_sharpens() -> None:
    sims = np.array([[0.2, 0.25]])
    assert softmax_scores(sims, 0.01)[0, 1] > softmax_scores(sims, 0.05)[0, 1] > 0.5


def test_softmax_is_stable_for_large_logits() -> None:
    probs = softmax_scores(np.array([[1.0, -1.0]]), temperature=1e-4)
    assert np.all(np.isfinite(probs)) and probs[0, 0] == pytest.approx(1.0)


def test_softmax_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="finite"):
        softmax_scores(np.array([[0.1, np.nan]]))
    with pytest.raises(ValueError, match="2-D"):
        softmax_scores(np.array([0.1, 0.2]))
    with pytest.raises(ValueError, match="temperature"):
        softmax_scores(np.array([[0.1, 0.2]]), temperature=0.0)
    assert softmax_scores(np.zeros((0, 3))).shape == (0, 3)


# --- the rules on hand-made series ------------------------------------------------------


def test_threshold_runs_are_the_segments_above_t() -> None:
    v = np.array([0.0, 0.5, 0.5, 0.5, 0.0, 0.0, 0.0, 0.4, 0.4, 0.4, 0.4])
    out = sync_intervals(grid(len(v)), v, "threshold")
    assert spans(out) == [(1, 4), (7, 11)]
    assert out[0].start == pytest.approx(0.1) and out[0].end == pytest.approx(0.4)
    assert out[1].end == pytest.approx(1.1)  # the last segment covers [1.0, 1.1)
    assert out[0].confidence == pytest.approx(0.5) and out[1].confidence == pytest.approx(0.4)


def test_report_rule_splits_where_the_level_jumps() -> None:
    v = np.array([0.2, 0.2, 0.2, 0.2, 0.8, 0.8, 0.8, 0.8])
    assert spans(sync_intervals(grid(8), v, "report")) == [(0, 4), (4, 8)]
    # the plain threshold sees one run; a wide d also keeps it whole
    assert spans(sync_intervals(grid(8), v, "threshold")) == [(0, 8)]
    assert spans(sync_intervals(grid(8), v, "report", SyncParams(d=2.0))) == [(0, 8)]


def test_report_rule_keeps_every_member_within_d_of_the_mean() -> None:
    # 0.4, 0.5, 0.6 stay within 50 % of their mean; 1.5 would pull the mean to 0.75 and
    # leave 0.4 more than 50 % below it, so it starts a new (too short) run
    v = np.array([0.4, 0.5, 0.6, 1.5, 0.0])
    out = sync_intervals(grid(5), v, "report", SyncParams(min_duration=0.0, max_gap=0.0))
    assert spans(out) == [(0, 3), (3, 4)]
    for iv in out:
        members = v[iv.first : iv.stop]
        assert np.all(np.abs(members - members.mean()) <= 0.5 * members.mean() + 1e-12)


def test_report_rule_with_zero_d_needs_equal_values() -> None:
    v = np.array([0.3, 0.3, 0.3, 0.31, 0.31, 0.31])
    params = SyncParams(d=0.0, min_duration=0.0)
    assert spans(sync_intervals(grid(6), v, "report", params)) == [(0, 3), (3, 6)]


def test_hysteresis_needs_a_peak_above_t_high_and_spans_the_excursion() -> None:
    v = np.array([0.0, 0.12, 0.15, 0.25, 0.15, 0.12, 0.0, 0.15, 0.15, 0.15, 0.15, 0.0])
    out = sync_intervals(grid(len(v)), v, "hysteresis")  # t_high 0.2, t_low 0.1
    assert spans(out) == [(1, 6)]  # the second excursion never reaches 0.2
    assert out[0].start == pytest.approx(0.1)  # the rise, not the crossing of 0.2
    explicit = SyncParams(t_high=0.14, t_low=0.11, max_gap=0.0)
    assert spans(sync_intervals(grid(len(v)), v, "hysteresis", explicit)) == [(1, 6), (7, 11)]


def test_hysteresis_rides_out_a_dip_that_splits_a_threshold_run() -> None:
    v = np.array([0.0, 0.5, 0.5, 0.5, 0.15, 0.15, 0.15, 0.5, 0.5, 0.5, 0.0])
    params = SyncParams(t=0.2, t_high=0.4, t_low=0.1, max_gap=0.0)
    assert spans(sync_intervals(grid(11), v, "threshold", params)) == [(1, 4), (7, 10)]
    assert spans(sync_intervals(grid(11), v, "hysteresis", params)) == [(1, 10)]


# --- post-processing -------------------------------------------------------------------


@pytest.mark.parametrize("rule", SYNC_RULES)
def test_gaps_up_to_max_gap_are_bridged(rule: str) -> None:
    v = np.array([0.5, 0.5, 0.5, 0.0, 0.0, 0.5, 0.5, 0.5, 0.0, 0.0, 0.0, 0.5, 0.5, 0.5])
    t = grid(len(v))
    # a two-segment gap (0.2 s) is bridged by the default max_gap; the three-segment one is not
    out = sync_intervals(t, v, rule)  # type: ignore[arg-type]
    assert spans(out) == [(0, 8), (11, 14)]
    assert out[0].confidence == pytest.approx(0.5)  # bridged segments are not averaged in
    tight = sync_intervals(t, v, rule, SyncParams(max_gap=0.1))  # type: ignore[arg-type]
    assert spans(tight) == [(0, 3), (5, 8), (11, 14)]
    wide = sync_intervals(t, v, rule, SyncParams(max_gap=0.3))  # type: ignore[arg-type]
    assert spans(wide) == [(0, 14)]


@pytest.mark.parametrize("rule", SYNC_RULES)
def test_intervals_shorter_than_min_duration_are_dropped(rule: str) -> None:
    v = np.array([0.5, 0.5, 0.0, 0.0, 0.0, 0.5, 0.5, 0.5, 0.0, 0.0, 0.0, 0.5, 0.0])
    t = grid(len(v))
    assert spans(sync_intervals(t, v, rule)) == [(5, 8)]  # type: ignore[arg-type]
    keep_all = SyncParams(min_duration=0.0)
    assert spans(sync_intervals(t, v, rule, keep_all)) == [(0, 2), (5, 8), (11, 12)]  # type: ignore[arg-type]
    assert sync_intervals(t, v, rule, SyncParams(min_duration=0.4)) == []  # type: ignore[arg-type]


def test_gaps_are_merged_before_short_pieces_are_dropped() -> None:
    v = np.array([0.5, 0.5, 0.0, 0.5, 0.5])  # two 0.2 s pieces, one 0.1 s dropout
    assert spans(sync_intervals(grid(5), v, "threshold")) == [(0, 5)]


def test_report_level_splits_are_not_merged_back() -> None:
    v = np.array([0.2, 0.2, 0.2, 0.8, 0.8, 0.8])
    assert spans(sync_intervals(grid(6), v, "report", SyncParams(max_gap=1.0))) == [(0, 3), (3, 6)]


# --- edge cases ------------------------------------------------------------------------


@pytest.mark.parametrize("rule", SYNC_RULES)
def test_empty_series_gives_no_intervals(rule: str) -> None:
    assert sync_intervals(np.array([]), np.array([]), rule) == []  # type: ignore[arg-type]
    assert sync_labels(np.array([]), np.zeros((0, 2)), ["a", "b"], rule) == []  # type: ignore[arg-type]


@pytest.mark.parametrize("rule", SYNC_RULES)
def test_all_above_is_one_interval_over_the_whole_series(rule: str) -> None:
    t = grid(30, start=5.0)
    out = sync_intervals(t, np.full(30, 0.6), rule)  # type: ignore[arg-type]
    assert len(out) == 1
    assert out[0].start == pytest.approx(5.0) and out[0].end == pytest.approx(8.0)
    assert out[0].confidence == pytest.approx(0.6)


@pytest.mark.parametrize("rule", SYNC_RULES)
def test_single_segment(rule: str) -> None:
    keep = SyncParams(min_duration=0.0)
    out = sync_intervals([2.0], [0.9], rule, keep)  # type: ignore[arg-type]
    assert [(iv.start, iv.end) for iv in out] == [(2.0, pytest.approx(2.1))]
    assert sync_intervals([2.0], [0.9], rule, keep, step=0.5)[0].end == 2.5  # type: ignore[arg-type]
    assert sync_intervals([2.0], [0.9], rule) == []  # type: ignore[arg-type]  # under 0.3 s
    assert sync_intervals([2.0], [0.05], rule, keep) == []  # type: ignore[arg-type]


def test_nan_input_raises_a_clear_error() -> None:
    v = np.array([0.1, 0.2, np.nan, 0.3])
    with pytest.raises(ValueError, match=r"values must be finite; values\[2\] is nan"):
        sync_intervals(grid(4), v)
    scores = np.zeros((4, 2))
    scores[3, 1] = np.inf
    with pytest.raises(ValueError, match=r"scores\[\(3, 1\)\] is inf"):
        sync_labels(grid(4), scores, ["a", "b"])
    with pytest.raises(ValueError, match="times must be finite"):
        sync_intervals([0.0, np.nan], [0.1, 0.2])


def test_bad_shapes_and_times_raise() -> None:
    with pytest.raises(ValueError, match="3 entries but values has 2"):
        sync_intervals(grid(3), [0.1, 0.2])
    with pytest.raises(ValueError, match="strictly increasing"):
        sync_intervals([0.0, 0.1, 0.1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="2 label columns but 3 labels"):
        sync_labels(grid(3), np.zeros((3, 2)), ["a", "b", "c"])
    with pytest.raises(ValueError, match="unknown sync rule 'fuzzy'"):
        sync_intervals(grid(3), [0.5, 0.5, 0.5], "fuzzy")  # type: ignore[arg-type]


def test_sync_params_are_validated() -> None:
    with pytest.raises(ValueError, match="min_duration must be >= 0"):
        SyncParams(min_duration=-0.1)
    with pytest.raises(ValueError, match="t must be finite"):
        SyncParams(t=math.nan)
    with pytest.raises(ValueError, match="t_low <= t_high"):
        SyncParams(t_high=0.1, t_low=0.2)
    assert (SyncParams(t=0.2).high, SyncParams(t=0.2).low) == (0.4, 0.2)


def test_sync_labels_labels_and_orders_intervals() -> None:
    scores = np.zeros((20, 2))
    scores[10:15, 0] = 0.7
    scores[2:8, 1] = 0.6
    out = sync_labels(grid(20), scores, ["door", "dog"], "threshold")
    assert [(iv.label, iv.first, iv.stop) for iv in out] == [("dog", 2, 8), ("door", 10, 15)]


def test_sync_trace_uses_the_traces_label() -> None:
    trace = Trace("glass", tuple(grid(6).tolist()), (0.0, 0.5, 0.5, 0.5, 0.5, 0.0))
    out = sync_trace(trace, "threshold")
    assert [(iv.label, iv.first, iv.stop) for iv in out] == [("glass", 1, 5)]


# --- synthetic traces with known events ------------------------------------------------

# Measured minima over these seeds are well above the bounds (BENCHMARKS.md); the report rule
# fragments more under noise (it splits wherever the level wobbles by more than d).
F1_BOUND = {"report": 0.75, "threshold": 0.75, "hysteresis": 0.95}


@pytest.mark.parametrize("rule", SYNC_RULES)
@pytest.mark.parametrize("noise", [0.002, 0.004])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rules_recover_synthetic_events(rule: str, noise: float, seed: int) -> None:
    traces, annotations = synthetic_corpus(3, seed=seed, noise=noise)
    estimated = {
        name: events_from_intervals(
            sync_labels(s.times, s.probabilities(None), s.labels, rule)  # type: ignore[arg-type]
        )
        for name, s in traces.items()
    }
    metrics = evaluate_files(annotations, estimated)
    assert metrics.f1 >= F1_BOUND[rule]
    assert metrics.recall >= 0.85
    assert metrics.onset_error <= 0.06  # under one 0.1 s segment on average
    assert metrics.offset_error <= 0.06


@pytest.mark.parametrize("rule", ["threshold", "hysteresis"])
def test_noise_free_synthetic_events_are_all_found(rule: str) -> None:
    traces, annotations = synthetic_corpus(2, seed=7, noise=0.0)
    estimated = {
        name: events_from_intervals(sync_labels(s.times, s.probabilities(None), s.labels, rule))  # type: ignore[arg-type]
        for name, s in traces.items()
    }
    metrics = evaluate_files(annotations, estimated)
    assert metrics.f1 == 1.0
    assert metrics.onset_error <= 0.05 and metrics.offset_error <= 0.05


# --- properties ------------------------------------------------------------------------

values_strategy = st.integers(min_value=0, max_value=60).flatmap(
    lambda n: arrays(np.float64, n, elements=st.floats(0.0, 1.0, allow_nan=False))
)


@settings(max_examples=150, deadline=None)
@given(
    values=values_strategy,
    rule=st.sampled_from(SYNC_RULES),
    t=st.floats(0.0, 0.9),
    d=st.floats(0.0, 1.0),
    max_gap=st.sampled_from([0.0, 0.1, 0.2, 0.5]),
    min_duration=st.sampled_from([0.0, 0.1, 0.3, 1.0]),
    start=st.floats(-5.0, 100.0),
    step=st.sampled_from([0.1, 0.04, 1 / 30]),
)
def test_intervals_are_sorted_disjoint_and_inside_the_series(
    values: np.ndarray,
    rule: str,
    t: float,
    d: float,
    max_gap: float,
    min_duration: float,
    start: float,
    step: float,
) -> None:
    times = start + np.arange(len(values)) * step
    params = SyncParams(t=t, d=d, max_gap=max_gap, min_duration=min_duration)
    # The step is given, as the pipeline gives it: one segment alone cannot say it.
    out = sync_intervals(times, values, rule, params, step=step)  # type: ignore[arg-type]
    for iv in out:
        assert 0 <= iv.first < iv.stop <= len(values)
        assert iv.start == times[iv.first]
        assert iv.end == pytest.approx(times[iv.stop - 1] + step)
        assert times[0] <= iv.start < iv.end <= times[-1] + step + 1e-9
        assert iv.duration >= min_duration - 1e-9
        members = values[iv.first : iv.stop]
        assert members.min() - 1e-12 <= iv.confidence <= members.max() + 1e-12
        # every interval starts and ends on a segment its rule detected
        level = params.low if rule == "hysteresis" else t
        assert values[iv.first] > level and values[iv.stop - 1] > level
    for a, b in itertools.pairwise(out):
        assert a.start < b.start
        assert a.end <= b.start + 1e-9
        assert a.stop <= b.first
