"""Timecode maths: known values, round trips over a whole day, rate strings, rounding."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sfxmatch.timecode import (
    FrameRate,
    frames_to_seconds,
    frames_to_timecode,
    parse_rate,
    seconds_to_frames,
    seconds_to_timecode,
    timecode_to_frames,
    timecode_to_seconds,
)

RATES = {
    "23.976": FrameRate(Fraction(24000, 1001)),
    "24": FrameRate(Fraction(24)),
    "25": FrameRate(Fraction(25)),
    "29.97 DF": FrameRate(Fraction(30000, 1001), True),
    "29.97 NDF": FrameRate(Fraction(30000, 1001)),
    "30": FrameRate(Fraction(30)),
    "50": FrameRate(Fraction(50)),
    "59.94 DF": FrameRate(Fraction(60000, 1001), True),
    "59.94 NDF": FrameRate(Fraction(60000, 1001)),
    "60": FrameRate(Fraction(60)),
}


@pytest.mark.parametrize("name", sorted(RATES))
def test_rate_strings_parse_to_the_exact_rate(name: str) -> None:
    assert parse_rate(name) == RATES[name]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("24000/1001", FrameRate(Fraction(24000, 1001))),
        ("23.98", FrameRate(Fraction(24000, 1001))),
        ("29.97", FrameRate(Fraction(30000, 1001))),
        ("29.97002997", FrameRate(Fraction(30000, 1001))),
        ("30000/1001 DF", FrameRate(Fraction(30000, 1001), True)),
        ("59.94fps", FrameRate(Fraction(60000, 1001))),
        ("25 fps", FrameRate(Fraction(25))),
        ("119.88 DF", FrameRate(Fraction(120000, 1001), True)),
    ],
)
def test_more_rate_spellings(text: str, expected: FrameRate) -> None:
    assert parse_rate(text) == expected


@pytest.mark.parametrize("text", ["", "fast", "0", "-25", "25 DF", "23.976 DF", "1/0"])
def test_bad_rate_strings_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_rate(text)


@pytest.mark.parametrize(
    ("rate", "frames", "tc"),
    [
        ("29.97 DF", 1800, "00:01:00;02"),
        ("29.97 DF", 1799, "00:00:59;29"),
        ("29.97 DF", 17982, "00:10:00;00"),
        ("29.97 DF", 107892, "01:00:00;00"),
        ("29.97 NDF", 108000, "01:00:00:00"),
        ("59.94 DF", 3600, "00:01:00;04"),
        ("59.94 DF", 35964, "00:10:00;00"),
        ("59.94 DF", 215784, "01:00:00;00"),
        ("23.976", 86400, "01:00:00:00"),
        ("24", 86400, "01:00:00:00"),
        ("25", 90000, "01:00:00:00"),
        ("25", 90001, "01:00:00:01"),
        ("30", 108000, "01:00:00:00"),
        ("50", 180049, "01:00:00:49"),
        ("60", 216000, "01:00:00:00"),
    ],
)
def test_known_timecodes(rate: str, frames: int, tc: str) -> None:
    r = RATES[rate]
    assert frames_to_timecode(frames, r) == tc
    assert timecode_to_frames(tc, r) == frames


@pytest.mark.parametrize("name", sorted(RATES))
def test_round_trip_over_the_whole_day(name: str) -> None:
    r = RATES[name]

    @settings(max_examples=300, deadline=None)
    @given(st.integers(min_value=0, max_value=r.frames_per_day - 1))
    def check(frames: int) -> None:
        tc = frames_to_timecode(frames, r)
        assert timecode_to_frames(tc, r) == frames
        assert (";" in tc) == r.drop_frame

    check()
    # and the day's edges exactly
    last = r.frames_per_day - 1
    assert timecode_to_frames(frames_to_timecode(last, r), r) == last
    assert frames_to_timecode(last, r).startswith("23:59:59")
    assert frames_to_timecode(r.frames_per_day, r) == frames_to_timecode(0, r)  # wraps


@pytest.mark.parametrize("name", ["29.97 DF", "59.94 DF"])
def test_drop_frame_timecode_is_consecutive_across_every_minute(name: str) -> None:
    """Walk 11 minutes frame by frame: labels only ever skip the dropped ones."""
    r = RATES[name]
    previous = None
    for f in range(0, 11 * 60 * r.nominal):
        tc = frames_to_timecode(f, r)
        hh, mm, ss, ff = (int(x) for x in tc.replace(";", ":").split(":"))
        label = ((hh * 60 + mm) * 60 + ss) * r.nominal + ff
        if previous is not None:
            step = label - previous
            dropped = 2 if r.nominal == 30 else 4
            assert step == 1 or (step == 1 + dropped and ss == 0 and mm % 10 != 0), tc
        previous = label


@pytest.mark.parametrize("tc", ["00:01:00;00", "00:01:00;01", "01:59:00;00"])
def test_drop_frame_labels_that_do_not_exist_are_refused(tc: str) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        timecode_to_frames(tc, RATES["29.97 DF"])


def test_semicolon_needs_a_drop_frame_rate() -> None:
    with pytest.raises(ValueError, match="drop-frame"):
        timecode_to_frames("01:00:00;00", RATES["25"])


@pytest.mark.parametrize("tc", ["1:00:00", "00:00:00:25", "00:60:00:00", "aa:bb:cc:dd"])
def test_malformed_timecodes_are_refused(tc: str) -> None:
    with pytest.raises(ValueError):
        timecode_to_frames(tc, RATES["25"])


def test_drop_frame_flag_needs_an_ntsc_multiple_of_30() -> None:
    with pytest.raises(ValueError, match="drop-frame"):
        FrameRate(Fraction(25), True)


@pytest.mark.parametrize("name", sorted(RATES))
def test_seconds_round_to_the_nearest_frame(name: str) -> None:
    r = RATES[name]
    period = 1 / float(r.fps)
    for k in (0, 1, 7, 1799, 1800, 17982, 107892, 5_000_000):
        exact = k / r.fps  # Fraction
        assert seconds_to_frames(float(exact), r) == k
        assert seconds_to_frames(float(exact) + 0.49 * period, r) == k
        assert seconds_to_frames(float(exact) + 0.51 * period, r) == k + 1
        if k:
            assert seconds_to_frames(float(exact) - 0.49 * period, r) == k
        assert abs(frames_to_seconds(k, r) - float(exact)) < 1e-9


def test_an_exact_half_frame_rounds_up() -> None:
    assert seconds_to_frames(Fraction(1, 50), RATES["25"]) == 1  # 0.5 frame
    assert seconds_to_frames(Fraction(3, 50), RATES["25"]) == 2  # 1.5 frames


def test_seconds_and_timecode_helpers() -> None:
    r = RATES["29.97 DF"]
    assert seconds_to_timecode(60.06, r) == "00:01:00;02"  # 60.06 s = frame 1800
    assert timecode_to_seconds("00:10:00;00", r) == pytest.approx(17982 * 1001 / 30000, abs=1e-9)
    assert timecode_to_seconds("01:00:00:00", RATES["25"]) == 3600.0


def test_negative_or_non_finite_inputs_are_refused() -> None:
    with pytest.raises(ValueError):
        frames_to_timecode(-1, RATES["25"])
    with pytest.raises(ValueError):
        seconds_to_frames(float("nan"), RATES["25"])
