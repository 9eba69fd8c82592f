"""Where the timeline says a sound starts is where the mix plays it: to one sample.

Clicks placed at known frames of a 29.97 and a 25 fps edit go through ``Pipeline.render``
(mix WAV + OTIO); the OTIO is read back with ``opentimelineio`` and each clip's record start
is found in the mix. The pipeline's own placements sit on the edit's frame grid, so the
frame-snapped OTIO and the sample-exact mix agree for them too.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import opentimelineio as otio
import pytest
from sfxmatch import media
from sfxmatch.pipeline import Pipeline
from sfxmatch.suggestions import Edit, Placement, RenderRequest, SourceClip, Suggestions
from sfxmatch.testing import synth
from test_suggest import SuggestEnv, on_grid, settings_in, shared_env
from tiny_models import TINY_MODELS

RATE = 48_000
NTSC = Fraction(30000, 1001)
# (track, record frame) of every click: two tracks, starts that fall between samples at 29.97.
CLICKS = (("SFX 1", 3), ("SFX 2", 17), ("SFX 1", 31), ("SFX 2", 44), ("SFX 1", 58), ("SFX 3", 71))
CLICK_FRAMES = 8  # each clip lasts this many frames


@pytest.fixture(scope="module", params=TINY_MODELS)
def env(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    ovos_sounds: Path,
    acoustic_scene_wav: Path,
) -> SuggestEnv:
    return shared_env(tmp_path_factory, ovos_sounds, acoustic_scene_wav, request.param)


def click_file(folder: Path) -> Path:
    """0.5 s at 48 kHz, stereo, a full-scale impulse on the very first sample."""
    signal = synth.clicks([0.0], RATE, 0.5, amplitude=0.9, channels=2)
    return synth.make_audio_file(folder / "click.wav", signal, RATE).path


def clicks_suggestions(video: Path, fps: Fraction, click: Path) -> Suggestions:
    placements = tuple(
        Placement(
            track=track,
            kind="effect",
            sound_id=f"click{i}",
            path=str(click),
            label="click",
            record_start=float(frame / fps),
            duration=float(CLICK_FRAMES / fps),
            source_duration=0.5,
            fade_out=0.01,
        )
        for i, (track, frame) in enumerate(CLICKS)
    )
    clip = SourceClip(str(video), 0.0, 3.2, 0.0, "picture")
    edit = Edit(clips=(clip,), fps=fps, width=320, height=240, name=f"clicks at {fps}")
    return Suggestions(edit=edit, scenes=(), placements=placements, model_id="none")


def otio_clips(path: Path) -> list[tuple[str, float, float, dict]]:
    """(track, record start s, duration s, sfxmatch metadata) of every audio clip."""
    timeline = otio.adapters.read_from_file(str(path))
    out = []
    for track in timeline.audio_tracks():
        for clip in track.find_clips():
            span = track.range_of_child(clip)
            out.append(
                (
                    track.name,
                    span.start_time.to_seconds(),
                    span.duration.to_seconds(),
                    plain(clip.metadata.get("sfxmatch", {})),
                )
            )
    return sorted(out, key=lambda c: c[1])


def plain(value: object) -> object:
    """OTIO's metadata as Python values (they outlive the timeline they came from)."""
    if hasattr(value, "items"):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, str | bytes | int | float | bool) or value is None:
        return value
    return [plain(v) for v in value]  # type: ignore[attr-defined]


def onset(mix: np.ndarray, near: int, threshold: float) -> int:
    """The first sample within ±200 of ``near`` whose level passes ``threshold``."""
    lo = max(0, near - 200)
    window = np.abs(mix[:, lo : near + 200]).max(axis=0)
    above = np.flatnonzero(window > threshold)
    assert len(above), f"no onset near sample {near}"
    return lo + int(above[0])


@pytest.mark.parametrize("fps", [NTSC, Fraction(25)], ids=["29.97", "25"])
def test_clicks_in_the_mix_are_where_the_otio_says(
    tmp_path: Path, cut_video: tuple, fps: Fraction
) -> None:
    suggestions = clicks_suggestions(cut_video[0], fps, click_file(tmp_path))
    mix_path, timeline_path = tmp_path / "mix.wav", tmp_path / "clicks.otio"
    with Pipeline(settings_in(tmp_path)) as pipeline:
        pipeline.render(suggestions, RenderRequest(mix=str(mix_path), timeline=str(timeline_path)))
    clips = otio_clips(timeline_path)
    assert [(track, round(start * fps)) for track, start, _, _ in clips] == list(CLICKS)
    for _, _, duration, _ in clips:
        assert duration == pytest.approx(float(CLICK_FRAMES / fps), abs=1e-9)
    audio = media.load_audio(mix_path, channels="keep")
    assert audio.sample_rate == RATE
    peak = float(np.abs(audio.samples).max())
    assert peak > 0
    for track, start, _, _ in clips:
        expected = round(start * RATE)
        found = onset(audio.samples, expected, 0.5 * peak)
        assert abs(found - expected) <= 1, (track, start, found, expected)
    # Between the clicks the mix is silent: nothing was smeared or shifted by a frame.
    starts = [round(start * RATE) for _, start, _, _ in clips]
    quiet = np.ones(audio.samples.shape[1], bool)
    for s in starts:
        quiet[max(0, s - 2) : s + 50] = False
    assert float(np.abs(audio.samples[:, quiet]).max()) < 1e-3 * peak


@pytest.mark.parametrize("which", ["ntsc", "pal"])
def test_pipeline_placements_agree_with_the_otio(
    env: SuggestEnv, tmp_path: Path, which: str
) -> None:
    video = env.ntsc_video if which == "ntsc" else env.short_scene_video
    clip = SourceClip(str(video.path), 0.0, min(video.duration, 2.4), 0.0, "part")
    edit = Edit(clips=(clip,), fps=video.fps, width=320, height=240)
    s = env.pipeline.suggest(edit)
    assert s.edit.fps == (NTSC if which == "ntsc" else 25)
    assert s.placements
    for p in s.placements:
        assert on_grid(p.record_start, s.edit.fps) and on_grid(p.duration, s.edit.fps), p
    path = env.pipeline.render(s, RenderRequest(timeline=str(tmp_path / "s.otio"))).files[0][1]
    clips = otio_clips(Path(path))
    frame = float(1 / s.edit.fps)
    for p in s.placements:
        mine = [
            c
            for c in clips
            # OTIO's JSON keeps about 16 significant digits: the same time, to a ULP or two.
            if c[0] == p.track and abs(c[3]["placement"]["record_start"] - p.record_start) < 1e-9
        ]
        assert mine, p
        first = min(mine, key=lambda c: c[1])
        assert first[1] == pytest.approx(p.record_start, abs=1e-9)  # on the grid: exact
        assert sum(c[2] for c in mine) == pytest.approx(p.duration, abs=frame / 2)
