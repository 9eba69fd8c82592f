"""A real, independent renderer of our exported OTIO: GStreamer Editing Services.

Our generic ``.otio`` (beds looped with dissolves at their seams, effects spotted by their
sync point with exact in points, a plain effect) is converted to GES's ``.xges`` by OTIO's
own xges adapter (``otio-xges-adapter``) and rendered by ``ges-launch-1.0`` (Debian
``ges1.0-tools``, installed by dev.sh) at 23.976, 24, 25, 29.97 DF, 50 and 59.94 fps. The
sounds are silence with single-sample clicks at known places, away from the crossfades. Every
click GES renders must lie within one sample of where the OTIO file's own times put it, and
within half a frame of where sfxmatch's own mix puts it.

The GES project runs at our sample rate. Like any editor's project, a GES timeline has a
sample rate of its own: the audio track's restriction caps, which the adapter leaves unset,
and GES 1.22 then mixes at its default of 44.1 kHz, resampled to the 48 kHz of the output.
Rendering at 44.1 kHz, GES drops a 44.1 kHz sample at many clip edges (each place the
timeline's set of clips changes) that are not on its 44.1 kHz grid, so a clip lands early by
the count of such edges before it: 25 and 50 fps frames are whole 44.1 kHz samples (1764,
882) and were exact, 24 fps frames are not (1837.5) and clicks after ten one-frame clips
came out 6 samples early; one clip at 1.005 s landed 1 early and the render came out 2
samples short; clips after a gap played late (34 samples at the start of a timeline, 103
after a second gap; GES fills gaps with its own silence at the track's rate). With the
track's restriction caps at 48 kHz (set through the adapter's own track metadata, below) all
of these render to the sample. What is left is GES rounding times between samples: 29.97 and
59.94 fps frames are not whole samples (1601.6, 800.8), GES puts a clip on a sample next to
its time, and its rounding at such edges can move later clips by a sample more (forty
one-frame clips at 59.94 before a clip: 4 samples late; here the bed's third pass, at 3.5035 s,
a whole sample, lands 1 early: at most 1 in this timeline).

Our mix is not snapped to frames: it plays each placement at the pipeline's own seconds, and
the timeline lays it on the frame grid within half a frame (:mod:`sfxmatch.timeline.export`).
At 25 fps the bed and the plain effect start at 0.3 s and 2.7 s, 7.5 and 67.5 frames, so
their clicks are exactly half a frame (960 samples) from our mix in the file and in GES.
"""

from __future__ import annotations

import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import opentimelineio as otio
import pytest
from sfxmatch import media
from sfxmatch.match.spot import spot_effect
from sfxmatch.mix import render_stems
from sfxmatch.suggestions import Edit, Placement, SourceClip, Suggestions
from sfxmatch.timeline import to_otio
from timeline_render import clips_from_otio

SR = 48000
GES = shutil.which("ges-launch-1.0")
HAS_XGES = "xges" in otio.adapters.available_adapter_names()
pytestmark = pytest.mark.skipif(
    GES is None or not HAS_XGES,
    reason="GStreamer Editing Services (Debian ges1.0-tools) or otio-xges-adapter is not "
    "installed (dev.sh installs both where it can)",
)
# GES's default audio restriction caps with our sample rate in place of its 44.1 kHz
GES_AUDIO = f"audio/x-raw, format=S32LE, channels=2, rate={SR}, layout=interleaved"
CLICKS = {"bed": (0.5, 1.2), "fx": (0.2,), "plain": (0.15, 0.45)}  # seconds into each file
LENGTHS = {"bed": 2.0, "fx": 0.6, "plain": 0.7}


def sounds(folder: Path) -> dict[str, Path]:
    out = {}
    for name, clicks in CLICKS.items():
        samples = np.zeros((1, round(LENGTHS[name] * SR)), np.float32)
        for c in clicks:
            samples[0, round(c * SR)] = 0.9
        out[name] = media.write_wav(
            folder / f"{name}.wav", media.Audio(samples, SR), subtype="pcm24"
        )
    return out


def clicks_in(samples: np.ndarray) -> list[int]:
    level = np.abs(samples).max(axis=0)
    hits = np.flatnonzero(level > 0.2)
    return [int(h) for k, h in enumerate(hits) if k == 0 or h - hits[k - 1] > 10]


def ges_audio_track() -> object:
    """The GES audio track of the adapter's default, mixing at ``SR`` (module notes)."""
    from otio_xges_adapter.xges import GESTrackType, XgesTrack

    track = XgesTrack.new_from_track_type(GESTrackType.AUDIO)
    track.properties.set("restriction-caps", "string", GES_AUDIO)
    return track


RATES = [
    (Fraction(24000, 1001), "00:00:00:00"),
    (Fraction(24), "00:00:00:00"),
    (Fraction(25), "01:00:00:00"),
    (Fraction(30000, 1001), "00:59:59;28"),
    (Fraction(50), "00:00:00:00"),
    (Fraction(60000, 1001), "00:00:00:00"),
]


@pytest.mark.parametrize(("fps", "tc"), RATES, ids=[f"{float(r):.3f}" for r, _ in RATES])
def test_ges_renders_our_otio_where_it_says_and_where_we_mix(tmp_path, fps, tc, record_property):
    files = sounds(tmp_path)
    spot = spot_effect(
        sound_id="fx", onset_frame=40, fps=fps, sync_point=0.2, sound_duration=0.6,
        end_frame=200,
    )  # fmt: skip
    assert spot is not None
    placements = (
        Placement(
            "Ambience", "ambience", "bed", str(files["bed"]), "bed", 0.3, 5.0,
            source_start=0.4, source_duration=2.0, loop=True, loop_crossfade=0.2,
        ),
        Placement(
            "SFX 1", "effect", "fx", str(files["fx"]), "fx", spot.record_start, spot.duration,
            source_start=spot.source_start, source_duration=0.6, sync_point=spot.sync_point,
        ),
        Placement(
            "SFX 2", "effect", "plain", str(files["plain"]), "plain", 2.7, 0.6,
            source_start=0.05, source_duration=0.7,
        ),
    )  # fmt: skip
    edit = Edit((SourceClip("/media/picture.mov", 0.0, 6.0, 0.0),), fps, start_timecode=tc)
    s = Suggestions(edit, (), placements, "m")
    timeline = to_otio(s)
    for track in list(timeline.video_tracks()):
        timeline.tracks.remove(track)
    timeline.tracks.markers.clear()
    otio_path = tmp_path / "cut.otio"
    otio.adapters.write_to_file(timeline, str(otio_path))
    stated = clips_from_otio(otio_path)
    timeline.global_start_time = None
    timeline.tracks.metadata["XGES"] = {"tracks": [ges_audio_track()]}
    xges = tmp_path / "cut.xges"
    otio.adapters.write_to_file(timeline, str(xges))
    out = tmp_path / "ges.wav"
    subprocess.run(
        [GES, "--load", str(xges), "-o", out.as_uri(), "-t", "audio",
         "--format", "audio/x-wav:audio/x-raw,format=S24LE,rate=48000"],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    rendered = clicks_in(media.load_audio(out, channels="keep").samples)

    expected = sorted(
        (c.record + click - c.source) * SR
        for c in stated
        for click in CLICKS[Path(c.path).stem]
        if c.source <= click < c.source + c.duration
    )
    stems = render_stems(placements, 6.0, sample_rate=SR)
    mixed = sorted(h for _name, stem in stems.tracks for h in clicks_in(stem))
    assert len(rendered) == len(expected) == len(mixed) >= 8, (rendered, expected, mixed)
    vs_otio = max(abs(r - e) for r, e in zip(rendered, expected, strict=True))
    vs_mix = max(abs(r - m) for r, m in zip(rendered, mixed, strict=True))
    record_property("ges_max_samples_vs_otio", float(vs_otio))
    record_property("ges_max_samples_vs_mix", float(vs_mix))
    print(
        f"{float(fps):.3f} fps: GES vs OTIO {float(vs_otio):.2f} samples, vs mix {vs_mix} samples"
    )
    assert vs_otio <= 1, [(r, float(e)) for r, e in zip(rendered, expected, strict=True)]
    assert vs_mix <= SR / float(fps) / 2
