"""The values every encoder family shares: scene inputs, text spaces, weights, where a model
runs, and how long sounds are windowed.

Kept apart from :mod:`sfxmatch.embed.encoder` (the protocol and the factory) so the family
modules (``sfxmatch.embed.pe``, ``sfxmatch.embed.imagebind``) import these without importing
the factory that imports them: the package's imports stay one-way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

TextSpace = Literal["video", "audio"]
"""Which modality a text is compared with. PE-AV projects text with a head per modality pair
(a label matched against picture is embedded by its video-text head, a query for sounds by
its audio-text head); ImageBind has one text space, so both give the same vectors."""

TEXT_SPACES: tuple[TextSpace, ...] = ("video", "audio")

Weights = Literal["checkpoint", "random"]


@dataclass(frozen=True)
class SceneInput:
    """A scene for ``embed_scenes``: its decoded frames and where it lies.

    ``frames``: (H, W, 3) uint8 RGB images shown at ``times`` (seconds, same clock as
    start/end). Each encoder samples from them what its video tower was trained on.
    """

    frames: Sequence[np.ndarray] | np.ndarray
    times: Sequence[float] | np.ndarray
    start: float
    end: float


TORCH_DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


@dataclass(frozen=True)
class DevicePlacement:
    """Where and in what precision the model runs."""

    device: str  # "cpu", "cuda", "cuda:1", "mps"
    dtype: str  # "fp32", "bf16", "fp16"


def window_starts(n_samples: int, sample_rate: int, window: float, hop: float) -> list[int]:
    """Sample offsets of windows of ``window`` s every ``hop`` s over ``n_samples``.

    The tail is covered by one more window aligned to the end; an input no longer than a
    window gives a single window at 0. Every encoder windows long sounds by this rule, so the
    embedding cache knows the windows without asking the model.
    """
    return sample_window_starts(n_samples, round(window * sample_rate), round(hop * sample_rate))


def sample_window_starts(n_samples: int, window: int, hop: int) -> list[int]:
    """:func:`window_starts` with ``window`` and ``hop`` counted in samples."""
    if window < 1 or hop < 1:
        raise ValueError("window and hop must be positive")
    if n_samples <= window:
        return [0]
    starts = list(range(0, n_samples - window + 1, hop))
    if starts[-1] + window < n_samples:
        starts.append(n_samples - window)
    return starts
