"""sfxmatch.mix.render: sample-accurate placement, loops, fades, pan law, automation, stems."""

from __future__ import annotations

import itertools
import threading
from pathlib import Path

import numpy as np
import pytest
from sfxmatch.errors import Cancelled, ConfigError, MediaError
from sfxmatch.mix import (
    SoundCache,
    Stems,
    mix_down,
    render_mix,
    render_stems,
)
from sfxmatch.mix.render import fade_curve, fade_envelope, track_order
from sfxmatch.progress import Progress
from sfxmatch.suggestions import Keyframe, Placement
from sfxmatch.testing import synth

SR = 48000
MINUS_3DB = 1 / np.sqrt(2)


def place(path: str, start: float, duration: float, **kw: object) -> Placement:
    kw.setdefault("track", "SFX 1")
    kw.setdefault("kind", "effect")
    return Placement(
        sound_id=path, path=path, label=path, record_start=start, duration=duration, **kw
    )


class DictLoader:
    """In-memory sounds at the render rate; records which paths were asked for."""

    def __init__(self, **sounds: np.ndarray) -> None:
        self.sounds = {k: np.atleast_2d(v).astype(np.float32) for k, v in sounds.items()}
        self.calls: list[str] = []

    def __call__(self, path: str) -> np.ndarray:
        self.calls.append(path)
        return self.sounds[path]


def dc(seconds: float, value: float = 1.0, channels: int = 1) -> np.ndarray:
    return np.full((channels, round(seconds * SR)), value, dtype=np.float32)


def onsets(x: np.ndarray, threshold: float = 1e-3) -> list[int]:
    """Sample indices where the signal rises above ``threshold`` after being below it."""
    loud = np.abs(x) > threshold
    rising = loud & ~np.concatenate([[False], loud[:-1]])
    return [int(i) for i in np.flatnonzero(rising)]


# --------------------------------------------------------------------------- placement


def test_clicks_land_exactly_at_round_t_times_rate(tmp_path: Path) -> None:
    path = tmp_path / "click.wav"
    synth.make_audio_file(path, synth.clicks([0.0], SR, 0.05), SR, sample_format="f32")
    times = [0.1, 0.5, 1.23456, 2.0000104, 2.9999]
    placements = [place(str(path), t, 0.05) for t in times]
    stems = render_stems(placements, 3.0)
    mix = mix_down(stems)
    assert mix.shape == (2, 3 * SR)
    assert mix.dtype == np.float32
    expected = list(synth.click_samples(times, SR))
    assert onsets(mix[0]) == expected
    assert onsets(mix[1]) == expected
    # centre pan of a mono click: -3 dB on each side
    assert mix[0, expected[0]] == pytest.approx(MINUS_3DB, abs=1e-6)


def test_source_start_offsets_the_file(tmp_path: Path) -> None:
    path = tmp_path / "late_click.wav"
    synth.make_audio_file(path, synth.clicks([0.25], SR, 0.5), SR, sample_format="f32")
    mix = mix_down(render_stems([place(str(path), 1.0, 0.3, source_start=0.2)], 2.0))
    assert onsets(mix[0]) == [round(1.0 * SR) + round(0.25 * SR) - round(0.2 * SR)]


def test_resampled_source_lands_within_one_sample(tmp_path: Path) -> None:
    path = tmp_path / "click44.wav"
    synth.make_audio_file(path, synth.clicks([0.01], 44100, 0.05), 44100, sample_format="f32")
    times = [0.3, 0.77, 1.5]
    mix = mix_down(render_stems([place(str(path), t, 0.05) for t in times], 2.0))
    for t in times:
        centre = round((t + 0.01) * SR)
        window = np.abs(mix[0, centre - 50 : centre + 50])
        assert abs(int(np.argmax(window)) - 50) <= 1


def test_sound_cache_decodes_each_file_once(tmp_path: Path) -> None:
    path = tmp_path / "tone.wav"
    synth.make_tone_file(path, duration=0.5, sample_rate=SR)
    cache = SoundCache(SR)
    render_stems([place(str(path), t, 0.2) for t in (0.0, 0.5, 1.0)], 2.0, loader=cache)
    assert cache.decoded == 1


def test_stereo_file_stays_stereo_through_cache(tmp_path: Path) -> None:
    path = tmp_path / "st.wav"
    signal = np.stack([np.full(SR // 10, 0.5), np.full(SR // 10, -0.25)]).astype(np.float32)
    synth.make_audio_file(path, signal, SR, sample_format="f32")
    mix = mix_down(render_stems([place(str(path), 0.0, 0.1)], 0.1))
    np.testing.assert_allclose(mix[0], 0.5, atol=1e-6)
    np.testing.assert_allclose(mix[1], -0.25, atol=1e-6)


def test_back_to_back_placements_tile_without_gap_or_overlap() -> None:
    loader = DictLoader(a=dc(1.0))
    cuts = [0.0, 0.3333333, 0.6666667, 1.0]
    ps = [place("a", a, b - a) for a, b in itertools.pairwise(cuts)]
    mix = mix_down(render_stems(ps, 1.0, loader=loader))
    np.testing.assert_allclose(mix, MINUS_3DB, atol=1e-6)


# --------------------------------------------------------------------------- loops


def _tone(seconds: float, freq: float = 440.0) -> np.ndarray:
    return synth.tone(freq, seconds, SR, 0.5)


def _ambience(duration: float, **kw: object) -> Placement:
    kw.setdefault("loop", True)
    return place("bed", 0.0, duration, track="Ambience", kind="ambience", **kw)


def test_loop_crossfade_is_continuous_and_exact_length() -> None:
    # 0.7031 s of a 440 Hz tone ends mid-cycle: a butt splice jumps.
    loader = DictLoader(bed=_tone(0.7031))
    natural = 0.5 * 2 * np.pi * 440 / SR  # the tone's own largest step
    smooth = render_stems([_ambience(3.3)], 3.3, loader=loader, loop_crossfade=0.1)
    hard = render_stems([_ambience(3.3)], 3.3, loader=loader, loop_crossfade=0.0)
    out = smooth["Ambience"][0]
    assert out.shape == (round(3.3 * SR),)
    assert np.max(np.abs(np.diff(out))) < 1.6 * natural
    assert np.max(np.abs(np.diff(hard["Ambience"][0]))) > 5 * natural
    # it keeps sounding to the last sample (looped, not trimmed)
    assert np.max(np.abs(out[-SR // 100 :])) > 0.2


def test_loop_crossfade_keeps_power_of_noise_beds_steady() -> None:
    rng = np.random.default_rng(1)
    bed = rng.uniform(-0.5, 0.5, (1, SR // 2)).astype(np.float32)
    out = render_stems([_ambience(3.0)], 3.0, loader=DictLoader(bed=bed), loop_crossfade=0.2)
    x = out["Ambience"][0]
    blocks = x[: (len(x) // 2400) * 2400].reshape(-1, 2400)
    rms = np.sqrt(np.mean(blocks**2, axis=1))
    steady = np.sqrt(np.mean(bed**2)) * MINUS_3DB
    assert np.all(np.abs(rms / steady - 1) < 0.2)


def test_loop_passes_follow_the_documented_schedule() -> None:
    # Ramp file 0..n-1 so each output sample tells where in the file it came from.
    n, c = 1000, 100
    ramp = np.arange(n, dtype=np.float32)[None] / n
    loader = DictLoader(bed=ramp)
    p = _ambience(3000 / SR, source_start=400 / SR, pan=-1.0)
    x = render_stems([p], 3000 / SR, loader=loader, loop_crossfade=c / SR)["Ambience"][0]
    first = n - 400  # first pass: file samples 400..999
    np.testing.assert_allclose(x[: first - c], ramp[0, 400 : n - c], atol=1e-6)
    # the second pass starts one crossfade before the first ends, from the top of the file
    second_clean = x[first : first + n - 2 * c]
    np.testing.assert_allclose(second_clean, ramp[0, c : n - c], atol=1e-6)
    assert x.shape == (3000,)


def test_loop_crossfade_is_clamped_for_short_files() -> None:
    bed = _tone(0.05, 400.0)
    stems = render_stems([_ambience(1.0)], 1.0, loader=DictLoader(bed=bed), loop_crossfade=1.0)
    x = stems["Ambience"][0]
    assert x.shape == (SR,)
    assert np.max(np.abs(x[-100:])) > 0.1


def test_without_loop_a_short_file_is_followed_by_silence() -> None:
    loader = DictLoader(bed=dc(0.5))
    x = render_stems([_ambience(2.0, loop=False)], 2.0, loader=loader)["Ambience"][0]
    assert np.all(x[: SR // 2] != 0)
    assert not np.any(x[SR // 2 :])


def test_loop_flag_on_a_long_file_just_trims() -> None:
    loader = DictLoader(bed=_tone(3.0))
    looped = render_stems([_ambience(1.0)], 1.0, loader=loader)["Ambience"]
    np.testing.assert_allclose(looped[0], _tone(1.0)[0] * MINUS_3DB, atol=1e-6)


# --------------------------------------------------------------------------- fades


def test_fades_follow_the_equal_power_curve() -> None:
    loader = DictLoader(s=dc(1.0))
    p = place("s", 0.0, 1.0, fade_in=0.1, fade_out=0.25, pan=-1.0)
    x = render_stems([p], 1.0, loader=loader)["SFX 1"][0]
    fi, fo = round(0.1 * SR), round(0.25 * SR)
    np.testing.assert_allclose(x[:fi], np.sin(np.pi / 2 * (np.arange(fi) + 0.5) / fi), atol=1e-6)
    np.testing.assert_allclose(x[-fo:], np.cos(np.pi / 2 * (np.arange(fo) + 0.5) / fo), atol=1e-6)
    np.testing.assert_allclose(x[fi:-fo], 1.0, atol=1e-6)
    assert np.all(np.diff(x[:fi]) >= 0) and np.all(np.diff(x[-fo:]) <= 0)  # float32 flat at 1
    assert x[0] < 0.01 and x[-1] < 0.01


def test_overlapping_fades_keep_power_constant() -> None:
    # Scene-cut crossfade: A fades out over the same samples B fades in.
    out_curve, in_curve = fade_curve(4800, rising=False), fade_curve(4800, rising=True)
    np.testing.assert_allclose(out_curve**2 + in_curve**2, 1.0, atol=1e-12)
    env = fade_envelope(100, 70, 70)  # overlapping fades multiply, never exceed 1
    assert env.max() <= 1.0 and env[0] < 0.05 and env[-1] < 0.05


def test_render_crossfade_between_two_ambience_placements() -> None:
    rng = np.random.default_rng(3)
    a = rng.uniform(-0.5, 0.5, (1, 2 * SR)).astype(np.float32)
    b = rng.uniform(-0.5, 0.5, (1, 2 * SR)).astype(np.float32)
    pa = place("a", 0.0, 1.5, track="Ambience", fade_out=0.5)
    pb = place("b", 1.0, 1.0, track="Ambience", fade_in=0.5)
    x = render_stems([pa, pb], 2.0, loader=DictLoader(a=a, b=b))["Ambience"][0]
    blocks = x.reshape(-1, 4800)
    rms = np.sqrt(np.mean(blocks**2, axis=1))
    assert np.all(np.abs(rms / (np.sqrt(1 / 12) * 0.5 * 2 * MINUS_3DB) - 1) < 0.15)


# --------------------------------------------------------------------------- pan and gain


@pytest.mark.parametrize(
    ("pan", "left", "right"),
    [(-1.0, 1.0, 0.0), (0.0, MINUS_3DB, MINUS_3DB), (1.0, 0.0, 1.0), (0.5, 0.3827, 0.9239)],
)
def test_constant_power_pan_of_mono_sources(pan: float, left: float, right: float) -> None:
    x = mix_down(render_stems([place("s", 0, 0.1, pan=pan)], 0.1, loader=DictLoader(s=dc(0.1))))
    assert x[0, 100] == pytest.approx(left, abs=1e-4)
    assert x[1, 100] == pytest.approx(right, abs=1e-4)
    assert x[0, 100] ** 2 + x[1, 100] ** 2 == pytest.approx(1.0, abs=1e-5)
    if pan == -1.0:
        assert not np.any(x[1])


def test_centre_is_minus_3_db() -> None:
    x = mix_down(render_stems([place("s", 0, 0.1)], 0.1, loader=DictLoader(s=dc(0.1))))
    assert 20 * np.log10(x[0, 0]) == pytest.approx(-3.0103, abs=1e-3)
    assert x[0, 0] == x[1, 0]


def test_stereo_sources_are_balanced_not_repanned() -> None:
    st = np.stack([np.full(SR // 10, 0.5), np.full(SR // 10, 0.25)]).astype(np.float32)
    loader = DictLoader(s=st)
    centre = mix_down(render_stems([place("s", 0, 0.1)], 0.1, loader=loader))
    np.testing.assert_allclose(centre[:, 10], [0.5, 0.25], atol=1e-6)
    left = mix_down(render_stems([place("s", 0, 0.1, pan=-1.0)], 0.1, loader=loader))
    np.testing.assert_allclose(left[:, 10], [0.5, 0.0], atol=1e-6)
    half = mix_down(render_stems([place("s", 0, 0.1, pan=0.5)], 0.1, loader=loader))
    assert half[1, 10] == pytest.approx(0.25, abs=1e-6)  # the favoured side is untouched
    assert half[0, 10] == pytest.approx(0.5 * np.sqrt(2) * np.cos(3 * np.pi / 8), abs=1e-6)


def test_gain_in_db() -> None:
    loader = DictLoader(s=dc(0.1))
    x = mix_down(render_stems([place("s", 0, 0.1, gain_db=-6.0, pan=-1.0)], 0.1, loader=loader))
    assert x[0, 0] == pytest.approx(10 ** (-6 / 20), abs=1e-6)


def test_automation_is_interpolated_per_sample_and_overrides_constants() -> None:
    keys = (Keyframe(0.25, 0.0, -1.0), Keyframe(0.75, -20.0, 1.0))
    p = place("s", 0.5, 1.0, gain_db=-60.0, pan=0.3, automation=keys)
    x = mix_down(render_stems([p], 1.5, loader=DictLoader(s=dc(1.0))))
    start = round(0.5 * SR)

    def at(t: float) -> tuple[float, float]:
        i = start + round(t * SR)
        return float(x[0, i]), float(x[1, i])

    assert at(0.1) == pytest.approx((1.0, 0.0), abs=1e-6)  # held before the first key
    left, right = at(0.5)  # halfway: -10 dB, centre
    assert left == pytest.approx(10 ** (-10 / 20) * MINUS_3DB, abs=1e-5)
    assert right == pytest.approx(left, abs=1e-5)
    left, right = at(0.375)  # a quarter of the way: -5 dB, pan -0.5
    theta = (-0.5 + 1) * np.pi / 4
    g = 10 ** (-5 / 20)
    assert (left, right) == pytest.approx((g * np.cos(theta), g * np.sin(theta)), abs=1e-5)
    assert at(0.9) == pytest.approx((0.0, 0.1), abs=1e-6)  # held after the last key
    level = np.hypot(
        x[0, start + SR // 4 : start + 3 * SR // 4], x[1, start + SR // 4 :][: SR // 2]
    )
    assert np.all(np.diff(20 * np.log10(level)) < 0)  # gain falls monotonically


# --------------------------------------------------------------------------- stems


def test_stems_are_per_track_in_order_and_sum_to_the_mix() -> None:
    loader = DictLoader(a=_tone(2.0, 300.0), b=dc(0.2, 0.3), c=dc(0.2, -0.2))
    ps = [
        place("b", 0.1, 0.2, track="SFX 10"),
        place("a", 0.0, 2.0, track="Ambience", kind="ambience"),
        place("c", 0.2, 0.2, track="SFX 2"),
        place("b", 0.5, 0.2, track="SFX 2"),
    ]
    stems = render_stems(ps, 2.0, loader=loader)
    assert stems.names == ("Ambience", "SFX 2", "SFX 10")
    assert isinstance(stems, Stems)
    total = sum(s for _, s in stems.tracks)
    np.testing.assert_allclose(mix_down(stems), total, atol=1e-7)
    assert not np.any(stems["SFX 10"][:, round(0.3 * SR) :])
    assert np.any(stems["SFX 2"][:, round(0.5 * SR)])
    assert track_order(["SFX 3", "Foley", "Ambience 2", "Ambience", "SFX 1"]) == [
        "Ambience",
        "Ambience 2",
        "SFX 1",
        "SFX 3",
        "Foley",
    ]


def test_zero_placements_render_silence() -> None:
    stems = render_stems([], 1.5)
    assert stems.tracks == ()
    mix = mix_down(stems)
    assert mix.shape == (2, round(1.5 * SR)) and not np.any(mix)
    result = render_mix([], 1.5)
    assert result.loudness is not None and result.loudness.gain_db == 0.0
    assert not np.any(result.mix)


def test_placements_past_the_end_are_trimmed_or_skipped() -> None:
    loader = DictLoader(a=dc(2.0), b=dc(1.0))
    ps = [place("a", 0.5, 2.0), place("b", 1.2, 0.5)]
    stems = render_stems(ps, 1.0, loader=loader)
    x = stems["SFX 1"]
    assert x.shape == (2, SR)
    assert np.all(x[:, round(0.5 * SR) :] > 0) and not np.any(x[:, : round(0.5 * SR)])
    assert loader.calls == ["a"]  # b lies wholly past the end: never loaded


def test_missing_sound_file_names_it(tmp_path: Path) -> None:
    missing = tmp_path / "gone" / "rain.wav"
    with pytest.raises(MediaError) as info:
        render_stems([place(str(missing), 0.0, 1.0)], 1.0)
    assert info.value.path == missing
    assert "rain.wav" in str(info.value)


def test_bad_arguments_are_config_errors() -> None:
    with pytest.raises(ConfigError):
        render_stems([], 1.0, sample_rate=0)
    with pytest.raises(ConfigError):
        render_stems([], float("nan"))
    with pytest.raises(ConfigError):
        render_stems([], 1.0, loop_crossfade=-1.0)


# --------------------------------------------------------------------------- progress, cancel


def test_progress_reports_stages_and_reaches_one() -> None:
    seen: list[Progress] = []
    ps = [place("s", t, 0.1) for t in (0.0, 0.5, 1.0)]
    render_mix(ps, 1.5, loader=DictLoader(s=dc(0.1, 0.1)), progress=seen.append)
    render = [p.fraction for p in seen if p.stage == "render"]
    assert render == sorted(render) and render[-1] == 1.0 and len(render) >= 4
    assert seen[-1].stage == "loudness"


def test_cancel_event_stops_the_render() -> None:
    loader = DictLoader(s=dc(0.1))
    cancel = threading.Event()
    calls = 0

    def progress(p: Progress) -> None:
        nonlocal calls
        calls += 1
        if p.fraction > 0:
            cancel.set()

    ps = [place("s", t, 0.1) for t in (0.0, 0.5, 1.0)]
    with pytest.raises(Cancelled):
        render_stems(ps, 1.5, loader=loader, progress=progress, cancel=cancel)
    assert loader.calls == ["s"]  # stopped after the first placement
    cancel.set()
    with pytest.raises(Cancelled):
        render_mix(ps, 1.5, loader=DictLoader(s=dc(0.1)), cancel=cancel)
