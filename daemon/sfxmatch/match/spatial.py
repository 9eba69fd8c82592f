"""Where on screen a label's source is: pan and gain from ImageBind's patch tokens.

Soundify located emitters with Grad-CAM over CLIP. ImageBind's patch tokens, put through the
vision head's norm and projection, live in the same space as the label's text vector, so
their cosine with it is a coarse map of where the label matches. Pure numpy.
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


def locate(
    patches: npt.ArrayLike, label_vector: npt.ArrayLike, *, sharpness: float = 20.0
) -> Location:
    """Locate a label in each segment's patch map.

    ``patches``: (N, h, w, D) unit patch tokens; ``label_vector``: (D,) unit. Position is the
    softmax-weighted mean column (weights exp(sharpness * cosine), so the best-matching
    patches dominate without a hard argmax that jumps between equal peaks); strength is the
    best patch cosine.
    """
    maps = np.einsum(
        "nhwd,d->nhw", np.asarray(patches, np.float64), np.asarray(label_vector, np.float64)
    )
    n, h, w = maps.shape
    if n == 0:
        return Location(np.zeros(0), np.zeros(0))
    flat = maps.reshape(n, -1) * sharpness
    flat -= flat.max(axis=1, keepdims=True)
    weights = np.exp(flat).reshape(n, h, w)
    weights /= weights.sum(axis=(1, 2), keepdims=True)
    columns = (np.arange(w) + 0.5) / w * 2.0 - 1.0  # patch centres, -1..1
    x = (weights.sum(axis=1) * columns).sum(axis=1)
    return Location(np.clip(x, -1.0, 1.0), maps.reshape(n, -1).max(axis=1))


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


def locate_many(
    patches: npt.ArrayLike, label_vectors: npt.ArrayLike, *, sharpness: float = 20.0
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """``locate`` for many labels at once: x and strength of shape (N, L), float32.

    Lets a caller reduce each batch of patch maps right away instead of keeping them.
    """
    p = np.asarray(patches, np.float32)
    labels = np.asarray(label_vectors, np.float32)
    n, h, w, _ = p.shape
    maps = p.reshape(n, h * w, -1) @ labels.T  # (N, hw, L)
    scaled = maps * sharpness
    scaled -= scaled.max(axis=1, keepdims=True)
    weights = np.exp(scaled)
    weights /= weights.sum(axis=1, keepdims=True)
    columns = np.tile((np.arange(w, dtype=np.float32) + 0.5) / w * 2.0 - 1.0, h)  # (hw,)
    x = np.einsum("nkl,k->nl", weights, columns)
    return np.clip(x, -1.0, 1.0).astype(np.float32), maps.max(axis=1).astype(np.float32)
