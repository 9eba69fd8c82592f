"""Placement policy: from per-scene choices to clips on tracks. Pure functions on values.

After the decode pass has chosen, per scene, ranked beds and effect intervals with their
sounds, these decide what is placed where:

- :func:`borrow_ambience`: a scene too short for a bed of its own takes a neighbour's;
- :func:`keep_strongest_effects`: at most so many effects over the whole edit, the most
  confident kept;
- :func:`spot_effects`: every effect candidate's clip by the sync rule (:mod:`.spot`);
- :func:`place`: beds on "Ambience"/"Ambience 2" (consecutive scenes with the same bed are
  one run; runs alternate so they crossfade at cuts), effects each on the first "SFX n"
  track free at its start. Everything starts and ends on the edit's frames.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from fractions import Fraction

from sfxmatch.match.ambience import borrow_short_scenes
from sfxmatch.match.spot import spot_effect
from sfxmatch.suggestions import (
    AMBIENCE_TRACK,
    AMBIENCE_TRACK_B,
    Candidate,
    Edit,
    Keyframe,
    Placement,
    SceneSuggestion,
    sfx_track,
)

EFFECT_FADE_IN = 0.004  # seconds, at most the pre-roll: the cut into the lead-in never
# clicks, and the event's attack (at the sync point) is never faded
EFFECT_FADE_OUT = 0.03
EDGE_FADE = 0.05  # seconds: a bed fades in at the edit's start and out at its end


def borrow_ambience(scenes: Sequence[SceneSuggestion], minimum: float) -> list[SceneSuggestion]:
    """Scenes shorter than ``minimum`` seconds with the bed of the neighbour they borrow from
    (``match.ambience.borrow_short_scenes``), ``borrowed_from`` naming it."""
    lenders = borrow_short_scenes([s.end - s.start for s in scenes], minimum)
    return [
        s if lender is None else replace(
            s, ambience=scenes[lender].ambience, ambience_labels=scenes[lender].ambience_labels,
            borrowed_from=scenes[lender].index,
        )
        for s, lender in zip(scenes, lenders, strict=True)
    ]  # fmt: skip


def keep_strongest_effects(scenes: Sequence[SceneSuggestion], most: int) -> list[SceneSuggestion]:
    """At most ``most`` effects over all scenes: the most confident (ties: earlier, then by
    label), each left in its scene in its order."""
    every = [e for s in scenes for e in s.effects]
    if len(every) <= most:
        return list(scenes)
    ranked = sorted(every, key=lambda e: (-e.confidence, e.start, e.label))
    keep = {id(e) for e in ranked[:most]}
    return [replace(s, effects=tuple(e for e in s.effects if id(e) in keep)) for s in scenes]


def spot_effects(
    scenes: Sequence[SceneSuggestion], edit: Edit, *, preroll_frames: int, ring_out: bool
) -> list[SceneSuggestion]:
    """Every effect candidate's clip by the sync rule (``match.spot``): its sync point on the
    interval's onset frame. With ``ring_out`` a clip plays to the sound's end, else for the
    interval (at least a frame). Candidates with nothing before the edit's end get none."""
    fps = Fraction(edit.fps)
    end_frame = math.floor(edit.duration * fps + 1e-6)
    out = []
    for scene in scenes:
        effects = []
        for effect in scene.effects:
            onset = round(Fraction(effect.start) * fps) if effect.start > 0 else 0
            play = None if ring_out else max(float(effect.end - effect.start), float(1 / fps))
            spots = [
                spot_effect(
                    sound_id=c.sound_id, onset_frame=onset, fps=fps, sync_point=c.sync_point,
                    sound_duration=c.duration, end_frame=end_frame, preroll_frames=preroll_frames,
                    play=play,
                )
                for c in effect.candidates
            ]  # fmt: skip
            effects.append(replace(effect, spots=tuple(s for s in spots if s is not None)))
        out.append(replace(scene, effects=tuple(effects)))
    return out


@dataclass(frozen=True)
class _BedRun:
    """Consecutive scenes that share their first-choice bed."""

    sound: Candidate
    start: float
    end: float
    scene_index: int  # the first scene of the run
    alternatives: tuple[Candidate, ...]


def place(scenes: Sequence[SceneSuggestion], edit: Edit, *, crossfade: float) -> list[Placement]:
    """The placements of beds then effects (effects spotted by :func:`spot_effects`)."""
    return _place_beds(scenes, edit, crossfade) + _place_effects(scenes)


def _bed_runs(scenes: Sequence[SceneSuggestion]) -> list[_BedRun]:
    runs: list[_BedRun] = []
    for s in scenes:
        if not s.ambience:
            continue
        top = s.ambience[0]
        if runs and runs[-1].sound.sound_id == top.sound_id and abs(runs[-1].end - s.start) < 1e-6:
            runs[-1] = replace(runs[-1], end=s.end)
        else:
            runs.append(_BedRun(top, s.start, s.end, s.index, s.ambience[1:]))
    return runs


def _place_beds(scenes: Sequence[SceneSuggestion], edit: Edit, crossfade: float) -> list[Placement]:
    fps = edit.fps
    # The last whole frame: an edit whose clips are off the grid must not gain half a frame
    # (rounding 87.5 frames up put beds past the end).
    end_of_edit = float(math.floor(edit.duration * fps + 1e-6) / fps)
    runs = _bed_runs(scenes)
    half = crossfade / 2
    placements = []
    for number, run in enumerate(runs):
        first, last = number == 0, number == len(runs) - 1
        begin = snap(max(0.0, run.start - (0.0 if first else half)), fps)
        finish = snap(min(end_of_edit, run.end + (0.0 if last else half)), fps)
        if finish <= begin:
            continue
        length = finish - begin
        sound = run.sound
        placements.append(
            Placement(
                track=AMBIENCE_TRACK if number % 2 == 0 else AMBIENCE_TRACK_B,
                kind="ambience", sound_id=sound.sound_id, path=sound.path, label=sound.label,
                record_start=begin, duration=length, source_start=0.0,
                source_duration=sound.duration, loop=True,
                fade_in=min(EDGE_FADE if first else crossfade, length / 2),
                fade_out=min(EDGE_FADE if last else crossfade, length / 2),
                scene_index=run.scene_index, score=sound.score, alternatives=run.alternatives,
            )
        )  # fmt: skip
    return placements


def _place_effects(scenes: Sequence[SceneSuggestion]) -> list[Placement]:
    """Each effect's first candidate on the first SFX track free at its start."""
    track_ends: list[float] = []
    placements = []
    effects = sorted(
        (e for s in scenes for e in s.effects), key=lambda e: (e.start, -e.confidence, e.label)
    )
    for effect in effects:
        sound = effect.candidates[0]
        spot = next((s for s in effect.spots if s.sound_id == sound.sound_id), None)
        if spot is None:  # nothing of it fits before the end of the edit
            continue
        start, length = spot.record_start, spot.duration
        number = next((i for i, t in enumerate(track_ends) if t <= start + 1e-9), None)
        if number is None:
            track_ends.append(0.0)
            number = len(track_ends) - 1
        track_ends[number] = start + length
        # Keyframes count from the interval's onset; the clip starts its pre-roll earlier.
        lead = max(0.0, spot.event_time - start)  # float noise can make 0 a hair negative
        keyframes = tuple(
            Keyframe(k.time + lead, k.gain_db, k.pan)
            for k in effect.automation
            if k.time + lead < length
        )
        placements.append(
            Placement(
                track=sfx_track(number + 1), kind="effect", sound_id=sound.sound_id,
                path=sound.path, label=effect.label, record_start=start, duration=length,
                source_start=spot.source_start, source_duration=sound.duration,
                # Over the pre-roll only: the event's own attack is never faded.
                fade_in=min(EFFECT_FADE_IN, lead, length / 4),
                fade_out=min(EFFECT_FADE_OUT, length / 4),
                scene_index=effect.scene_index, score=effect.confidence,
                automation=keyframes, alternatives=effect.candidates[1:],
                gain_db=0.0, pan=keyframes[0].pan if keyframes else 0.0,
                sync_point=spot.sync_point,
            )
        )  # fmt: skip
    return placements


def snap(seconds: float, fps: Fraction) -> float:
    """The time of the frame nearest ``seconds``: the mix and the timeline then agree."""
    return float(round(seconds * fps) / fps) if seconds > 0 else 0.0
