"""An independent check of the exported times: FFmpeg renders the audio from nothing but the
exported OTIO (read back with opentimelineio), and every click lands where the file says,
to the sample, and within a frame of where the pipeline placed it.

The renderer here is FFmpeg's ``atrim`` / ``adelay`` / ``amix`` filters, driven by times read
off the OTIO file: none of sfxmatch's code positions a sample.
"""

from __future__ import annotations

import subprocess
import wave
from fractions import Fraction
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
import opentimelineio as otio
import pytest
from sfxmatch.media import Audio, write_wav
from sfxmatch.suggestions import Edit, Placement, SourceClip, Suggestions
from sfxmatch.testing import synth
from sfxmatch.timeline import write_timeline

SR = 48000
CLICKS_A = (0.1, 0.6)  # seconds into click_a.wav (1.0 s)
CLICKS_B = (0.25,)  # seconds into click_b.wav (0.5 s)


def _sounds(tmp_path: Path) -> dict[str, tuple[Path, tuple[float, ...]]]:
    a = write_wav(tmp_path / "click a.wav", Audio(synth.clicks(CLICKS_A, SR, 1.0), SR))
    b = write_wav(tmp_path / "click#b.wav", Audio(synth.clicks(CLICKS_B, SR, 0.5), SR))
    return {"a": (a, CLICKS_A), "b": (b, CLICKS_B)}


def _placements(sounds: dict[str, tuple[Path, tuple[float, ...]]]) -> tuple[Placement, ...]:
    a, b = str(sounds["a"][0]), str(sounds["b"][0])
    return (
        Placement("SFX 1", "effect", "a", a, "a", 0.3, 0.8, source_start=0.05, source_duration=1.0),
        Placement("SFX 1", "effect", "b", b, "b", 1.234, 0.45, source_duration=0.5),
        Placement(
            "SFX 2", "effect", "b", b, "b", 0.777, 0.3, source_start=0.2, source_duration=0.5
        ),
        Placement("Ambience", "ambience", "a", a, "a", 2.0, 1.0, source_duration=1.0),
    )


def _render(otio_path: Path, out: Path) -> list[tuple[float, float, float]]:
    """Render with FFmpeg from the OTIO's times; returns each clip's (record, source, duration)
    in seconds as the file states them."""
    timeline = otio.adapters.read_from_file(str(otio_path))
    inputs: list[str] = []
    chains: list[str] = []
    spans: list[tuple[float, float, float]] = []
    for track in timeline.audio_tracks():
        for clip in track.find_clips():
            ref = clip.media_reference
            path = unquote(urlparse(ref.target_url).path)
            record = clip.range_in_parent().start_time.to_seconds()
            source = (clip.source_range.start_time - ref.available_range.start_time).to_seconds()
            duration = clip.source_range.duration.to_seconds()
            spans.append((record, source, duration))
            k = len(inputs) // 2
            inputs += ["-i", path]
            s0 = round(source * SR)
            n = round(duration * SR)
            chains.append(
                f"[{k}:a]atrim=start_sample={s0}:end_sample={s0 + n},asetpts=PTS-STARTPTS,"
                f"adelay=delays={round(record * SR)}S:all=1[c{k}]"
            )
    n_inputs = len(inputs) // 2
    graph = ";".join(chains) + ";" + "".join(f"[c{k}]" for k in range(n_inputs))
    graph += f"amix=inputs={n_inputs}:normalize=0:duration=longest[out]"
    cmd = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *inputs]
    cmd += ["-filter_complex", graph, "-map", "[out]", "-ac", "1", "-ar", str(SR)]
    cmd += ["-c:a", "pcm_s16le", str(out)]
    subprocess.run(cmd, check=True, capture_output=True)
    return spans


def _onsets(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as w:
        assert w.getframerate() == SR
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64)
    loud = np.abs(data / 32768.0) > 0.5
    return np.flatnonzero(loud & ~np.concatenate(([False], loud[:-1])))


@pytest.mark.slow
@pytest.mark.parametrize(
    ("fps", "tc"),
    [
        (Fraction(30000, 1001), "01:00:00;00"),
        (Fraction(24000, 1001), "01:00:00:00"),
        (Fraction(25), "10:00:00:00"),
    ],
)
def test_clicks_rendered_from_the_otio_land_where_it_says(
    tmp_path: Path, fps: Fraction, tc: str, record_property: pytest.RecordProperty
) -> None:
    sounds = _sounds(tmp_path)
    placements = _placements(sounds)
    edit = Edit((SourceClip("/media/picture.mov", 0.0, 4.0, 0.0),), fps, start_timecode=tc)
    otio_path = write_timeline(Suggestions(edit, (), placements, "m"), tmp_path / "cut.otio")
    out = tmp_path / "render.wav"
    spans = _render(otio_path, out)
    got = _onsets(out)

    # where the OTIO file says each click is, and where the pipeline meant it to be
    by_file: list[tuple[float, float]] = []  # (exact OTIO time, intended placement time)
    order = sorted(placements, key=lambda p: (p.track != "Ambience", p.track, p.record_start))
    for p, (record, source, duration) in zip(order, spans, strict=True):
        clicks = sounds["a" if p.sound_id == "a" else "b"][1]
        for c in clicks:
            if (
                source <= c < source + duration
                and p.source_start <= c < p.source_start + p.duration
            ):
                by_file.append((record + c - source, p.record_start + c - p.source_start))
    by_file.sort()
    assert len(got) == len(by_file) == 6, (got, by_file)

    sample_errors = [abs(int(g) - t * SR) for g, (t, _) in zip(got, by_file, strict=True)]
    placement_errors = [abs(int(g) / SR - i) for g, (_, i) in zip(got, by_file, strict=True)]
    frame = 1 / float(fps)
    record_property("max_sample_error_vs_otio", max(sample_errors))
    record_property("max_error_vs_placement_ms", 1000 * max(placement_errors))
    print(
        f"{float(fps):.3f} fps: onset vs OTIO time max {max(sample_errors):.2f} samples; "
        f"vs intended placement max {1000 * max(placement_errors):.2f} ms "
        f"(frame {1000 * frame:.2f} ms)"
    )
    assert max(sample_errors) <= 1.0  # the file's times, to the sample
    assert max(placement_errors) <= frame / 2 + 1 / SR  # the pipeline's times, within a frame
