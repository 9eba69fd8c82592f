"""Where on screen a label's source is, and the pan and gain that follow it.

Soundify located emitters with Grad-CAM over CLIP. Each encoder gives a map per frame of
where its label is (:meth:`Encoder.emitter_maps`: ImageBind from its patch tokens, which live
in the joint space, PE-AV by gradients); this module turns maps into a horizontal position
and positions and strengths into automation. Pure numpy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class Location:
    """Per segment: horizontal position -1 (left edge) .. +1 (right edge) and match strength."""

    x: npt.NDArray[np.float64]
    strength: npt.NDArray[np.float64]


def patch_weights(
    patches: npt.ArrayLike, label_vectors: npt.ArrayLike, *, sharpness: float = 20.0
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Where each clip's label matches in its patch map.

    ``patches``: (N, h, w, D) unit patch tokens in the joint space; ``label_vectors``: (N, D)
    unit, one per clip. Weights are a softmax of ``sharpness * cosine`` over the patches (the
    best-matching patches dominate without a hard argmax that jumps between equal peaks);
    strength is the best patch cosine. Returns (weights (N, h, w), strength (N,)).
    """
    p = np.asarray(patches, np.float32)
    labels = np.asarray(label_vectors, np.float32)
    n, h, w, _ = p.shape
    if n == 0:
        return np.zeros((0, h, w), np.float32), np.zeros(0, np.float32)
    cosines = np.einsum("nkd,nd->nk", p.reshape(n, h * w, -1), labels)
    scaled = cosines * sharpness
    weights = np.exp(scaled - scaled.max(axis=1, keepdims=True))
    weights /= weights.sum(axis=1, keepdims=True)
    return weights.reshape(n, h, w).astype(np.float32), cosines.max(axis=1).astype(np.float32)


def horizontal_position(maps: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """The mean column of each map (N, h, w) of non-negative weights, -1 (left edge) .. +1
    (right edge). A map with no weight anywhere says nothing: centre."""
    m = np.asarray(maps, np.float64)
    n, _, w = m.shape
    columns = (np.arange(w) + 0.5) / w * 2.0 - 1.0  # patch centres
    per_column = m.sum(axis=1)
    total = per_column.sum(axis=1)
    x = np.divide(per_column @ columns, total, out=np.zeros(n), where=total > 0)
    return np.clip(x, -1.0, 1.0)


def pan_gain_keyframes(
    times: npt.ArrayLike,
    location: Location,
    *,
    max_pan: float = 0.8,
    gain_range_db: float = 6.0,
    smooth: int = 3,
) -> list[tuple[float, float, float]]:
    """(time, gain_db, pan) keyframes for one interval, times relative to its start.

    Pan follows x (scaled by ``max_pan``: a source at the frame edge is not hard-panned, as
    mixers keep on-screen sources inside the speakers); gain is 0 dB where the match is
    strongest and down to ``-gain_range_db`` where it is weakest relative to that. A moving
    average over ``smooth`` segments keeps the automation from zipper noise.
    """
    t = np.asarray(times, np.float64)
    if t.size == 0:
        return []
    x = _smooth(location.x, smooth)
    s = _smooth(location.strength, smooth)
    top, low = float(s.max()), float(s.min())
    rel = (s - low) / (top - low) if top > low else np.ones_like(s)
    gain = -gain_range_db * (1.0 - rel)
    pan = np.clip(x * max_pan, -1.0, 1.0)
    start = float(t[0])
    return [(float(a - start), float(g), float(p)) for a, g, p in zip(t, gain, pan, strict=True)]


def _smooth(values: npt.NDArray[np.float64], width: int) -> npt.NDArray[np.float64]:
    v = np.asarray(values, np.float64)
    if width <= 1 or v.size < 2:
        return v
    kernel = np.ones(min(width, v.size)) / min(width, v.size)
    padded = np.pad(v, (len(kernel) // 2, len(kernel) - 1 - len(kernel) // 2), mode="edge")
    return np.convolve(padded, kernel, mode="valid")
