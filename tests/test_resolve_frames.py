"""The Resolve script's appends in frames (sfxmatch.timeline.resolve_frames, ``resolve-clips``):
pure functions, checked against numbers worked out by hand and against Resolve's rules
(recordFrame absolute, a clip's length floored when its item runs at another rate, loop
passes butted, nothing over the user's own clips)."""

from __future__ import annotations

import itertools
import json
from fractions import Fraction

import pytest
from resolve_client import resolve_clips
from sfxmatch.errors import TimelineError
from sfxmatch.suggestions import ordered_tracks
from sfxmatch.timeline.choices import ChoiceClip
from sfxmatch.timeline.resolve_frames import (
    Pick,
    PoolItem,
    answer,
    assign_tracks,
    chosen,
    frame_clips,
    plan,
    source_frames_for,
)

NTSC = Fraction(30000, 1001)
FILM = Fraction(24000, 1001)


def clip(start, end, source=0.0, track="SFX 1", kind="effect", path="/s.wav", loop_pass=0):
    return ChoiceClip(track, kind, path, "s", "s", start, end, source, 0.5, loop_pass)


def picks(*clips, rank=0):
    return [Pick(c, (rank, 0)) for c in clips]


def spans(appends):
    return [(a.record_frame, a.record_frame + a.frames) for a in appends]


def test_a_25fps_sound_loops_on_a_2997_timeline_with_butted_passes():
    passes = picks(
        clip(0.0, 2.0, track="Ambience", kind="ambience", loop_pass=0),
        clip(2.0, 4.0, track="Ambience", kind="ambience", loop_pass=1),
    )
    ready, refused = frame_clips(passes, NTSC, 1000, {"/s.wav": PoolItem(Fraction(25), 500)})
    assert refused == []
    first, second = ready
    # 2 s = 59.94 -> 60 timeline frames; 60 * 25 / 29.97 = 50.05 -> 51 source frames, which
    # Resolve floors to 51 * 29.97 / 25 = 61.14 -> 61 timeline frames.
    assert (first.record_frame, first.frames) == (1000, 61)
    assert (first.source_start_frame, first.source_end_frame) == (0, 51)
    # The second pass starts where Resolve really ends the first (not at round(59.94) = 60),
    # its source in following that snap (+35 ms: frame 1 at 25 fps), and ends at 4 s = 120.
    assert (second.record_frame, second.frames) == (1061, 59)
    assert (second.source_start_frame, second.source_end_frame) == (1, 51)
    assert spans(ready) == [(1000, 1061), (1061, 1120)]


def test_a_50p_sound_on_a_25p_timeline_is_trimmed_to_the_items_frames():
    one = picks(clip(1.0, 1.5, source=0.2))
    (whole,), _ = frame_clips(one, Fraction(25), 90000, {"/s.wav": PoolItem(Fraction(50), 0)})
    # 1.5 s = 37.5 -> 38 (halves round up): 13 frames = 26 source frames from 0.2 s = frame 10.
    assert (whole.record_frame, whole.frames) == (90025, 13)
    assert (whole.source_start_frame, whole.source_end_frame) == (10, 36)
    (short,), _ = frame_clips(one, Fraction(25), 90000, {"/s.wav": PoolItem(Fraction(50), 30)})
    assert (short.source_start_frame, short.source_end_frame, short.frames) == (10, 30, 10)


def test_a_23976_sound_on_a_24_timeline_covers_what_was_asked():
    # 1000 timeline frames need 1000 * 23.976 / 24 = 999.001 -> 1000 source frames, which
    # Resolve makes 1000 * 24 / 23.976 = 1001 timeline frames: a frame longer, never shorter.
    assert source_frames_for(1000, Fraction(24), FILM) == (1000, 1001)
    assert source_frames_for(24, Fraction(24), FILM) == (24, 24)
    assert source_frames_for(24, Fraction(24), Fraction(24)) == (24, 24)
    passes = picks(*(clip(k * 10.0, (k + 1) * 10.0, loop_pass=k) for k in range(3)))
    ready, _ = frame_clips(passes, Fraction(24), 0, {"/s.wav": PoolItem(FILM, 10**6)})
    for a, b in itertools.pairwise(ready):
        assert a.record_frame + a.frames == b.record_frame  # butted, no gap, no overlap
    for a in ready:  # every length is what Resolve makes of the source range
        assert a.frames == (a.source_end_frame - a.source_start_frame) * 24 * 1001 // 24000
    assert ready[-1].record_frame + ready[-1].frames in (720, 721)


@pytest.mark.parametrize(
    ("rate", "resolve_text"), [(NTSC, "29.97 DF"), (Fraction(60000, 1001), "59.94 DF")]
)
def test_drop_frame_changes_no_frame_count(rate, resolve_text):
    """DF relabels timecode only: a 29.97 DF timeline starting at 01:00:00;00 (frame 107892)
    places exactly as NDF does."""
    request = {
        "slots": [{"key": "e0", "clips": [[clip(61.0, 62.5).to_json()]]}],
        "picks": [["e0", 0]],
        "start_frame": 107892,
        "media": {"/s.wav": {"fps": "29.97", "frames": "1000"}},
        "occupied": {},
    }
    text = f"{rate.numerator}/{rate.denominator}"
    df = answer({**request, "fps": text, "drop_frame": True})
    ndf = answer({**request, "fps": text, "drop_frame": False})
    assert df == ndf
    (append,) = df["appends"]
    start = round(61 * rate)
    assert append["record_frame"] == 107892 + start
    assert append["frames"] == round(62.5 * rate) - start
    assert answer({**request, "fps": resolve_text})["appends"] == df["appends"]


def test_clips_move_around_the_users_own_clips_and_better_picks_keep_their_tracks():
    best = Pick(clip(1.0, 2.0, path="/a.wav"), (0, 0))
    layered = Pick(clip(1.5, 3.0, path="/b.wav"), (1, 1))  # a second candidate, same slot
    bed = Pick(clip(0.0, 4.0, track="Ambience", kind="ambience", path="/r.wav"), (0, 1))
    media = {p: PoolItem(Fraction(24)) for p in ("/a.wav", "/b.wav", "/r.wav")}
    ready, _ = frame_clips([layered, best, bed], Fraction(24), 100, media)
    occupied = {"Ambience": [(100, 110)], "SFX 1": [(200, 210)], "Audio 1": [(0, 10**6)]}
    placed = assign_tracks(ready, occupied)
    assert [a.track for a in placed] == ["SFX 2", "SFX 1", "Ambience 2"]  # order kept
    # Without the user's clips the bed keeps Ambience; the layered effect still moves.
    assert [a.track for a in assign_tracks(ready, {})] == ["SFX 2", "SFX 1", "Ambience"]


def test_a_clip_preferring_a_higher_track_falls_back_to_the_first_free_one():
    ready, _ = frame_clips(picks(clip(0.0, 1.0, track="SFX 3")), 24, 0, {"/s.wav": PoolItem(24)})
    assert [a.track for a in assign_tracks(ready, {})] == ["SFX 3"]
    taken = assign_tracks(ready, {"SFX 3": [(0, 5)], "SFX 1": [(10, 30)]})
    assert [a.track for a in taken] == ["SFX 2"]


def test_picks_choose_tracks_by_rank_and_the_plan_lists_tracks_in_track_order():
    clips = {
        ("a0", 0): [clip(0.0, 4.0, track="Ambience", kind="ambience", path="/r.wav")],
        ("a0", 1): [clip(0.0, 4.0, track="Ambience", kind="ambience", path="/w.wav")],
        ("e0", 0): [clip(1.0, 2.0, path="/d.wav")],
    }
    ordered = chosen(clips, [("a0", 1), ("e0", 0), ("a0", 0)])
    assert [(p.clip.path, p.order) for p in ordered] == [
        ("/r.wav", (0, 0)),
        ("/d.wav", (0, 1)),
        ("/w.wav", (1, 2)),
    ]
    media = {p: PoolItem(Fraction(25)) for p in ("/r.wav", "/w.wav", "/d.wav")}
    result = plan(ordered, Fraction(25), 0, media, {})
    assert [a.track for a in result.appends] == ["Ambience", "SFX 1", "Ambience 2"]
    assert result.tracks == ordered_tracks(["SFX 1", "Ambience 2", "Ambience"])
    assert result.tracks == ("Ambience", "Ambience 2", "SFX 1")


def test_what_cannot_be_placed_is_refused_with_a_reason_in_its_own_order():
    clips = picks(
        clip(0.0, 1.0, path="/missing.wav"),
        clip(0.0, 0.01),
        clip(0.0, 1.0, source=20.0),
        clip(2.0, 3.0),
    )
    ready, refused = frame_clips(clips, Fraction(24), 0, {"/s.wav": PoolItem(24, 240)})
    assert [r.reason for r in refused] == [
        "Resolve could not import the file",
        "shorter than one frame",
        "the source range lies past the file's end",
    ]
    assert spans(ready) == [(48, 72)]


def test_an_unreadable_item_rate_counts_as_the_timelines():
    request = {
        "slots": [{"key": "e0", "clips": [[clip(0.0, 1.0).to_json()]]}],
        "picks": [["e0", 0]],
        "fps": "25/1",
        "start_frame": 0,
        "media": {"/s.wav": {"fps": "", "frames": ""}},
    }
    (append,) = answer(request)["appends"]
    assert (append["frames"], append["source_end_frame"]) == (25, 25)


def test_the_cli_answers_a_request_file_and_refuses_a_bad_one(tmp_path):
    request = {
        "slots": [{"key": "e0", "clips": [[clip(1.0, 2.0).to_json()]]}],
        "picks": [["e0", 0]],
        "fps": "24",
        "drop_frame": False,
        "start_frame": 86400,
        "media": {"/s.wav": {"fps": "48", "frames": "96"}},
        "occupied": {"SFX 1": [[86400, 86500]]},
    }
    path = tmp_path / "request.json"
    path.write_text(json.dumps(request))
    code, out, _ = resolve_clips(["sfxmatch", "resolve-clips", str(path)])
    assert code == 0
    data = json.loads(out)
    assert data["schema"] == 1 and data["tracks"] == ["SFX 2"]
    (append,) = data["appends"]
    assert (append["record_frame"], append["frames"]) == (86424, 24)
    assert (append["source_start_frame"], append["source_end_frame"]) == (0, 48)
    assert append["label"] == "s" and append["sound_id"] == "s" and append["duration"] == 1.0

    path.write_text(json.dumps({"fps": "24"}))
    code, _, err = resolve_clips(["sfxmatch", "resolve-clips", str(path)])
    assert code == 2 and "not a resolve-clips request" in err
    with pytest.raises(TimelineError, match="schema"):
        answer({**request, "schema": 2})
