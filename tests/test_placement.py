"""Placement policy (``sfxmatch.match.placement``) on hand-made values: no model, no media.

Beds: runs of one sound over consecutive scenes, alternating tracks that crossfade at cuts,
on frames, never past the last whole frame. Effects: the first free SFX track, fades and
keyframes from the sync rule's clip. Short scenes borrow a bed; only the strongest effects
are kept.
"""

from __future__ import annotations

from fractions import Fraction

import pytest
from sfxmatch.match.placement import (
    EDGE_FADE,
    EFFECT_FADE_IN,
    EFFECT_FADE_OUT,
    borrow_ambience,
    keep_strongest_effects,
    place,
    snap,
    spot_effects,
)
from sfxmatch.suggestions import (
    AMBIENCE_TRACK,
    AMBIENCE_TRACK_B,
    Candidate,
    Edit,
    EffectSuggestion,
    Keyframe,
    SceneSuggestion,
    SourceClip,
    sfx_track,
)

FPS = Fraction(25)
CROSSFADE = 0.8


def edit(seconds: float, fps: Fraction = FPS) -> Edit:
    return Edit(clips=(SourceClip("/video.mp4", 0.0, seconds, 0.0),), fps=fps)


def bed(name: str, score: float = 0.5, duration: float = 30.0) -> Candidate:
    return Candidate(name, name, f"/lib/{name}.wav", score, "ambience", duration)


def sound(name: str, sync: float = 0.0, duration: float = 2.0) -> Candidate:
    return Candidate(name, name, f"/lib/{name}.wav", 0.5, "effect", duration, sync_point=sync)


def effect(
    label: str,
    start: float,
    end: float,
    confidence: float = 0.5,
    candidates: tuple[Candidate, ...] | None = None,
    scene: int = 0,
    automation: tuple[Keyframe, ...] = (),
) -> EffectSuggestion:
    return EffectSuggestion(
        label, start, end, confidence, candidates or (sound(label),), scene, automation=automation
    )


def scene(index: int, start: float, end: float, *beds: Candidate, effects=()) -> SceneSuggestion:
    return SceneSuggestion(index, start, end, tuple(beds), tuple(effects))


def placed(scenes: list[SceneSuggestion], e: Edit, crossfade: float = CROSSFADE):
    spotted = spot_effects(scenes, e, preroll_frames=2, ring_out=True)
    return place(spotted, e, crossfade=crossfade)


# --------------------------------------------------------------------------- beds


def test_consecutive_scenes_with_one_bed_are_one_run() -> None:
    rain, wind = bed("rain"), bed("wind")
    scenes = [
        scene(0, 0.0, 4.0, rain, wind),
        scene(1, 4.0, 6.0, rain),
        scene(2, 6.0, 10.0, wind),
    ]
    first, second = placed(scenes, edit(10.0))
    assert (first.sound_id, first.track, first.scene_index) == ("rain", AMBIENCE_TRACK, 0)
    assert first.alternatives == (wind,), "the alternatives of the run's first scene"
    assert (second.sound_id, second.track, second.scene_index) == ("wind", AMBIENCE_TRACK_B, 2)
    # The runs overlap by the crossfade around the cut, each fading over all of it.
    assert (first.record_start, first.record_end) == (0.0, 6.4)
    assert (second.record_start, second.record_end) == (5.6, 10.0)
    assert first.fade_out == second.fade_in == CROSSFADE
    assert first.fade_in == second.fade_out == EDGE_FADE, "the edit's own edges fade briefly"
    assert first.loop and second.loop and first.source_start == 0.0


def test_bed_runs_alternate_tracks() -> None:
    beds = [bed(name) for name in ("a", "b", "c", "d")]
    scenes = [scene(i, 3.0 * i, 3.0 * (i + 1), b) for i, b in enumerate(beds)]
    assert [p.track for p in placed(scenes, edit(12.0))] == [
        AMBIENCE_TRACK, AMBIENCE_TRACK_B, AMBIENCE_TRACK, AMBIENCE_TRACK_B,
    ]  # fmt: skip


def test_the_same_bed_after_a_gap_is_a_new_run() -> None:
    rain = bed("rain")
    scenes = [scene(0, 0.0, 4.0, rain), scene(1, 4.0, 6.0), scene(2, 6.0, 10.0, rain)]
    beds = placed(scenes, edit(10.0))
    assert [(p.sound_id, p.scene_index) for p in beds] == [("rain", 0), ("rain", 2)]


def test_beds_end_on_the_last_whole_frame_of_an_edit_off_the_grid() -> None:
    # 3.5 s at 25 fps is 87.5 frames: the bed ends at frame 87, not 88.
    (only,) = placed([scene(0, 0.0, 3.5, bed("rain"))], edit(3.5))
    assert only.record_end == pytest.approx(87 / 25)


def test_bed_edges_sit_on_frames() -> None:
    scenes = [scene(0, 0.0, 1.01, bed("a")), scene(1, 1.01, 3.0, bed("b"))]
    for p in placed(scenes, edit(3.0), crossfade=0.333):
        for t in (p.record_start, p.record_end):
            assert t * 25 == pytest.approx(round(t * 25), abs=1e-9)


def test_a_bed_with_no_frame_left_is_not_placed_and_short_beds_fade_within() -> None:
    scenes = [scene(0, 0.0, 0.01, bed("tiny"))]
    assert placed(scenes, edit(0.01)) == []
    (short,) = placed([scene(0, 0.0, 0.08, bed("short"))], edit(0.08))
    assert short.fade_in == short.fade_out == pytest.approx(0.04), "half the bed each"


def test_scenes_without_beds_place_none() -> None:
    assert placed([scene(0, 0.0, 5.0)], edit(5.0)) == []
    assert placed([], edit(5.0)) == []


# --------------------------------------------------------------------------- effects


def test_effects_take_the_first_free_sfx_track() -> None:
    effects = [
        effect("door", 1.0, 1.5, candidates=(sound("door", duration=1.0),)),
        effect("car", 1.2, 3.0, candidates=(sound("car", duration=1.0),)),
        effect("bird", 2.04, 2.5, candidates=(sound("bird", duration=0.5),)),  # door is over
        effect("dog", 2.08, 2.5, candidates=(sound("dog", duration=0.5),)),
    ]
    placements = placed([scene(0, 0.0, 10.0, effects=effects)], edit(10.0))
    tracks = {p.sound_id: p.track for p in placements}
    assert tracks == {
        "door": sfx_track(1), "car": sfx_track(2), "bird": sfx_track(1), "dog": sfx_track(3),
    }  # fmt: skip
    starts = {e.candidates[0].sound_id: e.start for e in effects}
    for p in placements:
        assert p.kind == "effect" and not p.loop
        assert p.event_time == pytest.approx(starts[p.sound_id])


def test_an_effect_is_placed_by_its_sync_point() -> None:
    e = effect("door", 2.0, 2.6, confidence=0.8, candidates=(sound("slam", sync=0.37),))
    (p,) = placed([scene(0, 0.0, 10.0, effects=[e])], edit(10.0))
    assert p.event_time == pytest.approx(2.0), "the event on the interval's onset frame"
    assert p.record_start == pytest.approx(2.0 - 2 / 25), "two frames of pre-roll"
    assert p.source_start == pytest.approx(0.37 - 2 / 25)
    assert p.fade_in == EFFECT_FADE_IN, "over the pre-roll only"
    assert p.fade_out == EFFECT_FADE_OUT
    assert (p.label, p.score, p.scene_index, p.sync_point) == ("door", 0.8, 0, 0.37)


def test_an_effect_synced_at_its_first_sample_is_not_faded_in() -> None:
    (p,) = placed([scene(0, 0.0, 10.0, effects=[effect("door", 2.0, 2.5)])], edit(10.0))
    assert p.record_start == pytest.approx(2.0) and p.fade_in == 0.0


def test_keyframes_count_from_the_clip_start() -> None:
    keys = (Keyframe(0.0, -3.0, -0.5), Keyframe(0.4, 0.0, 0.5), Keyframe(5.0, 0.0, 1.0))
    e = effect("car", 2.0, 2.5, candidates=(sound("car", sync=0.5),), automation=keys)
    (p,) = placed([scene(0, 0.0, 10.0, effects=[e])], edit(10.0))
    lead = 2 / 25
    assert [k.time for k in p.automation] == pytest.approx([lead, 0.4 + lead])
    assert p.pan == -0.5, "the first keyframe's pan"


def test_an_effect_past_the_end_of_the_edit_is_not_placed() -> None:
    late = effect("door", 5.0, 5.5)
    (spotted,) = spot_effects([scene(0, 0.0, 5.0, effects=[late])], edit(5.0), preroll_frames=2,
                              ring_out=True)  # fmt: skip
    assert spotted.effects[0].spots == ()
    assert place([spotted], edit(5.0), crossfade=CROSSFADE) == []


def test_alternatives_are_the_other_candidates() -> None:
    candidates = (sound("a"), sound("b"), sound("c"))
    (p,) = placed([scene(0, 0.0, 10.0, effects=[effect("x", 1.0, 2.0, candidates=candidates)])],
                  edit(10.0))  # fmt: skip
    assert p.sound_id == "a" and p.alternatives == candidates[1:]


def test_spots_play_the_interval_or_ring_out() -> None:
    e = effect("hum", 1.0, 1.6, candidates=(sound("hum", duration=4.0),))
    scenes = [scene(0, 0.0, 10.0, effects=[e])]
    (rung,) = spot_effects(scenes, edit(10.0), preroll_frames=0, ring_out=True)
    (cut,) = spot_effects(scenes, edit(10.0), preroll_frames=0, ring_out=False)
    assert rung.effects[0].spots[0].duration == pytest.approx(4.0)
    assert cut.effects[0].spots[0].duration == pytest.approx(0.6)
    blink = effect("click", 1.0, 1.0, candidates=(sound("click", duration=4.0),))
    (short,) = spot_effects([scene(0, 0.0, 10.0, effects=[blink])], edit(10.0), preroll_frames=0,
                            ring_out=False)  # fmt: skip
    assert short.effects[0].spots[0].duration == pytest.approx(1 / 25), "at least a frame"


def test_every_candidate_gets_its_own_spot() -> None:
    candidates = (sound("a", sync=0.0), sound("b", sync=0.5))
    e = effect("x", 3.0, 3.5, candidates=candidates)
    (s,) = spot_effects([scene(0, 0.0, 10.0, effects=[e])], edit(10.0), preroll_frames=2,
                        ring_out=True)  # fmt: skip
    assert [spot.sound_id for spot in s.effects[0].spots] == ["a", "b"]
    assert [spot.event_time for spot in s.effects[0].spots] == pytest.approx([3.0, 3.0])


# --------------------------------------------------------------------------- borrow, keep


def test_short_scenes_borrow_the_bed_before_them() -> None:
    rain, wind, birds = bed("rain"), bed("wind"), bed("birds")
    scenes = [
        scene(0, 0.0, 0.5, rain),  # short and first: borrows from the one after
        scene(1, 0.5, 5.0, wind),
        scene(2, 5.0, 5.5, birds),  # short: keeps wind
        scene(3, 5.5, 10.0, rain),
    ]
    out = borrow_ambience(scenes, 2.0)
    assert [s.ambience[0].sound_id for s in out] == ["wind", "wind", "wind", "rain"]
    assert [s.borrowed_from for s in out] == [1, None, 1, None]
    assert out[1] is scenes[1], "a scene with its own bed is left as it is"


def test_when_every_scene_is_short_the_longest_lends() -> None:
    scenes = [scene(0, 0.0, 0.4, bed("a")), scene(1, 0.4, 1.0, bed("b"))]
    assert [s.ambience[0].sound_id for s in borrow_ambience(scenes, 2.0)] == ["b", "b"]
    assert borrow_ambience([], 2.0) == []


def test_only_the_strongest_effects_are_kept() -> None:
    weak, strong, tie_late, tie_early = (
        effect("weak", 1.0, 2.0, 0.2),
        effect("strong", 3.0, 4.0, 0.9),
        effect("b", 6.0, 7.0, 0.5, scene=1),
        effect("a", 5.0, 5.5, 0.5, scene=1),
    )
    scenes = [
        scene(0, 0.0, 5.0, effects=[weak, strong]),
        scene(1, 5.0, 10.0, effects=[tie_early, tie_late]),
    ]
    kept = keep_strongest_effects(scenes, 2)
    assert [[e.label for e in s.effects] for s in kept] == [["strong"], ["a"]]
    assert keep_strongest_effects(scenes, 4) == scenes
    assert [s.effects for s in keep_strongest_effects(scenes, 0)] == [(), ()]


# --------------------------------------------------------------------------- snap


@pytest.mark.parametrize(
    ("seconds", "fps", "expected"),
    [(0.0, FPS, 0.0), (-1.0, FPS, 0.0), (0.019, FPS, 0.0), (0.021, FPS, 0.04),
     (1.0, Fraction(30000, 1001), 30 * 1001 / 30000)],
)  # fmt: skip
def test_snap_is_the_nearest_frame(seconds: float, fps: Fraction, expected: float) -> None:
    assert snap(seconds, fps) == pytest.approx(expected)
