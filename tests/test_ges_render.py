"""A real, independent renderer of our exported OTIO: GStreamer Editing Services.

Our generic ``.otio`` (beds looped with dissolves at their seams, effects spotted by their
sync point with exact in points, a plain effect) is converted to GES's ``.xges`` by OTIO's
own xges adapter (``otio-xges-adapter``) and rendered by ``ges-launch-1.0`` (Debian
``ges1.0-tools``, installed by dev.sh) at 23.976, 24, 25, 29.97 DF, 50 and 59.94 fps. The
sounds are silence with single-sample clicks at known places, away from the crossfades. Every
click GES renders must lie within one sample of where the OTIO file's own times put it, and
within half a frame of where sfxmatch's own mix puts it.

GES starts a timeline whose first clip follows a gap 34 samples late (measured with 1.22: the
same clip at 0 s, or after another clip, lands exactly); a silent clip from 0 s on a track of
its own keeps that artefact of the renderer out of the measurement.
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
GES_NS_ROUNDING = 6  # samples: see the assertion
GES = shutil.which("ges-launch-1.0")
HAS_XGES = "xges" in otio.adapters.available_adapter_names()
pytestmark = pytest.mark.skipif(
    GES is None or not HAS_XGES,
    reason="GStreamer Editing Services (Debian ges1.0-tools) or otio-xges-adapter is not "
    "installed (dev.sh installs both where it can)",
)
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
    out["silence"] = media.write_wav(
        folder / "silence.wav", media.Audio(np.zeros((1, 10 * SR), np.float32), SR), subtype="pcm24"
    )
    return out


def clicks_in(samples: np.ndarray) -> list[int]:
    level = np.abs(samples).max(axis=0)
    hits = np.flatnonzero(level > 0.2)
    return [int(h) for k, h in enumerate(hits) if k == 0 or h - hits[k - 1] > 10]


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
    # GES: a silent anchor from 0 s (module notes), then our tracks, from their record 0
    anchor = otio.schema.Track("anchor", kind=otio.schema.TrackKind.Audio)
    anchor.append(
        otio.schema.Clip(
            "silence",
            otio.schema.ExternalReference(target_url=files["silence"].as_uri()),
            otio.opentime.TimeRange(
                otio.opentime.RationalTime(0, SR), otio.opentime.RationalTime(7 * SR, SR)
            ),
        )
    )
    timeline.tracks.insert(0, anchor)
    timeline.global_start_time = None
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
    # Where a frame is a whole number of nanoseconds (25, 50 fps) GES lands every click to
    # the sample. Elsewhere GES 1.22 renders clips after about 2 s up to 5 samples early
    # (0.1 ms: clips on every layer, with or without a dissolve): its own rounding of times
    # the adapter writes in whole nanoseconds, not ours, as the FFmpeg render of the same
    # file shows to the sample (test_timeline_render_check). Bounded here, not hidden.
    exact = (Fraction(10**9) / fps).denominator == 1
    assert vs_otio <= (1 if exact else GES_NS_ROUNDING), [
        (r, float(e)) for r, e in zip(rendered, expected, strict=True)
    ]
    assert vs_mix <= SR / float(fps) / 2
