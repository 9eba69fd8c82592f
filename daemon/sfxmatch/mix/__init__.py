"""The mixer: placements to stems, a loudness-normalised mix, WAV files and a muxed video.

Layers, pure maths apart from I/O:

- :mod:`.render`: placements to per-track stereo stems (placement, loops, fades, pan, gain).
- :mod:`.loudness`: integrated loudness, 4x oversampled true peak, normalisation.
- :mod:`.output`: the mix and the stems as WAV files; :mod:`.mux`: the mix under the picture.

:func:`render_mix` runs the first two in one call. Long work reports through ``progress``
(``progress(stage, fraction, message)``) and stops when the ``cancel`` ``threading.Event``
is set, raising :class:`~sfxmatch.errors.Cancelled`.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sfxmatch.progress import ProgressFn
from sfxmatch.suggestions import Placement

from .loudness import (
    DEFAULT_TARGET_LUFS,
    DEFAULT_TRUE_PEAK_DBTP,
    LoudnessReport,
    integrated_loudness,
    normalize,
    normalize_stems,
    true_peak,
    true_peak_dbtp,
)
from .mux import audio_codec_for, mux_video
from .output import safe_filename, stem_paths, write_mix, write_stems
from .render import (
    DEFAULT_LOOP_CROSSFADE,
    DEFAULT_SAMPLE_RATE,
    Loader,
    SoundCache,
    Stems,
    check_cancel,
    mix_down,
    render_stems,
    report,
)

__all__ = [
    "DEFAULT_LOOP_CROSSFADE",
    "DEFAULT_SAMPLE_RATE",
    "DEFAULT_TARGET_LUFS",
    "DEFAULT_TRUE_PEAK_DBTP",
    "Loader",
    "LoudnessReport",
    "Mix",
    "SoundCache",
    "Stems",
    "audio_codec_for",
    "integrated_loudness",
    "mix_down",
    "mux_video",
    "normalize",
    "normalize_stems",
    "render_mix",
    "render_stems",
    "safe_filename",
    "stem_paths",
    "true_peak",
    "true_peak_dbtp",
    "write_mix",
    "write_stems",
]


@dataclass(frozen=True)
class Mix:
    """A finished render: the stems, their sum and what loudness normalisation did
    (``loudness`` is None when normalisation was turned off)."""

    stems: Stems
    mix: np.ndarray  # (2, n) float32, the sum of the stems
    loudness: LoudnessReport | None

    @property
    def sample_rate(self) -> int:
        return self.stems.sample_rate


def render_mix(
    placements: Sequence[Placement],
    duration: float,
    *,
    sample_rate: int = DEFAULT_SAMPLE_RATE,
    loop_crossfade: float | None = None,
    normalise: bool = True,
    target_lufs: float = DEFAULT_TARGET_LUFS,
    true_peak_ceiling: float = DEFAULT_TRUE_PEAK_DBTP,
    loader: Loader | None = None,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> Mix:
    """Render stems, sum them and (by default) normalise loudness, the stems by the same gain.

    ``loop_crossfade`` (seconds), when given, replaces each placement's own (see
    :func:`render_stems`)."""
    stems = render_stems(
        placements,
        duration,
        sample_rate=sample_rate,
        loop_crossfade=loop_crossfade,
        loader=loader,
        progress=progress,
        cancel=cancel,
    )
    if not normalise:
        return Mix(stems, mix_down(stems), None)
    check_cancel(cancel, "loudness")
    report(progress, "loudness", 0.0, "measuring")
    stems, mix, loudness = normalize_stems(stems, target_lufs, true_peak_ceiling)
    report(progress, "loudness", 1.0, loudness.note or f"{loudness.gain_db:+.2f} dB")
    return Mix(stems, mix, loudness)
