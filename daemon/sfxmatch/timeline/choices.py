"""What an editor plugin places for each choice the user can make: clip lists per candidate.

The Resolve script shows, per scene, an ambience slot and one slot per effect interval, each
with its ranked candidates; whatever the user ticks, it appends the clips listed here. They
come from the package's own rules, so the script repeats none of them:

- a candidate the pipeline placed in the slot keeps its placements (track, in point), one
  clip per loop pass where the mix plays it (:func:`sfxmatch.suggestions.loop_passes`,
  butt-spliced at the centre of each crossfade, as the timeline export lays them);
- another effect candidate goes where the sync rule put it (``EffectSuggestion.spots``,
  :func:`sfxmatch.match.spot.spot_effect`);
- another bed loops over the scene from the top of its file, with the default crossfade.

Times are seconds of record time (0 = the edit's first frame) and of the file.
:func:`payload` is what ``suggest --json`` prints: the suggestions plus these ``slots``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sfxmatch.suggestions import (
    AMBIENCE_TRACK,
    LOOP_CROSSFADE,
    Candidate,
    Placement,
    Spot,
    Suggestions,
    loop_passes,
    sfx_track,
    to_dict,
)

MAX_CANDIDATES = 5  # candidates offered per slot (the dialog's check boxes)


@dataclass(frozen=True, slots=True)
class ChoiceClip:
    """One clip to append for a choice: ``path`` from ``source_start`` sounding from
    ``record_start`` to ``record_end``, on ``track`` (preferred; a plugin moves it to the
    next track of its family where the editor's own clips are in the way). ``loop_pass``
    numbers the passes of a looped sound (0 for a clip that does not loop); consecutive
    passes butt exactly (a pass's ``record_end`` is the next one's ``record_start``)."""

    track: str
    kind: str
    path: str
    label: str
    sound_id: str
    record_start: float
    record_end: float
    source_start: float
    score: float
    loop_pass: int = 0

    @property
    def duration(self) -> float:
        return self.record_end - self.record_start

    def to_json(self) -> dict[str, Any]:
        return {
            "track": self.track,
            "kind": self.kind,
            "path": self.path,
            "label": self.label,
            "sound_id": self.sound_id,
            "record_start": self.record_start,
            "record_end": self.record_end,
            "duration": self.duration,
            "source_start": self.source_start,
            "score": self.score,
            "loop_pass": self.loop_pass,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ChoiceClip:
        """Read back :meth:`to_json` (what a plugin returns of the clips it was sent)."""
        return cls(
            str(data["track"]),
            str(data["kind"]),
            str(data["path"]),
            str(data.get("label", "")),
            str(data.get("sound_id", "")),
            float(data["record_start"]),
            float(data["record_end"]),
            float(data.get("source_start", 0.0)),
            float(data.get("score") or 0.0),
            int(data.get("loop_pass", 0)),
        )


@dataclass(frozen=True, slots=True)
class Slot:
    """One row of the picker: a scene's ambience or one effect interval."""

    key: str
    kind: str  # "ambience" or "effect"
    scene: int
    start: float
    end: float
    label: str
    candidates: tuple[Candidate, ...]
    default: tuple[bool, ...]  # ticked at first: what the pipeline placed, else the best
    clips: tuple[tuple[ChoiceClip, ...], ...]  # per candidate, in the order of candidates

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "kind": self.kind,
            "scene": self.scene,
            "start": self.start,
            "end": self.end,
            "label": self.label,
            "candidates": [to_dict_candidate(c) for c in self.candidates],
            "default": list(self.default),
            "clips": [[clip.to_json() for clip in clips] for clips in self.clips],
        }


def to_dict_candidate(c: Candidate) -> dict[str, Any]:
    return {
        "sound_id": c.sound_id,
        "label": c.label,
        "path": c.path,
        "score": c.score,
        "kind": c.kind,
        "duration": c.duration,
    }


def default_track(kind: str) -> str:
    """Where a sound of ``kind`` goes when nothing says otherwise."""
    return AMBIENCE_TRACK if kind == "ambience" else sfx_track(1)


def slots(suggestions: Suggestions, max_candidates: int = MAX_CANDIDATES) -> tuple[Slot, ...]:
    """Every slot with candidates, scene by scene (its ambience, then its effects)."""
    placements = suggestions.placements
    found: list[Slot] = []
    for scene in suggestions.scenes:
        rows: list[tuple[str, str, float, float, str, tuple[Candidate, ...], dict[str, Spot]]] = [
            (f"a{scene.index}", "ambience", scene.start, scene.end, "ambience", scene.ambience, {})
        ]
        for number, effect in enumerate(scene.effects):
            spots = {s.sound_id: s for s in effect.spots}
            rows.append(
                (
                    f"e{scene.index}_{number}",
                    "effect",
                    effect.start,
                    effect.end,
                    effect.label,
                    effect.candidates,
                    spots,
                )
            )
        for key, kind, start, end, label, candidates, spots in rows:
            shown = tuple(candidates[:max_candidates])
            if not shown:
                continue
            here = [p for p in placements if _in_slot(p, kind, scene.index, start, end)]
            placed = {p.sound_id for p in here}
            default = [c.sound_id in placed for c in shown]
            if not any(default):
                default[0] = True
            clips = tuple(
                candidate_clips(kind, start, end, c, here, spots.get(c.sound_id)) for c in shown
            )
            found.append(
                Slot(key, kind, scene.index, start, end, label, shown, tuple(default), clips)
            )
    return tuple(found)


def _in_slot(p: Placement, kind: str, scene: int, start: float, end: float) -> bool:
    # A placement belongs to the slot it starts in (beds may start a hair early at a cut).
    return p.kind == kind and p.scene_index == scene and start - 1e-6 <= p.record_start < end - 1e-9


def candidate_clips(
    kind: str,
    start: float,
    end: float,
    candidate: Candidate,
    placed_here: list[Placement],
    spot: Spot | None = None,
) -> tuple[ChoiceClip, ...]:
    """The clips that put ``candidate`` into the slot ``[start, end)`` (module notes)."""
    own = sorted(
        (p for p in placed_here if p.sound_id == candidate.sound_id), key=lambda p: p.record_start
    )
    if own:
        clips: list[ChoiceClip] = []
        for p in own:
            length = p.source_duration or candidate.duration or 0.0
            clips += _passes(
                p,
                length if p.loop and length > 0 else 0.0,
                track=p.track or default_track(kind),
                label=p.label or candidate.label,
                score=candidate.score,
            )
        return tuple(clips)
    if spot is not None:
        a, b, source = spot.record_start, spot.record_start + spot.duration, spot.source_start
    else:
        length = candidate.duration or 0.0
        if kind == "ambience" and length > 0:
            bed = Placement(
                default_track(kind), "ambience", candidate.sound_id, candidate.path,
                candidate.label, start, end - start, source_duration=length, loop=True,
                loop_crossfade=LOOP_CROSSFADE,
            )  # fmt: skip
            return _passes(
                bed, length, track=bed.track, label=candidate.label, score=candidate.score
            )
        a, b, source = start, end if length <= 0 else start + min(length, end - start), 0.0
    return (
        ChoiceClip(
            default_track(kind),
            kind,
            candidate.path,
            candidate.label,
            candidate.sound_id,
            a,
            b,
            source,
            candidate.score,
        ),
    )


def _passes(
    p: Placement, length: float, *, track: str, label: str, score: float
) -> tuple[ChoiceClip, ...]:
    """One clip per loop pass of ``p`` (``length`` 0: one clip), each ending exactly where
    the next begins so that a plugin can keep them butted when it lays them on frames."""
    passes = loop_passes(p, length)
    starts = [ps.cut_in for ps in passes]
    ends = [*starts[1:], p.record_start + p.duration]
    return tuple(
        ChoiceClip(
            track, p.kind, p.path, label, p.sound_id, a, b, ps.clip_source_start, score, ps.index
        )
        for ps, a, b in zip(passes, starts, ends, strict=True)
    )


def payload(suggestions: Suggestions) -> dict[str, Any]:
    """The suggestions as JSON-ready data (:func:`sfxmatch.suggestions.to_dict`, which
    ``from_dict`` reads back) plus ``slots``: every choice's clips, ready to append."""
    data = to_dict(suggestions)
    data["slots"] = [slot.to_json() for slot in slots(suggestions)]
    return data
