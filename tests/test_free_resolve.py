"""The free-Resolve path end to end: ``sfxmatch suggest --edit`` reads the timelines free
Resolve exports (OTIO, FCPXML 1.8-1.11, CMX 3600 EDL), and writes a Resolve OTIO that the
Resolve double imports (every clip's media found, in formats Resolve imports).

The fixtures are written by hand in the shapes Resolve exports: OTIO with bare paths and a
``Resolve_OTIO`` namespace, the timeline starting at 01:00:00:00; FCPXML with a sequence
``format``, ``tcStart``/``tcFormat`` and ``asset-clip``s on the spine (1.8: the asset's
``src``; 1.9+: a ``media-rep``); an EDL with ``FCM: DROP FRAME``, record timecodes from
01:00:00;00 and ``* FROM CLIP NAME:`` comments. Each places its shot at a known frame.
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import opentimelineio as otio
import pytest
import resolve_double as rd
from sfxmatch import media
from sfxmatch.cli import main
from sfxmatch.config import Settings
from sfxmatch.pipeline import Pipeline
from sfxmatch.testing import synth
from sfxmatch.timeline.exchange import read_edl, read_fcpxml

NTSC = Fraction(30000, 1001)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    base = tmp_path_factory.mktemp("free")
    env = {
        "SFXMATCH_DATA_DIR": str(base / "data"),
        "SFXMATCH_CACHE_DIR": str(base / "cache"),
        "SFXMATCH_MODEL": "pe-av-tiny",
    }
    sounds = base / "sounds"
    sounds.mkdir()
    for name, seconds, freq in (("rain bed", 8.0, 0), ("knock", 0.4, 900), ("beep", 0.3, 2000)):
        samples = (
            synth.noise_burst(seconds, 48000) if not freq else synth.tone(freq, seconds, 48000)
        )
        audio = media.Audio(np.atleast_2d(samples).astype(np.float32) * 0.5, 48000)
        media.write_wav(sounds / f"{name}.wav", audio)
    with Pipeline(Settings.from_env(env), model="pe-av-tiny") as pipeline:
        pipeline.library_add(sounds, "free", kind_overrides=[("*bed*", "ambience")])
        pipeline.library_index()
    exports = base / "exports"
    exports.mkdir()
    synth.make_cut_video(exports / "shot25.mov", fps=25, shot_lengths=(50, 50))
    synth.make_cut_video(exports / "shot2997.mov", fps=NTSC, shot_lengths=(60, 60))
    return env, exports


def resolve_otio(exports: Path) -> Path:
    """Resolve's OTIO export: 25 fps, from 01:00:00:00, the shot from 0.4 s at 00:00:01:00."""
    timeline = otio.schema.Timeline("Timeline 1")
    timeline.global_start_time = otio.opentime.RationalTime(90000, 25)
    timeline.metadata["Resolve_OTIO"] = {"Resolve OTIO Meta Version": "1.0"}
    track = otio.schema.Track("Video 1", kind=otio.schema.TrackKind.Video)
    track.metadata["Resolve_OTIO"] = {"Locked": False}
    track.append(otio.schema.Gap(source_range=otio.opentime.range_from_start_end_time(
        otio.opentime.RationalTime(0, 25), otio.opentime.RationalTime(25, 25))))  # fmt: skip
    ref = otio.schema.ExternalReference(
        target_url=str(exports / "shot25.mov"),
        available_range=otio.opentime.TimeRange(
            otio.opentime.RationalTime(0, 25), otio.opentime.RationalTime(100, 25)
        ),
    )
    track.append(
        otio.schema.Clip(
            "shot25.mov",
            ref,
            otio.opentime.TimeRange(
                otio.opentime.RationalTime(10, 25), otio.opentime.RationalTime(75, 25)
            ),
        )
    )
    timeline.tracks.append(track)
    path = exports / "Timeline 1.otio"
    path.write_text(timeline.to_json_string())
    return path


def fcpxml(exports: Path, version: str) -> Path:
    """Resolve's FCPXML: 29.97 DF from 01:00:00;00, the shot from 0.5 s at 1 s."""
    src = (exports / "shot2997.mov").as_uri()
    media_rep = version != "1.8"
    asset_src = "" if media_rep else f' src="{src}"'
    rep = f'<media-rep kind="original-media" src="{src}"/>' if media_rep else ""
    text = f"""<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE fcpxml>
<fcpxml version="{version}">
    <resources>
        <format id="r0" name="FFVideoFormat1080p2997" frameDuration="1001/30000s"
                width="1920" height="1080"/>
        <asset id="r1" name="shot2997.mov" start="0/1s" duration="4004/1000s" hasVideo="1"
               format="r0" hasAudio="0"{asset_src}>{rep}</asset>
    </resources>
    <library>
        <event name="Timeline 1 (Resolve)">
            <project name="Timeline 1">
                <sequence format="r0" duration="4004/1000s" tcStart="107999892/30000s"
                          tcFormat="DF" audioLayout="stereo" audioRate="48k">
                    <spine>
                        <gap name="Gap" offset="107999892/30000s" start="0/1s"
                             duration="30030/30000s"/>
                        <asset-clip name="shot2997.mov" ref="r1" offset="108029922/30000s"
                                    start="15015/30000s" duration="90090/30000s" format="r0"
                                    tcFormat="NDF" enabled="1"/>
                    </spine>
                </sequence>
            </project>
        </event>
    </library>
</fcpxml>
"""
    path = exports / f"Timeline 1 v{version}.fcpxml"
    path.write_text(text)
    return path


def edl(exports: Path) -> Path:
    """Resolve's EDL: 29.97 DF from 01:00:00;00, the shot from 00:00:00;15 at 01:00:01;00."""
    text = """TITLE: Timeline 1
FCM: DROP FRAME

001  AX       V     C        00:00:00;15 00:00:03;15 01:00:01;00 01:00:04;00
* FROM CLIP NAME: shot2997.mov

"""
    path = exports / "Timeline 1.edl"
    path.write_text(text)
    return path


CASES = {
    # maker, timeline start frame, fps, drop frame, record frame of the shot, its in frame
    "otio": (resolve_otio, 90000, Fraction(25), False, 25, 10),
    "fcpxml-1.8": (lambda e: fcpxml(e, "1.8"), 107892, NTSC, True, 30, 15),
    "fcpxml-1.9": (lambda e: fcpxml(e, "1.9"), 107892, NTSC, True, 30, 15),
    "fcpxml-1.11": (lambda e: fcpxml(e, "1.11"), 107892, NTSC, True, 30, 15),
    "edl": (edl, 107892, NTSC, True, 30, 15),
}


@pytest.mark.parametrize("case", list(CASES))
def test_free_resolve_round_trip(world, tmp_path, monkeypatch, capsys, case):
    env, exports = world
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    make, start, fps, drop, record, source_in = CASES[case]
    exported = make(exports)
    out = tmp_path / "suggested.otio"

    code = main(
        ["suggest", "--edit", str(exported), "--local", "--progress", "none", "--json",
         "-o", str(out), "--flavour", "resolve"]
    )  # fmt: skip

    captured = capsys.readouterr()
    assert code == 0, captured.err
    edit = json.loads(captured.out)["edit"]
    assert Fraction(edit["fps"]) == fps and edit["drop_frame"] is drop
    timeline = otio.adapters.read_from_file(str(out))
    assert timeline.global_start_time.value == start
    assert timeline.global_start_time.rate == pytest.approx(float(fps))
    video = timeline.video_tracks()[0]
    (clip,) = video.find_clips()
    assert video.range_of_child(clip).start_time.value == record
    assert clip.source_range.start_time.value == source_in
    assert not clip.media_reference.target_url.startswith("file:")  # bare paths, as Resolve
    assert timeline.audio_tracks(), "no sound was placed"
    # Free Resolve's File > Import > Timeline: every clip's media is found and importable.
    project = rd.Project(f"{float(fps):.3f}".rstrip("0").rstrip("."), "01:00:00:00")
    assert project.media_pool.ImportTimelineFromFile(str(out)) is not None
    assert project.media_pool.imported_media


def test_fcpxml_media_rep_and_drop_frame(world):
    _, exports = world
    edit = read_fcpxml(fcpxml(exports, "1.10"))
    assert edit.start_timecode == "01:00:00;00" and edit.drop_frame
    (clip,) = edit.clips
    assert clip.path == str(exports / "shot2997.mov")
    assert clip.source_in == pytest.approx(0.5005) and clip.record_start == pytest.approx(1.001)


def test_an_edl_names_its_rate_or_takes_the_clips(world, tmp_path):
    _, exports = world
    ndf = tmp_path / "cut.edl"
    (tmp_path / "shot25.mov").symlink_to(exports / "shot25.mov")
    ndf.write_text(
        "TITLE: cut\nFCM: NON-DROP FRAME\n\n"
        "001  AX  V  C  00:00:00:10 00:00:02:10 01:00:01:00 01:00:03:00\n"
        "* FROM CLIP NAME: shot25.mov\n"
    )
    edit = read_edl(ndf)
    assert edit.fps == 25 and not edit.drop_frame and edit.start_timecode == "01:00:00:00"
    assert edit.clips[0].record_start == pytest.approx(1.0)
    assert read_edl(ndf, "24").fps == 24
