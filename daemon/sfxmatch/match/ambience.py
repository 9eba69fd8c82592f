"""Ambience per scene: retrieval modes, Soundify's rerank, and beds that do not flicker.

Pure functions over vectors and typed values; the store lookups are passed in as callables
so the ranking is tested without a model or a database.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np
import numpy.typing as npt

from sfxmatch.suggestions import Candidate


def top_labels(
    scene_vector: npt.ArrayLike, labels: Sequence[str], label_vectors: npt.ArrayLike, count: int
) -> list[tuple[str, float]]:
    """Video-Text-Audio's first step: the ``count`` ambience labels nearest the scene."""
    if not labels:
        return []
    scores = np.asarray(label_vectors, np.float64) @ np.asarray(scene_vector, np.float64)
    order = sorted(range(len(labels)), key=lambda i: (-scores[i], labels[i]))[:count]
    return [(labels[i], float(scores[i])) for i in order]


def rerank_by_effects(
    candidates: Sequence[Candidate],
    candidate_vectors: npt.ArrayLike,
    effect_vectors: npt.ArrayLike,
    weight: float,
) -> list[Candidate]:
    """Soundify's rerank: beds that sound like the scene's chosen effects move up.

    New score = (1 - weight) * score + weight * mean cosine(bed audio, effect audio). With no
    effects (or weight 0) the order is unchanged.
    """
    effects = np.asarray(effect_vectors, np.float64).reshape(-1, np.shape(candidate_vectors)[-1])
    if not candidates or weight <= 0 or effects.shape[0] == 0:
        return list(candidates)
    affinity = np.asarray(candidate_vectors, np.float64) @ effects.T  # (C, E)
    pulled = affinity.mean(axis=1)
    rescored = [
        replace(c, score=float((1 - weight) * c.score + weight * pulled[i]))
        for i, c in enumerate(candidates)
    ]
    return sorted(rescored, key=lambda c: (-c.score, c.sound_id))


def borrow_short_scenes(durations: Sequence[float], minimum: float) -> list[int | None]:
    """For each scene, the index of the neighbour whose bed it keeps (None: its own).

    A scene shorter than ``minimum`` keeps the bed of the scene before it (the first scene
    the one after it), following a chain of short scenes to one that has its own bed. When
    every scene is short, the longest one lends its bed to all.
    """
    n = len(durations)
    own = [d >= minimum for d in durations]
    if n == 0:
        return []
    if not any(own):
        longest = max(range(n), key=lambda i: (durations[i], -i))
        return [None if i == longest else longest for i in range(n)]
    out: list[int | None] = []
    for i in range(n):
        if own[i]:
            out.append(None)
            continue
        before = next((j for j in range(i - 1, -1, -1) if own[j]), None)
        after = next((j for j in range(i + 1, n) if own[j]), None)
        out.append(before if before is not None else after)
    return out


def search_ambience(
    scene_vector: np.ndarray,
    mode: str,
    *,
    labels: Sequence[str],
    label_vectors: npt.ArrayLike,
    vta_labels: int,
    search: Callable[[np.ndarray, Sequence[str] | None], list[Candidate]],
) -> tuple[list[Candidate], list[tuple[str, float]]]:
    """Ranked beds for one scene, and (VTA) the labels searched inside.

    ``search(vector, labels)`` returns audio candidates of kind ambience, restricted to
    ``labels`` when given. VTA falls back to direct search when no label matches anything.
    """
    if mode == "vta" and labels:
        chosen = top_labels(scene_vector, labels, label_vectors, vta_labels)
        found = search(scene_vector, [label for label, _ in chosen])
        if found:
            return found, chosen
    return search(scene_vector, None), []
