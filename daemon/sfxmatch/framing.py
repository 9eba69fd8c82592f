"""THE clip-framing rule for media lengths, pure and dependency-free, so that the sync rule
(``match.spot``), the timeline exporter and the Resolve choices all floor the same way
without ``match/`` reaching the timeline package (which does file I/O).
:func:`sfxmatch.timecode.media_frames` is this rule for any rate form."""

from __future__ import annotations

import math
from fractions import Fraction

MEDIA_TOLERANCE = Fraction(1, 10**6)
"""Frames: a length that is a whole number of frames in floats (``k / fps``, a few ulps short)
still counts as ``k``. A millionth of a frame is far below one sample at any audio rate."""


def whole_media_frames(seconds: float | Fraction, fps: Fraction) -> int:
    """How much media a file of ``seconds`` has in whole frames at ``fps`` (or samples, with
    a sample rate): its length *floored*. An editor is never handed a frame that the file
    does not have in full; a tail shorter than a frame is left out."""
    if isinstance(seconds, float) and not math.isfinite(seconds):
        raise ValueError(f"not a finite time: {seconds!r}")
    return max(0, math.floor(Fraction(seconds) * fps + MEDIA_TOLERANCE))
