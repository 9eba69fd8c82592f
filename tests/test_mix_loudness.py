"""sfxmatch.mix.loudness: true peak, normalisation to -23 LUFS under a -1 dBTP ceiling."""

from __future__ import annotations

import dataclasses
import json
import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import pyloudnorm
import pytest
from sfxmatch import media
from sfxmatch._cli.suggest import loudness_line
from sfxmatch.config import Settings
from sfxmatch.errors import ConfigError
from sfxmatch.mix import (
    integrated_loudness,
    mix_down,
    normalize,
    normalize_stems,
    render_mix,
    render_stems,
    true_peak,
    true_peak_dbtp,
)
from sfxmatch.pipeline import Pipeline
from sfxmatch.suggestions import (
    Edit,
    Placement,
    RenderRequest,
    RenderResult,
    SourceClip,
    Suggestions,
)
from sfxmatch.testing import synth

SR = 48000


class DictLoader:
    def __init__(self, **sounds: np.ndarray) -> None:
        self.sounds = {k: np.atleast_2d(v).astype(np.float32) for k, v in sounds.items()}

    def __call__(self, path: str) -> np.ndarray:
        return self.sounds[path]


def place(path: str, start: float, duration: float, **kw: object) -> Placement:
    kw.setdefault("track", "SFX 1")
    kw.setdefault("kind", "effect")
    return Placement(
        sound_id=path, path=path, label=path, record_start=start, duration=duration, **kw
    )


def pyln_loudness(x: np.ndarray) -> float:
    return float(pyloudnorm.Meter(SR).integrated_loudness(x.T.astype(np.float64)))


def realish_stems(click_gain_db: float | None = None) -> object:
    """A noise bed, a tone effect with fades, a panned noise burst; optionally a hard click."""
    rng = np.random.default_rng(7)
    bed = rng.uniform(-0.1, 0.1, (2, 3 * SR)).astype(np.float32)
    sounds = {
        "bed": bed,
        "tone": synth.tone(660.0, 1.0, SR, 0.3),
        "burst": synth.noise_burst(0.5, SR, amplitude=0.4, seed=2),
        "click": synth.clicks([0.0], SR, 0.01, amplitude=1.0, width=2),
    }
    ps = [
        place("bed", 0.0, 6.0, track="Ambience", kind="ambience", loop=True, fade_in=0.5),
        place("tone", 1.0, 1.0, fade_in=0.1, fade_out=0.3, pan=-0.4, gain_db=-3.0),
        place("burst", 3.0, 0.5, track="SFX 2", pan=0.8, fade_out=0.2),
    ]
    if click_gain_db is not None:
        ps.append(place("click", 4.5, 0.01, track="SFX 3", gain_db=click_gain_db))
    return render_stems(ps, 6.0, loader=DictLoader(**sounds), loop_crossfade=0.5)


# --------------------------------------------------------------------------- true peak


def _faded(x: np.ndarray) -> np.ndarray:
    ramp = np.sin(np.linspace(0, np.pi / 2, 2000)) ** 2
    x = x.copy()
    x[..., :2000] *= ramp
    x[..., -2000:] *= ramp[::-1]
    return x


def test_true_peak_finds_the_crest_between_samples() -> None:
    # fs/4 sine sampled 45 degrees off its crests: every sample is 0.707, the wave reaches 1.
    x = _faded(np.sin(2 * np.pi * 12000 * np.arange(SR) / SR + np.pi / 4)[None])
    assert np.max(np.abs(x)) == pytest.approx(math.sqrt(0.5), abs=1e-9)
    assert true_peak(x) == pytest.approx(1.0, abs=0.005)
    assert true_peak_dbtp(x) == pytest.approx(0.0, abs=0.05)


def test_true_peak_is_never_below_the_sample_peak_and_scales() -> None:
    x = np.random.default_rng(0).uniform(-0.5, 0.5, (2, SR))
    assert true_peak(x) >= np.max(np.abs(x))
    assert true_peak(0.5 * x) == pytest.approx(0.5 * true_peak(x), rel=1e-12)
    assert true_peak(np.zeros((2, 10))) == 0.0
    assert true_peak_dbtp(np.zeros((2, 10))) == -math.inf


def test_true_peak_matches_an_independent_polyphase_resampler() -> None:
    signal = pytest.importorskip("scipy.signal")
    x = np.random.default_rng(4).standard_normal((2, 3 * SR)) * 0.2
    x[:, SR] = [0.9, -0.95]
    reference = np.max(np.abs(signal.resample_poly(x, 4, 1, axis=1)))
    assert 20 * math.log10(true_peak(x)) == pytest.approx(20 * math.log10(reference), abs=0.1)


def test_true_peak_spans_block_boundaries() -> None:
    # A crest between samples right at the interpolator's block edge is still found.
    from sfxmatch.mix import loudness

    n = 3 * loudness._BLOCK
    x = np.zeros((1, n))
    at = loudness._BLOCK - 1
    x[0, at - 3 : at + 5] = np.sin(2 * np.pi * 0.25 * np.arange(-3, 5) + np.pi / 4)
    assert true_peak(x) > np.max(np.abs(x)) * 1.05


# --------------------------------------------------------------------------- normalise


def test_normalised_mix_hits_minus_23_under_the_ceiling() -> None:
    stems = realish_stems()
    mix = mix_down(stems)
    out, report = normalize(mix, SR)
    assert report.loudness_before == pytest.approx(pyln_loudness(mix), abs=1e-6)
    assert abs(pyln_loudness(out) - (-23.0)) < 0.5
    assert report.loudness_after == pytest.approx(pyln_loudness(out), abs=1e-6)
    assert not report.peak_limited and report.shortfall_lu < 0.01
    assert report.gain_db == pytest.approx(-23.0 - report.loudness_before, abs=1e-9)
    assert true_peak_dbtp(out) <= -1.0
    assert np.max(np.abs(out)) <= 10 ** (-1 / 20)
    assert out.dtype == np.float32 and out.shape == mix.shape


def test_loud_peaky_mix_is_held_at_the_ceiling_and_says_so() -> None:
    stems = realish_stems(click_gain_db=0.0)
    mix = mix_down(stems)
    out, report = normalize(mix, SR, target_lufs=-14.0, true_peak_dbtp=-1.0)
    assert report.peak_limited
    assert report.true_peak_before + (-14.0 - report.loudness_before) > -1.0  # peak bound
    assert report.true_peak_after <= -1.0
    assert report.true_peak_after == pytest.approx(-1.0, abs=0.01)  # gain used up to the ceiling
    assert true_peak_dbtp(out) <= -1.0
    assert np.max(np.abs(out)) <= 10 ** (-1 / 20)
    assert pyln_loudness(out) < -14.5  # the target could not be reached
    assert report.shortfall_lu == pytest.approx(-14.0 - pyln_loudness(out), abs=1e-6)
    assert "could not" in report.note or "under the" in report.note


def test_already_too_hot_mix_is_turned_down_to_the_ceiling() -> None:
    x = np.random.default_rng(5).uniform(-1.0, 1.0, (2, 2 * SR)).astype(np.float32)
    x[0, SR] = 1.0
    out, report = normalize(x, SR, target_lufs=-5.0, true_peak_dbtp=-2.0)
    assert report.gain_db < 0 and report.peak_limited
    assert true_peak_dbtp(out) <= -2.0


def test_silent_mix_does_not_crash() -> None:
    out, report = normalize(np.zeros((2, 2 * SR), np.float32), SR)
    assert report.loudness_before == -math.inf and report.loudness_after == -math.inf
    assert report.gain_db == 0.0 and not report.peak_limited
    assert report.true_peak_before == -math.inf
    assert not np.any(out)
    assert "silent" in report.note


def test_a_mix_shorter_than_one_gating_block_is_measured_as_one_block() -> None:
    x = synth.tone(440.0, 0.2, SR, 0.01, channels=2)
    out, report = normalize(x, SR)
    # The loudness of all 0.2 s as one block: pyloudnorm with a 0.2 s block, no padding.
    one_block = float(pyloudnorm.Meter(SR, block_size=0.2).integrated_loudness(x.T.astype(float)))
    assert report.loudness_before == pytest.approx(one_block, abs=1e-6)
    assert integrated_loudness(x, SR) == pytest.approx(one_block, abs=1e-6)
    assert report.gain_db == pytest.approx(-23.0 - one_block, abs=1e-6)
    assert report.loudness_after == pytest.approx(-23.0, abs=1e-3)
    assert report.single_block and "one block over its 0.200 s" in report.note
    np.testing.assert_allclose(out, x * 10 ** (report.gain_db / 20), rtol=1e-5, atol=1e-9)
    values = (report.loudness_before, report.loudness_after, report.gain_db, report.true_peak_after)
    assert all(math.isfinite(v) for v in values)


def test_one_block_measure_agrees_with_bs1770_where_both_apply() -> None:
    steady = np.random.default_rng(3).uniform(-0.2, 0.2, (2, 2 * SR))
    from sfxmatch.mix.loudness import single_block_loudness

    assert single_block_loudness(steady, SR) == pytest.approx(pyln_loudness(steady), abs=0.05)
    block = steady[:, : round(0.4 * SR)]  # exactly one block: the same sum either way
    assert integrated_loudness(block, SR) == pytest.approx(pyln_loudness(block), abs=1e-9)


@pytest.mark.parametrize("samples", [0, 1, SR // 5, 2 * SR], ids=["empty", "1", "0.2s", "2s"])
def test_empty_and_silent_mixes_give_no_nan_and_no_gain(samples: int) -> None:
    x = np.zeros((2, samples), np.float32)
    out, report = normalize(x, SR)
    assert out.shape == (2, samples) and not np.any(out)
    assert report.loudness_before == report.loudness_after == -math.inf
    assert report.gain_db == 0.0 and not report.peak_limited and not report.single_block
    assert report.note == (
        "empty: nothing to measure, no gain" if samples == 0 else "silent: no gain"
    )
    assert not any(math.isnan(v) for v in dataclasses.astuple(report) if isinstance(v, float))
    assert integrated_loudness(x, SR) == -math.inf


def test_normalised_stems_sum_to_the_normalised_mix() -> None:
    stems = realish_stems()
    scaled, mix, report = normalize_stems(stems)
    assert scaled.names == stems.names
    np.testing.assert_allclose(mix_down(scaled), mix, atol=1e-6)
    g = 10 ** (report.gain_db / 20)
    np.testing.assert_allclose(scaled["SFX 2"], stems["SFX 2"] * g, rtol=1e-6, atol=1e-9)
    assert abs(pyln_loudness(mix) + 23.0) < 0.5


def test_render_mix_normalises_by_default() -> None:
    rng = np.random.default_rng(9)
    loader = DictLoader(n=rng.uniform(-0.5, 0.5, (1, 2 * SR)))
    result = render_mix([place("n", 0.0, 2.0)], 2.0, loader=loader)
    assert result.loudness is not None
    assert abs(pyln_loudness(result.mix) + 23.0) < 0.5
    np.testing.assert_allclose(mix_down(result.stems), result.mix, atol=1e-6)
    raw = render_mix([place("n", 0.0, 2.0)], 2.0, loader=loader, normalise=False)
    assert raw.loudness is None and pyln_loudness(raw.mix) > -20.0


def test_ceiling_above_full_scale_is_refused() -> None:
    with pytest.raises(ConfigError):
        normalize(np.zeros((2, SR)), SR, true_peak_dbtp=0.5)
    with pytest.raises(ConfigError):
        normalize(np.zeros((2, SR)), SR, target_lufs=float("nan"))


# --------------------------------------------------------------------------- what render reports


def _edit(duration: float) -> Edit:
    clips = (SourceClip("/media/picture.mov", 0.0, duration, 0.0, "picture"),) if duration else ()
    return Edit(clips=clips, fps=Fraction(25))


@pytest.mark.parametrize(
    ("duration", "sound", "measured", "note"),
    [
        (0.2, "tone", True, "one block over its 0.200 s"),
        (0.0, None, False, "empty: nothing to measure"),
        (1.0, "silence", False, "silent: no gain"),
    ],
    ids=["0.2s", "empty", "silent"],
)
def test_render_writes_short_empty_and_silent_mixes_and_reports_no_nan(
    tmp_path: Path, duration: float, sound: str | None, measured: bool, note: str
) -> None:
    signals = {"tone": synth.tone(440.0, 1.0, SR, 0.3), "silence": np.zeros(SR, np.float32)}
    placements = ()
    if sound:
        path = synth.make_audio_file(tmp_path / f"{sound}.wav", signals[sound], SR).path
        placements = (place(str(path), 0.0, duration, source_duration=1.0),)
    s = Suggestions(_edit(duration), (), placements, "none")
    mix_path = tmp_path / "out" / "mix.wav"
    settings = Settings(cache_dir=tmp_path / "cache", data_dir=tmp_path / "data")
    with Pipeline(settings) as pipeline:
        result = pipeline.render(
            s, RenderRequest(mix=str(mix_path), stems_dir=str(tmp_path / "st"))
        )

    audio = media.load_audio(mix_path, channels="keep")
    assert audio.samples.shape[1] == round(duration * SR)
    assert note in result.loudness_note
    # JSON can carry it (nan and inf cannot be written as JSON)
    json.dumps(dataclasses.asdict(result), allow_nan=False)
    if measured:
        assert result.loudness_lufs == pytest.approx(-23.0, abs=0.01)
        assert result.gain_db is not None and math.isfinite(result.gain_db)
        assert loudness_line(result).startswith("mix loudness -23.0 LUFS, true peak ")
    else:
        assert result.loudness_lufs is None and result.true_peak_dbtp is None
        assert result.gain_db == 0.0
        assert loudness_line(result) == f"mix loudness not measured ({result.loudness_note})"
        assert not np.any(audio.samples)
    # and the daemon's message carries the same
    from sfxmatch.client import _render_result
    from sfxmatch.service.translate import render_result_msg

    assert _render_result(render_result_msg(result)) == result


def test_render_result_never_holds_nan_or_inf() -> None:
    r = RenderResult(files=(), loudness_lufs=math.nan, true_peak_dbtp=-math.inf, gain_db=0.0)
    assert (r.loudness_lufs, r.true_peak_dbtp, r.gain_db) == (None, None, 0.0)
