"""The Resolve script ("plugins/resolve/Suggest sounds.py") against the Resolve double.

The client is played by a scripted runner that builds real ``Suggestions`` with
sfxmatch's types and answers ``choices.payload`` JSON, as the CLI does; one test runs the script's
own subprocess runner against a small stand-in executable.
"""

from __future__ import annotations

import ast
import glob
import importlib.util
import itertools
import json
import math
import os
import shutil
import stat
import subprocess
import sys
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import pytest
import resolve_double as rd
from resolve_client import asks_for_clips, cli_lines, cli_program, resolve_clips
from sfxmatch.suggestions import (
    Candidate,
    Edit,
    EffectSuggestion,
    Placement,
    SceneSuggestion,
    SourceClip,
    Suggestions,
    edit_from_dict,
    from_dict,
    loop_passes,
    ordered_tracks,
)
from sfxmatch.timeline import resolve_frames, to_otio
from sfxmatch.timeline.choices import candidate_clips, payload
from sfxmatch.timeline.flavours import url_to_path

PLUGIN_DIR = Path(__file__).resolve().parents[1] / "plugins" / "resolve"
SCRIPT = PLUGIN_DIR / "Suggest sounds.py"
LIVE_CHECK = PLUGIN_DIR / "live_check.py"

SOUNDS = {
    "/library/rain.wav": 30.0,
    "/library/wind.wav": 3.0,
    "/library/birds.wav": 60.0,
    "/library/door_slam.wav": 0.8,
    "/library/knock.wav": 0.4,
    "/library/car_pass.wav": 5.0,
    "/library/engine.wav": 10.0,
}


@pytest.fixture(scope="module")
def plugin():
    spec = importlib.util.spec_from_file_location("sfxmatch_resolve_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _candidate(name: str, score: float, kind: str) -> Candidate:
    path = f"/library/{name}.wav"
    return Candidate(name, name.replace("_", " "), path, score, kind, SOUNDS[path])


def _placement(
    track: str, kind: str, name: str, start: float, duration: float, scene: int
) -> Placement:
    path = f"/library/{name}.wav"
    return Placement(
        track,
        kind,
        name,
        path,
        name.replace("_", " "),
        start,
        duration,
        source_duration=SOUNDS[path],
        scene_index=scene,
    )


def standard_suggestions(edit: Edit) -> Suggestions:
    """Two scenes, [0, 4) and [4, 10) s; a door at 1 s and a car at 5-8 s."""
    door = EffectSuggestion(
        "door",
        1.0,
        1.5,
        0.7,
        (_candidate("door_slam", 0.7, "effect"), _candidate("knock", 0.5, "effect")),
        0,
    )
    car = EffectSuggestion(
        "car",
        5.0,
        8.0,
        0.66,
        (_candidate("car_pass", 0.66, "effect"), _candidate("engine", 0.4, "effect")),
        1,
    )
    scenes = (
        SceneSuggestion(
            0,
            0.0,
            4.0,
            (_candidate("rain", 0.8, "ambience"), _candidate("wind", 0.6, "ambience")),
            (door,),
        ),
        SceneSuggestion(
            1,
            4.0,
            10.0,
            (_candidate("birds", 0.75, "ambience"), _candidate("rain", 0.55, "ambience")),
            (car,),
        ),
    )
    placements = (
        _placement("Ambience", "ambience", "rain", 0.0, 4.0, 0),
        _placement("Ambience", "ambience", "birds", 4.0, 6.0, 1),
        _placement("SFX 1", "effect", "door_slam", 1.0, 0.5, 0),
        _placement("SFX 1", "effect", "car_pass", 5.0, 3.0, 1),
    )
    return Suggestions(edit, scenes, placements, "test-model")


class Client:
    """The sfxmatch client, scripted: records its argv and the edit it was sent."""

    def __init__(self, build=standard_suggestions, exit_code=0, error_lines=()):
        self.build = build
        self.exit_code = exit_code
        self.error_lines = list(error_lines)
        self.calls: list[list[str]] = []
        self.edits: list[dict] = []
        self.clip_requests: list[list[str]] = []

    def __call__(self, argv, on_line):
        if asks_for_clips(argv):  # framing the picks: the package's own command answers
            self.clip_requests.append(list(argv))
            return resolve_clips(argv)
        self.calls.append(list(argv))
        with open(argv[argv.index("--edit") + 1], encoding="utf-8") as handle:
            data = json.load(handle)
        self.edits.append(data)
        lines = [
            json.dumps({"stage": "scenes", "fraction": 0.25, "message": "2 scenes"}),
            "loading the model on cpu",
            json.dumps({"stage": "match", "fraction": 0.9, "message": "ranking sounds"}),
            *self.error_lines,
        ]
        for line in lines:
            on_line(line)
        stderr = "\n".join(lines) + "\n"
        if self.exit_code:
            return self.exit_code, "", stderr
        edit = edit_from_dict(data)
        if "-o" in argv:  # the timeline the client writes (its media need not exist here)
            flavour = argv[argv.index("--flavour") + 1] if "--flavour" in argv else "generic"
            timeline = to_otio(self.build(edit), flavour)
            Path(argv[argv.index("-o") + 1]).write_text(timeline.to_json_string())
            return 0, "", stderr
        return 0, json.dumps(payload(self.build(edit))), stderr


def user(button: str = "OK", check=(), uncheck=(), seen=None):
    """A scripted user: ticks boxes in the picker, presses ``button``, closes messages."""

    def on_dialog(window):
        if seen is not None:
            seen.append(window)
        if window.id != "sfxmatchPick":
            return "Close"
        for box_id in check:
            window.GetItems()[box_id].Checked = True
        for box_id in uncheck:
            window.GetItems()[box_id].Checked = False
        return button

    return on_dialog


def make_project(rate="24", timecode="01:00:00:00", overlap_mode="phantom") -> rd.Project:
    project = rd.Project(rate, timecode, overlap_mode=overlap_mode)
    project.sounds.update(SOUNDS)
    timeline = project.timeline
    start = timeline.GetStartFrame()
    ten_seconds = rd.frames_of(10.0, rate.removesuffix(" DF"))
    video = rd.MediaPoolItem("/media/shot.mov", "23.976", 100000, "Video")
    timeline.add_clip("video", 1, video, start, ten_seconds, left=48, name="shot")
    return project


def run(plugin, project, client=None, on_dialog=None, env=None, tmp_path=None, **kwargs):
    ui = rd.UIManager(on_dialog or user())
    if env is None:
        env = {"SFXMATCH_CLIENT": sys.executable, "PATH": ""}
    summary = plugin.main(
        resolve=rd.Resolve(project, ui),
        runner=client or Client(),
        ui=ui,
        dispatcher=rd.UIDispatcher,
        env=env,
        work_dir=str(tmp_path),
        log=lambda line: None,
        **kwargs,
    )
    return summary, ui


def expected_frames(start: float, duration: float, rate_text: str) -> tuple[int, int]:
    """(record offset, frames) by exact arithmetic, independent of the script's own."""
    rate, _ = rd.rate_of(rate_text)

    def nearest(seconds: float) -> int:
        return math.floor(Fraction(str(seconds)) * rate + Fraction(1, 2))

    return nearest(start), nearest(start + duration) - nearest(start)


def layout(timeline: rd.Timeline) -> dict[str, list[tuple[str, int, int]]]:
    """Track name -> [(file name, start, end)] for every audio track."""
    return {
        track.name: [
            (os.path.basename(i.media.path) if i.media else i.name, i.start, i.end)
            for i in sorted(track.items, key=lambda i: i.start)
        ]
        for track in timeline.tracks["audio"]
    }


def assert_no_overlaps(timeline: rd.Timeline) -> None:
    for track in timeline.tracks["audio"]:
        spans = sorted((i.start, i.end) for i in track.items)
        for (_, end), (start, _) in itertools_pairs(spans):
            assert end <= start, f"overlap on {track.name}: {spans}"


def itertools_pairs(values):
    return itertools.pairwise(values)


# --- placement at the right frames -----------------------------------------------------------


@pytest.mark.parametrize(
    ("rate", "timecode", "start_frame"),
    [
        ("24", "01:00:00:00", 86400),
        ("25", "01:00:00:00", 90000),
        ("29.97 DF", "01:00:00;00", 107892),
        ("23.976", "01:00:00:00", 86400),
    ],
)
def test_default_picks_land_on_named_tracks_at_absolute_frames(
    plugin, tmp_path, rate, timecode, start_frame
):
    project = make_project(rate, timecode)
    timeline = project.timeline
    assert timeline.GetStartFrame() == start_frame

    summary, _ = run(plugin, project, tmp_path=tmp_path)

    assert summary["status"] == "placed", summary["message"]
    assert (summary["placed"], summary["dropped"], summary["replaced"]) == (4, [], 0)
    assert timeline.audio_track_names() == ["Audio 1", "Ambience", "SFX 1"]
    assert [t.subtype for t in timeline.tracks["audio"][1:]] == ["stereo", "stereo"]
    rate_text = rate.removesuffix(" DF")
    want = {
        "Ambience": [("rain.wav", 0.0, 4.0), ("birds.wav", 4.0, 6.0)],
        "SFX 1": [("door_slam.wav", 1.0, 0.5), ("car_pass.wav", 5.0, 3.0)],
    }
    for track, sounds in want.items():
        expected = []
        for name, start, duration in sounds:
            offset, frames = expected_frames(start, duration, rate_text)
            expected.append((name, start_frame + offset, start_frame + offset + frames))
        assert layout(timeline)[track] == expected
        for item in timeline.audio_track(track):
            assert item.GetLeftOffset() == 0  # each sound plays from its own first frame
            assert item.GetClipColor() == "Teal"
            assert [m["customData"].split("|")[0] for m in item.GetMarkers().values()] == [
                "sfxmatch"
            ]
    calls = project.media_pool.append_calls
    assert all(len(call) == 1 and call[0]["mediaType"] == 2 for call in calls)
    assert min(call[0]["recordFrame"] for call in calls) == start_frame  # absolute, not 0
    bins = [f.GetName() for f in project.media_pool.GetRootFolder().GetSubFolderList()]
    assert bins == ["sfxmatch"]
    assert project.media_pool.GetCurrentFolder() is project.media_pool.GetRootFolder()


def test_edit_sent_to_the_client_describes_the_enabled_picture(plugin, tmp_path):
    project = make_project("29.97 DF", "01:00:00;00")
    timeline = project.timeline
    start = timeline.GetStartFrame()
    other = rd.MediaPoolItem("/media/b-roll.mp4", "25", 5000, "Video")
    timeline.add_clip("video", 1, other, start + 300, 60, left=50, name="b-roll")
    timeline.add_clip("video", 1, other, start + 400, 30, enabled=False, name="off")
    timeline.add_clip("video", 2, None, start + 10, 30, name="Title")  # a title: no file
    client = Client()

    summary, _ = run(plugin, project, client, tmp_path=tmp_path)

    assert summary["status"] == "placed"
    edit = client.edits[0]
    assert edit["fps"] == "30000/1001"
    assert (edit["width"], edit["height"], edit["start_timecode"]) == (1920, 1080, "01:00:00;00")
    assert [c["name"] for c in edit["clips"]] == ["shot", "b-roll"]
    shot, broll = edit["clips"]
    assert shot["path"] == "/media/shot.mov"
    assert shot["source_in"] == pytest.approx(48 * 1001 / 24000)  # left offset / media fps
    assert shot["source_out"] - shot["source_in"] == pytest.approx(300 * 1001 / 30000)
    assert shot["record_start"] == 0.0
    assert broll["source_in"] == pytest.approx(2.0)
    assert broll["record_start"] == pytest.approx(300 * 1001 / 30000)
    assert any("off" in s and "disabled" in s for s in summary["skipped"])
    assert any("Title" in s and "no media" in s for s in summary["skipped"])
    argv = client.calls[0]
    assert argv[0] == sys.executable
    assert argv[1:3] == ["suggest", "--edit"]
    assert argv[4:] == ["--json", "--progress", "jsonl"]


def test_library_is_passed_to_the_client(plugin, tmp_path):
    client = Client()
    run(plugin, make_project(), client, tmp_path=tmp_path, library="Boom Library")
    assert client.calls[0][-2:] == ["--library", "Boom Library"]


def test_progress_is_shown_in_a_window(plugin, tmp_path):
    summary, ui = run(plugin, make_project(), tmp_path=tmp_path)
    assert summary["status"] == "placed"
    progress = next(w for w in ui.windows if w.id == "sfxmatchProgress")
    texts = [value for name, value in progress.GetItems()["Status"].history if name == "Text"]
    assert texts == [
        " 25%  scenes: 2 scenes",
        "loading the model on cpu",
        " 90%  match: ranking sounds",
    ]
    assert progress.ever_shown and not progress.visible


# --- the picker ------------------------------------------------------------------------------


def test_picker_checks_the_top_candidate_of_each_row(plugin, tmp_path):
    seen = []
    run(plugin, make_project(), on_dialog=user(seen=seen), tmp_path=tmp_path)
    picker = next(w for w in seen if w.id == "sfxmatchPick")
    state = {box.ID: box.Checked for box in picker.checkboxes()}
    assert state == {
        "c_a0_0": True,
        "c_a0_1": False,
        "c_e0_0_0": True,
        "c_e0_0_1": False,
        "c_a1_0": True,
        "c_a1_1": False,
        "c_e1_0_0": True,
        "c_e1_0_1": False,
    }
    assert any("rain (0.80)" in text for text in picker.texts())


def test_other_picks_loop_ambience_and_layer_on_further_tracks(plugin, tmp_path):
    project = make_project()
    timeline = project.timeline
    start = timeline.GetStartFrame()
    picks = user(check=["c_a0_1", "c_e0_0_1", "c_a1_1"], uncheck=["c_a0_0"])

    summary, _ = run(plugin, project, on_dialog=picks, tmp_path=tmp_path)

    assert summary["dropped"] == []
    tracks = layout(timeline)
    # wind (3 s) fills the 4 s scene in two passes that crossfade over 2-3 s in the mix
    # (1 s, clamped to half the file): the clips cut at the crossfade's centre, 2.5 s, the
    # second from 0.5 s into the file. Rain then is the second bed of scene 1.
    assert tracks["Ambience"] == [
        ("wind.wav", start, start + 60),
        ("wind.wav", start + 60, start + 96),
        ("birds.wav", start + 96, start + 240),
    ]
    assert [i.GetLeftOffset() for i in timeline.audio_track("Ambience")][:2] == [0, 12]
    assert tracks["Ambience 2"] == [("rain.wav", start + 96, start + 240)]
    assert tracks["SFX 1"] == [
        ("door_slam.wav", start + 24, start + 36),
        ("car_pass.wav", start + 120, start + 192),
    ]
    # knock is 0.4 s long: it is not stretched over the 0.5 s interval
    assert tracks["SFX 2"] == [("knock.wav", start + 24, start + 34)]
    assert summary["placed"] == 7
    assert_no_overlaps(timeline)


def test_a_resolve_reading_end_frame_inclusively_is_calibrated(plugin, tmp_path):
    project = make_project()
    project.end_inclusive = True
    start = project.timeline.GetStartFrame()
    picks = user(check=["c_a0_1"], uncheck=["c_a0_0"])

    summary, _ = run(plugin, project, on_dialog=picks, tmp_path=tmp_path)

    assert summary["dropped"] == [] and summary["placed"] == 5
    assert layout(project.timeline)["Ambience"] == [
        ("wind.wav", start, start + 60),
        ("wind.wav", start + 60, start + 96),
        ("birds.wav", start + 96, start + 240),
    ]
    assert any("inclusive" in w for w in summary["warnings"])


# --- loop passes: the script, the mixer and the timeline export agree -------------------------


def test_the_script_has_no_rules_of_its_own(plugin):
    """Loop passes, sync spots and a slot's clips come from the client (choices.payload):
    the script carries no copy of the loop rule to drift from the mixer's."""
    for name in ("loop_schedule", "loop_clips", "clips_for_choice", "LOOP_CROSSFADE"):
        assert not hasattr(plugin, name), name


def test_choice_clips_are_the_loop_passes_of_the_mix():
    """A looped bed's clips are ``loop_passes`` cut at the centre of each crossfade (what the
    mixer plays and the timeline export lays), each ending exactly where the next begins."""
    cases = itertools.product(
        (0.0, 1.3, 3600.25),  # record start
        (0.5, 4.0, 10.0, 61.7),  # slot
        (0.0, 0.4, 2.2999),  # source start
        (0.08, 2.3, 3.0, 30.0),  # file length
        (0.0, 0.5, 1.0, 2.5),  # crossfade
    )
    for start, slot, offset, length, xfade in cases:
        p = Placement(
            "Ambience", "ambience", "x", "/x.wav", "x", start, slot, source_start=offset,
            source_duration=length, loop=True, loop_crossfade=xfade, scene_index=0,
        )  # fmt: skip
        bed = Candidate("x", "x", "/x.wav", 0.9, "ambience", length)
        clips = candidate_clips("ambience", start, start + slot, bed, [p])
        ours = [(ps.cut_in, ps.cut_out, ps.clip_source_start) for ps in loop_passes(p)]
        assert len(clips) == len(ours), (start, slot, offset, length, xfade)
        for clip, (cut_in, cut_out, source) in zip(clips, ours, strict=True):
            assert clip.record_start == cut_in and clip.source_start == source
            assert clip.record_end == pytest.approx(cut_out, abs=1e-9)
        for a, b in itertools.pairwise(clips):
            assert a.record_end == b.record_start  # butted exactly: no frame lost on a track
        assert [c.loop_pass for c in clips] == list(range(len(clips)))
        assert clips[-1].record_end == p.record_end


def looping_suggestions(edit: Edit) -> Suggestions:
    """The standard two scenes, wind looped under both (3 s of file for 4 and 6 s)."""
    s = standard_suggestions(edit)
    wind = _candidate("wind", 0.9, "ambience")
    scenes = tuple(replace(sc, ambience=(wind, *sc.ambience)) for sc in s.scenes)
    beds = (
        replace(_placement("Ambience", "ambience", "wind", 0.0, 4.0, 0), loop=True),
        replace(
            _placement("Ambience", "ambience", "wind", 4.0, 6.0, 1),
            loop=True, source_start=0.4, loop_crossfade=0.75,
        ),
    )  # fmt: skip
    effects = tuple(p for p in s.placements if p.kind == "effect")
    return replace(s, scenes=scenes, placements=beds + effects)


@pytest.mark.parametrize(
    ("rate", "timecode"),
    [("24", "01:00:00:00"), ("25", "01:00:00:00"), ("29.97 DF", "01:00:00;00")],
)
def test_pipeline_loops_land_where_the_timeline_export_puts_them(plugin, tmp_path, rate, timecode):
    project = make_project(rate, timecode)
    timeline = project.timeline
    start = timeline.GetStartFrame()
    made: list[Suggestions] = []

    def build(edit: Edit) -> Suggestions:
        made.append(looping_suggestions(edit))
        return made[-1]

    summary, _ = run(plugin, project, client=Client(build), tmp_path=tmp_path)

    assert summary["dropped"] == [] and summary["warnings"] == []
    placed = [
        (os.path.basename(i.media.path), i.start, i.end, i.GetLeftOffset())
        for i in timeline.audio_track("Ambience")
    ]
    exported = next(t for t in to_otio(made[0], "resolve").audio_tracks() if t.name == "Ambience")
    expected = [
        (
            os.path.basename(url_to_path(c.media_reference.target_url)),
            start + round(c.range_in_parent().start_time.value),
            start + round(c.range_in_parent().end_time_exclusive().value),
            round(c.source_range.start_time.value),
        )
        for c in exported.find_clips()
    ]
    assert placed == expected
    # 2 passes in scene 1 (crossfade 1 s), 3 in scene 2 (0.75 s from 0.4 s into the file):
    # not a single clip cut off where the file ends
    assert len(placed) == 5
    assert placed[-1][2] == start + expected_frames(0.0, 10.0, rate.removesuffix(" DF"))[1]
    assert_no_overlaps(timeline)


def test_cancel_leaves_the_timeline_alone(plugin, tmp_path):
    project = make_project()
    summary, _ = run(plugin, project, on_dialog=user("Cancel"), tmp_path=tmp_path)
    assert summary["status"] == "cancelled"
    assert project.timeline.audio_track_names() == ["Audio 1"]
    assert project.media_pool.append_calls == []


# --- re-running replaces only our own clips ---------------------------------------------------


def test_rerun_replaces_its_own_clips_and_nothing_else(plugin, tmp_path):
    project = make_project()
    timeline = project.timeline
    start = timeline.GetStartFrame()
    run(plugin, project, tmp_path=tmp_path)
    first = {id(i) for t in timeline.tracks["audio"] for i in t.items}
    dialogue = rd.MediaPoolItem("/media/dialogue.wav", "24", 2000)
    users_line = timeline.add_clip("audio", 1, dialogue, start, 240, name="dialogue")
    # the user's own clip on our SFX 1 track, even in our colour: not ours without the marker
    users_hit = timeline.add_clip("audio", 3, dialogue, start + 40, 20, name="hit")
    users_hit.SetClipColor("Teal")
    assert users_line.AddMarker(0, "Red", "todo", "fix the hum", 1, "someone-else")

    summary, _ = run(
        plugin, project, on_dialog=user(uncheck=["c_e0_0_0"], check=["c_e0_0_1"]), tmp_path=tmp_path
    )

    assert summary["replaced"] == 4
    assert summary["placed"] == 4 and summary["dropped"] == []
    tracks = layout(timeline)
    assert tracks["Audio 1"] == [("dialogue.wav", start, start + 240)]
    assert timeline.audio_track("Audio 1")[0] is users_line
    assert ("dialogue.wav", start + 40, start + 60) in tracks["SFX 1"]
    assert any(item is users_hit for item in timeline.audio_track("SFX 1"))
    assert ("knock.wav", start + 24, start + 34) in tracks["SFX 1"]
    assert "door_slam.wav" not in {name for name, _, _ in tracks["SFX 1"]}
    now = {id(i) for t in timeline.tracks["audio"] for i in t.items}
    assert not (first & now)  # every earlier clip of ours is gone, none is kept by accident
    assert timeline.audio_track_names() == ["Audio 1", "Ambience", "SFX 1"]  # tracks reused
    bin_clips = project.media_pool.GetRootFolder().GetSubFolderList()[0].GetClipList()
    assert len(bin_clips) == len({c.path for c in bin_clips})  # no re-imports of a sound
    assert_no_overlaps(timeline)


def test_users_clip_on_our_track_pushes_ours_to_the_next_track(plugin, tmp_path):
    project = make_project()
    timeline = project.timeline
    start = timeline.GetStartFrame()
    timeline.AddTrack("audio", "stereo")
    timeline.SetTrackName("audio", 2, "SFX 1")
    sting = rd.MediaPoolItem("/media/sting.wav", "24", 500)
    timeline.add_clip("audio", 2, sting, start + 110, 20, name="sting")

    summary, _ = run(plugin, project, tmp_path=tmp_path)

    assert summary["dropped"] == []
    tracks = layout(timeline)
    assert tracks["SFX 1"] == [
        ("door_slam.wav", start + 24, start + 36),
        ("sting.wav", start + 110, start + 130),
    ]
    assert tracks["SFX 2"] == [("car_pass.wav", start + 120, start + 192)]


# --- Resolve dropping clips -------------------------------------------------------------------


def overlapping_effects(edit: Edit) -> Suggestions:
    """A car placed on SFX 1 over the door: an overlap the script must not trust Resolve with."""
    base = standard_suggestions(edit)
    door = base.scenes[0].effects[0]
    wide = EffectSuggestion("car", 0.5, 3.0, 0.6, (_candidate("car_pass", 0.6, "effect"),), 0)
    scene0 = SceneSuggestion(0, 0.0, 4.0, base.scenes[0].ambience, (door, wide))
    placements = (*base.placements, _placement("SFX 1", "effect", "car_pass", 0.5, 2.5, 0))
    return Suggestions(edit, (scene0, base.scenes[1]), placements, "test-model")


@pytest.mark.parametrize("overlap_mode", ["phantom", "omit"])
def test_a_clip_resolve_drops_is_detected_and_reported(plugin, tmp_path, monkeypatch, overlap_mode):
    project = make_project(overlap_mode=overlap_mode)
    # keep every clip on the track the client asked for, so Resolve meets the overlap
    monkeypatch.setattr(resolve_frames, "assign_tracks", lambda clips, occupied: list(clips))
    summary, ui = run(plugin, project, Client(overlapping_effects), tmp_path=tmp_path)

    assert summary["placed"] == 4
    assert [(c["track"], c["label"], c["reason"]) for c in summary["dropped"]] == [
        ("SFX 1", "car pass", "Resolve did not put it on the track")
    ]
    assert "Resolve dropped 1" in summary["message"]
    shown = next(w for w in ui.windows if w.id == "sfxmatchMessage")
    assert any("Resolve dropped 1" in text for text in shown.texts())
    marked = [i for t in project.timeline.tracks["audio"] for i in t.items if i.markers]
    assert len(marked) == 4  # only clips that really are on the track get our marker


def test_a_clip_resolve_puts_elsewhere_is_reported_and_still_ours(plugin, tmp_path, monkeypatch):
    project = make_project()
    start = project.timeline.GetStartFrame()
    real_append = rd.MediaPool._append_one

    def late_car(self, timeline, info):
        if info["mediaPoolItem"].path.endswith("car_pass.wav"):
            info = dict(info, recordFrame=info["recordFrame"] + 1)
        return real_append(self, timeline, info)

    monkeypatch.setattr(rd.MediaPool, "_append_one", late_car)
    summary, _ = run(plugin, project, tmp_path=tmp_path)

    assert summary["placed"] == 3
    assert [(c["label"], c["reason"]) for c in summary["dropped"]] == [
        ("car pass", f"Resolve put it at frame {start + 121}, not {start + 120}")
    ]
    monkeypatch.setattr(rd.MediaPool, "_append_one", real_append)
    summary, _ = run(plugin, project, tmp_path=tmp_path)
    assert summary["replaced"] == 4 and summary["dropped"] == []
    assert ("car_pass.wav", start + 120, start + 192) in layout(project.timeline)["SFX 1"]
    assert len(layout(project.timeline)["SFX 1"]) == 2


def test_overlapping_suggestions_are_spread_over_tracks_before_resolve_sees_them(plugin, tmp_path):
    project = make_project()
    start = project.timeline.GetStartFrame()
    summary, _ = run(plugin, project, Client(overlapping_effects), tmp_path=tmp_path)
    assert summary["placed"] == 5 and summary["dropped"] == []
    assert layout(project.timeline)["SFX 2"] == [("car_pass.wav", start + 12, start + 72)]
    assert_no_overlaps(project.timeline)


def test_a_sound_resolve_cannot_import_is_reported(plugin, tmp_path):
    project = make_project()
    del project.sounds["/library/birds.wav"]
    summary, _ = run(plugin, project, tmp_path=tmp_path)
    assert summary["placed"] == 3
    assert [(c["label"], c["reason"]) for c in summary["dropped"]] == [
        ("birds", "Resolve could not import the file")
    ]


# --- no UIManager: the OTIO path ------------------------------------------------------------


def test_without_uimanager_the_client_writes_an_otio_to_import(plugin, tmp_path):
    project = make_project()
    client = Client()
    lines = []
    summary = plugin.main(
        resolve=rd.Resolve(project, None),
        runner=client,
        ui=False,
        env={"SFXMATCH_CLIENT": sys.executable, "PATH": ""},
        work_dir=str(tmp_path),
        log=lines.append,
    )

    assert summary["status"] == "otio"
    argv = client.calls[0]
    assert argv[1:3] == ["suggest", "--edit"]
    assert argv[4] == "-o" and argv[5].endswith(".otio")
    assert argv[6:] == ["--flavour", "resolve"]
    assert summary["otio"] == argv[5] and os.path.isfile(argv[5])
    assert "File > Import > Timeline" in summary["message"]
    assert summary["message"] in " ".join(lines)
    assert " 25%  scenes: 2 scenes" in lines  # progress printed to the console
    assert project.timeline.audio_track_names() == ["Audio 1"]
    assert project.media_pool.append_calls == []


def test_free_resolve_without_uimanager_found_in_fusion(plugin, tmp_path):
    project = make_project()
    client = Client()
    summary = plugin.main(
        resolve=rd.Resolve(project, None),
        runner=client,
        env={"SFXMATCH_CLIENT": sys.executable, "PATH": ""},
        work_dir=str(tmp_path),
        log=lambda line: None,
    )
    assert summary["status"] == "otio"
    assert "-o" in client.calls[0]


def test_otio_fallback_can_import_the_timeline(plugin, tmp_path):
    project = make_project()
    summary = plugin.main(
        resolve=rd.Resolve(project, None),
        runner=Client(),
        ui=False,
        env={"SFXMATCH_CLIENT": sys.executable, "PATH": ""},
        work_dir=str(tmp_path),
        log=lambda line: None,
        import_timeline=True,
    )
    assert summary["imported"] is True
    ((path, options),) = project.media_pool.imported_timelines
    assert path == summary["otio"] and options["timelineName"]
    assert project.GetTimelineCount() == 2


# --- the client: missing, failing, real subprocess -----------------------------------------


def test_missing_client_gives_a_clear_message(plugin, tmp_path):
    project = make_project()
    env = {
        "HOME": str(tmp_path),
        "PATH": str(tmp_path / "empty"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
    }
    summary, ui = run(plugin, project, env=env, tmp_path=tmp_path)
    assert summary["status"] == "error"
    assert "sfxmatch client was not found" in summary["message"]
    assert "SFXMATCH_CLIENT" in summary["message"]
    assert str(tmp_path / "config" / "sfxmatch" / "client.json") in summary["message"]
    assert any(summary["message"] in t for w in ui.windows for t in w.texts())
    assert project.media_pool.append_calls == []


def test_client_env_pointing_nowhere_is_named(plugin, tmp_path):
    summary, _ = run(
        plugin,
        make_project(),
        tmp_path=tmp_path,
        env={"SFXMATCH_CLIENT": str(tmp_path / "nope"), "PATH": ""},
    )
    assert summary["status"] == "error"
    assert "SFXMATCH_CLIENT" in summary["message"] and "nope" in summary["message"]


@pytest.mark.parametrize(
    ("platform", "parts"),
    [
        ("linux", (".config", "sfxmatch", "client.json")),
        ("darwin", ("Library", "Application Support", "sfxmatch", "client.json")),
    ],
)
def test_installer_config_locates_the_client(plugin, tmp_path, platform, parts):
    config = tmp_path.joinpath(*parts)
    config.parent.mkdir(parents=True)
    config.write_text(json.dumps({"executable": sys.executable}))
    env = {"HOME": str(tmp_path), "PATH": ""}
    assert plugin.find_client(env, platform) == [sys.executable]


def test_windows_config_lives_in_appdata(plugin, tmp_path):
    path = plugin.client_config_path("win32", {"APPDATA": str(tmp_path)})
    assert path == os.path.join(str(tmp_path), "sfxmatch", "client.json")


def test_client_on_path_is_the_last_resort(plugin, tmp_path):
    program = tmp_path / "sfxmatch"
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    env = {"HOME": str(tmp_path), "PATH": str(tmp_path)}
    assert plugin.find_client(env, "linux") == [str(program)]


def test_client_failure_shows_its_last_stderr_line(plugin, tmp_path):
    project = make_project()
    client = Client(exit_code=2, error_lines=["error: no library named 'Boom' (try: Main)"])
    summary, ui = run(plugin, project, client, tmp_path=tmp_path)
    assert summary["status"] == "error"
    assert summary["message"] == "sfxmatch failed: error: no library named 'Boom' (try: Main)"
    message = next(w for w in ui.windows if w.id == "sfxmatchMessage")
    assert summary["message"] in message.texts()
    assert project.timeline.audio_track_names() == ["Audio 1"]


def test_client_answer_of_another_schema_is_refused(plugin, tmp_path):
    class FutureClient(Client):
        def __call__(self, argv, on_line):
            code, out, err = super().__call__(argv, on_line)
            return code, json.dumps(dict(json.loads(out), schema=99)), err

    summary, _ = run(plugin, make_project(), FutureClient(), tmp_path=tmp_path)
    assert summary["status"] == "error" and "schema" in summary["message"]


def _stand_in_client(tmp_path: Path, answer: str, code: int = 0) -> Path:
    program = tmp_path / "fake-sfxmatch"
    program.write_text(
        f"#!{sys.executable}\n"
        "import json, sys\n"
        f"{cli_lines()}"
        "sys.stderr.write(json.dumps({'stage': 'embed', 'fraction': 0.5, 'message': 'half'})"
        " + '\\n')\n"
        "sys.stderr.write('plain note\\n')\n"
        "sys.stderr.flush()\n"
        f"sys.stdout.write(open({answer!r}, encoding='utf-8').read())\n"
        f"sys.stderr.write('last words\\n')\n"
        f"sys.exit({code})\n"
    )
    program.chmod(program.stat().st_mode | stat.S_IXUSR)
    return program


@pytest.mark.skipif(sys.platform.startswith("win"), reason="uses a #! script")
def test_real_subprocess_runner_end_to_end(plugin, tmp_path):
    project = make_project()
    timeline = project.timeline
    edit = Edit((SourceClip("/media/shot.mov", 0.0, 10.0, 0.0),), Fraction(24))
    answer = tmp_path / "answer.json"
    answer.write_text(json.dumps(payload(standard_suggestions(edit))))
    program = _stand_in_client(tmp_path, str(answer))
    ui = rd.UIManager(user())
    lines = []

    summary = plugin.main(
        resolve=rd.Resolve(project, ui),
        ui=ui,
        dispatcher=rd.UIDispatcher,
        env={"SFXMATCH_CLIENT": str(program), "PATH": ""},
        work_dir=str(tmp_path),
        log=lines.append,
    )

    assert summary["status"] == "placed" and summary["placed"] == 4
    assert lines[:2] == [" 50%  embed: half", "plain note"]
    assert len(timeline.audio_track("SFX 1")) == 2


@pytest.mark.skipif(sys.platform.startswith("win"), reason="uses a #! script")
def test_real_subprocess_failure_reports_last_line(plugin, tmp_path):
    answer = tmp_path / "answer.json"
    answer.write_text("")
    program = _stand_in_client(tmp_path, str(answer), code=3)
    seen = []
    code, out, _err = plugin.subprocess_runner([str(program)], seen.append)
    assert code == 3 and out == ""
    assert seen[-1] == "last words"
    with pytest.raises(plugin.PluginError, match="sfxmatch failed: last words"):
        plugin.run_client(plugin.subprocess_runner, [str(program)], lambda f, t: None)


def test_unstartable_client_is_a_clear_error(plugin, tmp_path):
    def runner(argv, on_line):
        raise PermissionError(13, "Permission denied")

    summary, _ = run(plugin, make_project(), runner, tmp_path=tmp_path)
    assert summary["status"] == "error"
    assert "cannot start the sfxmatch client" in summary["message"]


# --- Resolve states and small pieces -------------------------------------------------------


def test_no_timeline_and_no_clips_are_explained(plugin, tmp_path):
    project = make_project()
    project.current = None
    summary, _ = run(plugin, project, tmp_path=tmp_path)
    assert summary["status"] == "error" and "Open a timeline" in summary["message"]

    empty = rd.Project("24")
    summary, _ = run(plugin, empty, tmp_path=tmp_path)
    assert "no enabled video clips" in summary["message"]


def test_earlier_clips_that_cannot_be_removed_stop_the_run(plugin, tmp_path, monkeypatch):
    project = make_project()
    run(plugin, project, tmp_path=tmp_path)
    monkeypatch.setattr(rd.Timeline, "DeleteClips", lambda self, items, ripple=False: False)
    calls_before = len(project.media_pool.append_calls)
    summary, _ = run(plugin, project, tmp_path=tmp_path)
    assert summary["status"] == "error" and "earlier sfxmatch clips" in summary["message"]
    assert len(project.media_pool.append_calls) == calls_before


@pytest.mark.parametrize(
    ("text", "rate", "drop"),
    [
        ("24", Fraction(24), False),
        ("23.976", Fraction(24000, 1001), False),
        ("29.97 DF", Fraction(30000, 1001), True),
        ("29.97 NDF", Fraction(30000, 1001), False),
        ("59.94", Fraction(60000, 1001), False),
        ("25.0", Fraction(25), False),
        (50, Fraction(50), False),
    ],
)
def test_frame_rate_strings(plugin, text, rate, drop):
    assert plugin.parse_frame_rate(text) == (rate, drop)


def test_unreadable_frame_rate_is_an_error(plugin):
    with pytest.raises(plugin.PluginError):
        plugin.parse_frame_rate("fast")


@pytest.fixture(scope="module")
def live_check():
    spec = importlib.util.spec_from_file_location("sfxmatch_live_check", LIVE_CHECK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_live_check_passes_against_the_double_and_spares_the_users_timeline(
    live_check, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setenv("SFXMATCH_LIVE_CLEANUP", "1")
    monkeypatch.setenv("SFXMATCH_CLIENT", str(cli_program(tmp_path)))  # frames the picks
    project = make_project()
    original = project.timeline
    before = layout(original)
    ui = rd.UIManager(user())
    real_import = rd.MediaPool.ImportMedia

    def import_tones(self, paths):  # the double cannot read WAVs; the check writes real ones
        for path in paths:
            if path.endswith(".wav") and os.path.isfile(path):
                self.project.sounds[path] = 10.0 if "tone_a" in path else 2.0
        return real_import(self, paths)

    monkeypatch.setattr(rd.MediaPool, "ImportMedia", import_tones)
    code = live_check.main(resolve=rd.Resolve(project, ui), ui=ui, dispatcher=rd.UIDispatcher)
    out = capsys.readouterr().out
    assert code == 0, out
    assert "FAIL" not in out and out.count("PASS") >= 12
    assert project.current is original and layout(original) == before
    assert project.GetTimelineCount() == 1  # the scratch copy was removed on request


def test_live_check_answer_is_valid_suggestions(live_check):
    edit = {
        "clips": [
            {
                "path": "/m.mov",
                "source_in": 0.0,
                "source_out": 6.0,
                "record_start": 0.0,
                "name": "m",
            }
        ],
        "fps": "24/1",
        "width": 0,
        "height": 0,
        "start_timecode": "00:00:00:00",
        "name": "t",
    }
    suggestions = from_dict(live_check.canned_answer(edit, "/a.wav", "/b.wav"))
    assert suggestions.tracks == ("Ambience", "SFX 1")
    assert suggestions.scenes[0].effects[0].candidates[0].path == "/b.wav"


@pytest.mark.parametrize("path", [SCRIPT, LIVE_CHECK], ids=["script", "live_check"])
def test_script_is_python_36_standard_library_only(path):
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source, feature_version=(3, 6))
    modules = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            modules.add((node.module or "").split(".")[0])
            assert node.module != "__future__"
    allowed = {
        "json",
        "math",
        "os",
        "subprocess",
        "sys",
        "tempfile",
        "threading",
        "time",
        "fractions",
        "DaVinciResolveScript",
        "importlib",
        "struct",
        "wave",
    }
    assert modules <= allowed
    for newer in (
        "capture_output",
        "text=True",
        "nullcontext",
        "fromisoformat",
        "removesuffix",
        "removeprefix",
        "dataclass",
        "isascii",
    ):
        assert newer not in source, newer


def _python36():
    found = shutil.which("python3.6")
    pattern = os.path.expanduser("~/.pyenv/versions/3.6*/bin/python3.6")
    for candidate in [found, *sorted(glob.glob(pattern))]:
        if candidate and subprocess.run([candidate, "-V"], capture_output=True).returncode == 0:
            return candidate
    return None


PY36_SMOKE = r"""
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("s", sys.argv[1])
m = importlib.util.module_from_spec(spec)
spec.loader.exec_module(m)
data = json.loads(sys.stdin.read())
slots = m.build_slots(data)
paths = m.picked_paths(slots, [(s["key"], 0) for s in slots])
code, out, err = m.subprocess_runner(
    [sys.executable, "-c", "import sys; sys.stderr.write('x\\n'); print('y')"], print)
print(json.dumps({"rate": m.fraction_text(m.parse_frame_rate("29.97 DF")[0]),
                  "paths": len(paths), "run": [code, out, err]}))
"""


def test_script_runs_on_a_real_python_36():
    python = _python36()
    if python is None:
        pytest.skip("no Python 3.6 interpreter here")
    edit = Edit((SourceClip("/media/shot.mov", 0.0, 10.0, 0.0),), Fraction(24))
    answer = json.dumps(payload(standard_suggestions(edit)))
    done = subprocess.run(
        [python, "-c", PY36_SMOKE, str(SCRIPT)],
        input=answer,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    assert result == {"rate": "30000/1001", "paths": 4, "run": [0, "y\n", "x\n"]}


def test_the_script_creates_tracks_in_sfxmatchs_track_order(plugin, tmp_path):
    """Beds together first, then effects: the order of the stems and the exported timelines,
    which the client's answer lists and the script follows."""
    names = ["SFX 2", "Ambience 3", "SFX 10", "Ambience", "SFX 1", "Ambience 2"]
    project = make_project()
    indices = plugin.ensure_tracks(project.timeline, list(ordered_tracks(names)))
    assert project.timeline.audio_track_names() == ["Audio 1", *ordered_tracks(names)]
    assert sorted(indices, key=indices.get) == list(ordered_tracks(names))


SCRIPT_RULES = (
    "frame_clips",
    "media_frames_for",
    "assign_tracks",
    "track_family",
    "track_name",
    "_track_sort_key",
    "chosen_clips",
    "to_frames",
)


def test_the_script_holds_no_framing_or_track_rules(plugin):
    """Frames, loop passes and tracks come from the client (``resolve-clips``); the script
    keeps Resolve calls, its dialog and running the client."""
    tree = ast.parse(SCRIPT.read_text(encoding="utf-8"))
    defined = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
    assert not defined & set(SCRIPT_RULES)
    assert not any(hasattr(plugin, name) for name in SCRIPT_RULES)
    source = SCRIPT.read_text(encoding="utf-8")
    for rule in ("math.ceil", "math.floor", "SFX_PREFIX", "AMBIENCE_TRACK"):
        assert rule not in source, rule
