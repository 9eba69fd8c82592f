"""The labelling decision: from what was read about a sound to its label and UCS category.

Sources, most trusted first; the first that has something usable gives the label, and,
separately, the first that names a UCS category gives the category:

1. ``catalogue``: the user's catalogue entry for the sound.
2. ``embedded``: the file's own tags: descriptions first, then FX names, then titles; titles
   only when descriptive (two words or more: real files carry titles like "1889" or
   "coq07"), and recorder junk is dropped.
3. ``sidecar``: the first line of ``name.txt`` beside ``name.ext`` (Tux Paint's way).
4. ``ucs_name``: a file name following the UCS convention with a known CatID.
5. ``filename``: the file name cleaned into words.

Pure: the readers (:mod:`~sfxmatch.library.tags`, :mod:`~sfxmatch.library.catalogue`) fill
the values defined here; :func:`sfxmatch.library.metadata.describe_sound` reads and decides.
Labels are lower case: the text tower's tokenizer lower-cases anyway, and equal labels
should compare equal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sfxmatch.library.syncpoints import Mark
from sfxmatch.library.text import (
    clean_text,
    file_stem,
    is_descriptive,
    label_from_name,
    name_words,
    strip_junk,
)
from sfxmatch.library.ucs import UcsCategory

LabelSource = Literal["catalogue", "embedded", "sidecar", "ucs_name", "filename"]


# --------------------------------------------------------------------------- what was read


@dataclass(frozen=True)
class CatalogueEntry:
    text: str
    ucs: UcsCategory | None
    origin: str  # "sounds.csv line 12"
    sync: float | None = None  # seconds: the catalogue's sync point for the sound


@dataclass(frozen=True)
class EmbeddedTags:
    """Text fields found inside a file, each with where it came from."""

    descriptions: tuple[tuple[str, str], ...] = ()  # (text, where), most trusted first
    fx_names: tuple[tuple[str, str], ...] = ()
    titles: tuple[tuple[str, str], ...] = ()
    keywords: tuple[str, ...] = ()
    ucs: UcsCategory | None = None
    ucs_where: str | None = None
    loop: bool = False
    problem: str | None = None  # why tags could not be read, when they could not
    mark: Mark | None = None  # the sync point the file marks (cue, iXML, AIFF marker)

    def best_label(self, name_stem: str = "") -> tuple[str, str] | None:
        """(label, where) from descriptions, FX names, then descriptive titles."""
        for text, where in self.descriptions + self.fx_names:
            cleaned = clean_text(strip_junk(text))
            if is_descriptive(cleaned):
                return cleaned, where
        stem_words = name_words(name_stem)[0] if name_stem else ""
        for text, where in self.titles:
            cleaned = clean_text(strip_junk(text))
            as_words = name_words(text)[0]
            if is_descriptive(cleaned, min_words=2) and as_words != stem_words:
                return cleaned, where
        return None


@dataclass(frozen=True)
class LabelEvidence:
    """Everything read about one sound, before its label is chosen."""

    name: str  # the file name, extension included
    catalogue: CatalogueEntry | None = None
    tags: EmbeddedTags = EmbeddedTags()
    sidecar_text: tuple[str, str] | None = None  # (first line, sidecar file name)
    sidecar_sync: Mark | None = None


# --------------------------------------------------------------------------- the label


@dataclass(frozen=True)
class SoundLabel:
    """The label of one sound, and where it and its UCS category came from."""

    text: str
    source: LabelSource
    detail: str  # the field or file: "bext description", "iXML ASWG/fxName", "cat.txt"...
    ucs: UcsCategory | None = None
    ucs_source: LabelSource | None = None
    loop_hint: bool = False  # the name, smpl loops or ACID flags say it is made to loop
    keywords: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()  # metadata that could not be read (the label still stands)
    sync: Mark | None = None  # a sync point the catalogue, the file or its sidecar declares
    sync_source: str = ""  # "catalogue", "file" or "sidecar" (syncpoints.choose's order)


def choose_label(evidence: LabelEvidence) -> SoundLabel:
    """The label, category and sync point of one sound, most trusted source first."""
    name = evidence.name
    by_name = label_from_name(name)
    candidates: list[tuple[str, LabelSource, str]] = []
    ucs_found: list[tuple[UcsCategory, LabelSource]] = []
    marks: list[tuple[Mark, str]] = []
    entry, tags = evidence.catalogue, evidence.tags
    if entry is not None and entry.sync is not None:
        marks.append((Mark(entry.sync, entry.origin), "catalogue"))
    if entry is not None and entry.text:
        candidates.append((entry.text, "catalogue", entry.origin))
        if entry.ucs is not None:
            ucs_found.append((entry.ucs, "catalogue"))
    best = tags.best_label(file_stem(name))
    if best is not None:
        candidates.append((best[0], "embedded", best[1]))
    if tags.ucs is not None:
        ucs_found.append((tags.ucs, "embedded"))
    if tags.mark is not None:
        marks.append((tags.mark, "file"))
    if evidence.sidecar_sync is not None:
        marks.append((evidence.sidecar_sync, "sidecar"))
    if evidence.sidecar_text is not None:
        candidates.append((evidence.sidecar_text[0], "sidecar", evidence.sidecar_text[1]))
    if by_name.ucs is not None:
        candidates.append(
            (by_name.text, "ucs_name", f"UCS file name ({by_name.ucs.category.cat_id})")
        )
        ucs_found.append((by_name.ucs.category, "ucs_name"))
    candidates.append((by_name.text or clean_text(file_stem(name)), "filename", "file name"))

    text, source, detail = next((c for c in candidates if c[0]), candidates[-1])
    ucs, ucs_source = ucs_found[0] if ucs_found else (None, None)
    problems = (tags.problem,) if tags.problem else ()
    return SoundLabel(
        text=text, source=source, detail=detail, ucs=ucs, ucs_source=ucs_source,
        loop_hint=tags.loop or by_name.loop, keywords=tags.keywords, problems=problems,
        sync=marks[0][0] if marks else None, sync_source=marks[0][1] if marks else "",
    )  # fmt: skip
