"""Every range handed to an editor lies inside its media (a property over frame rates, sample
rates and file lengths).

Beds looped with crossfades (dissolves either side of each seam), effects spotted by their
sync point and plain clips are exported as generic, Resolve and Premiere OTIO and as what FCP7
XML is written from. For every audio clip: its source range lies inside its media reference's
available range, the media a dissolve plays beyond a clip's out point (or before its in point)
is there too, and the available range itself never claims more than the file has (its length
in whole frames or samples, floored: ``timecode.media_frames``). Editors refuse ranges past a
file's last sample (GES silently cuts them, shifting whatever follows).
"""

from __future__ import annotations

from fractions import Fraction

import opentimelineio as otio
from hypothesis import given, settings
from hypothesis import strategies as st
from sfxmatch.match.spot import spot_effect
from sfxmatch.suggestions import Edit, Placement, SourceClip, Suggestions
from sfxmatch.timeline import to_otio
from sfxmatch.timeline.export import for_fcp_xml

RATES = [Fraction(24000, 1001), Fraction(24), Fraction(25), Fraction(30000, 1001)]
RATES += [Fraction(30), Fraction(50), Fraction(60000, 1001), Fraction(60)]
SAMPLE_RATES = [8000, 11025, 22050, 44100, 48000, 96000]


def exact_rate(rate: float, fps: Fraction) -> Fraction:
    """OTIO keeps rates as floats: the timeline's is ``fps``; any other is a sample rate."""
    return fps if abs(rate - float(fps)) < 1e-6 else Fraction(round(rate))


def seconds(t: otio.opentime.RationalTime, fps: Fraction) -> Fraction:
    return Fraction(t.value) / exact_rate(t.rate, fps)


def check_inside(timeline: otio.schema.Timeline, fps: Fraction, lengths: dict[str, Fraction]):
    checked = 0
    for track in timeline.audio_tracks():
        items = list(track)
        for k, item in enumerate(items):
            if not isinstance(item, otio.schema.Clip):
                continue
            ref = item.media_reference
            path = otio.url_utils.filepath_from_url(ref.target_url)
            path = path if path in lengths else ref.target_url
            avail, src = ref.available_range, item.source_range
            a0 = seconds(avail.start_time, fps)
            a1 = a0 + seconds(avail.duration, fps)
            s0 = seconds(src.start_time, fps)
            s1 = s0 + seconds(src.duration, fps)
            before = items[k - 1] if k else None
            after = items[k + 1] if k + 1 < len(items) else None
            if isinstance(before, otio.schema.Transition):
                s0 -= seconds(before.in_offset, fps)
            if isinstance(after, otio.schema.Transition):
                s1 += seconds(after.out_offset, fps)
            what = (track.name, k, item.name, float(s0), float(s1), float(a0), float(a1))
            assert a0 == 0, what  # these files have no timecode
            assert a0 <= s0 < s1 <= a1, what
            assert a1 <= lengths[path], (what, float(lengths[path]))
            checked += 1
    return checked


@st.composite
def cases(draw: st.DrawFn):
    fps = draw(st.sampled_from(RATES))
    sr = draw(st.sampled_from(SAMPLE_RATES))
    frame = 1 / fps
    placements = []
    lengths = {}
    for k in range(draw(st.integers(1, 3))):  # beds, each on its own track
        n = draw(st.integers(sr // 10, 9 * sr))
        path = f"/nowhere/bed{k}.wav"
        lengths[path] = Fraction(n, sr)
        start = draw(st.integers(0, 50)) * frame
        placements.append(
            Placement(
                f"Ambience {k + 1}", "ambience", f"bed{k}", path, "bed",
                float(start), draw(st.floats(0.05, 20.0)),
                source_start=draw(st.floats(0.0, float(Fraction(n, sr)))),
                source_duration=n / sr, loop=True,
                loop_crossfade=draw(st.sampled_from([0.0, 0.01, 0.3, 1.0, 2.5])),
            )
        )  # fmt: skip
    for k in range(draw(st.integers(1, 3))):  # effects spotted by their sync point
        n = draw(st.integers(sr // 40, 4 * sr))
        path = f"/nowhere/fx{k}.wav"
        lengths[path] = Fraction(n, sr)
        sync = draw(st.floats(0.0, n / sr * 0.99))
        play = draw(st.one_of(st.none(), st.floats(0.0, 3.0)))
        spot = spot_effect(
            sound_id=f"fx{k}", onset_frame=draw(st.integers(0, 200)), fps=fps, sync_point=sync,
            sound_duration=n / sr, end_frame=400, preroll_frames=draw(st.integers(0, 3)),
            play=play,
        )  # fmt: skip
        if spot is None:
            continue
        assert Fraction(spot.source_start) + Fraction(spot.duration) <= Fraction(n, sr) + 1e-12
        placements.append(
            Placement(
                f"SFX {k + 1}", "effect", spot.sound_id, path, "fx", spot.record_start,
                spot.duration, source_start=spot.source_start, source_duration=n / sr,
                sync_point=spot.sync_point,
            )
        )  # fmt: skip
    n = draw(st.integers(sr // 40, 4 * sr))  # a clip placed anywhere, off the frame grid
    path = "/nowhere/plain.wav"
    lengths[path] = Fraction(n, sr)
    source = draw(st.floats(0.0, n / sr * 0.99))
    placements.append(
        Placement(
            "SFX 9", "effect", "plain", path, "plain", draw(st.floats(0.0, 5.0)),
            draw(st.floats(0.01, 6.0)), source_start=source, source_duration=n / sr,
        )
    )  # fmt: skip
    return fps, placements, lengths


@settings(max_examples=120, deadline=None)
@given(cases())
def test_every_range_lies_inside_its_media(case) -> None:
    fps, placements, lengths = case
    edit = Edit((SourceClip("/nowhere/picture.mov", 0.0, 60.0, 0.0),), fps, 1920, 1080)
    s = Suggestions(edit, (), tuple(placements), "m")
    for flavour in ("generic", "resolve", "premiere"):
        timeline = to_otio(s, flavour)
        assert check_inside(timeline, fps, lengths) >= len(placements) - 1
        if flavour != "resolve":  # what the FCP7 XML is written from: ranges on frames
            check_inside(for_fcp_xml(timeline), fps, lengths)


def test_a_length_of_whole_frames_in_floats_keeps_its_last_frame() -> None:
    from sfxmatch.timecode import media_frames

    # 2.3 s at 24000/1001 is 55.14 frames: 55 whole ones; 110 frames of 25 fps in floats is 110
    assert media_frames(2.3, Fraction(24000, 1001)) == 55
    assert media_frames(110 / 25, 25) == 110
    assert media_frames(float(Fraction(1001, 24000) * 7), Fraction(24000, 1001)) == 7
    assert media_frames(1.0 - 1 / 48000, 48000) == 47999
