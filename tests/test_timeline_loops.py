"""Looped beds: every pass sits in the exported timeline where the mixer plays it.

A 2.3 s file with a click at 1.0 s loops over a 10 s slot with a 0.5 s crossfade.
``Pipeline.render`` writes the mix and the timeline; the timeline is read back with
opentimelineio (``.otio`` and FCP7 ``.xml``), and for every pass the click's place in the
mix is compared with where the timeline's clip puts it, and the pass's start and end in the
mix with where the timeline's clips cut (the crossfade centres) and where its dissolves
start and end the passes: within one frame, at 24 and 29.97 fps (FCP7 XML's centred
dissolves: two). Butt splices one file length apart (the old export) drift by one
crossfade per pass and fail from the second pass on.
"""

from __future__ import annotations

import itertools
from fractions import Fraction
from pathlib import Path

import numpy as np
import opentimelineio as otio
import pytest
from sfxmatch import media
from sfxmatch.config import Settings
from sfxmatch.pipeline import Pipeline
from sfxmatch.suggestions import (
    Edit,
    Placement,
    RenderRequest,
    SourceClip,
    Suggestions,
    loop_passes,
    loop_schedule,
)
from sfxmatch.testing import synth
from sfxmatch.timeline import write_timeline

SR = 48_000
FILE = 2.3  # seconds
CLICK = 1.0  # seconds into the file: outside both crossfade zones of every pass
SOURCE_START = 0.4  # the first pass starts here in the file
XFADE = 0.5
RECORD_START, SLOT = 1.0, 10.0
RATES = {"24": Fraction(24), "29.97": Fraction(30000, 1001)}


def bed_suggestions(path: Path, fps: Fraction) -> Suggestions:
    bed = Placement(
        "Ambience", "ambience", "bed", str(path), "bed", RECORD_START, SLOT,
        source_start=SOURCE_START, source_duration=FILE, loop=True, loop_crossfade=XFADE,
    )  # fmt: skip
    edit = Edit(clips=(SourceClip("/media/picture.mov", 0.0, 12.0, 0.0, "picture"),), fps=fps)
    return Suggestions(edit, (), (bed,), "none")


def mix_clicks(mix: np.ndarray) -> list[float]:
    """Seconds of every click in the mix (the first sample of each group above half peak)."""
    level = np.abs(mix).max(axis=0)
    above = np.flatnonzero(level > 0.5 * level.max())
    starts = [int(above[0])] + [int(b) for a, b in itertools.pairwise(above) if b > a + 1]
    return [s / SR for s in starts]


def timeline_passes(path: Path) -> list[dict[str, float]]:
    """Per clip of the bed, as the file says: where it starts and ends, where the dissolves
    either side widen that to (the pass as it sounds), and where it puts the click."""
    timeline = otio.adapters.read_from_file(str(path))
    (track,) = timeline.audio_tracks()  # the bed's (FCP7 XML keeps no track names)
    out = []
    for clip in track.find_clips():
        span = clip.range_in_parent()
        before, after = track.handles_of_child(clip)
        start, end = span.start_time.to_seconds(), span.end_time_exclusive().to_seconds()
        ref = clip.media_reference
        source_in = (clip.source_range.start_time - ref.available_range.start_time).to_seconds()
        out.append(
            {
                "clip_start": start,
                "clip_end": end,
                "start": start - (before.to_seconds() if before else 0.0),
                "end": end + (after.to_seconds() if after else 0.0),
                "click": start + CLICK - source_in,
                "holds_click": source_in <= CLICK < source_in + span.duration.to_seconds(),
            }
        )
    return out


@pytest.fixture(scope="module")
def bed_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("bed")
    signal = synth.clicks([CLICK], SR, FILE, amplitude=0.9, channels=2)
    return synth.make_audio_file(folder / "bed.wav", signal, SR).path


@pytest.mark.parametrize("suffix", [".otio", ".xml"])
@pytest.mark.parametrize("rate", list(RATES))
def test_every_loop_pass_is_where_the_mixer_plays_it(
    tmp_path: Path, bed_file: Path, rate: str, suffix: str
) -> None:
    fps = RATES[rate]
    frame = float(1 / fps)
    s = bed_suggestions(bed_file, fps)
    timeline_path = tmp_path / f"bed{suffix}"
    with Pipeline(Settings(cache_dir=tmp_path / "cache", data_dir=tmp_path / "data")) as pipe:
        result = pipe.render(s, RenderRequest(mix=str(tmp_path / "mix.wav")))
        write_timeline(s, timeline_path)
    mix = media.load_audio(dict(result.files)["mix"], channels="keep").samples

    # Where the mixer played each pass, from the mix alone: a pass plays the file at its
    # natural speed, so it started (click time - the click's time into that pass).
    heard = mix_clicks(mix)
    n = len(passes := loop_passes(s.placements[0]))
    assert len(heard) == n == 6  # 1.9 s, then 1.8 s steps: starts 0, 1.4, 3.2, 5.0, 6.8, 8.6
    mix_start = [heard[0] - (CLICK - SOURCE_START)] + [t - CLICK for t in heard[1:]]
    mix_end = [t + FILE - (SOURCE_START if k == 0 else 0.0) for k, t in enumerate(mix_start)]
    mix_end[-1] = RECORD_START + SLOT
    # ... which is loop_passes' rule (to the sample).
    assert mix_start == pytest.approx([p.record_start for p in passes], abs=1.5 / SR)

    written = timeline_passes(timeline_path)
    assert len(written) == n and all(w["holds_click"] for w in written)
    # FCP7 XML dissolves are centred on the cut: both sides take the shorter, which frame
    # rounding of the file's media can make a frame shorter than the crossfade's half.
    edge = frame if suffix == ".otio" else 2 * frame
    for k, w in enumerate(written):
        # the pass plays the file where the mix does (no drift, pass after pass)
        assert abs(w["click"] - heard[k]) <= frame, (k, w, heard[k])
        # the clips cut at the centre of each crossfade, where both passes are equally loud
        centre_in = mix_start[k] + XFADE / 2 if k else mix_start[k]
        centre_out = mix_end[k] - XFADE / 2 if k < n - 1 else mix_end[k]
        assert abs(w["clip_start"] - centre_in) <= frame, (k, w, centre_in)
        assert abs(w["clip_end"] - centre_out) <= frame, (k, w, centre_out)
        # and the dissolves either side span the pass as the mixer plays it
        assert abs(w["start"] - mix_start[k]) <= edge, (k, w, mix_start[k])
        assert abs(w["end"] - mix_end[k]) <= edge, (k, w, mix_end[k])
    for a, b in itertools.pairwise(written):
        assert a["clip_end"] == pytest.approx(b["clip_start"], abs=1e-9)  # butt splices


def test_dissolves_sit_on_the_seams_and_have_media_either_side(bed_file: Path) -> None:
    s = bed_suggestions(bed_file, Fraction(24))
    from sfxmatch.timeline import to_otio

    track = next(t for t in to_otio(s).audio_tracks() if t.name == "Ambience")
    items = list(track)
    clips = [i for i in items if isinstance(i, otio.schema.Clip)]
    transitions = [i for i in items if isinstance(i, otio.schema.Transition)]
    assert len(transitions) == len(clips) - 1 == 5
    for k, item in enumerate(items):
        if isinstance(item, otio.schema.Transition):
            before, after = items[k - 1], items[k + 1]
            assert isinstance(before, otio.schema.Clip) and isinstance(after, otio.schema.Clip)
            assert item.transition_type == otio.schema.TransitionTypes.SMPTE_Dissolve
            # half of 0.5 s at 24 fps either side of the cut, to the frame
            assert {item.in_offset.value, item.out_offset.value} <= {5, 6}
            # the outgoing clip has the media the dissolve plays after its out point ...
            ref = before.media_reference
            assert (
                before.source_range.end_time_exclusive() + item.out_offset
                <= ref.available_range.end_time_exclusive()
            )
            # ... and the incoming one before its in point
            assert after.source_range.start_time - item.in_offset >= ref.available_range.start_time


def test_the_xml_gets_audio_cross_fades(bed_file: Path, tmp_path: Path) -> None:
    path = write_timeline(bed_suggestions(bed_file, Fraction(25)), tmp_path / "bed.xml")
    text = path.read_text()
    assert text.count("<transitionitem>") == 5
    assert text.count("KGAudioTransCrossFade3dB") == 5 and "Cross Dissolve" not in text
    assert text.count("<alignment>center</alignment>") == 5


def test_no_crossfade_is_butt_splices_one_file_apart(bed_file: Path) -> None:
    s = bed_suggestions(bed_file, Fraction(25))
    from sfxmatch.timeline import to_otio

    tl = to_otio(s, loop_crossfade=0.0)
    track = next(t for t in tl.audio_tracks() if t.name == "Ambience")
    assert not [i for i in track if isinstance(i, otio.schema.Transition)]
    starts = [c.range_in_parent().start_time.to_seconds() for c in track.find_clips()]
    # passes of 1.9 s, then 2.3 s: 1.0, 2.9, 5.2, 7.5, 9.8 s (each on the nearest frame)
    assert starts == pytest.approx([1.0, 2.9, 5.2, 7.5, 9.8], abs=0.5 / 25 + 1e-9)


def test_the_schedule_is_the_same_in_samples_and_in_seconds() -> None:
    c, seconds = loop_schedule(SOURCE_START, FILE, SLOT, XFADE)
    ci, whole = loop_schedule(
        round(SOURCE_START * SR), round(FILE * SR), round(SLOT * SR), round(XFADE * SR)
    )
    assert all(isinstance(v, int) for p in whole for v in p) and isinstance(ci, int)
    assert c == XFADE and ci == round(XFADE * SR)
    assert len(seconds) == len(whole) == 6
    for (a, b, d), (x, y, z) in zip(seconds, whole, strict=True):
        assert (round(a * SR), round(b * SR), round(d * SR)) == (x, y, z)


@pytest.mark.parametrize(
    ("offset", "length", "total", "crossfade", "expected"),
    [
        (0.0, 5.0, 4.0, 1.0, [(0.0, 0.0, 4.0)]),  # fits: one pass
        (0.0, 0.0, 4.0, 1.0, [(0.0, 0.0, 4.0)]),  # unknown length: one pass
        (2.0, 2.0, 3.0, 0.5, [(0.0, 0.0, 2.0), (1.5, 0.0, 1.5)]),  # offset at the end: top
        (1.0, 2.0, 3.0, 1.0, [(0.0, 1.0, 1.0), (0.5, 0.0, 2.0), (2.0, 0.0, 1.0)]),  # clamped
        (0.0, 1.0, 2.5, 0.0, [(0.0, 0.0, 1.0), (1.0, 0.0, 1.0), (2.0, 0.0, 0.5)]),  # no fade
    ],
)
def test_loop_schedule_cases(offset, length, total, crossfade, expected) -> None:
    _, passes = loop_schedule(offset, length, total, crossfade, eps=1e-9)
    assert [tuple(round(v, 9) for v in p) for p in passes] == expected


def test_a_slot_longer_than_its_file_by_under_half_a_sample_is_one_pass(tmp_path: Path) -> None:
    # The mixer counts in samples: such a slot holds the file once, and so must the timeline.
    length = 2.0
    bed = Placement(
        "Ambience", "ambience", "bed", str(tmp_path / "bed.wav"), "bed", 0.0,
        length + 0.3 / SR, source_duration=length, loop=True, loop_crossfade=XFADE,
    )  # fmt: skip
    assert len(loop_passes(bed)) == 1
    assert round(bed.duration * SR) == round(length * SR)  # what the mixer sees: no second pass


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf")])
def test_a_bad_loop_crossfade_is_refused_as_the_mixer_refuses_it(bad, tmp_path: Path) -> None:
    from sfxmatch.errors import ConfigError
    from sfxmatch.timeline import to_otio

    with pytest.raises(ConfigError, match="loop_crossfade"):
        to_otio(bed_suggestions(tmp_path / "bed.wav", Fraction(24)), loop_crossfade=bad)
