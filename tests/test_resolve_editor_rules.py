"""What real Resolve does that the script must live with, each rule taught to the double:

- ``GetLeftOffset()`` counts TIMELINE frames; ``GetSourceStartFrame``/``GetSourceStartTime``
  (19.0.2+) say where an item starts in its media, and the script prefers them.
- Drop-frame is the timeline's setting (``timelineDropFrameTimecode``); its start timecode
  may still be written with colons.
- A pool item at another rate than the timeline gets its length FLOORED on append.
- ``DeleteClips`` does nothing unless the Edit page shows.
- The script says which Resolve it needs and refuses older ones in words.
- The media pool imports only the formats of Resolve's import list; a timeline file whose
  media is missing imports as nothing (None).
"""

from __future__ import annotations

import importlib.util
import itertools
import json
from fractions import Fraction

import pytest
import resolve_double as rd
from sfxmatch.suggestions import (
    Placement,
    SceneSuggestion,
    Suggestions,
    edit_from_dict,
    loop_passes,
)
from sfxmatch.timeline import to_otio
from test_resolve_plugin import SCRIPT, SOUNDS, Client, make_project, run, standard_suggestions


@pytest.fixture(scope="module")
def plugin():
    spec = importlib.util.spec_from_file_location("sfxmatch_resolve_script_rules", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def picture_at(project: rd.Project, fps: str, left: int) -> None:
    """The user's edit: one 10 s shot whose media runs at ``fps``, starting ``left`` media
    frames into it."""
    timeline = project.timeline
    timeline.tracks["video"][0].items.clear()
    shot = rd.MediaPoolItem("/media/shot.mov", fps, 100000, "Video")
    length = rd.frames_of(10.0, project.frame_rate.removesuffix(" DF"))
    timeline.add_clip("video", 1, shot, timeline.GetStartFrame(), length, left=left, name="s")


@pytest.mark.parametrize("api", [True, False], ids=["GetSourceStartTime", "GetLeftOffset"])
@pytest.mark.parametrize(("timeline_fps", "media_fps"), [("25", "50"), ("29.97", "23.976")])
def test_source_in_is_where_the_item_starts_in_its_media(
    plugin, tmp_path, api, timeline_fps, media_fps
):
    project = make_project(timeline_fps)
    project.source_start_api = api
    picture_at(project, media_fps, left=100)  # 100 frames of the media in
    item = project.timeline.tracks["video"][0].items[0]
    if not api:
        assert getattr(item, "GetSourceStartFrame", None) is None  # before 19.0.2
        media_rate, timeline_rate = rd.rate_of(media_fps)[0], rd.rate_of(timeline_fps)[0]
        assert item.GetLeftOffset() == round(100 / media_rate * timeline_rate)  # timeline frames
    client = Client()

    run(plugin, project, client, tmp_path=tmp_path)

    (clip,) = client.edits[0]["clips"]
    expected = 100 / rd.rate_of(media_fps)[0]
    # from the API exactly; from the left offset within half a timeline frame
    tolerance = 1e-9 if api else 0.5 / float(rd.rate_of(timeline_fps)[0])
    assert clip["source_in"] == pytest.approx(float(expected), abs=tolerance)


def test_a_drop_frame_timeline_whose_start_timecode_has_colons(plugin, tmp_path):
    project = make_project("29.97", "01:00:00:00")
    project = rd.Project("29.97", "01:00:00:00", drop_frame=True)
    project.sounds.update(SOUNDS)
    picture_at(project, "29.97", left=0)
    start = project.timeline.GetStartFrame()
    assert start == 107892  # 01:00:00;00 DF, not 108000
    client = Client()

    summary, _ = run(plugin, project, client, tmp_path=tmp_path)

    sent = client.edits[0]
    assert sent["drop_frame"] is True and sent["start_timecode"] == "01:00:00;00"
    edit = edit_from_dict(sent)
    timeline = to_otio(standard_suggestions(edit), "resolve")
    assert timeline.global_start_time.value == start  # was 108 frames (3.6 s) late
    assert summary["status"] == "placed"
    door = next(i for i in project.timeline.audio_track("SFX 1") if "door" in i.media.path)
    assert door.start == start + 30  # 1.0 s at 29.97 (frame 29.97 -> 30)


def test_a_drop_frame_setting_makes_an_edit_drop_frame_whatever_its_separators() -> None:
    sent = {
        "clips": [{"path": "/m.mov", "source_in": 0, "source_out": 5, "record_start": 0}],
        "fps": "30000/1001",
        "start_timecode": "01:00:00:00",
        "drop_frame": True,
    }
    timeline = to_otio(Suggestions(edit_from_dict(sent), (), (), "m"))
    assert timeline.global_start_time.value == 107892
    assert timeline.metadata["sfxmatch"]["drop_frame"] is True


def looped_wind(edit):
    """A 3 s wind looped over 10 s with 1 s crossfades: five passes that butt."""
    wind = Placement(
        "Ambience", "ambience", "wind", "/library/wind.wav", "wind", 0.0, 10.0,
        source_duration=SOUNDS["/library/wind.wav"], loop=True, scene_index=0,
    )  # fmt: skip
    scene = SceneSuggestion(0, 0.0, 10.0, standard_suggestions(edit).scenes[0].ambience, ())
    return Suggestions(edit, (scene,), (wind,), "test-model")


def loop_client():
    client = Client(looped_wind)
    return client


@pytest.mark.parametrize(("timeline_fps", "item_fps"), [("29.97", "25"), ("25", "29.97")])
def test_loop_passes_of_an_item_at_another_rate_leave_no_gaps(
    plugin, tmp_path, timeline_fps, item_fps
):
    project = make_project(timeline_fps)
    project.sound_fps["/library/wind.wav"] = item_fps  # a pool item at its own rate
    start = project.timeline.GetStartFrame()

    summary, _ = run(plugin, project, loop_client(), tmp_path=tmp_path)

    assert summary["status"] == "placed", summary
    passes = project.timeline.audio_track("Ambience")
    wind = Placement(
        "Ambience", "ambience", "wind", "/library/wind.wav", "wind", 0.0, 10.0,
        source_duration=3.0, loop=True,
    )  # fmt: skip
    assert len(passes) == len(loop_passes(wind)) == 5
    assert passes[0].start == start
    for before, after in itertools.pairwise(passes):
        assert before.end == after.start, [(i.start, i.end) for i in passes]  # no gap
    ten_seconds = rd.frames_of(10.0, timeline_fps)
    assert ten_seconds <= passes[-1].end - start <= ten_seconds + 1  # the slot, whole


def test_the_double_floors_lengths_at_the_items_rate():
    project = rd.Project("29.97")
    project.sounds["/s.wav"] = 10.0
    project.sound_fps["/s.wav"] = "25"
    (item,) = project.media_pool.ImportMedia(["/s.wav"])
    info = {"mediaPoolItem": item, "startFrame": 0, "endFrame": 26, "recordFrame": 0}
    (placed,) = project.media_pool.AppendToTimeline([dict(info, trackIndex=1, mediaType=2)])
    assert placed.GetEnd() - placed.GetStart() == 31  # 26 * 1.1988 = 31.17, floored


@pytest.mark.parametrize("page", ["media", "fairlight", "color"])
def test_earlier_clips_are_replaced_whatever_page_shows(plugin, tmp_path, page):
    project = make_project()
    run(plugin, project, Client(), tmp_path=tmp_path)
    first = sorted((i.start, i.media.path) for i in project.timeline.audio_track("SFX 1"))
    project.page = page
    assert project.timeline.DeleteClips(project.timeline.audio_track("SFX 1")) is False

    summary, _ = run(plugin, project, Client(), tmp_path=tmp_path)

    assert summary["status"] == "placed", summary["message"]
    assert summary["replaced"] == 4
    assert project.page == "edit"
    again = sorted((i.start, i.media.path) for i in project.timeline.audio_track("SFX 1"))
    assert again == first


@pytest.mark.parametrize(
    ("version", "refused"),
    [([17, 4, 6, 0, ""], True), ([18, 0, 0, 3, ""], False), ([19, 1, 4, 11, ""], False)],
)
def test_the_script_checks_resolves_version_first(plugin, tmp_path, version, refused):
    project = make_project()
    project.version = version
    client = Client()
    summary, _ = run(plugin, project, client, tmp_path=tmp_path)
    if refused:
        assert summary["status"] == "error"
        assert "18.0 or later" in summary["message"] and "17.4.6" in summary["message"]
        assert client.calls == []  # nothing else was asked of Resolve or the client
    else:
        assert summary["status"] == "placed"


def test_the_script_reads_version_strings_too(plugin):
    class Old:
        def GetVersionString(self):
            return "17.4.6.0004"

    assert plugin.resolve_version(Old()) == (17, 4, 6)
    with pytest.raises(plugin.PluginError, match=r"18\.0 or later"):
        plugin.check_version(Old())


def test_the_double_imports_only_what_resolve_imports(tmp_path):
    project = rd.Project("24")
    for name in ("a.wav", "b.ogg", "c.opus", "d.flac", "e.mp3", "f.aiff"):
        project.sounds[f"/lib/{name}"] = 2.0
    made = project.media_pool.ImportMedia(sorted(project.sounds))
    assert sorted(i.GetName() for i in made) == ["a.wav", "e.mp3", "f.aiff"]

    edit = edit_from_dict(
        {"clips": [{"path": "/media/none.mov", "source_in": 0, "source_out": 2,
                    "record_start": 0}], "fps": "24"}
    )  # fmt: skip
    bed = Placement("Ambience", "ambience", "b", "/lib/b.ogg", "b", 0.0, 1.0, source_duration=2.0)
    path = tmp_path / "t.otio"
    path.write_text(to_otio(Suggestions(edit, (), (bed,), "m"), "resolve").to_json_string())
    assert project.media_pool.ImportTimelineFromFile(str(path)) is None  # media missing
    project.sounds["/media/none.mov"] = 2.0
    assert project.media_pool.ImportTimelineFromFile(str(path)) is None  # Ogg: not importable
    wav = Placement("Ambience", "ambience", "a", "/lib/a.wav", "a", 0.0, 1.0, source_duration=2.0)
    path.write_text(to_otio(Suggestions(edit, (), (wav,), "m"), "resolve").to_json_string())
    assert project.media_pool.ImportTimelineFromFile(str(path)) is not None


def test_sent_edit_is_json(plugin, tmp_path):
    client = Client()
    run(plugin, make_project(), client, tmp_path=tmp_path)
    json.dumps(client.edits[0])
    assert Fraction(client.edits[0]["fps"]) == 24
