"""Catalogues: a CSV/TSV the user points to, or AudioSet-style label files, read into a
lookup from a sound's path to its description, UCS category and sync point.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import regex

from sfxmatch.errors import ConfigError
from sfxmatch.library.labels import CatalogueEntry
from sfxmatch.library.syncpoints import SYNC_HEADERS, catalogue_value
from sfxmatch.library.text import clean_text, file_stem, fold_name
from sfxmatch.library.ucs import lookup_cat_id, lookup_names

# --------------------------------------------------------------------------- catalogues

_MID = regex.compile(r"/[mgt]/[\w\-]+")
_MIDS_ONLY = regex.compile(r"^\s*/[mgt]/[\w\-]+(\s*[,;|]\s*/[mgt]/[\w\-]+)*\s*$")
_FILE_HEADERS: tuple[str, ...] = (
    "file",
    "filename",
    "filepath",
    "path",
    "soundfile",
    "audiofile",
    "fname",
    "ytid",
)
_FILE_HEADERS += ("segmentid", "youtubeid", "sound", "audio", "clip", "name")
_TEXT_HEADERS: tuple[str, ...] = ("description", "desc", "caption", "captions", "label", "labels")
_TEXT_HEADERS += ("positivelabels", "displayname", "fxname", "title", "text", "class")
_TEXT_HEADERS += ("classname", "category", "tags", "keywords", "name")
_ONTOLOGY_FILES = ("mid_to_display_name.tsv", "class_labels_indices.csv", "ontology.json")


def _key(path: str) -> str:
    key = path.strip().replace("\\", "/")
    while key.startswith("./"):
        key = key[2:]
    return key.casefold()


def _tail2(key: str) -> str:
    return "/".join(key.rsplit("/", 2)[-2:])


class Catalogue:
    """Descriptions by file, from one or more catalogue files."""

    def __init__(
        self, rows: Iterable[tuple[str, CatalogueEntry]] = (), *, audioset: bool = False
    ) -> None:
        # audioset: also match file stems loosely (YTID.wav, YYTID.wav, YTID_30.000.wav); off
        # for other catalogues, where "door.wav" must not describe "door_open_2.wav".
        self.audioset = audioset
        self._by_path: dict[str, CatalogueEntry] = {}
        self._by_tail: dict[str, CatalogueEntry | None] = {}
        self._by_name: dict[str, CatalogueEntry | None] = {}
        self._by_stem: dict[str, CatalogueEntry | None] = {}
        for path, entry in rows:
            self._add(path, entry)

    def _add(self, path: str, entry: CatalogueEntry) -> None:
        key = _key(path)
        if not key:
            return
        old = self._by_path.get(key)
        if old is not None:  # several rows for one file (AudioSet strong labels): merge
            texts = dict.fromkeys([*old.text.split(", "), *entry.text.split(", ")])
            text = ", ".join(t for t in texts if t)
            sync = old.sync if old.sync is not None else entry.sync
            entry = CatalogueEntry(text, old.ucs or entry.ucs, old.origin, sync)
        self._by_path[key] = entry
        name = key.rsplit("/", 1)[-1]
        # A name shared by two different files is ambiguous: only its full path finds it.
        indexes = (
            (self._by_tail, _tail2(key)),
            (self._by_name, name),
            (self._by_stem, file_stem(name)),
        )
        for index, k in indexes:
            same = k not in index or (old is not None and index[k] == old)
            index[k] = entry if same else None

    def __len__(self) -> int:
        return len(self._by_path)

    def merged(self, other: Catalogue) -> Catalogue:
        """This catalogue with ``other``'s rows added (for the same file, this one wins)."""
        rows = {**other._by_path, **self._by_path}
        return Catalogue(rows.items(), audioset=self.audioset or other.audioset)

    def lookup(
        self, relpath: str, path: str | os.PathLike[str] | None = None
    ) -> CatalogueEntry | None:
        """The entry for a sound: by relative or full path, by the last two path parts, by
        a file name or stem that only one row has, then (AudioSet) by loose stems."""
        key = _key(os.fsencode(relpath).decode("utf-8", "replace"))
        for candidate in (key, _key(os.fsdecode(path)) if path is not None else None):
            if candidate and candidate in self._by_path:
                return self._by_path[candidate]
        name = key.rsplit("/", 1)[-1]
        stem = file_stem(name)
        for index, k in (
            (self._by_tail, _tail2(key)),
            (self._by_name, name),
            (self._by_stem, stem),
        ):
            if index.get(k) is not None:
                return index[k]
        if not self.audioset:
            return None
        # AudioSet clips are saved as YTID.wav, YYTID.wav, YTID_30.000.wav, YTID_30000_40000.wav...
        variants = [stem[1:]] if stem.startswith("y") else []
        parts = stem.split("_")
        variants += ["_".join(parts[:n]) for n in range(len(parts) - 1, 0, -1)]
        for variant in variants:
            if self._by_stem.get(variant) is not None:
                return self._by_stem[variant]
        return None


def _read_text(path: Path) -> str:
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("cp1252", "replace")


def load_ontology(path: str | os.PathLike[str]) -> dict[str, str]:
    """AudioSet-style ontology id -> display name, from ``ontology.json`` (list of objects
    with ``id`` and ``name``), ``mid_to_display_name.tsv`` or ``class_labels_indices.csv``."""
    path = Path(path)
    text = _read_text(path)
    if path.suffix.lower() == ".json":
        data = json.loads(text)
        return {item["id"]: item["name"] for item in data if "id" in item and "name" in item}
    delimiter = "\t" if "\t" in text.split("\n", 1)[0] else ","
    out: dict[str, str] = {}
    for row in csv.reader(io.StringIO(text), delimiter=delimiter):
        cells = [c.strip() for c in row]
        for i, cell in enumerate(cells[:-1]):
            if _MID.fullmatch(cell):
                out[cell] = cells[i + 1]
                break
    return out


def _find_ontology(folder: Path) -> dict[str, str]:
    for name in _ONTOLOGY_FILES:
        candidate = folder / name
        if candidate.is_file():
            return load_ontology(candidate)
    return {}


def _pick(header: list[str], names: Iterable[str], taken: set[int]) -> int | None:
    folded = [fold_name(h) for h in header]
    for name in names:
        for i, h in enumerate(folded):
            if h == name and i not in taken:
                return i
    return None


def _pick_loose(header: list[str], parts: Iterable[str], taken: set[int]) -> int | None:
    folded = [fold_name(h) for h in header]
    for part in parts:
        for i, h in enumerate(folded):
            if part in h and i not in taken:
                return i
    return None


def load_catalogue(
    path: str | os.PathLike[str], *, ontology: Mapping[str, str] | None = None
) -> Catalogue:
    """Read a CSV/TSV catalogue of descriptions by file.

    Header names are matched loosely (``File Name``, ``filepath``, ``Description``,
    ``caption``, ``labels``, ``CatID``...); a file without a recognisable header is read as
    ``file, description`` rows. Lines starting with ``#`` are comments, except an AudioSet
    ``# YTID, start_seconds, ...`` header. Ontology ids (``/m/09x0r``) in the text column
    are mapped to names with ``ontology`` or an ontology file found beside the catalogue.
    Raises ConfigError when the file cannot be read or has no usable column.
    """
    path = Path(path)
    try:
        text = _read_text(path)
    except OSError as exc:
        raise ConfigError(f"catalogue {path} cannot be read: {exc.strerror or exc}") from None
    comment_header: str | None = None
    kept: list[tuple[int, str]] = []  # (line number in the file, line) of non-comment lines
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped.startswith("#"):
            body = stripped[1:]
            cells = regex.split(r"[,\t;|]", body)
            if not kept and any(fold_name(c) in _FILE_HEADERS for c in cells):
                comment_header = body  # AudioSet: "# YTID, start_seconds, end_seconds, ..."
        elif stripped:
            kept.append((number, line))
    if not kept:
        return Catalogue()
    first = comment_header if comment_header is not None else kept[0][1]
    delimiter = "\t" if "\t" in first else ","
    if delimiter == ",":
        with contextlib.suppress(csv.Error):
            delimiter = csv.Sniffer().sniff(first, delimiters=",;|").delimiter
    reader = csv.reader(
        io.StringIO("\n".join(line for _, line in kept)), delimiter=delimiter, skipinitialspace=True
    )
    rows = [(kept[min(reader.line_num, len(kept)) - 1][0], row) for row in reader]
    if comment_header is not None:
        header = next(csv.reader([comment_header], delimiter=delimiter, skipinitialspace=True))
    else:
        header, rows = rows[0][1], rows[1:]
    header = [h.strip() for h in header]
    taken: set[int] = set()

    def pick(names: Iterable[str], loose: Iterable[str] = ()) -> int | None:
        col = _pick(header, names, taken)
        if col is None and loose:
            col = _pick_loose(header, loose, taken)
        if col is not None:
            taken.add(col)
        return col

    file_col = pick(_FILE_HEADERS, ("file", "path", "ytid", "segment"))
    sync_col = pick(SYNC_HEADERS, ("sync",))
    catid_col = pick(("catid", "ucscatid"))
    sub_col = pick(("subcategory", "ucssubcategory"))
    text_col = pick(_TEXT_HEADERS, ("desc", "caption", "label", "title", "class"))
    cat_col = _pick(header, ("category", "ucscategory"), taken - {text_col})
    if file_col is None and text_col is None and len(header) >= 2:
        rows = [(kept[0][0], header), *rows]  # no header: the first row is data
        file_col, text_col, cat_col, sub_col, catid_col = 0, len(header) - 1, None, None, None
        sync_col = None
    if file_col is None or (text_col is None and sync_col is None):
        raise ConfigError(f"catalogue {path}: no file and description columns in {header}")
    ontology = dict(ontology) if ontology is not None else None
    audioset = fold_name(header[file_col]) in ("ytid", "segmentid", "youtubeid")
    entries: list[tuple[str, CatalogueEntry]] = []
    for number, row in rows:
        if len(row) <= file_col or (text_col is not None and len(row) <= text_col):
            continue
        value = row[text_col].strip() if text_col is not None else ""
        if _MIDS_ONLY.match(value):
            audioset = True
            if ontology is None:
                ontology = _find_ontology(path.parent)
            names = [ontology.get(mid) for mid in _MID.findall(value)]
            value = ", ".join(n for n in names if n)
        label = clean_text(value)
        sync = None
        if sync_col is not None and sync_col < len(row):
            sync = catalogue_value(row[sync_col], header[sync_col])
        if not label and sync is None:
            continue
        ucs = None
        if catid_col is not None and catid_col < len(row) and row[catid_col].strip():
            ucs = lookup_cat_id(row[catid_col])
        if ucs is None and cat_col is not None and cat_col < len(row) and row[cat_col].strip():
            sub = row[sub_col] if sub_col is not None and sub_col < len(row) else None
            ucs = lookup_names(row[cat_col], sub)
        origin = f"{path.name} line {number}"
        entries.append((row[file_col], CatalogueEntry(label, ucs, origin, sync)))
    return Catalogue(entries, audioset=audioset)
