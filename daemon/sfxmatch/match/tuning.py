"""Tune AutoSync on annotated videos: try every parameter combination, rank by event F1.

The report tuned ``t`` and ``d`` by hand on a few videos; here the same search is a grid over
:class:`~sfxmatch.match.autosync.SyncParams` fields (plus the softmax ``temperature`` when
the saved scores are raw cosines), scored with sed_eval's event-based F1 and ranked by F1,
then by mean onset error (a sound that starts late is what a viewer notices first), then by
offset error. :func:`grid_search` is pure; :func:`run_tuning` reads saved score files and a
DCASE annotation file around it.

Score files are ``.npz`` archives with ``times`` ``(n,)``, ``scores`` ``(n, n_labels)`` and
``labels`` ``(n_labels,)``, and optionally ``cosine`` (true when ``scores`` are raw cosine
similarities rather than softmax probabilities); :func:`save_scores` writes them.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from sfxmatch.match.autosync import (
    DEFAULT_STEP,
    DEFAULT_TEMPERATURE,
    SYNC_RULES,
    SyncParams,
    _check_finite,
    _detect,
    _postprocess,
    _validate,
    softmax_scores,
)
from sfxmatch.match.events import (
    DEFAULT_COLLAR,
    DEFAULT_PERCENTAGE_OF_LENGTH,
    Event,
    EventCounts,
    evaluate_events,
    events_from_intervals,
    read_annotations,
)
from sfxmatch.suggestions import SyncRule

__all__ = [
    "GRID_KEYS",
    "LabelScores",
    "TuningResult",
    "grid_search",
    "load_scores",
    "run_tuning",
    "save_scores",
    "synthetic_corpus",
]

GRID_KEYS: tuple[str, ...] = (*(f.name for f in fields(SyncParams)), "temperature")

# Which SyncParams fields change a rule's raw detections (the rest only post-process them).
_DETECTION_KEYS: dict[str, tuple[str, ...]] = {
    "report": ("t", "d"),
    "threshold": ("t",),
    "hysteresis": ("high", "low"),
}


@dataclass(frozen=True, slots=True)
class LabelScores:
    """One video's per-segment scores: ``scores[i, k]`` for ``labels[k]`` at ``times[i]``.

    ``cosine`` marks raw cosine similarities, which a softmax at some temperature turns into
    the probabilities AutoSync thresholds; otherwise the scores are used as they are.
    """

    times: npt.NDArray[np.float64]
    scores: npt.NDArray[np.float64]
    labels: tuple[str, ...]
    cosine: bool = False

    def __post_init__(self) -> None:
        scores = np.asarray(self.scores, dtype=np.float64)
        if scores.ndim != 2 or scores.shape[1] != len(self.labels):
            raise ValueError(
                f"scores must be (n_segments, {len(self.labels)} labels), not {scores.shape}"
            )
        _check_finite(scores, "scores")
        times, _, _ = _validate(self.times, np.zeros(scores.shape[0]), None)
        object.__setattr__(self, "times", times)
        object.__setattr__(self, "scores", scores)
        object.__setattr__(self, "labels", tuple(str(x) for x in self.labels))

    def probabilities(self, temperature: float | None) -> npt.NDArray[np.float64]:
        if not self.cosine:
            if temperature is not None:
                raise ValueError("a temperature only applies to raw cosine scores")
            return self.scores
        return softmax_scores(
            self.scores, DEFAULT_TEMPERATURE if temperature is None else temperature
        )


@dataclass(frozen=True, slots=True)
class TuningResult:
    """One grid point and how its intervals scored against the annotations (all files)."""

    rule: SyncRule
    params: SyncParams
    temperature: float | None
    counts: EventCounts

    @property
    def f1(self) -> float:
        return self.counts.f1

    @property
    def precision(self) -> float:
        return self.counts.precision

    @property
    def recall(self) -> float:
        return self.counts.recall

    @property
    def onset_error(self) -> float:
        return self.counts.onset_error

    @property
    def offset_error(self) -> float:
        return self.counts.offset_error


def grid_search(
    traces: Mapping[str, LabelScores],
    annotations: Mapping[str, Sequence[Event]],
    rule: SyncRule,
    grid: Mapping[str, Iterable[float | None]],
    *,
    base: SyncParams | None = None,
    t_collar: float = DEFAULT_COLLAR,
    percentage_of_length: float = DEFAULT_PERCENTAGE_OF_LENGTH,
) -> list[TuningResult]:
    """Every combination of ``grid`` (keys from :data:`GRID_KEYS`), best first.

    Parameters not in ``grid`` keep ``base``'s values. Every file of ``traces`` must be in
    ``annotations`` (list a file without events with an empty list); annotated files without
    traces are not evaluated. Raw detections are computed once per distinct detection
    setting and reused across the post-processing parameters.
    """
    if rule not in SYNC_RULES:
        raise ValueError(f"unknown sync rule {rule!r}; choose one of {', '.join(SYNC_RULES)}")
    unknown = sorted(set(grid) - set(GRID_KEYS))
    if unknown:
        raise ValueError(f"unknown grid keys {unknown}; use some of {', '.join(GRID_KEYS)}")
    if not traces:
        raise ValueError("grid search needs at least one file of scores")
    missing = sorted(set(traces) - set(annotations))
    if missing:
        raise ValueError(f"no annotations for {', '.join(missing)} (annotated: {len(annotations)})")
    if not any(annotations[name] for name in traces):
        raise ValueError("the annotations hold no events for these files: nothing to tune on")
    if "temperature" in grid and not all(s.cosine for s in traces.values()):
        raise ValueError("'temperature' can only be tuned on raw cosine scores (cosine=True)")
    keys = list(grid)
    axes = [list(grid[k]) for k in keys]
    if any(not axis for axis in axes):
        raise ValueError("every grid axis needs at least one value")
    base = base or SyncParams()

    probs: dict[float | None, dict[str, npt.NDArray[np.float64]]] = {}
    detections: dict[tuple[object, ...], dict[str, list[list[tuple[int, int]]]]] = {}
    results: list[tuple[int, TuningResult]] = []
    for order, combo in enumerate(itertools.product(*axes)):
        values: dict[str, Any] = dict(zip(keys, combo, strict=True))
        temperature = values.pop("temperature", None)
        params = replace(base, **values)  # validates
        if temperature not in probs:
            probs[temperature] = {n: s.probabilities(temperature) for n, s in traces.items()}
        key = (temperature, *(getattr(params, k) for k in _DETECTION_KEYS[rule]))
        if key not in detections:
            detections[key] = {
                name: [_detect(p[:, k], rule, params) for k in range(p.shape[1])]
                for name, p in probs[temperature].items()
            }
        total = EventCounts()
        for name, scores in traces.items():
            p = probs[temperature][name]
            step = _step(scores.times)
            intervals = []
            for k, label in enumerate(scores.labels):
                runs = detections[key][name][k]
                intervals.extend(_postprocess(runs, scores.times, p[:, k], step, params, label))
            total = (
                total
                + evaluate_events(
                    annotations[name],
                    events_from_intervals(intervals),
                    t_collar=t_collar,
                    percentage_of_length=percentage_of_length,
                ).overall
            )
        results.append((order, TuningResult(rule, params, temperature, total)))
    results.sort(
        key=lambda r: (-r[1].f1, _nan_last(r[1].onset_error), _nan_last(r[1].offset_error), r[0])
    )
    return [r for _, r in results]


def run_tuning(
    traces_path: str | Path,
    annotations_path: str | Path,
    rule: SyncRule,
    grid: Mapping[str, Iterable[float | None]],
    **options: float | SyncParams,
) -> list[TuningResult]:
    """:func:`grid_search` over saved scores (an ``.npz`` or a folder of them) and a DCASE file.

    Files pair up by stem: ``clip01.npz`` with ``clip01.mp4`` (or ``clip01``) in the
    annotations. ``options`` are :func:`grid_search`'s keywords.
    """
    traces = load_scores(traces_path)
    annotations: dict[str, list[Event]] = {}
    for name, events in read_annotations(annotations_path).items():
        stem = Path(name).stem
        if stem in annotations:
            raise ValueError(f"{annotations_path}: two annotated files share the stem {stem!r}")
        annotations[stem] = events
    return grid_search(traces, annotations, rule, grid, **options)  # type: ignore[arg-type]


def load_scores(path: str | Path) -> dict[str, LabelScores]:
    """Scores by file stem from one ``.npz`` or every ``.npz`` directly inside a folder."""
    path = Path(path)
    if path.is_dir():
        files = sorted(path.glob("*.npz"))
        if not files:
            raise ValueError(f"{path}: no .npz score files in this folder")
    elif path.is_file():
        files = [path]
    else:
        raise ValueError(f"{path}: no such score file or folder")
    out: dict[str, LabelScores] = {}
    for file in files:
        try:
            with np.load(file, allow_pickle=False) as data:
                missing = {"times", "scores", "labels"} - set(data.files)
                if missing:
                    raise ValueError(f"lacks {', '.join(sorted(missing))}")
                cosine = bool(data["cosine"]) if "cosine" in data.files else False
                out[file.stem] = LabelScores(
                    data["times"], data["scores"], tuple(data["labels"].tolist()), cosine
                )
        except (OSError, ValueError) as error:
            raise ValueError(f"{file}: not a usable score file: {error}") from error
    return out


def save_scores(path: str | Path, scores: LabelScores) -> None:
    """Write ``scores`` in the format :func:`load_scores` reads."""
    np.savez(
        path,
        times=scores.times,
        scores=scores.scores,
        labels=np.array(scores.labels, dtype=str),
        cosine=np.array(scores.cosine),
    )


def synthetic_corpus(
    n_files: int = 4,
    *,
    seed: int = 0,
    noise: float = 0.01,
    duration: float = 60.0,
    step: float = 0.1,
    n_labels: int = 32,
    n_event_labels: int = 6,
    events_per_label: int = 2,
    event_length: tuple[float, float] = (0.8, 4.0),
    margin: float = 0.06,
    spread: float = 0.003,
) -> tuple[dict[str, LabelScores], dict[str, list[Event]]]:
    """Raw cosine scores with known events, for tests, benchmarks and sanity-checking a grid.

    Each label has a constant cosine level near 0.2 (labels differ by ``spread``) plus AR(1)
    noise of standard deviation ``noise`` (neighbouring segments' embeddings are correlated,
    coefficient 0.5). During an event its label's cosine rises by ``margin`` times the share
    of each segment the event covers, so edges blur over a segment, as a 0.1 s segment
    straddling an onset does. One sound at a time: events do not overlap and are at least
    1 s apart; onsets are not on the segment grid. ``labels[:n_event_labels]`` get events,
    the rest are distractors that only ever carry noise.
    """
    rng = np.random.default_rng(seed)
    n = round(duration / step)
    times = (np.arange(n) * step).astype(np.float64)
    labels = tuple(f"label{k:02d}" for k in range(n_labels))
    traces: dict[str, LabelScores] = {}
    annotations: dict[str, list[Event]] = {}
    rho = 0.5
    for f in range(n_files):
        level = 0.2 + rng.normal(0.0, spread, n_labels)
        shocks = rng.normal(0.0, noise * math.sqrt(1 - rho**2), (n, n_labels))
        ar = np.empty_like(shocks)
        ar[0] = rng.normal(0.0, noise, n_labels)
        for i in range(1, n):
            ar[i] = rho * ar[i - 1] + shocks[i]
        cos = level + ar
        events: list[Event] = []
        spans = _place_events(rng, n_event_labels * events_per_label, event_length, duration)
        owners = rng.permutation(np.arange(len(spans)) % n_event_labels)
        for (onset, offset), k in zip(spans, owners.tolist(), strict=True):
            cover = np.clip(np.minimum(times + step, offset) - np.maximum(times, onset), 0, step)
            cos[:, k] += margin * cover / step
            events.append(Event(round(onset, 6), round(offset, 6), labels[k]))
        name = f"synthetic{f:02d}"
        traces[name] = LabelScores(times, cos, labels, cosine=True)
        annotations[name] = events
    return traces, annotations


def _place_events(
    rng: np.random.Generator, count: int, length: tuple[float, float], duration: float
) -> list[tuple[float, float]]:
    """Up to ``count`` non-overlapping spans at least 1 s apart, sorted (rejection sampling)."""
    placed: list[tuple[float, float]] = []
    for _ in range(100 * count):
        if len(placed) == count:
            break
        size = rng.uniform(*length)
        onset = rng.uniform(0.5, duration - size - 0.5)
        if all(onset > b + 1.0 or onset + size < a - 1.0 for a, b in placed):
            placed.append((onset, onset + size))
    return sorted(placed)


def _step(times: npt.NDArray[np.float64]) -> float:
    return float(np.median(np.diff(times))) if len(times) > 1 else DEFAULT_STEP


def _nan_last(value: float) -> float:
    return math.inf if math.isnan(value) else value
