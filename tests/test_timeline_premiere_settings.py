"""Premiere's sequence settings in what we export, and the exported files' modes.

- The Premiere OTIO's sequence audio rate (``AudioFrameRate``) is 48 kHz, or the edit's own
  when an editor's timeline said it; never a library file's (an 8 kHz effect on SFX 1).
- The FCP7 XML sequence says its ``<format>`` (frame size, rate, square pixels; audio 48 kHz
  at 24 bits), names its tracks as Premiere does (``MZ.TrackName``) and says each track is
  enabled and unlocked.
- Exported ``.otio``/``.xml`` files get the user's normal mode (0666 less the umask), not the
  0600 of a temporary file: a shared project's other users can read them.
"""

from __future__ import annotations

import os
import stat
import wave
import xml.etree.ElementTree as ET
from fractions import Fraction
from pathlib import Path

import pytest
from sfxmatch.suggestions import Edit, Placement, SourceClip, Suggestions
from sfxmatch.timeline import read_edit, timeline_to_string, to_otio, write_timeline
from sfxmatch.timeline.flavours import PREMIERE


def tone(path: Path, rate: int, seconds: float = 1.0) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"\x01\x00" * int(rate * seconds))
    return path


def suggestions(tmp_path: Path, fps: Fraction = Fraction(25)) -> Suggestions:
    edit = Edit((SourceClip(str(tmp_path / "pic.mov"), 0.0, 5.0, 0.0),), fps, 1920, 1080)
    low = tone(tmp_path / "phone.wav", 8000)
    bed = tone(tmp_path / "bed.wav", 44100, 3.0)
    placements = (
        Placement("Ambience", "ambience", "b", str(bed), "bed", 0.0, 2.0, source_duration=3.0),
        Placement("SFX 1", "effect", "p", str(low), "phone", 1.0, 0.5, source_duration=1.0),
    )
    return Suggestions(edit, (), placements, "m")


def test_premiere_sequence_audio_rate_is_48k_not_a_files(tmp_path):
    timeline = to_otio(suggestions(tmp_path), "premiere")
    assert timeline.tracks.metadata[PREMIERE]["AudioFrameRate"] == 48000.0


def test_premiere_sequence_audio_rate_follows_the_edit_read(tmp_path):
    s = suggestions(tmp_path)
    theirs = to_otio(s, "premiere")
    theirs.tracks.metadata[PREMIERE]["AudioFrameRate"] = 96000.0
    theirs.metadata.pop("sfxmatch")
    path = tmp_path / "cut.otio"
    path.write_text(theirs.to_json_string())
    edit = read_edit(path)
    assert edit.sample_rate == 96000
    again = to_otio(Suggestions(edit, (), s.placements, "m"), "premiere")
    assert again.tracks.metadata[PREMIERE]["AudioFrameRate"] == 96000.0


@pytest.mark.parametrize(
    ("fps", "timebase", "ntsc"),
    [(Fraction(25), "25", "FALSE"), (Fraction(30000, 1001), "30", "TRUE")],
)
def test_fcp7_sequence_says_its_format_and_tracks(tmp_path, fps, timebase, ntsc):
    text = timeline_to_string(to_otio(suggestions(tmp_path, fps), "premiere"), ".xml")
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE xmeml>')
    seq = ET.fromstring(text).find(".//sequence")
    video = seq.find("./media/video/format/samplecharacteristics")
    assert video is not None, "an empty <format/>"
    assert (video.findtext("width"), video.findtext("height")) == ("1920", "1080")
    assert (video.findtext("rate/timebase"), video.findtext("rate/ntsc")) == (timebase, ntsc)
    assert video.findtext("pixelaspectratio") == "square"
    audio = seq.find("./media/audio/format/samplecharacteristics")
    assert (audio.findtext("samplerate"), audio.findtext("depth")) == ("48000", "24")
    names = [t.get("MZ.TrackName") for t in seq.findall("./media/audio/track")]
    assert names == ["Ambience", "SFX 1"]
    assert [t.get("MZ.TrackName") for t in seq.findall("./media/video/track")] == ["Video 1"]
    for track in seq.findall("./media/*/track"):
        assert (track.findtext("enabled"), track.findtext("locked")) == ("TRUE", "FALSE")


@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
@pytest.mark.parametrize("suffix", [".otio", ".xml"])
def test_exported_files_get_the_users_normal_mode(tmp_path, mask, mode, suffix):
    s = suggestions(tmp_path)
    old = os.umask(mask)
    try:
        path = write_timeline(s, tmp_path / f"out{suffix}", "premiere")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == mode
    path.chmod(0o664)  # a mode the user chose is kept when the file is written again
    write_timeline(s, path, "premiere")
    assert stat.S_IMODE(path.stat().st_mode) == 0o664
