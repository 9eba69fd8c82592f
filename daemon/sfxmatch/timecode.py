"""Frame-accurate conversions between seconds, frame counts and SMPTE timecode.

Pure functions, no I/O. A :class:`FrameRate` is an exact ``Fraction`` of frames per second
plus whether its timecode is drop-frame (only 29.97, 59.94 and 119.88 can be: 2, 4 or 8
frame *labels* are skipped at the start of every minute except each tenth; no frame is
ever dropped from the picture).

Rounding: :func:`seconds_to_frames` maps a time to the *nearest* frame boundary, with an
exact half frame going up (``floor(t * fps + 1/2)``, computed on the float's exact binary
value so ``k / fps`` always lands on frame ``k``). Placing a clip therefore moves it by at
most half a frame. :func:`frames_to_seconds` is exact (a ``Fraction``) or a float.

Timecode strings are ``HH:MM:SS:FF``; drop-frame ones are written ``HH:MM:SS;FF`` and any of
``:;.,`` is accepted as a separator when reading. Frame counts past 24 hours wrap around the
clock when written as timecode, as they do on hardware.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction

from sfxmatch.framing import whole_media_frames

__all__ = [
    "FrameRate",
    "frames_to_seconds",
    "frames_to_timecode",
    "media_frames",
    "parse_rate",
    "rate_from_float",
    "seconds_to_frames",
    "seconds_to_timecode",
    "timecode_to_frames",
    "timecode_to_seconds",
]

_NTSC = Fraction(1000, 1001)
_TC = re.compile(r"^\s*(\d{1,2})[:;.,](\d{2})[:;.,](\d{2})([:;.,])(\d{2,3})\s*$")


@dataclass(frozen=True, slots=True)
class FrameRate:
    """An exact frame rate and its timecode counting mode."""

    fps: Fraction
    drop_frame: bool = False

    def __post_init__(self) -> None:
        fps = Fraction(self.fps)
        object.__setattr__(self, "fps", fps)
        if fps <= 0:
            raise ValueError(f"a frame rate must be positive, not {fps}")
        if self.drop_frame and _drop_count(fps) == 0:
            raise ValueError(
                f"drop-frame timecode exists only for 29.97, 59.94 and 119.88 fps, not {_show(fps)}"
            )

    @property
    def nominal(self) -> int:
        """Frames counted per timecode second: 30 for 29.97, 24 for 23.976."""
        return math.ceil(self.fps)

    @property
    def frames_per_day(self) -> int:
        """Frames from 00:00:00:00 up to (not including) 24:00:00:00."""
        if self.drop_frame:
            return 144 * self._frames_per_10min()
        return 24 * 3600 * self.nominal

    @property
    def is_ntsc(self) -> bool:
        return self.fps.denominator == 1001

    def _frames_per_10min(self) -> int:
        return self.nominal * 600 - 9 * _drop_count(self.fps)

    def __str__(self) -> str:
        return _show(self.fps) + (" DF" if self.drop_frame else "")

    @classmethod
    def of(cls, rate: FrameRate | Fraction | float | int | str) -> FrameRate:
        """Coerce a rate given as a ``FrameRate``, a number or a rate string."""
        if isinstance(rate, FrameRate):
            return rate
        if isinstance(rate, str):
            return parse_rate(rate)
        if isinstance(rate, Fraction):
            return cls(rate)
        return cls(rate_from_float(float(rate)))


def _drop_count(fps: Fraction) -> int:
    """Frame labels skipped per minute in drop-frame timecode (0: no DF at this rate)."""
    base = fps / _NTSC
    if base.denominator == 1 and base.numerator in (30, 60, 120):
        return base.numerator // 15
    return 0


def _show(fps: Fraction) -> str:
    if fps.denominator == 1:
        return str(fps.numerator)
    text = f"{float(fps):.3f}".rstrip("0").rstrip(".")
    return text


def rate_from_float(value: float) -> Fraction:
    """The exact rate a float stands for: 29.97 / 29.97002997 → 30000/1001, 25.0 → 25."""
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"a frame rate must be a positive number, not {value!r}")
    whole = round(value)
    if abs(value - whole) < 1e-6:
        return Fraction(whole)
    ntsc_base = round(value * 1.001)
    if ntsc_base > 0 and abs(value - float(ntsc_base * _NTSC)) < 0.006:
        return ntsc_base * _NTSC
    if abs(value - whole) < 1e-3:
        return Fraction(whole)
    return Fraction(value).limit_denominator(1001)


def parse_rate(text: str) -> FrameRate:
    """Parse a rate string: ``"25"``, ``"23.976"``, ``"24000/1001"``, ``"29.97 DF"``,
    ``"59.94 NDF"``, ``"29.97fps"`` (DaVinci Resolve's timeline frame-rate strings and the
    like). A rate without DF/NDF is non-drop. Raises ``ValueError`` on anything else."""
    original = text
    s = text.strip().upper().replace("FPS", " ").replace("_", " ").strip()
    drop = False
    m = re.match(r"^(.*?)[\s-]*(DF|NDF|DROP(?:\s*FRAME)?|NON[\s-]*DROP(?:\s*FRAME)?)$", s)
    if m:
        s = m.group(1).strip()
        drop = m.group(2) == "DF" or m.group(2).startswith("DROP")
    try:
        if "/" in s:
            num, den = s.split("/", 1)
            fps = Fraction(int(num), int(den))
        else:
            fps = rate_from_float(float(s))
    except (ValueError, ZeroDivisionError):
        raise ValueError(f"not a frame rate: {original!r}") from None
    return FrameRate(fps, drop)


# --------------------------------------------------------------------------- seconds


def seconds_to_frames(seconds: float | Fraction, rate: FrameRate | Fraction | float) -> int:
    """The frame nearest to ``seconds`` (half a frame rounds up). Exact for ``k / fps``."""
    fps = FrameRate.of(rate).fps
    if isinstance(seconds, float) and not math.isfinite(seconds):
        raise ValueError(f"not a finite time: {seconds!r}")
    return math.floor(Fraction(seconds) * fps + Fraction(1, 2))


def media_frames(seconds: float | Fraction, rate: FrameRate | Fraction | float | int) -> int:
    """THE rule for how much media a file has in whole frames (or samples, with a sample rate
    as ``rate``): its length *floored* at ``rate``. An editor is never handed a frame that the
    file does not have in full; a tail shorter than a frame is left out. (Record times snap to
    the *nearest* frame, :func:`seconds_to_frames`; lengths of media never round up.)"""
    return whole_media_frames(seconds, FrameRate.of(rate).fps)


def frames_to_seconds(frames: int, rate: FrameRate | Fraction | float) -> float:
    """Where frame ``frames`` starts, in seconds (as a float)."""
    return float(Fraction(frames) / FrameRate.of(rate).fps)


# --------------------------------------------------------------------------- timecode


def frames_to_timecode(frames: int, rate: FrameRate | Fraction | float) -> str:
    """SMPTE timecode of a frame count from 00:00:00:00 (drop-frame written with ``;``)."""
    r = FrameRate.of(rate)
    if frames < 0:
        raise ValueError(f"timecode cannot show a negative frame count ({frames})")
    f = frames % r.frames_per_day
    n = r.nominal
    if r.drop_frame:
        drop = _drop_count(r.fps)
        per_10min = r._frames_per_10min()
        per_min = n * 60 - drop
        tens, rest = divmod(f, per_10min)
        f += 9 * drop * tens
        if rest > drop:
            f += drop * ((rest - drop) // per_min)
    ff = f % n
    total_seconds = f // n
    hh, rem = divmod(total_seconds, 3600)
    mm, ss = divmod(rem, 60)
    sep = ";" if r.drop_frame else ":"
    width = len(str(n - 1)) if n > 100 else 2
    return f"{hh:02d}:{mm:02d}:{ss:02d}{sep}{ff:0{width}d}"


def timecode_to_frames(timecode: str, rate: FrameRate | Fraction | float) -> int:
    """Frame count of a timecode string. A ``;`` before the frames needs a drop-frame rate;
    a drop-frame label that does not exist (00:01:00;00 at 29.97 DF) is an error."""
    r = FrameRate.of(rate)
    m = _TC.match(timecode)
    if not m:
        raise ValueError(f"not a timecode: {timecode!r} (expected HH:MM:SS:FF)")
    hh, mm, ss, sep, ff = int(m[1]), int(m[2]), int(m[3]), m[4], int(m[5])
    n = r.nominal
    if sep == ";" and not r.drop_frame:
        raise ValueError(f"{timecode!r} is drop-frame timecode but the rate {r} is not")
    if mm > 59 or ss > 59 or ff >= n:
        raise ValueError(f"{timecode!r} is not a valid timecode at {r}")
    total_minutes = hh * 60 + mm
    frames = (total_minutes * 60 + ss) * n + ff
    if r.drop_frame:
        drop = _drop_count(r.fps)
        if ss == 0 and ff < drop and mm % 10 != 0:
            raise ValueError(f"{timecode!r} does not exist in drop-frame timecode at {r}")
        frames -= drop * (total_minutes - total_minutes // 10)
    return frames


def seconds_to_timecode(seconds: float | Fraction, rate: FrameRate | Fraction | float) -> str:
    """Timecode of the frame nearest to ``seconds``."""
    return frames_to_timecode(seconds_to_frames(seconds, rate), rate)


def timecode_to_seconds(timecode: str, rate: FrameRate | Fraction | float) -> float:
    """Seconds from 00:00:00:00 to the start of the frame labelled ``timecode``."""
    return frames_to_seconds(timecode_to_frames(timecode, rate), rate)
