"""OTIO / FCP7 XML export: read back through opentimelineio, check the XML Premiere needs,
and the per-editor flavours (bare paths for Resolve, file URIs and metadata for Premiere)."""

from __future__ import annotations

import itertools
import json
import xml.etree.ElementTree as ET
from fractions import Fraction
from pathlib import Path

import opentimelineio as otio
import pytest
from sfxmatch.suggestions import (
    Candidate,
    Edit,
    EffectSuggestion,
    Keyframe,
    Placement,
    SceneSuggestion,
    SourceClip,
    Suggestions,
)
from sfxmatch.timecode import FrameRate, seconds_to_frames, timecode_to_frames
from sfxmatch.timeline import to_otio, write_timeline
from sfxmatch.timeline.export import exact_source_in, snap
from sfxmatch.timeline.flavours import url_to_path

RATES = {
    "23.976": (Fraction(24000, 1001), "01:00:00:00"),
    "24": (Fraction(24), "01:00:00:00"),
    "25": (Fraction(25), "10:00:00:00"),
    "29.97DF": (Fraction(30000, 1001), "01:00:00;00"),
    "29.97NDF": (Fraction(30000, 1001), "01:00:00:00"),
    "30": (Fraction(30), "00:00:00:00"),
    "50": (Fraction(50), "01:00:00:00"),
    "59.94DF": (Fraction(60000, 1001), "00:59:58;00"),
    "59.94NDF": (Fraction(60000, 1001), "01:00:00:00"),
    "60": (Fraction(60), "01:00:00:00"),
}

AMB = Candidate("amb-1", "rain on roof", "/lib/amb/rain roof.wav", 0.91, "ambience", 30.0)
AMB2 = Candidate("amb-2", "city night", "/lib/amb/city#night.wav", 0.80, "ambience", 20.0)
DOOR = Candidate("fx-1", "door slam", "/lib/fx/door slam.wav", 0.7, "effect", 1.5)


def make_suggestions(fps: Fraction = Fraction(25), start_tc: str = "01:00:00:00") -> Suggestions:
    edit = Edit(
        clips=(
            SourceClip("/media/shoot day 1/A001.mov", 2.0, 6.0, 0.0, "A001"),
            SourceClip("/media/shoot day 1/A002 ü.mov", 10.5, 13.0, 4.0, "A002"),
        ),
        fps=fps,
        width=1920,
        height=1080,
        start_timecode=start_tc,
        name="My Edit",
    )
    placements = (
        Placement(
            "Ambience", "ambience", "amb-1", AMB.path, AMB.label, 0.0, 4.0,
            source_start=1.0, source_duration=30.0, gain_db=-12.0, fade_in=0.5,
            fade_out=0.5, scene_index=0, score=0.91, alternatives=(AMB2,),
            automation=(Keyframe(0.0, -12.0, 0.0), Keyframe(2.0, -6.0, 0.3)),
        ),
        Placement(
            "Ambience", "ambience", "amb-2", AMB2.path, AMB2.label, 4.0, 2.5,
            source_duration=20.0, scene_index=1, score=0.8,
        ),
        Placement(
            "SFX 1", "effect", "fx-1", DOOR.path, DOOR.label, 1.234, 0.9,
            source_start=0.05, source_duration=1.5, pan=-0.5, scene_index=0, score=0.7,
        ),
        Placement(
            "SFX 1", "effect", "fx-1", DOOR.path, DOOR.label, 3.1, 0.7,
            source_duration=1.5, scene_index=0, score=0.7,
        ),
        Placement(
            "SFX 2", "effect", "fx-1", DOOR.path, DOOR.label, 1.5, 1.0,
            source_duration=1.5, scene_index=0, score=0.6,
        ),
    )  # fmt: skip
    scenes = (
        SceneSuggestion(
            0, 0.0, 4.0, (AMB, AMB2),
            effects=(EffectSuggestion("door slam", 1.2, 2.1, 0.8, (DOOR,), 0),),
        ),
        SceneSuggestion(1, 4.0, 6.5, (AMB2,)),
    )  # fmt: skip
    return Suggestions(edit, scenes, placements, "test-model")


def expected_spans(
    s: Suggestions, exact: bool = False
) -> dict[str, list[tuple[int, int, int | float]]]:
    """(record start, duration, source start) in frames per track, from our snapping rule;
    with ``exact`` an audio clip's source start is in samples of 48 kHz (the generic .otio
    keeps the in point to the sample)."""
    rate = FrameRate(s.edit.fps, ";" in s.edit.start_timecode)
    out: dict[str, list[tuple[int, int, int | float]]] = {}
    for p in s.placements:
        span = snap(p.record_start, p.duration, p.source_start, rate)
        source: int | float = span.source_start
        if exact and not p.loop:
            source = round(exact_source_in(span, p.record_start, p.source_start, rate) * 48000)
        out.setdefault(p.track, []).append((span.start, span.duration, source))
    for c in s.edit.clips:
        span = snap(c.record_start, c.duration, c.source_in, rate)
        out.setdefault("video", []).append((span.start, span.duration, span.source_start))
    return {k: sorted(v) for k, v in out.items()}


def read_spans(tl: otio.schema.Timeline, fps: float) -> dict[str, list[tuple[int, int, int]]]:
    out: dict[str, list[tuple[int, int, int]]] = {}
    for i, track in enumerate(tl.tracks):
        key = "video" if track.kind == otio.schema.TrackKind.Video else track.name
        if track.kind == otio.schema.TrackKind.Audio and not track.name:
            key = f"audio {i}"
        for clip in track.find_clips():
            rec = clip.range_in_parent()
            src = clip.source_range
            origin = clip.media_reference.available_range.start_time
            start = rec.start_time.value_rescaled_to(fps)
            dur = src.duration.value_rescaled_to(fps)
            if src.start_time.rate == 48000:  # an exact in point, in samples
                source = (src.start_time - origin.rescaled_to(48000)).value
            else:
                source = (src.start_time - origin).value_rescaled_to(fps)
            for v in (start, dur, source):
                assert abs(v - round(v)) < 1e-6, "every time is on the frame or sample grid"
            out.setdefault(key, []).append((round(start), round(dur), round(source)))
    return {k: sorted(v) for k, v in out.items()}


@pytest.mark.parametrize("rate_name", sorted(RATES))
@pytest.mark.parametrize("suffix", [".otio", ".xml"])
def test_export_reads_back_with_identical_placements(
    tmp_path: Path, rate_name: str, suffix: str
) -> None:
    fps, tc = RATES[rate_name]
    s = make_suggestions(fps, tc)
    path = write_timeline(s, tmp_path / f"cut{suffix}", "generic")
    tl = otio.adapters.read_from_file(str(path))
    fr = float(fps)
    assert tl.global_start_time.rate == pytest.approx(fr)
    rate = FrameRate(fps, ";" in tc)
    assert round(tl.global_start_time.value) == timecode_to_frames(tc, rate)
    # Record starts and lengths are whole frames; .otio keeps audio in points to the sample,
    # FCP7 XML in frames (and Premiere's ticks, tested in test_sync_e2e).
    expected = expected_spans(s, exact=suffix == ".otio")
    expected["video"] = expected_spans(s)["video"]
    got = read_spans(tl, fr)
    if suffix == ".xml":
        # FCP7 XML has no audio track names: tracks come back in order
        names = [t.name for t in tl.tracks if t.kind == otio.schema.TrackKind.Audio]
        assert len(names) == 3
        keys = sorted(k for k in got if k != "video")
        got = {"video": got["video"]} | dict(
            zip(["Ambience", "SFX 1", "SFX 2"], [got[k] for k in keys], strict=True)
        )
    else:
        assert [t.name for t in tl.tracks] == ["Video 1", "Ambience", "SFX 1", "SFX 2"]
    assert got == expected
    # the frame snapping moved nothing by more than half a frame
    for p in s.placements:
        span = snap(p.record_start, p.duration, p.source_start, rate)
        assert abs(span.start / fps - Fraction(p.record_start)) <= 1 / (2 * fps)
        intended_offset = p.record_start - p.source_start
        got_offset = span.start / fps - span.source_start / fps
        assert abs(got_offset - Fraction(intended_offset)) <= 1 / (2 * fps) + Fraction(1, 10**9)


def test_tracks_gaps_and_media_references(tmp_path: Path) -> None:
    s = make_suggestions()
    tl = to_otio(s)
    assert [t.name for t in tl.tracks] == ["Video 1", "Ambience", "SFX 1", "SFX 2"]
    assert [t.kind for t in tl.tracks] == ["Video", "Audio", "Audio", "Audio"]
    sfx1 = tl.tracks[2]
    kinds = [type(c).__name__ for c in sfx1]
    assert kinds == ["Gap", "Clip", "Gap", "Clip"]
    assert sfx1[0].duration().value == seconds_to_frames(1.234, 25)
    for clip in tl.find_clips():
        ref = clip.media_reference
        assert isinstance(ref, otio.schema.ExternalReference)
        assert ref.available_range is not None
        avail, src = ref.available_range, clip.source_range
        assert src.start_time.to_seconds() >= avail.start_time.to_seconds() - 1e-9
        assert (
            src.end_time_exclusive().to_seconds() <= avail.end_time_exclusive().to_seconds() + 1e-9
        )
    amb = tl.tracks[1][0]
    # generic flavour: the sound's available range is at its sample rate, 0..source_duration
    assert amb.media_reference.available_range.duration.rate == 48000
    assert amb.media_reference.available_range.duration.value == 30.0 * 48000
    assert amb.media_reference.target_url == "file:///lib/amb/rain%20roof.wav"


def test_clip_metadata_and_markers() -> None:
    s = make_suggestions()
    tl = to_otio(s)
    amb = tl.tracks[1][0]
    meta = amb.metadata["sfxmatch"]
    assert meta["sound_id"] == "amb-1"
    assert meta["gain_db"] == -12.0
    assert meta["fade_in"] == 0.5 and meta["fade_out"] == 0.5
    assert meta["label"] == "rain on roof"
    assert meta["score"] == pytest.approx(0.91)
    assert [k["gain_db"] for k in meta["automation"]] == [-12.0, -6.0]
    assert [a["sound_id"] for a in meta["alternatives"]] == ["amb-2"]
    door = tl.tracks[2][1]
    assert door.metadata["sfxmatch"]["pan"] == -0.5
    assert door.metadata["sfxmatch"]["record_start"] == 1.234  # the exact, unsnapped time
    markers = list(tl.tracks.markers)
    scenes = [m for m in markers if m.metadata["sfxmatch"]["type"] == "scene"]
    effects = [m for m in markers if m.metadata["sfxmatch"]["type"] == "effect"]
    assert [m.metadata["sfxmatch"]["scene_index"] for m in scenes] == [0, 1]
    assert scenes[1].marked_range.start_time.value == 100  # 4.0 s at 25 fps
    alts = [a["sound_id"] for a in scenes[0].metadata["sfxmatch"]["ambience"]]
    assert alts == ["amb-1", "amb-2"]
    assert effects[0].name == "door slam"
    assert effects[0].marked_range.start_time.value == 30
    assert effects[0].marked_range.duration.value == seconds_to_frames(2.1, 25) - 30


def test_overlapping_placements_on_one_track_are_refused() -> None:
    s = make_suggestions()
    bad = Placement("SFX 1", "effect", "x", "/x.wav", "x", 1.5, 1.0, source_duration=2.0)
    clash = Suggestions(s.edit, s.scenes, (*s.placements, bad), "m")
    with pytest.raises(ValueError, match="overlap on track 'SFX 1'"):
        to_otio(clash)


def test_touching_placements_do_not_count_as_overlap() -> None:
    s = make_suggestions()
    a = Placement("SFX 3", "effect", "x", "/x.wav", "x", 1.0, 0.51, source_duration=2.0)
    b = Placement("SFX 3", "effect", "x", "/x.wav", "x", 1.51, 0.5, source_duration=2.0)
    tl = to_otio(Suggestions(s.edit, s.scenes, (*s.placements, a, b), "m"))
    track = next(t for t in tl.tracks if t.name == "SFX 3")
    clips = list(track.find_clips())
    assert clips[0].range_in_parent().end_time_exclusive() == clips[1].range_in_parent().start_time


def test_a_looping_placement_becomes_one_clip_per_pass() -> None:
    s = make_suggestions()
    loop = Placement(
        "Ambience", "ambience", "l", "/lib/loop.wav", "loop", 6.5, 5.0,
        source_start=0.5, source_duration=2.0, loop=True, loop_crossfade=0.5,
    )  # fmt: skip
    tl = to_otio(Suggestions(s.edit, s.scenes, (*s.placements, loop), "m"))
    track = tl.tracks[1]
    clips = [c for c in track.find_clips() if c.name == "loop"]
    # The mix's passes (loop_passes): 0.5..2.0 of the file at 6.5 s, then the whole file
    # from 7.5, 9.0 and 10.5 s (each starting one 0.5 s crossfade before the last ends).
    # The clips butt at the crossfades' centres: 7.75, 9.25 and 10.75 s.
    assert [c.metadata["sfxmatch"]["pass"] for c in clips] == [0, 1, 2, 3]
    cuts = [6.5, 7.75, 9.25, 10.75, 11.5]
    assert [c.range_in_parent().start_time.value for c in clips] == [
        seconds_to_frames(t, 25) for t in cuts[:-1]
    ]
    assert [c.source_range.duration.value for c in clips] == [
        seconds_to_frames(b, 25) - seconds_to_frames(a, 25) for a, b in itertools.pairwise(cuts)
    ]
    # Later clips start 0.25 s into the file, moved with their start's snap so the sound
    # stays in place: 7.75 s snaps to 7.76 s (0.26 s: frame 6.5, up to 7), 9.25 s to 9.24 s
    # (0.24 s: frame 6), 10.75 s to 10.76 s.
    assert [c.source_range.start_time.value for c in clips] == [13, 7, 6, 7]
    assert [c.metadata["sfxmatch"]["pass_record_start"] for c in clips] == pytest.approx(
        [6.5, 7.5, 9.0, 10.5]
    )
    for a, b in itertools.pairwise(clips):
        assert a.range_in_parent().end_time_exclusive() == b.range_in_parent().start_time
    # a dissolve over each 0.5 s crossfade (6 frames before the cut, 6 after at 25 fps)
    seams = [i for i in track if isinstance(i, otio.schema.Transition)]
    assert len(seams) == 3
    assert all(t.transition_type == otio.schema.TransitionTypes.SMPTE_Dissolve for t in seams)


def test_unknown_flavour_and_suffix_are_refused(tmp_path: Path) -> None:
    s = make_suggestions()
    with pytest.raises(ValueError, match="flavour"):
        to_otio(s, "avid")
    with pytest.raises(ValueError, match=r"\.otio or \.xml"):
        write_timeline(s, tmp_path / "cut.edl")
    assert not list(tmp_path.iterdir())


def test_write_is_atomic_and_replaces(tmp_path: Path) -> None:
    target = tmp_path / "cut.otio"
    target.write_text("old")
    write_timeline(make_suggestions(), target)
    assert json.loads(target.read_text())["OTIO_SCHEMA"] == "Timeline.1"
    assert [p.name for p in tmp_path.iterdir()] == ["cut.otio"]


# --------------------------------------------------------------------------- FCP7 XML


@pytest.mark.parametrize(
    ("rate_name", "timebase", "ntsc", "tc_string", "display"),
    [
        ("29.97DF", "30", "TRUE", "01:00:00;00", "DF"),
        ("29.97NDF", "30", "TRUE", "01:00:00:00", "NDF"),
        ("23.976", "24", "TRUE", "01:00:00:00", "NDF"),
        ("25", "25", "FALSE", "10:00:00:00", "NDF"),
        ("59.94DF", "60", "TRUE", "00:59:58;00", "DF"),
    ],
)
def test_fcp7_xml_has_what_premiere_needs(
    tmp_path: Path, rate_name: str, timebase: str, ntsc: str, tc_string: str, display: str
) -> None:
    fps, tc = RATES[rate_name]
    s = make_suggestions(fps, tc)
    path = write_timeline(s, tmp_path / "cut.xml", "premiere")
    text = path.read_text()
    assert text.startswith("<?xml")
    assert "<!DOCTYPE xmeml>" in text
    root = ET.fromstring(text)
    assert root.tag == "xmeml"
    seq = root.find(".//sequence")
    assert seq is not None
    assert seq.findtext("./rate/timebase") == timebase
    assert seq.findtext("./rate/ntsc") == ntsc
    assert seq.findtext("./timecode/string") == tc_string
    assert seq.findtext("./timecode/displayformat") == display
    rate = FrameRate(fps, display == "DF")
    assert int(seq.findtext("./timecode/frame") or -1) == timecode_to_frames(tc, rate)
    video_tracks = seq.findall("./media/video/track")
    audio_tracks = seq.findall("./media/audio/track")
    assert len(video_tracks) == 1 and len(audio_tracks) == 3
    expected = expected_spans(s)
    # a file used twice is written in full once, then referenced by id
    files = {f.get("id", ""): f for f in root.iter("file") if f.find("pathurl") is not None}
    for track_el, name in zip(audio_tracks, ["Ambience", "SFX 1", "SFX 2"], strict=True):
        items = track_el.findall("./clipitem")
        got = sorted(
            (
                int(i.findtext("start") or -1),
                int(i.findtext("end") or -1) - int(i.findtext("start") or -1),
                int(i.findtext("in") or -1),
            )
            for i in items
        )
        assert got == expected[name]
        for item in items:
            assert int(item.findtext("out") or 0) - int(item.findtext("in") or 0) == int(
                item.findtext("end") or 0
            ) - int(item.findtext("start") or 0)
            assert item.findtext("./sourcetrack/mediatype") == "audio"
            ref = item.find("./file")
            assert ref is not None
            file_el = files[ref.get("id", "")]
            url = file_el.findtext("pathurl") or ""
            assert url.startswith("file://localhost/")
            assert " " not in url and "#" not in url  # percent-encoded
            assert file_el.findtext("./media/audio/channelcount") == "2"
    urls = {e.text for e in root.iter("pathurl")}
    assert "file://localhost/lib/amb/rain%20roof.wav" in urls
    assert "file://localhost/lib/amb/city%23night.wav" in urls
    assert "file://localhost/media/shoot%20day%201/A002%20%C3%BC.mov" in urls
    assert {url_to_path(u) for u in urls} >= {
        "/lib/amb/city#night.wav",
        "/media/shoot day 1/A002 ü.mov",
    }
    marker_names = [m.findtext("name") for m in seq.findall("./marker")]
    assert marker_names == ["Scene 1", "door slam", "Scene 2"]


# --------------------------------------------------------------------------- flavours


def test_resolve_flavour_has_bare_paths_and_resolve_metadata() -> None:
    s = make_suggestions(Fraction(24000, 1001), "01:00:00:00")
    tl = to_otio(s, "resolve")
    data = json.loads(otio.adapters.write_to_string(tl, "otio_json"))
    assert data["global_start_time"]["value"] == 86400.0
    assert data["metadata"]["Resolve_OTIO"] == {"Resolve OTIO Meta Version": "1.0"}
    urls = [c.media_reference.target_url for c in tl.find_clips()]
    assert "/lib/amb/rain roof.wav" in urls
    assert "/media/shoot day 1/A001.mov" in urls
    assert all(u.startswith("/") and "://" not in u for u in urls)
    for track in tl.tracks:
        assert track.metadata["Resolve_OTIO"]["Locked"] is False
    assert tl.tracks[1].metadata["Resolve_OTIO"]["Audio Type"] == "Stereo"
    amb = tl.tracks[1][0]
    assert [dict(c) for c in amb.metadata["Resolve_OTIO"]["Channels"]] == [
        {"Source Channel ID": 0, "Source Track ID": 0},
        {"Source Channel ID": 1, "Source Track ID": 0},
    ]
    # gain goes into Resolve's clip-volume effect, automation as clip-relative frame keys
    (effect,) = amb.effects
    volume = effect.metadata["Resolve_OTIO"]
    assert volume["Effect Name"] == "Fairlight Clip Volume and Fades"
    param = volume["Parameters"][0]
    assert param["Parameter ID"] == "volume" and param["Parameter Value"] == -12.0
    assert dict(param["Key Frames"]) == {
        "0": {"Value": -12.0, "Variant Type": "Double"},
        str(seconds_to_frames(2.0, Fraction(24000, 1001))): {
            "Value": -6.0,
            "Variant Type": "Double",
        },
    }
    # no gain, no effect
    assert not list(tl.tracks[1][1].effects)
    # available ranges at the timeline rate, as Resolve writes them
    assert amb.media_reference.available_range.duration.rate == pytest.approx(24000 / 1001)


def test_premiere_flavour_has_file_uris_and_premiere_metadata() -> None:
    s = make_suggestions(Fraction(30000, 1001), "01:00:00;00")
    tl = to_otio(s, "premiere")
    urls = {c.media_reference.target_url for c in tl.find_clips()}
    assert urls == {
        "file:///media/shoot%20day%201/A001.mov",
        "file:///media/shoot%20day%201/A002%20%C3%BC.mov",
        "file:///lib/amb/rain%20roof.wav",
        "file:///lib/amb/city%23night.wav",
        "file:///lib/fx/door%20slam.wav",
    }
    assert tl.metadata["PremierePro_OTIO"]["MetadataVersion"] == "1.0"
    stack = tl.tracks.metadata["PremierePro_OTIO"]
    assert stack["VideoFrameRate"] == pytest.approx(29.97, abs=1e-3)
    assert stack["AudioFrameRate"] == 48000.0
    assert dict(stack["VideoResolution"]) == {"height": 1080, "width": 1920}
    track_meta = tl.tracks[1].metadata["PremierePro_OTIO"]["AudioChannels"]
    assert dict(track_meta) == {"ChannelType": "Stereo", "NumberOfChannels": 2}
    link_ids = []
    for track in tl.tracks:
        for clip in track.find_clips():
            ppro = clip.metadata["PremierePro_OTIO"]
            link_ids.append(ppro["LinkID"])
            if track.kind == otio.schema.TrackKind.Audio:
                ch = ppro["AudioChannels"]
                assert ch["ChannelType"] == "Stereo"
                assert [a["SecondaryChannelIndex"] for a in ch["SecondaryAssignments"]] == [0, 1]
    assert len(set(link_ids)) == len(link_ids)  # nothing linked to anything else


def test_windows_paths_become_drive_uris() -> None:
    s = make_suggestions()
    clip = SourceClip("C:\\Media\\Day 1\\B001.mov", 0.0, 2.0, 6.5, "B001")
    edit = Edit((*s.edit.clips, clip), s.edit.fps, 1920, 1080, s.edit.start_timecode, "e")
    tl = to_otio(Suggestions(edit, s.scenes, s.placements, "m"), "premiere")
    (win,) = [c for c in tl.tracks[0].find_clips() if c.name == "B001"]
    assert win.media_reference.target_url == "file:///C:/Media/Day%201/B001.mov"
    assert win.media_reference.name == "B001.mov"
    resolve = to_otio(Suggestions(edit, s.scenes, s.placements, "m"), "resolve")
    (win,) = [c for c in resolve.tracks[0].find_clips() if c.name == "B001"]
    assert win.media_reference.target_url == "C:\\Media\\Day 1\\B001.mov"


def test_real_media_ranges_come_from_the_probe(tmp_path: Path) -> None:
    from sfxmatch.media import Audio, write_wav
    from sfxmatch.testing import synth

    wav = write_wav(tmp_path / "sound.wav", Audio(synth.silence(2.5, 44100, channels=1), 44100))
    video = synth.make_cut_video(tmp_path / "pic.mp4", shot_lengths=(25, 25), moving_object=False)
    edit = Edit((SourceClip(str(video.path), 0.4, 1.6, 0.0, "pic"),), Fraction(25))
    p = Placement("SFX 1", "effect", "s", str(wav), "s", 0.2, 1.0)  # source_duration unknown
    tl = to_otio(Suggestions(edit, (), (p,), "m"), "premiere")
    vclip = tl.tracks[0][0]
    assert vclip.media_reference.available_range.duration.value == 50  # 2 s at 25 fps
    aclip = tl.tracks[1].find_clips()[0]
    # 62.5 frames of sound: its whole frames, never the half one it does not have
    assert aclip.media_reference.available_range.duration.value == 62
    assert aclip.metadata["PremierePro_OTIO"]["AudioChannels"]["ChannelType"] == "Mono"
    assert tl.tracks[1].metadata["PremierePro_OTIO"]["AudioChannels"]["NumberOfChannels"] == 1
    generic = to_otio(Suggestions(edit, (), (p,), "m"))
    ar = generic.tracks[1].find_clips()[0].media_reference.available_range
    assert (ar.duration.rate, ar.duration.value) == (44100, 2.5 * 44100)
