"""Event-based metrics for synced intervals, as sed_eval's ``EventBasedMetrics`` defines them.

A system event matches a reference event of the same label when its onset is within
``t_collar`` of the reference onset and its offset within ``max(t_collar,
percentage_of_length * reference length)`` of the reference offset (each check can be
switched off). Within a label, events are paired by a maximum bipartite matching (sed_eval's
default ``"optimal"`` matching), so the counts - and precision, recall and F1 - equal
sed_eval's. On top, the mean absolute onset and offset errors of the matched pairs say how
far off the synced intervals are, which F1 alone hides inside the collars.

Written here in pure Python because sed_eval pulls librosa and numba; the tests check this
module against it. Annotations are read from DCASE-style text files.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sfxmatch.errors import SfxmatchError
from sfxmatch.match.autosync import Interval

__all__ = [
    "DEFAULT_COLLAR",
    "DEFAULT_PERCENTAGE_OF_LENGTH",
    "AnnotationError",
    "Event",
    "EventCounts",
    "EventMetrics",
    "evaluate_events",
    "evaluate_files",
    "events_from_intervals",
    "matched_pairs",
    "read_annotations",
]

DEFAULT_COLLAR = 0.2
"""Seconds: sed_eval's and DCASE's default onset (and minimum offset) collar."""
DEFAULT_PERCENTAGE_OF_LENGTH = 0.5
"""The offset collar grows to this share of the reference event's length (sed_eval default)."""


class AnnotationError(SfxmatchError, ValueError):
    """A row of an annotation file that cannot be read; names the file and line."""

    def __init__(self, path: str | Path, line: int, problem: str) -> None:
        self.path = Path(path)
        self.line = line
        self.problem = problem
        super().__init__(f"{self.path}:{line}: {problem}")


@dataclass(frozen=True, slots=True)
class Event:
    """One labelled event, ``[onset, offset]`` in seconds."""

    onset: float
    offset: float
    label: str

    def __post_init__(self) -> None:
        if not (math.isfinite(self.onset) and math.isfinite(self.offset)):
            raise ValueError(f"event times must be finite, not {self.onset!r}..{self.offset!r}")
        if self.offset < self.onset:
            raise ValueError(f"event offset {self.offset} is before its onset {self.onset}")


@dataclass(frozen=True, slots=True)
class EventCounts:
    """Counts behind the metrics; they add up across files and labels.

    Conventions where a ratio is undefined: no system events gives precision 0 (sed_eval's
    ``"zero_score"`` handling: saying nothing is not precise), no reference events gives
    recall NaN (as sed_eval), F1 is 0 when precision and recall are both 0. Errors are NaN
    with no matched pair.
    """

    n_ref: int = 0
    n_sys: int = 0
    n_tp: int = 0
    onset_error_sum: float = 0.0
    offset_error_sum: float = 0.0

    def __add__(self, other: EventCounts) -> EventCounts:
        return EventCounts(
            self.n_ref + other.n_ref,
            self.n_sys + other.n_sys,
            self.n_tp + other.n_tp,
            self.onset_error_sum + other.onset_error_sum,
            self.offset_error_sum + other.offset_error_sum,
        )

    @property
    def precision(self) -> float:
        return self.n_tp / self.n_sys if self.n_sys else 0.0

    @property
    def recall(self) -> float:
        return self.n_tp / self.n_ref if self.n_ref else math.nan

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        if p == 0 and r == 0:
            return 0.0
        return 2 * p * r / (p + r)

    @property
    def onset_error(self) -> float:
        """Mean absolute onset difference (s) over matched pairs."""
        return self.onset_error_sum / self.n_tp if self.n_tp else math.nan

    @property
    def offset_error(self) -> float:
        """Mean absolute offset difference (s) over matched pairs."""
        return self.offset_error_sum / self.n_tp if self.n_tp else math.nan


@dataclass(frozen=True, slots=True)
class EventMetrics:
    """Overall counts (the sum over labels, as sed_eval's overall metrics) and per label."""

    overall: EventCounts
    by_label: Mapping[str, EventCounts] = field(default_factory=dict)

    @property
    def f1(self) -> float:
        return self.overall.f1

    @property
    def precision(self) -> float:
        return self.overall.precision

    @property
    def recall(self) -> float:
        return self.overall.recall

    @property
    def onset_error(self) -> float:
        return self.overall.onset_error

    @property
    def offset_error(self) -> float:
        return self.overall.offset_error

    def __add__(self, other: EventMetrics) -> EventMetrics:
        by_label = dict(self.by_label)
        for label, counts in other.by_label.items():
            by_label[label] = by_label.get(label, EventCounts()) + counts
        return EventMetrics(self.overall + other.overall, by_label)


def evaluate_events(
    reference: Sequence[Event],
    estimated: Sequence[Event],
    *,
    t_collar: float = DEFAULT_COLLAR,
    percentage_of_length: float = DEFAULT_PERCENTAGE_OF_LENGTH,
    evaluate_onset: bool = True,
    evaluate_offset: bool = True,
) -> EventMetrics:
    """Match one file's estimated events to its reference events, label by label."""
    _check_collars(t_collar, percentage_of_length)
    by_label: dict[str, EventCounts] = {}
    for label in sorted({e.label for e in reference} | {e.label for e in estimated}):
        refs = [e for e in reference if e.label == label]
        syss = [e for e in estimated if e.label == label]
        by_label[label] = _label_counts(
            refs, syss, t_collar, percentage_of_length, evaluate_onset, evaluate_offset
        )
    overall = sum(by_label.values(), EventCounts())
    return EventMetrics(overall, by_label)


def evaluate_files(
    reference: Mapping[str, Sequence[Event]],
    estimated: Mapping[str, Sequence[Event]],
    **options: float | bool,
) -> EventMetrics:
    """:func:`evaluate_events` per file, summed: files missing on either side have no events.

    ``options`` are :func:`evaluate_events`' keywords.
    """
    total = EventMetrics(EventCounts())
    for name in sorted(set(reference) | set(estimated)):
        total = total + evaluate_events(
            reference.get(name, ()),
            estimated.get(name, ()),
            **options,  # type: ignore[arg-type]
        )
    return total


def matched_pairs(
    reference: Sequence[Event],
    estimated: Sequence[Event],
    *,
    t_collar: float = DEFAULT_COLLAR,
    percentage_of_length: float = DEFAULT_PERCENTAGE_OF_LENGTH,
    evaluate_onset: bool = True,
    evaluate_offset: bool = True,
) -> list[tuple[Event, Event]]:
    """The ``(reference, estimated)`` pairs :func:`evaluate_events` counts as hits.

    For error distributions (medians, histograms) beyond the means the counts carry.
    """
    _check_collars(t_collar, percentage_of_length)
    pairs: list[tuple[Event, Event]] = []
    for label in sorted({e.label for e in reference} | {e.label for e in estimated}):
        refs = [e for e in reference if e.label == label]
        syss = [e for e in estimated if e.label == label]
        found = _match_label(
            refs, syss, t_collar, percentage_of_length, evaluate_onset, evaluate_offset
        )
        pairs.extend((refs[j], syss[i]) for j, i in found)
    return pairs


def _check_collars(t_collar: float, percentage_of_length: float) -> None:
    if not (math.isfinite(t_collar) and t_collar >= 0):
        raise ValueError(f"t_collar must be a finite number of seconds >= 0, not {t_collar!r}")
    if not (math.isfinite(percentage_of_length) and percentage_of_length >= 0):
        raise ValueError(f"percentage_of_length must be >= 0, not {percentage_of_length!r}")


def _label_counts(
    refs: Sequence[Event],
    syss: Sequence[Event],
    t_collar: float,
    percentage_of_length: float,
    evaluate_onset: bool,
    evaluate_offset: bool,
) -> EventCounts:
    pairs = _match_label(
        refs, syss, t_collar, percentage_of_length, evaluate_onset, evaluate_offset
    )
    return EventCounts(
        n_ref=len(refs),
        n_sys=len(syss),
        n_tp=len(pairs),
        onset_error_sum=sum(abs(refs[j].onset - syss[i].onset) for j, i in pairs),
        offset_error_sum=sum(abs(refs[j].offset - syss[i].offset) for j, i in pairs),
    )


def _match_label(
    refs: Sequence[Event],
    syss: Sequence[Event],
    t_collar: float,
    percentage_of_length: float,
    evaluate_onset: bool,
    evaluate_offset: bool,
) -> list[tuple[int, int]]:
    """Index pairs ``(reference j, system i)`` of a maximum matching within one label."""
    # candidates[j]: system events that may match reference j, nearest first, so that the
    # maximum matching found prefers close pairs (its size is the same whichever is found).
    candidates: list[list[int]] = []
    for ref in refs:
        hits = []
        for i, est in enumerate(syss):
            if evaluate_onset and not math.fabs(ref.onset - est.onset) <= t_collar:
                continue
            if evaluate_offset:
                collar = max(t_collar, percentage_of_length * (ref.offset - ref.onset))
                if not math.fabs(ref.offset - est.offset) <= collar:
                    continue
            hits.append(i)
        hits.sort(key=lambda i: abs(syss[i].onset - ref.onset) + abs(syss[i].offset - ref.offset))
        candidates.append(hits)
    owner = _max_matching(candidates, len(syss))
    return sorted((j, i) for i, j in enumerate(owner) if j >= 0)


def _max_matching(candidates: list[list[int]], n_right: int) -> list[int]:
    """Maximum bipartite matching by augmenting paths (Kuhn); ``owner[i]`` = left j or -1."""
    owner = [-1] * n_right

    def augment(j: int, seen: list[bool]) -> bool:
        for i in candidates[j]:
            if not seen[i]:
                seen[i] = True
                if owner[i] < 0 or augment(owner[i], seen):
                    owner[i] = j
                    return True
        return False

    for j in range(len(candidates)):
        if candidates[j]:
            augment(j, [False] * n_right)
    return owner


def read_annotations(path: str | Path) -> dict[str, list[Event]]:
    """Reference events per file from a DCASE annotation file, events sorted by onset.

    Rows are ``filename onset offset event_label``. Tab-separated rows keep spaces inside
    labels (``"dog bark"``); rows without a tab are split on whitespace, the label being
    the rest of the line. A row with only a filename lists a file without events (DCASE's
    convention), so it is evaluated rather than missing. Blank lines and ``#`` comments are
    skipped.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as error:
        raise AnnotationError(path, 0, f"cannot read: {error.strerror or error}") from error
    except UnicodeDecodeError as error:
        raise AnnotationError(path, 0, "is not UTF-8 text") from error
    events: dict[str, list[Event]] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        tabbed = "\t" in line
        fields = [f.strip() for f in line.split("\t")] if tabbed else line.split(maxsplit=3)
        if len(fields) == 1:
            events.setdefault(fields[0], [])
            continue
        if len(fields) != 4 or not all(fields):
            raise AnnotationError(
                path, number, f"expected 'filename onset offset event_label', got {raw!r}"
            )
        name, onset, offset, label = fields
        try:
            event = Event(float(onset), float(offset), label)
        except ValueError as error:
            raise AnnotationError(path, number, f"bad event times in {raw!r}: {error}") from None
        events.setdefault(name, []).append(event)
    for file_events in events.values():
        file_events.sort(key=lambda e: (e.onset, e.offset, e.label))
    return events


def events_from_intervals(intervals: Iterable[Interval]) -> list[Event]:
    """AutoSync's intervals as events, to score them against annotations."""
    return [Event(iv.start, iv.end, iv.label) for iv in intervals]
