"""Grid search over AutoSync parameters, and the score/annotation files around it."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from sfxmatch.match import SyncParams
from sfxmatch.match.autosync import SYNC_RULES
from sfxmatch.match.events import Event
from sfxmatch.match.tuning import (
    LabelScores,
    grid_search,
    load_scores,
    run_tuning,
    save_scores,
    synthetic_corpus,
)

STEP = 0.1


def planted_corpus(
    seed: int, n_files: int = 3
) -> tuple[dict[str, LabelScores], dict[str, list[Event]]]:
    """Probability traces generated with known AutoSync-relevant structure.

    Every annotated event (1-3 s, level 0.6 +- 0.05) has one dropout of exactly two segments
    inside it, so it needs ``max_gap >= 0.2``; unannotated distractor bursts last exactly two
    segments, so they need ``min_duration > 0.2``; the background stays under 0.05, so
    ``0.05 <= t < 0.55`` separates it from events.
    """
    rng = np.random.default_rng(seed)
    labels = ("door", "dog")
    n = 600
    times = np.arange(n) * STEP
    traces: dict[str, LabelScores] = {}
    annotations: dict[str, list[Event]] = {}
    for f in range(n_files):
        scores = rng.uniform(0.0, 0.05, (n, len(labels)))
        events = []
        cursor = 10  # segments; everything is laid out left to right, >= 1 s apart
        while cursor < n - 60:
            k = int(rng.integers(len(labels)))
            if rng.random() < 0.6:
                length = int(rng.integers(10, 31))
                scores[cursor : cursor + length, k] = rng.uniform(0.55, 0.65, length)
                hole = cursor + int(rng.integers(3, length - 4))
                scores[hole : hole + 2, k] = 0.02
                events.append(Event(times[cursor], times[cursor] + length * STEP, labels[k]))
            else:
                length = 2
                scores[cursor : cursor + length, k] = rng.uniform(0.55, 0.65, length)
            cursor += length + int(rng.integers(10, 40))
        traces[f"clip{f}"] = LabelScores(times, scores, labels)
        annotations[f"clip{f}"] = events
    return traces, annotations


@pytest.mark.parametrize("rule", SYNC_RULES)
def test_grid_search_recovers_the_generating_parameters(rule: str) -> None:
    traces, annotations = planted_corpus(seed=3)
    grid = {
        "t": [0.02, 0.1, 0.3, 0.7],
        "max_gap": [0.0, 0.1, 0.2, 0.4],
        "min_duration": [0.1, 0.2, 0.3, 0.5],
    }
    results = grid_search(traces, annotations, rule, grid)  # type: ignore[arg-type]
    assert len(results) == 4 * 4 * 4
    best = results[0]
    assert best.f1 == 1.0
    assert best.onset_error < 1e-9 and best.offset_error < 1e-9
    assert best.params.t in (0.1, 0.3)
    assert best.params.max_gap >= 0.2
    assert best.params.min_duration in (0.3, 0.5)
    # parameters on the wrong side of the generating values are strictly worse
    for r in results:
        if r.params.max_gap < 0.2 or r.params.min_duration <= 0.2 or r.params.t in (0.02, 0.7):
            assert r.f1 < best.f1


def test_grid_search_picks_the_temperature_the_cosines_were_made_for() -> None:
    traces, annotations = synthetic_corpus(3, seed=5, noise=0.003)
    results = grid_search(
        traces, annotations, "threshold", {"temperature": [0.002, 0.01, 0.05], "t": [0.1]}
    )
    assert results[0].temperature == 0.01
    assert results[0].f1 >= 0.9
    by_temperature = {r.temperature: r.f1 for r in results}
    assert by_temperature[0.05] < 0.5  # too soft: a 0.06 margin never reaches t among 32 labels
    assert by_temperature[0.002] < results[0].f1  # too sharp: noise spikes become events


def test_results_are_ranked_by_f1_then_onset_error() -> None:
    traces, annotations = synthetic_corpus(2, seed=1, noise=0.006)
    results = grid_search(
        traces, annotations, "report", {"t": [0.05, 0.1, 0.2], "d": [0.2, 0.5, 1.0]}
    )
    assert len(results) == 9
    keys = [(-r.f1, r.onset_error if not math.isnan(r.onset_error) else math.inf) for r in results]
    assert keys == sorted(keys)
    assert len({r.f1 for r in results}) > 1  # the grid matters, so the order is meaningful
    assert all(r.rule == "report" and r.temperature is None for r in results)


def test_base_params_fill_what_the_grid_leaves_out() -> None:
    traces, annotations = planted_corpus(seed=1, n_files=1)
    base = SyncParams(t=0.3, max_gap=0.4)
    results = grid_search(traces, annotations, "threshold", {"min_duration": [0.3]}, base=base)
    assert results[0].params == SyncParams(t=0.3, max_gap=0.4, min_duration=0.3)


def test_grid_search_rejects_what_it_cannot_evaluate() -> None:
    traces, annotations = planted_corpus(seed=1, n_files=1)
    with pytest.raises(ValueError, match=r"unknown grid keys \['threshold'\]"):
        grid_search(traces, annotations, "report", {"threshold": [0.1]})
    with pytest.raises(ValueError, match="no annotations for clip0"):
        grid_search(traces, {}, "report", {"t": [0.1]})
    with pytest.raises(ValueError, match="raw cosine scores"):
        grid_search(traces, annotations, "report", {"temperature": [0.01]})
    with pytest.raises(ValueError, match="unknown sync rule"):
        grid_search(traces, annotations, "magic", {"t": [0.1]})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least one value"):
        grid_search(traces, annotations, "report", {"t": []})
    with pytest.raises(ValueError, match="no events"):
        grid_search(traces, {"clip0": []}, "report", {"t": [0.1]})
    with pytest.raises(ValueError, match="t_low <= t_high"):
        grid_search(traces, annotations, "hysteresis", {"t_high": [0.1], "t_low": [0.2]})


def test_run_tuning_reads_score_files_and_dcase_annotations(tmp_path: Path) -> None:
    traces, annotations = planted_corpus(seed=2, n_files=2)
    folder = tmp_path / "scores"
    folder.mkdir()
    for name, scores in traces.items():
        save_scores(folder / f"{name}.npz", scores)
    lines = [
        f"{name}.mp4\t{e.onset:.3f}\t{e.offset:.3f}\t{e.label}"
        for name, events in annotations.items()
        for e in events
    ]
    ann = tmp_path / "reference.tsv"
    ann.write_text("\n".join(lines) + "\n", encoding="utf-8")
    grid = {"t": [0.1, 0.7], "max_gap": [0.2], "min_duration": [0.3]}
    results = run_tuning(folder, ann, "threshold", grid)
    assert [r.params.t for r in results] == [0.1, 0.7]
    assert results[0].f1 == 1.0 and results[1].f1 == 0.0
    assert results[0].counts.n_ref == sum(len(e) for e in annotations.values())
    single = run_tuning(folder / "clip0.npz", ann, "threshold", grid)
    assert single[0].counts.n_ref == len(annotations["clip0"])


def test_scores_round_trip_through_npz(tmp_path: Path) -> None:
    scores = LabelScores(
        np.arange(5) * STEP, np.random.default_rng(0).random((5, 3)), ("a", "b", "c"), cosine=True
    )
    save_scores(tmp_path / "x.npz", scores)
    loaded = load_scores(tmp_path / "x.npz")["x"]
    assert loaded.labels == ("a", "b", "c") and loaded.cosine
    np.testing.assert_array_equal(loaded.scores, scores.scores)
    np.testing.assert_array_equal(loaded.times, scores.times)


def test_bad_score_files_are_clear_errors(tmp_path: Path) -> None:
    np.savez(tmp_path / "broken.npz", times=np.arange(3) * STEP, scores=np.zeros((3, 1)))
    with pytest.raises(ValueError, match=r"broken.npz: not a usable score file: lacks labels"):
        load_scores(tmp_path / "broken.npz")
    with pytest.raises(ValueError, match="no such score file"):
        load_scores(tmp_path / "missing.npz")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"no \.npz score files"):
        load_scores(tmp_path / "empty")
    with pytest.raises(ValueError, match=r"scores must be \(n_segments, 2 labels\)"):
        LabelScores(np.arange(3) * STEP, np.zeros((3, 1)), ("a", "b"))
    with pytest.raises(ValueError, match=r"scores must be finite; scores\[\(0, 0\)\] is nan"):
        LabelScores(np.arange(3) * STEP, np.full((3, 1), np.nan), ("a",))
