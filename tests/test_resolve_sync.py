"""The Resolve script places effects by the client's sync rule: the double confirms each
clip's source in-point (``GetSourceStartFrame``) and record frame, for the pipeline's own
placements and for another candidate the user picks, over many sync points and rates.

The suggestions come from the pipeline's own placement code (``match.placement``'s
``spot_effects`` and ``place``, the one implementation of ``match.spot``); the script
receives them as JSON and never computes a sync point itself.
"""

from __future__ import annotations

from fractions import Fraction

import pytest
from sfxmatch.match.placement import place, spot_effects
from sfxmatch.suggestions import (
    Candidate,
    Edit,
    EffectSuggestion,
    SceneSuggestion,
    Suggestions,
    SuggestOptions,
)
from test_resolve_plugin import SOUNDS, Client, make_project, plugin, run, user  # noqa: F401

RATES = {
    "24": ("01:00:00:00", Fraction(24)),
    "25": ("01:00:00:00", Fraction(25)),
    "29.97 DF": ("01:00:00;00", Fraction(30000, 1001)),
    "23.976": ("01:00:00:00", Fraction(24000, 1001)),
}
# (onset of the interval in seconds, sync point of the first and of the second candidate)
CASES = [
    (1.0, 0.0, 0.37),
    (1.0, 0.0417, 0.96),
    (2.52, 0.12, 0.013),
    (0.04, 0.3, 0.0),  # the second frame of the edit: the pre-roll is trimmed, not shifted
    (3.3, 0.2, 0.5),
    (5.0, 0.05, 0.0833),
]


def _candidate(name: str, sync: float) -> Candidate:
    path = f"/library/{name}.wav"
    return Candidate(name, name, path, 0.5, "effect", SOUNDS[path], sync_point=sync)


def synced_suggestions(edit: Edit, case: tuple[float, float, float]) -> Suggestions:
    onset, sync_a, sync_b = case
    effect = EffectSuggestion(
        "door",
        onset,
        onset + 0.5,
        0.7,
        (_candidate("door_slam", sync_a), _candidate("engine", sync_b)),
        0,
    )
    scenes = [SceneSuggestion(0, 0.0, 10.0, (), (effect,))]
    options = SuggestOptions()
    scenes = spot_effects(
        scenes, edit, preroll_frames=options.preroll_frames, ring_out=options.ring_out
    )
    placements = place(scenes, edit, crossfade=options.crossfade)
    return Suggestions(edit, tuple(scenes), tuple(placements), "test-model")


@pytest.mark.parametrize("rate", sorted(RATES))
@pytest.mark.parametrize("case", CASES, ids=[f"onset{c[0]}" for c in CASES])
@pytest.mark.parametrize("pick", ["placed", "other"])
def test_the_double_confirms_the_source_in_points(plugin, tmp_path, rate, case, pick):  # noqa: F811
    timecode, fps = RATES[rate]
    project = make_project(rate, timecode)
    timeline = project.timeline
    made: list[Suggestions] = []

    def build(edit: Edit) -> Suggestions:
        made.append(synced_suggestions(edit, case))
        return made[-1]

    dialog = user(check=["c_e0_0_1"], uncheck=["c_e0_0_0"]) if pick == "other" else user()
    summary, _ = run(plugin, project, Client(build), on_dialog=dialog, tmp_path=tmp_path)
    assert summary["status"] == "placed", summary
    (s,) = made
    effect = s.scenes[0].effects[0]
    chosen = effect.candidates[0 if pick == "placed" else 1]
    spot = next(x for x in effect.spots if x.sound_id == chosen.sound_id)
    if pick == "placed":
        (p,) = s.placements
        assert (p.record_start, p.duration, p.source_start) == (
            spot.record_start,
            spot.duration,
            spot.source_start,
        )
    # The rule itself: the sync point on the onset frame, at most 2 frames of pre-roll.
    onset_frame = round(Fraction(case[0]) * fps)
    assert spot.event_time == pytest.approx(float(onset_frame / fps), abs=1e-9)
    lead = spot.sync_point - spot.source_start
    assert -1e-9 <= lead <= float(2 / fps) + 1e-9
    assert abs(lead * float(fps) - round(lead * float(fps))) < 1e-6  # whole frames
    (item,) = timeline.audio_track("SFX 1")
    assert item.GetMediaPoolItem().path == chosen.path
    start = timeline.GetStartFrame()
    assert item.GetStart() == start + round(Fraction(spot.record_start) * fps)
    # Sounds in the media pool run at the timeline's rate (the double's, and Resolve's for
    # audio files): the in point is the frame nearest the client's exact source start (a
    # tie, such as 0.42 s at 25 fps, may go either way in floats).
    want = item.GetSourceStartFrame()
    assert abs(want - Fraction(spot.source_start) * fps) <= Fraction(1, 2) + Fraction(1, 10**9)
    assert abs(item.GetSourceStartTime() - spot.source_start) <= float(1 / fps) / 2 + 1e-9
    # Whole frames of the spot, or up to the end of the media (the last frame of the sound
    # can round past it; Resolve plays no frame that is not there).
    media_frames = item.GetMediaPoolItem().frames
    length = min(round(Fraction(spot.duration) * fps), media_frames - want)
    assert item.GetEnd() - item.GetStart() == length
