"""From a sound file to its label: read every source (catalogue, tags, sidecar), then let
:func:`sfxmatch.library.labels.choose_label` decide (its docstring lists the order)."""

from __future__ import annotations

import os

from sfxmatch.library.catalogue import Catalogue
from sfxmatch.library.labels import EmbeddedTags, LabelEvidence, SoundLabel, choose_label
from sfxmatch.library.tags import read_embedded, read_sidecar_sync, read_sidecar_text


def read_evidence(
    path: str | os.PathLike[str],
    *,
    relpath: str | None = None,
    fmt: str | None = None,
    catalogue: Catalogue | None = None,
    read_tags: bool = True,
) -> LabelEvidence:
    """Everything the catalogue, the file's tags and its sidecar say about one sound."""
    name = os.path.basename(relpath if relpath is not None else os.fspath(path))
    entry = None
    if catalogue is not None:
        entry = catalogue.lookup(relpath if relpath is not None else name, path)
    return LabelEvidence(
        name=name,
        catalogue=entry,
        tags=read_embedded(path, fmt) if read_tags else EmbeddedTags(),
        sidecar_text=read_sidecar_text(path),
        sidecar_sync=read_sidecar_sync(path),
    )


def describe_sound(
    path: str | os.PathLike[str],
    *,
    relpath: str | None = None,
    fmt: str | None = None,
    catalogue: Catalogue | None = None,
    read_tags: bool = True,
) -> SoundLabel:
    """Label one sound from every source, most trusted first."""
    evidence = read_evidence(
        path, relpath=relpath, fmt=fmt, catalogue=catalogue, read_tags=read_tags
    )
    return choose_label(evidence)
