"""Reading an editor's timeline (OTIO, Premiere-style FCP7 XML) into an ``Edit``."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import opentimelineio as otio
import pytest
from sfxmatch.errors import MediaError
from sfxmatch.suggestions import Edit, SourceClip, Suggestions
from sfxmatch.timeline import read_edit, read_edit_with_notes, write_timeline
from sfxmatch.timeline.flavours import url_to_path

PREMIERE_XML = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE xmeml>
<xmeml version="4">
  <sequence id="sequence-1">
    <name>Cut 3</name>
    <duration>250</duration>
    <rate><timebase>30</timebase><ntsc>TRUE</ntsc></rate>
    <timecode>
      <rate><timebase>30</timebase><ntsc>TRUE</ntsc></rate>
      <string>01:00:00;00</string>
      <frame>107892</frame>
      <displayformat>DF</displayformat>
    </timecode>
    <media>
      <video>
        <track>
          <clipitem id="clipitem-1">
            <name>Interview #1</name>
            <enabled>TRUE</enabled>
            <duration>600</duration>
            <rate><timebase>30</timebase><ntsc>TRUE</ntsc></rate>
            <start>0</start>
            <end>100</end>
            <in>30</in>
            <out>130</out>
            <file id="file-1">
              <name>Interview #1.mov</name>
              <pathurl>file://localhost/Volumes/Media/Interview%20%231.mov</pathurl>
              <rate><timebase>30</timebase><ntsc>TRUE</ntsc></rate>
              <duration>600</duration>
              <timecode>
                <rate><timebase>30</timebase><ntsc>TRUE</ntsc></rate>
                <string>00:00:00;00</string>
                <frame>0</frame>
                <displayformat>DF</displayformat>
              </timecode>
              <media><video/><audio/></media>
            </file>
          </clipitem>
          <transitionitem>
            <rate><timebase>30</timebase><ntsc>TRUE</ntsc></rate>
            <start>90</start>
            <end>110</end>
            <alignment>center</alignment>
            <effect>
              <name>Cross Dissolve</name>
              <effectid>Cross Dissolve</effectid>
              <effecttype>transition</effecttype>
              <mediatype>video</mediatype>
            </effect>
          </transitionitem>
          <clipitem id="clipitem-2">
            <name>B-roll</name>
            <enabled>TRUE</enabled>
            <duration>900</duration>
            <rate><timebase>30</timebase><ntsc>TRUE</ntsc></rate>
            <start>100</start>
            <end>180</end>
            <in>0</in>
            <out>80</out>
            <file id="file-2">
              <name>b roll.mp4</name>
              <pathurl>file://localhost/D:/Footage/b%20roll.mp4</pathurl>
              <rate><timebase>30</timebase><ntsc>TRUE</ntsc></rate>
              <duration>900</duration>
              <media><video/></media>
            </file>
          </clipitem>
          <clipitem id="clipitem-3">
            <name>Muted shot</name>
            <enabled>FALSE</enabled>
            <duration>900</duration>
            <rate><timebase>30</timebase><ntsc>TRUE</ntsc></rate>
            <start>180</start>
            <end>200</end>
            <in>0</in>
            <out>20</out>
            <file id="file-2"/>
          </clipitem>
          <clipitem id="clipitem-4">
            <name>Last</name>
            <enabled>TRUE</enabled>
            <duration>900</duration>
            <rate><timebase>30</timebase><ntsc>TRUE</ntsc></rate>
            <start>220</start>
            <end>250</end>
            <in>300</in>
            <out>330</out>
            <file id="file-2"/>
          </clipitem>
        </track>
      </video>
      <audio/>
    </media>
  </sequence>
</xmeml>
"""

FPS = Fraction(30000, 1001)


def _seconds(frames: int) -> float:
    return float(frames / FPS)


def test_premiere_fcp7_xml(tmp_path: Path) -> None:
    path = tmp_path / "cut 3.xml"
    path.write_text(PREMIERE_XML, encoding="utf-8")
    result = read_edit_with_notes(path)
    edit = result.edit
    assert edit.fps == FPS
    assert edit.start_timecode == "01:00:00;00"
    assert edit.name == "Cut 3"
    assert [c.name for c in edit.clips] == ["Interview #1", "B-roll", "Last"]
    first, second, last = edit.clips
    assert first.path == "/Volumes/Media/Interview #1.mov"
    assert second.path == "D:/Footage/b roll.mp4"
    assert first.source_in == pytest.approx(_seconds(30))
    assert first.record_start == 0.0
    assert second.record_start == pytest.approx(_seconds(100))
    assert last.record_start == pytest.approx(_seconds(220))
    assert last.source_in == pytest.approx(_seconds(300))
    assert last.source_out == pytest.approx(_seconds(330))
    assert any("transition" in n for n in result.notes)
    assert any("disabled clip 'Muted shot'" in n for n in result.notes)


def _edit(fps: Fraction, tc: str) -> Edit:
    return Edit(
        clips=(
            SourceClip("/media/a b/A001.mov", 2.0, 6.0, 0.0, "A001"),
            SourceClip("/media/a b/A002%.mov", 10.0, 12.0, 5.0, "A002"),
        ),
        fps=fps,
        width=1280,
        height=720,
        start_timecode=tc,
        name="Round trip",
    )


@pytest.mark.parametrize(
    ("fps", "tc"),
    [
        (Fraction(25), "10:00:00:00"),
        (Fraction(30000, 1001), "01:00:00;00"),
        (Fraction(24000, 1001), "00:59:50:00"),
    ],
)
@pytest.mark.parametrize(
    ("suffix", "flavour"),
    [(".otio", "generic"), (".otio", "resolve"), (".otio", "premiere"), (".xml", "premiere")],
)
def test_our_own_exports_read_back(
    tmp_path: Path, fps: Fraction, tc: str, suffix: str, flavour: str
) -> None:
    original = _edit(fps, tc)
    path = write_timeline(Suggestions(original, (), (), "m"), tmp_path / f"x{suffix}", flavour)
    edit = read_edit(path)
    assert edit.fps == fps
    assert edit.start_timecode == tc
    assert [c.path for c in edit.clips] == [c.path for c in original.clips]
    for got, want in zip(edit.clips, original.clips, strict=True):
        # on the frame grid: within half a frame of what was exported
        half = 0.5 / float(fps) + 1e-9
        assert abs(got.record_start - want.record_start) <= half
        assert abs(got.source_in - want.source_in) <= half
        assert abs(got.duration - want.duration) <= 2 * half
    if suffix == ".otio":
        assert (edit.width, edit.height) == (1280, 720)


def _otio_file(tmp_path: Path) -> Path:
    tl = otio.schema.Timeline(name="T", global_start_time=otio.opentime.RationalTime(90000, 25))
    v1 = otio.schema.Track(name="V1", kind=otio.schema.TrackKind.Video)
    v2 = otio.schema.Track(name="Graphics", kind=otio.schema.TrackKind.Video)

    def clip(name: str, url: str, start: int, dur: int, enabled: bool = True) -> otio.schema.Clip:
        ref = otio.schema.ExternalReference(
            target_url=url,
            available_range=otio.opentime.TimeRange(
                otio.opentime.RationalTime(86400, 25), otio.opentime.RationalTime(1000, 25)
            ),
        )
        c = otio.schema.Clip(
            name=name,
            media_reference=ref,
            source_range=otio.opentime.TimeRange(
                otio.opentime.RationalTime(86400 + start, 25), otio.opentime.RationalTime(dur, 25)
            ),
        )
        c.enabled = enabled
        return c

    v1.append(clip("a", "file:///C:/Media/x%20y.mov", 10, 50))
    v1.append(
        otio.schema.Transition(
            in_offset=otio.opentime.RationalTime(5, 25),
            out_offset=otio.opentime.RationalTime(5, 25),
        )
    )
    v1.append(clip("b", "/plain/path%20kept.mov", 0, 25))
    v1.append(clip("off", "/plain/off.mov", 0, 25, enabled=False))
    v1.append(
        otio.schema.Gap(
            source_range=otio.opentime.TimeRange(duration=otio.opentime.RationalTime(25, 25))
        )
    )
    v1.append(clip("c", "file://server/share/c.mov", 100, 25))
    v2.append(clip("title", "/g/title.mov", 0, 75))
    tl.tracks.append(v1)
    tl.tracks.append(v2)
    path = tmp_path / "t.otio"
    otio.adapters.write_to_file(tl, str(path))
    return path


def test_otio_with_transitions_disabled_clips_and_media_timecode(tmp_path: Path) -> None:
    result = read_edit_with_notes(_otio_file(tmp_path))
    edit = result.edit
    assert edit.fps == 25
    assert edit.start_timecode == "01:00:00:00"
    assert [c.name for c in edit.clips] == ["a", "b", "c"]
    a, b, c = edit.clips
    assert a.path == "C:/Media/x y.mov"  # drive kept, percent-decoded
    assert b.path == "/plain/path%20kept.mov"  # a bare path is not decoded
    assert c.path == "//server/share/c.mov"
    # source in is measured from the media's own start timecode (available_range)
    assert a.source_in == pytest.approx(10 / 25)
    assert a.record_start == 0.0
    assert b.record_start == pytest.approx(50 / 25)
    assert c.record_start == pytest.approx((50 + 25 + 25 + 25) / 25)
    assert any("transition" in n for n in result.notes)
    assert any("'off'" in n for n in result.notes)


def test_a_track_can_be_chosen(tmp_path: Path) -> None:
    path = _otio_file(tmp_path)
    assert [c.name for c in read_edit(path, track="Graphics").clips] == ["title"]
    assert [c.name for c in read_edit(path, track=1).clips] == ["title"]
    with pytest.raises(ValueError, match="no video track named 'Nope'"):
        read_edit(path, track="Nope")
    with pytest.raises(ValueError, match="no video track 5"):
        read_edit(path, track=5)


def test_unreadable_input_names_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.otio"
    with pytest.raises(MediaError, match=r"missing\.otio"):
        read_edit(missing)
    garbage = tmp_path / "garbage.otio"
    garbage.write_text("{ not json")
    with pytest.raises(MediaError, match=r"garbage\.otio.*not a readable OTIO"):
        read_edit(garbage)
    bad_xml = tmp_path / "bad.xml"
    bad_xml.write_text("<xmeml><sequence>")
    with pytest.raises(MediaError, match=r"bad\.xml"):
        read_edit(bad_xml)
    edl = tmp_path / "cut.edl"
    edl.write_text("TITLE: x")
    with pytest.raises(MediaError, match=r"cut.edl.*\.otio or FCP7 \.xml"):
        read_edit(edl)


def test_a_timeline_without_video_is_a_value_error(tmp_path: Path) -> None:
    tl = otio.schema.Timeline(name="audio only")
    tl.tracks.append(otio.schema.Track(kind=otio.schema.TrackKind.Audio))
    path = tmp_path / "a.otio"
    otio.adapters.write_to_file(tl, str(path))
    with pytest.raises(ValueError, match=r"a\.otio.*no video track"):
        read_edit(path)


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("file:///Users/me/My%20Clip.mov", "/Users/me/My Clip.mov"),
        ("file://localhost/Users/me/%C3%BC.wav", "/Users/me/ü.wav"),
        ("file:///C:/Media/a%20b.wav", "C:/Media/a b.wav"),
        ("file://localhost/D:/x.wav", "D:/x.wav"),
        ("file://nas/share/x%23.wav", "//nas/share/x#.wav"),
        ("/bare/a%20b.wav", "/bare/a%20b.wav"),
        ("C:\\Media\\x.wav", "C:\\Media\\x.wav"),
    ],
)
def test_url_to_path(url: str, path: str) -> None:
    assert url_to_path(url) == path
