"""End to end on real footage (vtest.avi) and real sounds with the tiny model: an OTIO that
``opentimelineio`` reads back with the same placements, a mix at the target loudness under
the true-peak ceiling, and muxed videos that probe with both streams."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import opentimelineio as otio
import pyloudnorm
import pytest
from sfxmatch import media
from sfxmatch.suggest import edit_for_video
from sfxmatch.suggestions import Edit, RenderRequest, SourceClip, Suggestions
from test_suggest import SuggestEnv, check_record_time, shared_env
from tiny_models import TINY_MODELS

pytestmark = pytest.mark.real_media

TARGET_LUFS = -23.0
CEILING_DBTP = -1.0


@pytest.fixture(scope="module", params=TINY_MODELS)
def env(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    ovos_sounds: Path,
    acoustic_scene_wav: Path,
) -> SuggestEnv:
    return shared_env(tmp_path_factory, ovos_sounds, acoustic_scene_wav, request.param)


def render_and_check(env: SuggestEnv, s: Suggestions, folder: Path) -> None:
    """Timeline, mix and muxed .mp4/.mkv, each checked against what was asked."""
    request = RenderRequest(
        mix=str(folder / "mix.wav"),
        timeline=str(folder / "vtest.otio"),
        mux=str(folder / "vtest.mkv"),
        target_lufs=TARGET_LUFS,
        true_peak_dbtp=CEILING_DBTP,
    )
    result = env.pipeline.render(s, request)
    assert {what for what, _ in result.files} == {"mix", "timeline", "mux"}
    check_timeline(s, folder / "vtest.otio")
    check_mix(s, folder / "mix.wav")
    assert result.loudness_lufs == pytest.approx(TARGET_LUFS, abs=0.5)
    assert result.true_peak_dbtp is not None and result.true_peak_dbtp <= CEILING_DBTP + 1e-6
    # The mp4 cannot hold msmpeg4: the muxer re-encodes the picture; mkv copies it.
    mp4 = env.pipeline.render(s, RenderRequest(mux=str(folder / "vtest.mp4")))
    for path in (folder / "vtest.mkv", Path(mp4.files[0][1])):
        info = media.probe(path)
        assert info.video is not None and len(info.audio) == 1, path
        assert info.audio[0].channels == 2
        assert info.duration == pytest.approx(media.probe(s.edit.clips[0].path).duration, abs=0.2)


def check_timeline(s: Suggestions, path: Path) -> None:
    timeline = otio.adapters.read_from_file(str(path))
    fps = float(s.edit.fps)
    found = []
    for track in timeline.audio_tracks():
        for clip in track.find_clips():
            span = track.range_of_child(clip)
            meta = clip.metadata["sfxmatch"]
            found.append(
                (
                    track.name,
                    float(meta["placement"]["record_start"]),
                    span.start_time.to_seconds(),
                    span.duration.to_seconds(),
                )
            )
    assert {t.name for t in timeline.video_tracks()} and len(timeline.video_tracks()[0]) >= 1
    for p in s.placements:
        mine = [f for f in found if f[0] == p.track and f[1] == p.record_start]
        assert mine, f"{p.track} {p.record_start} missing from the OTIO"
        assert min(f[2] for f in mine) == pytest.approx(p.record_start, abs=1e-9)
        assert sum(f[3] for f in mine) == pytest.approx(p.duration, abs=1 / fps)
    assert {f[0] for f in found} == set(s.tracks)


def check_mix(s: Suggestions, path: Path) -> None:
    audio = media.load_audio(path, channels="keep")
    assert audio.samples.shape[0] == 2
    assert audio.duration == pytest.approx(s.edit.duration, abs=1 / audio.sample_rate + 1e-6)
    meter = pyloudnorm.Meter(audio.sample_rate)
    loudness = meter.integrated_loudness(audio.samples.T.astype(np.float64))
    assert loudness == pytest.approx(TARGET_LUFS, abs=0.5)
    assert float(np.abs(audio.samples).max()) <= 10 ** (CEILING_DBTP / 20) + 1e-6


def test_vtest_opening_end_to_end(env: SuggestEnv, vtest_avi: Path, tmp_path: Path) -> None:
    whole = edit_for_video(vtest_avi)
    assert whole.fps == 10
    clip = SourceClip(str(vtest_avi.resolve()), 0.0, 6.0, 0.0, "vtest")
    edit = Edit(clips=(clip,), fps=Fraction(10), width=768, height=576, name="vtest")
    s = env.pipeline.suggest(edit)
    assert [(sc.start, sc.end) for sc in s.scenes] == [(0.0, 6.0)], "one long take: no cuts"
    assert {p.kind for p in s.placements} == {"ambience", "effect"}
    check_record_time(s)
    render_and_check(env, s, tmp_path)


@pytest.mark.slow
def test_vtest_whole_end_to_end(env: SuggestEnv, vtest_avi: Path, tmp_path: Path) -> None:
    s = env.pipeline.suggest(vtest_avi)
    assert s.edit.duration == pytest.approx(79.5, abs=0.2)
    assert len(s.scenes) == 1
    check_record_time(s)
    render_and_check(env, s, tmp_path)
