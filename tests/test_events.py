"""Event-based metrics (checked against sed_eval) and the DCASE annotation reader."""

from __future__ import annotations

import importlib
import math
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sfxmatch.errors import SfxmatchError
from sfxmatch.match import Interval
from sfxmatch.match.events import (
    AnnotationError,
    Event,
    EventCounts,
    evaluate_events,
    evaluate_files,
    events_from_intervals,
    matched_pairs,
    read_annotations,
)


@pytest.fixture(scope="module")
def sed_eval() -> Any:
    """sed_eval, importable although setuptools >= 81 dropped the pkg_resources it imports.

    dcase_util imports ``pkg_resources`` at module level but only calls it in functions the
    metrics never reach, so an empty stand-in module is enough.
    """
    if importlib.util.find_spec("pkg_resources") is None:
        sys.modules.setdefault("pkg_resources", types.ModuleType("pkg_resources"))
    return pytest.importorskip("sed_eval")


def as_dicts(events: list[Event]) -> list[dict[str, Any]]:
    return [
        {"event_onset": e.onset, "event_offset": e.offset, "event_label": e.label} for e in events
    ]


def random_events(rng: np.random.Generator, labels: list[str], n: int) -> list[Event]:
    out = []
    for _ in range(n):
        # onsets on a 0.05 s grid make exact collar boundaries (|diff| == 0.2) common
        onset = round(float(rng.integers(0, 200)) * 0.05, 2)
        length = round(float(rng.choice([0.1, 0.3, 0.5, 1.0, 2.0, 3.7])), 2)
        out.append(Event(onset, round(onset + length, 2), str(rng.choice(labels))))
    return out


# --- matching rules ----------------------------------------------------------------------


def test_a_perfect_system_scores_one() -> None:
    ref = [Event(1.0, 2.0, "dog"), Event(3.0, 5.0, "door")]
    m = evaluate_events(ref, list(ref))
    assert (m.f1, m.precision, m.recall) == (1.0, 1.0, 1.0)
    assert m.onset_error == 0.0 and m.offset_error == 0.0


def test_onset_collar_and_offset_collar() -> None:
    ref = [Event(10.0, 14.0, "dog")]  # offset collar: max(0.2, 50 % of 4 s) = 2 s
    assert evaluate_events(ref, [Event(10.2, 15.9, "dog")]).overall.n_tp == 1
    assert evaluate_events(ref, [Event(10.25, 14.0, "dog")]).overall.n_tp == 0  # onset late
    assert evaluate_events(ref, [Event(10.0, 16.1, "dog")]).overall.n_tp == 0  # offset late
    short = [Event(1.0, 1.2, "dog")]  # 50 % of 0.2 s is under the 0.2 s minimum collar
    assert evaluate_events(short, [Event(1.0, 1.39, "dog")]).overall.n_tp == 1
    assert evaluate_events(short, [Event(1.0, 1.45, "dog")]).overall.n_tp == 0


def test_onset_and_offset_checks_can_be_switched_off() -> None:
    ref = [Event(10.0, 14.0, "dog")]
    est = [Event(11.0, 20.0, "dog")]
    assert evaluate_events(ref, est).overall.n_tp == 0
    assert evaluate_events(ref, est, evaluate_onset=False).overall.n_tp == 0
    assert evaluate_events(ref, est, evaluate_offset=False).overall.n_tp == 0
    both_off = evaluate_events(ref, est, evaluate_onset=False, evaluate_offset=False)
    assert both_off.overall.n_tp == 1
    assert both_off.onset_error == pytest.approx(1.0) and both_off.offset_error == 6.0


def test_labels_must_agree() -> None:
    m = evaluate_events([Event(1.0, 2.0, "dog")], [Event(1.0, 2.0, "cat")])
    assert m.overall.n_tp == 0 and m.f1 == 0.0
    assert m.by_label["dog"].n_ref == 1 and m.by_label["cat"].n_sys == 1


def test_matching_is_maximal_not_first_come() -> None:
    # a greedy pass would give ref A the first system event, which ref B also needs
    ref = [Event(1.0, 3.0, "x"), Event(1.25, 3.0, "x")]
    est = [Event(1.1, 3.0, "x"), Event(0.85, 3.0, "x")]
    assert evaluate_events(ref, est).overall.n_tp == 2


def test_onset_and_offset_errors_average_matched_pairs_only() -> None:
    ref = [Event(1.0, 2.0, "a"), Event(5.0, 6.0, "a"), Event(9.0, 10.0, "b")]
    est = [Event(1.1, 2.2, "a"), Event(4.9, 6.0, "a"), Event(20.0, 21.0, "b")]
    m = evaluate_events(ref, est)
    assert m.overall.n_tp == 2
    assert m.onset_error == pytest.approx(0.1)
    assert m.offset_error == pytest.approx(0.1)
    assert m.precision == pytest.approx(2 / 3) and m.recall == pytest.approx(2 / 3)


def test_matched_pairs_are_the_hits() -> None:
    ref = [Event(1.0, 2.0, "a"), Event(5.0, 6.0, "a"), Event(9.0, 10.0, "b")]
    est = [Event(20.0, 21.0, "b"), Event(4.9, 6.0, "a"), Event(1.1, 2.2, "a")]
    pairs = matched_pairs(ref, est)
    assert pairs == [(ref[0], est[2]), (ref[1], est[1])]
    assert len(pairs) == evaluate_events(ref, est).overall.n_tp
    with pytest.raises(ValueError, match="t_collar"):
        matched_pairs(ref, est, t_collar=-1.0)


def test_undefined_ratios_follow_documented_conventions() -> None:
    nothing_found = evaluate_events([Event(1.0, 2.0, "a")], [])
    assert (nothing_found.precision, nothing_found.recall, nothing_found.f1) == (0.0, 0.0, 0.0)
    assert math.isnan(nothing_found.onset_error)
    nothing_to_find = evaluate_events([], [Event(1.0, 2.0, "a")])
    assert nothing_to_find.precision == 0.0 and math.isnan(nothing_to_find.recall)
    assert EventCounts(n_ref=2, n_sys=2, n_tp=1) + EventCounts(n_ref=1) == EventCounts(3, 2, 1)


def test_files_are_evaluated_separately_and_summed() -> None:
    ref = {"a.mp4": [Event(1.0, 2.0, "x")], "b.mp4": [Event(1.0, 2.0, "x")]}
    est = {"a.mp4": [Event(1.0, 2.0, "x")], "c.mp4": [Event(1.0, 2.0, "x")]}
    m = evaluate_files(ref, est)
    # b's reference is missed and c's event is a false alarm even though the times agree
    assert (m.overall.n_ref, m.overall.n_sys, m.overall.n_tp) == (2, 2, 1)


def test_events_from_intervals() -> None:
    iv = Interval(1.0, 2.5, 0.7, 10, 25, "glass")
    assert events_from_intervals([iv]) == [Event(1.0, 2.5, "glass")]


def test_event_validates_its_times() -> None:
    with pytest.raises(ValueError, match="before its onset"):
        Event(2.0, 1.0, "x")
    with pytest.raises(ValueError, match="finite"):
        Event(math.nan, 1.0, "x")


# --- against sed_eval ------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize(("evaluate_onset", "evaluate_offset"), [(True, True), (True, False)])
def test_counts_and_f1_equal_sed_eval(
    sed_eval: Any, seed: int, evaluate_onset: bool, evaluate_offset: bool
) -> None:
    rng = np.random.default_rng(seed)
    labels = ["dog", "door slam", "car"]
    metric = sed_eval.sound_event.EventBasedMetrics(
        event_label_list=labels,
        evaluate_onset=evaluate_onset,
        evaluate_offset=evaluate_offset,
        t_collar=0.2,
        percentage_of_length=0.5,
    )
    ours = []
    for _ in range(3):  # three files, accumulated like sed_eval accumulates them
        ref = random_events(rng, labels, int(rng.integers(1, 25)))
        # the system: jittered copies of some references plus false alarms
        est = []
        for e in ref:
            if rng.random() < 0.8:
                onset = max(0.0, e.onset + float(rng.choice([0.0, 0.05, -0.1, 0.2, 0.3])))
                offset = e.offset + float(rng.choice([0.0, 0.1, -0.05, 0.4, 1.5]))
                label = e.label if rng.random() < 0.85 else str(rng.choice(labels))
                est.append(Event(onset, max(onset, offset), label))
        est += random_events(rng, labels, int(rng.integers(1, 8)))
        metric.evaluate(as_dicts(ref), as_dicts(est))
        ours.append(
            evaluate_events(
                ref, est, evaluate_onset=evaluate_onset, evaluate_offset=evaluate_offset
            )
        )
    total = ours[0] + ours[1] + ours[2]
    overall = metric.results_overall_metrics()["f_measure"]
    assert total.overall.n_tp == metric.overall["Ntp"]
    assert total.overall.n_sys == metric.overall["Nsys"]
    assert total.overall.n_ref == metric.overall["Nref"]
    assert total.f1 == pytest.approx(overall["f_measure"])
    assert total.precision == pytest.approx(overall["precision"])
    assert total.recall == pytest.approx(overall["recall"])
    for label in labels:
        theirs = metric.class_wise_f_measure(label)
        mine = total.by_label.get(label, EventCounts())
        assert mine.n_tp == metric.class_wise[label]["Ntp"]
        if mine.n_sys and mine.n_ref:  # sed_eval gives NaN where we define a convention
            assert mine.f1 == pytest.approx(theirs["f_measure"])


# --- annotation files ------------------------------------------------------------------


def test_reads_tab_and_space_separated_rows(tmp_path: Path) -> None:
    path = tmp_path / "ann.txt"
    path.write_text(
        "# DCASE-style reference\n"
        "clip1.mp4\t3.0\t4.5\tdoor slam\n"
        "clip1.mp4\t0.5\t1.0\tdog bark\n"
        "clip2.mp4  1.25   2   glass\n"
        "\n"
        "clip3.mp4\n",
        encoding="utf-8",
    )
    ann = read_annotations(path)
    assert ann == {
        "clip1.mp4": [Event(0.5, 1.0, "dog bark"), Event(3.0, 4.5, "door slam")],
        "clip2.mp4": [Event(1.25, 2.0, "glass")],
        "clip3.mp4": [],
    }


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        ("clip.mp4\t1.0\t2.0", "expected 'filename onset offset event_label'"),
        ("clip.mp4\tone\t2.0\tdog", "bad event times"),
        ("clip.mp4 3.0 2.0 dog", "before its onset"),
        ("clip.mp4\t1.0\t2.0\tdog\textra", "expected"),
        ("clip.mp4 nan 2.0 dog", "finite"),
    ],
)
def test_bad_rows_name_the_file_and_line(tmp_path: Path, row: str, problem: str) -> None:
    path = tmp_path / "bad.tsv"
    path.write_text(f"ok.mp4\t0.0\t1.0\tdog\n{row}\n", encoding="utf-8")
    with pytest.raises(AnnotationError, match=problem) as info:
        read_annotations(path)
    assert str(info.value).startswith(f"{path}:2: ")
    assert info.value.line == 2
    assert isinstance(info.value, ValueError) and isinstance(info.value, SfxmatchError)


def test_a_missing_annotation_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(AnnotationError, match="cannot read"):
        read_annotations(tmp_path / "nope.txt")
