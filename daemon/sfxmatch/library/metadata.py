"""From a sound file to a label text (as a person would write it) and a UCS category.

Sources, most trusted first; the first that has something usable gives the label, and,
separately, the first that names a UCS category gives the category:

1. ``catalogue``: a CSV/TSV the user points to (file and description columns found by
   loose header names), or AudioSet-style label files whose ontology ids are mapped to
   names (``mid_to_display_name.tsv``, ``class_labels_indices.csv`` or ``ontology.json``,
   given or found beside the catalogue).
2. ``embedded``: iXML (USER and ASWG blocks: description, fxName, catId / category /
   subCategory), the BWF ``bext`` description, RIFF INFO / AIFF NAME-ANNO, ID3, Vorbis
   comments, MP4 atoms. Descriptions first, then FX names, then titles; titles only when
   descriptive (two words or more: real files carry titles like "1889" or "coq07"), and
   recorder junk (Sound Devices ``sKEY=value`` lines, URLs, encoder names) is dropped.
3. ``sidecar``: the first line of ``name.txt`` beside ``name.ext`` (Tux Paint's way).
4. ``ucs_name``: a file name following the UCS convention with a known CatID.
5. ``filename``: the file name cleaned into words.

Labels are lower case: the text tower's tokenizer lower-cases anyway, and equal labels
should compare equal.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import struct
import unicodedata
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import regex

from sfxmatch.errors import ConfigError
from sfxmatch.library.syncpoints import (
    SYNC_HEADERS,
    Mark,
    catalogue_value,
    file_mark,
    is_sync_line,
    sidecar_mark,
)
from sfxmatch.library.ucs import UcsCategory, UcsName, lookup_cat_id, lookup_names, parse_ucs_name

LabelSource = Literal["catalogue", "embedded", "sidecar", "ucs_name", "filename"]

MAX_LABEL_CHARS = 200  # the text tower reads 77 tokens; a longer description is cut at a word

# --------------------------------------------------------------------------- text cleaning

_WS = regex.compile(r"\s+")
_KEY_VALUE_LINE = regex.compile(r"^\s*[A-Za-z][A-Za-z0-9_.]{0,24}\s*=")  # sSPEED=..., fr=...
_JUNK = regex.compile(
    r"https?://|www\.|copyright|©|\(c\)|licen[cs]e|\bcc[\s-]?(by|0)\b|creative commons"
    r"|public domain|all rights reserved|encoded|encoder|(created|made|edited|recorded|converted)"
    r" (with|by)|downloaded from|freesound|lavf|lavc|itun",
    regex.IGNORECASE,
)
_SENTENCE_END = regex.compile(r"(?<=[.!?])\s+|\s*[|\n]\s*")
_PLACEHOLDER = regex.compile(
    r"^(untitled|track|audio|sound|sample|new recording|my recording|recording|take|clip)"
    r"[\s_\-]*\d*$",
    regex.IGNORECASE,
)
_DEVICE_ID = regex.compile(
    r"^[A-Za-z]{0,6}[\s_\-]?\d[\d\s_\-.]*[A-Za-z]?$"
)  # ZOOM0001, T001, 130723_05


def clean_text(text: str) -> str:
    """A free text as a label: one line, single spaces, lower case, no closing full stop."""
    text = unicodedata.normalize("NFC", text).replace("\x00", " ")
    text = _WS.sub(" ", text).strip()
    while True:  # '“No U-Turn”.' -> 'No U-Turn'
        trimmed = text.strip("\"'“”‘’«» ").rstrip(".;:, ")
        if trimmed == text:
            break
        text = trimmed
    text = text.lower()
    if len(text) > MAX_LABEL_CHARS:
        cut = text[:MAX_LABEL_CHARS]
        text = cut[: cut.rfind(" ")] if " " in cut else cut
    return text


def is_descriptive(text: str, *, min_words: int = 1) -> bool:
    """Whether a cleaned text says something about a sound (not an id, URL or placeholder)."""
    if not text or _JUNK.search(text) or _PLACEHOLDER.match(text) or _DEVICE_ID.match(text):
        return False
    words = [w for w in regex.findall(r"\p{L}+", text) if len(w) >= 2]
    return len(words) >= min_words


def strip_junk(text: str) -> str:
    """Drop the sentences of a tag that are credits, licences, URLs or encoder names:
    "Electric kettle on the boil. CC-BY-SA" -> "Electric kettle on the boil."."""
    parts = [p for p in _SENTENCE_END.split(text) if p.strip() and not _JUNK.search(p)]
    return " ".join(parts)


def _description_lines(text: str) -> str:
    """Drop machine lines (``sTAKE=01``, ``zSPEED=...``) that recorders write into bext."""
    kept = [line for line in text.splitlines() if line.strip() and not _KEY_VALUE_LINE.match(line)]
    return " ".join(kept)


# --------------------------------------------------------------------------- file names

_GENERIC_WORDS = """
    default sfx fx snd sound sounds audio sample samples clip file track final master new copy
    edit edited render rendered bounce export untitled recording rec env wav wave mp3 ogg flac
    aif aiff mono stereo ms lr khz hz bit bits kbps"""
_GENERIC = frozenset(_GENERIC_WORDS.split())
_LOOP_WORDS = frozenset({"loop", "loops", "looped", "looping", "lp", "seamless", "loopable"})
_TAKE_WORDS = frozenset({"take", "tk", "var", "variation", "variant", "alt", "version", "ver", "v"})
_EXPAND = {"amb": "ambience", "ambi": "ambience", "bg": "background", "bkg": "background"}
_CAMEL_1 = regex.compile(r"(\p{Ll})(\p{Lu})")
_CAMEL_2 = regex.compile(r"(\p{Lu}+)(\p{Lu}\p{Ll})")
_LETTER_DIGIT = regex.compile(r"(\p{L})(\p{N})|(\p{N})(\p{L})")
_TOKEN_SPLIT = regex.compile(r"[^\p{L}\p{N}']+")


@dataclass(frozen=True)
class NameLabel:
    """What a file name says: a label, a UCS parse if it follows the convention, a loop hint."""

    text: str
    ucs: UcsName | None
    loop: bool


def _singular(word: str) -> str:
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


def name_words(text: str) -> tuple[str, bool]:
    """Clean a file-name-like text into words; also say whether it announced a loop.

    ``default_dirt_footstep.1`` -> "dirt footstep"; ``doors_door_open`` -> "door open";
    ``creakyDoorOpen_take3_v2`` -> "creaky door open"; ``Forest_Amb_Loop_01`` -> loop.
    """
    text = _CAMEL_2.sub(r"\1 \2", _CAMEL_1.sub(r"\1 \2", text))
    text = _LETTER_DIGIT.sub(lambda m: " ".join(g for g in m.groups() if g), text)
    raw = [t.strip("'").lower() for t in _TOKEN_SPLIT.split(text)]
    raw = [t for t in raw if t]
    loop = any(t in _LOOP_WORDS for t in raw)
    words: list[str] = []
    for i, token in enumerate(raw):
        following = raw[i + 1] if i + 1 < len(raw) else ""
        if token.isdigit() or token in _GENERIC or token in _LOOP_WORDS:
            continue
        if token in _TAKE_WORDS and (following.isdigit() or not following):
            continue
        words.append(_EXPAND.get(token, token))
    while len(words) > 1 and len(words[-1]) == 1:  # variation letters: door_open_b
        words.pop()
    # A word said again later is a namespace prefix: "doors_glass_door_open", "fire_fire".
    singular = [_singular(w) for w in words]
    deduped = [w for i, w in enumerate(words) if singular[i] not in singular[i + 1 :]]
    if not deduped:  # nothing but generic words or numbers: keep what there is
        deduped = [t for t in raw if not t.isdigit()] or raw
    return " ".join(deduped), loop


def _stem(name: str) -> str:
    stem, ext = os.path.splitext(name)
    return stem if ext and len(ext) <= 6 and " " not in ext else name


def label_from_name(name: str) -> NameLabel:
    """Label from a file name (with or without extension), UCS convention first."""
    stem = _stem(name)
    parsed = parse_ucs_name(stem)
    if parsed is not None:
        fx = f"{parsed.vendor_category or ''} {parsed.fx_name}".strip()
        text, loop = name_words(fx) if fx else ("", False)
        return NameLabel(text or parsed.category.text, parsed, loop)
    text, loop = name_words(stem)
    return NameLabel(text, None, loop)


# --------------------------------------------------------------------------- embedded tags


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


@dataclass
class _TagBag:
    descriptions: list[tuple[str, str]] = field(default_factory=list)
    fx_names: list[tuple[str, str]] = field(default_factory=list)
    titles: list[tuple[str, str]] = field(default_factory=list)
    keywords: list[str] = field(default_factory=list)
    cat_ids: list[tuple[str, str]] = field(default_factory=list)
    cat_names: list[tuple[str, str, str]] = field(default_factory=list)  # (cat, sub, where)
    loop: bool = False
    mark: Mark | None = None

    def add(self, kind: str, value: object, where: str) -> None:
        text = _as_text(value)
        if not text:
            return
        if kind == "description":
            self.descriptions.append((text, where))
        elif kind == "fxname":
            self.fx_names.append((text, where))
        elif kind == "title":
            self.titles.append((text, where))
        elif kind == "keywords":
            self.keywords.extend(k.strip() for k in regex.split(r"[,;]", text) if k.strip())
        elif kind == "catid":
            self.cat_ids.append((text, where))

    def freeze(self, problem: str | None = None) -> EmbeddedTags:
        ucs, ucs_where = None, None
        for cat_id, where in self.cat_ids:
            ucs = lookup_cat_id(cat_id)
            if ucs is not None:
                ucs_where = where
                break
        if ucs is None:
            for cat, sub, where in self.cat_names:
                ucs = lookup_names(cat, sub or None)
                if ucs is not None:
                    ucs_where = where
                    break
        return EmbeddedTags(
            tuple(self.descriptions), tuple(self.fx_names), tuple(self.titles),
            tuple(dict.fromkeys(self.keywords)), ucs, ucs_where, self.loop, problem, self.mark,
        )  # fmt: skip


def _as_text(value: object) -> str:
    if isinstance(value, bytes):
        value = _decode(value)
    if isinstance(value, list | tuple):
        value = " ".join(_as_text(v) for v in value)
    return str(value).replace("\x00", " ").strip() if value is not None else ""


def _decode(raw: bytes) -> str:
    raw = raw.split(b"\x00", 1)[0] if b"\x00" in raw.rstrip(b"\x00") else raw.rstrip(b"\x00")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", "replace")


def _fold(text: str) -> str:
    return regex.sub(r"[^a-z0-9]", "", text.lower())


# Folded field names (any container) -> what they hold.
_FIELD_KIND = {
    "description": "description", "desc": "description", "bwfdescription": "description",
    "textdescription": "description", "aswgtextdescription": "description",
    "longdescription": "description", "caption": "description",
    "comment": "description", "comments": "description", "subject": "description",
    "fxname": "fxname", "tracktitle": "title", "title": "title", "name": "title",
    "songtitle": "title", "keywords": "keywords", "textkeywords": "keywords",
    "catid": "catid", "ucscatid": "catid", "category": "category",
    "subcategory": "subcategory", "ucscategory": "category", "ucssubcategory": "subcategory",
}  # fmt: skip

_CHUNK_LIMIT = 1 << 22  # metadata chunks bigger than 4 MiB are not metadata we want


def _iff_chunks(f: io.BufferedReader) -> dict[bytes, list[bytes]]:
    """Small chunks of a RIFF/RF64 WAVE or AIFF file, by id; the audio data is skipped."""
    head = f.read(12)
    if len(head) < 12:
        return {}
    if head[:4] in (b"RIFF", b"RF64", b"BW64") and head[8:12] == b"WAVE":
        order = "<"
    elif head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        order = ">"
    else:
        return {}
    file_size = os.fstat(f.fileno()).st_size
    wanted = {b"bext", b"iXML", b"LIST", b"smpl", b"acid", b"id3 ", b"ID3 ", b"ds64"}
    wanted |= {b"NAME", b"ANNO", b"COMT", b"ID3 "}
    wanted |= {b"fmt ", b"cue ", b"COMM", b"MARK"}  # sync points: rate and markers
    chunks: dict[bytes, list[bytes]] = {}
    pos, big_data = 12, None
    for _ in range(10_000):
        f.seek(pos)
        header = f.read(8)
        if len(header) < 8:
            break
        cid, size = header[:4], struct.unpack(order + "I", header[4:])[0]
        if cid == b"data" and size == 0xFFFFFFFF and big_data is not None:
            size = big_data  # RF64: the real size is in ds64
        if cid in wanted and size <= _CHUNK_LIMIT:
            data = f.read(size)
            chunks.setdefault(cid, []).append(data)
            if cid == b"ds64" and len(data) >= 16:
                big_data = struct.unpack("<Q", data[8:16])[0]
        pos += 8 + size + (size & 1)
        if pos >= file_size:
            break
    return chunks


def _riff_info(data: bytes) -> dict[bytes, str]:
    out: dict[bytes, str] = {}
    if data[:4] != b"INFO":
        return out
    pos = 4
    while pos + 8 <= len(data):
        cid, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        out[cid] = _decode(data[pos + 8 : pos + 8 + size]).strip()
        pos += 8 + size + (size & 1)
    return out


def _ixml(bag: _TagBag, raw: bytes) -> None:
    text = _decode(raw).strip()
    try:
        root = ET.fromstring(text)
    except ET.ParseError:
        return  # damaged iXML: the other sources still count
    for block in root:
        children = list(block)
        leaves = [(block.tag, block)] if not children else [(c.tag, c) for c in children]
        where_block = block.tag if children else "iXML"
        cat = sub = ""
        for tag, element in leaves:
            value = (element.text or "").strip()
            kind = _FIELD_KIND.get(_fold(tag))
            if not value or kind is None:
                continue
            where = f"iXML {where_block}/{tag}"
            if kind == "category":
                cat = value
            elif kind == "subcategory":
                sub = value
            else:
                bag.add(kind, value, where)
        if cat:
            bag.cat_names.append((cat, sub, f"iXML {where_block}/category"))


def _read_iff(bag: _TagBag, f: io.BufferedReader) -> bool:
    """bext, iXML, INFO, smpl/acid loops, AIFF NAME/ANNO. True when an ID3 chunk is there."""
    chunks = _iff_chunks(f)
    for raw in chunks.get(b"iXML", []):
        _ixml(bag, raw)
    for raw in chunks.get(b"bext", []):
        bag.add("description", _description_lines(_decode(raw[:256])), "bext description")
    for raw in chunks.get(b"LIST", []):
        info = _riff_info(raw)
        bag.add("description", info.get(b"ICMT"), "RIFF INFO ICMT")
        bag.add("description", info.get(b"ISBJ"), "RIFF INFO ISBJ")
        bag.add("title", info.get(b"INAM"), "RIFF INFO INAM")
        bag.add("keywords", info.get(b"IKEY"), "RIFF INFO IKEY")
    for cid, kind in ((b"ANNO", "description"), (b"COMT", "description"), (b"NAME", "title")):
        for raw in chunks.get(cid, []):
            data = raw[8:] if cid == b"COMT" else raw  # COMT: count, timestamp, marker, size
            bag.add(kind, _decode(data), f"AIFF {cid.decode()}")
    for raw in chunks.get(b"smpl", []):
        if len(raw) >= 36 and struct.unpack("<I", raw[28:32])[0] > 0:
            bag.loop = True  # sampler loop points: made to loop
    for raw in chunks.get(b"acid", []):
        if len(raw) >= 4 and not struct.unpack("<I", raw[:4])[0] & 1:
            bag.loop = True  # ACID flags bit 0 = one-shot
    bag.mark = file_mark(chunks, little_endian=b"COMM" not in chunks)
    return bool(chunks.get(b"id3 ") or chunks.get(b"ID3 "))


_TAG_FORMATS = {"OggVCommentDict": "Vorbis comment", "VCFLACDict": "Vorbis comment"}
_TAG_FORMATS |= {"OggOpusVComment": "Vorbis comment", "MP4Tags": "MP4", "ASFTags": "ASF"}


def _read_mutagen(bag: _TagBag, path: str | os.PathLike[str]) -> None:
    import mutagen

    tagged = mutagen.File(path)
    tags: Any = getattr(tagged, "tags", None)
    if not tags:
        return
    kind_of = _TAG_FORMATS.get(type(tags).__name__, type(tags).__name__)
    if hasattr(tags, "getall"):  # ID3, also inside WAV and AIFF
        for frame in tags.getall("COMM"):
            if _fold(frame.desc) in ("", "description", "comment", "comments"):
                bag.add("description", frame.text, "ID3 COMM")
        for frame in tags.getall("TXXX"):
            kind = _FIELD_KIND.get(_fold(frame.desc))
            if kind in ("category", "subcategory"):
                bag.cat_names.append((_as_text(frame.text), "", f"ID3 TXXX:{frame.desc}"))
            elif kind:
                bag.add(kind, frame.text, f"ID3 TXXX:{frame.desc}")
        for frame_id, kind in (("TIT3", "description"), ("TIT2", "title")):
            for frame in tags.getall(frame_id):
                bag.add(kind, frame.text, f"ID3 {frame_id}")
        return
    items = {str(k): v for k, v in tags.items()}
    mp4_names = {"desc": "description", "ldes": "description", "\xa9cmt": "description"}
    mp4_names |= {"\xa9nam": "title", "\xa9grp": "keywords"}
    cat = sub = ""
    for key, value in items.items():
        short = key.rsplit(":", 1)[-1]  # MP4 freeform ----:com.apple.iTunes:DESCRIPTION
        kind = mp4_names.get(key) or _FIELD_KIND.get(_fold(short))
        if kind == "category":
            cat = _as_text(value)
        elif kind == "subcategory":
            sub = _as_text(value)
        elif kind:
            bag.add(kind, value, f"{kind_of} {short}")
    if cat:
        bag.cat_names.append((cat, sub, f"{kind_of} category"))


def read_embedded(path: str | os.PathLike[str], fmt: str | None = None) -> EmbeddedTags:
    """Every descriptive field inside a sound file. Never raises: a file whose tags cannot be
    parsed gives empty tags with ``problem`` set (its audio may still be fine)."""
    bag = _TagBag()
    try:
        has_id3 = True
        if fmt in (None, "wav", "aiff"):
            with open(path, "rb") as f:
                has_id3 = _read_iff(bag, f) or fmt is None
        if has_id3 or fmt not in ("wav", "aiff"):
            _read_mutagen(bag, path)
    except Exception as exc:  # third-party parsers on user files: any failure = no tags
        return bag.freeze(problem=f"tags unreadable: {type(exc).__name__}: {exc}"[:200])
    # Descriptions before FX names before titles; within each, the order above (iXML first).
    return bag.freeze()


# --------------------------------------------------------------------------- sidecar text


def read_sidecar_text(path: str | os.PathLike[str]) -> tuple[str, str] | None:
    """(first line, sidecar file name) of ``name.txt`` or ``name.ext.txt`` beside a sound."""
    path = os.fspath(path)
    stem = os.path.splitext(path)[0]
    for candidate in (stem + ".txt", path + ".txt"):
        try:
            with open(candidate, "rb") as f:
                raw = f.read(4096)
        except OSError:
            continue
        for line in _decode(raw).splitlines():
            if line.strip() and not _KEY_VALUE_LINE.match(line) and not is_sync_line(line):
                text = clean_text(line)
                if is_descriptive(text):
                    return text, os.path.basename(candidate)
                break
    return None


def read_sidecar_sync(path: str | os.PathLike[str]) -> Mark | None:
    """A ``sync = 0.37`` line in ``name.txt`` or ``name.ext.txt`` beside a sound."""
    path = os.fspath(path)
    for candidate in (os.path.splitext(path)[0] + ".txt", path + ".txt"):
        try:
            with open(candidate, "rb") as f:
                raw = f.read(4096)
        except OSError:
            continue
        mark = sidecar_mark(_decode(raw), os.path.basename(candidate))
        if mark is not None:
            return mark
    return None


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


@dataclass(frozen=True)
class CatalogueEntry:
    text: str
    ucs: UcsCategory | None
    origin: str  # "sounds.csv line 12"
    sync: float | None = None  # seconds: the catalogue's sync point for the sound


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
            (self._by_stem, _stem(name)),
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
        stem = _stem(name)
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
    folded = [_fold(h) for h in header]
    for name in names:
        for i, h in enumerate(folded):
            if h == name and i not in taken:
                return i
    return None


def _pick_loose(header: list[str], parts: Iterable[str], taken: set[int]) -> int | None:
    folded = [_fold(h) for h in header]
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
            if not kept and any(_fold(c) in _FILE_HEADERS for c in cells):
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
    audioset = _fold(header[file_col]) in ("ytid", "segmentid", "youtubeid")
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


def describe_sound(
    path: str | os.PathLike[str],
    *,
    relpath: str | None = None,
    fmt: str | None = None,
    catalogue: Catalogue | None = None,
    read_tags: bool = True,
) -> SoundLabel:
    """Label one sound from every source, most trusted first (see the module docstring)."""
    name = os.path.basename(relpath if relpath is not None else os.fspath(path))
    by_name = label_from_name(name)
    candidates: list[tuple[str, LabelSource, str]] = []
    ucs_found: list[tuple[UcsCategory, LabelSource]] = []
    problems: list[str] = []

    marks: list[tuple[Mark, str]] = []
    if catalogue is not None:
        entry = catalogue.lookup(relpath if relpath is not None else name, path)
        if entry is not None and entry.sync is not None:
            marks.append((Mark(entry.sync, entry.origin), "catalogue"))
        if entry is not None and entry.text:
            candidates.append((entry.text, "catalogue", entry.origin))
            if entry.ucs is not None:
                ucs_found.append((entry.ucs, "catalogue"))
    tags = EmbeddedTags()
    if read_tags:
        tags = read_embedded(path, fmt)
        if tags.problem:
            problems.append(tags.problem)
        best = tags.best_label(_stem(name))
        if best is not None:
            candidates.append((best[0], "embedded", best[1]))
        if tags.ucs is not None:
            ucs_found.append((tags.ucs, "embedded"))
        if tags.mark is not None:
            marks.append((tags.mark, "file"))
    sidecar_sync = read_sidecar_sync(path)
    if sidecar_sync is not None:
        marks.append((sidecar_sync, "sidecar"))
    sidecar = read_sidecar_text(path)
    if sidecar is not None:
        candidates.append((sidecar[0], "sidecar", sidecar[1]))
    if by_name.ucs is not None:
        candidates.append(
            (by_name.text, "ucs_name", f"UCS file name ({by_name.ucs.category.cat_id})")
        )
        ucs_found.append((by_name.ucs.category, "ucs_name"))
    candidates.append((by_name.text or clean_text(_stem(name)), "filename", "file name"))

    text, source, detail = next((c for c in candidates if c[0]), candidates[-1])
    ucs, ucs_source = ucs_found[0] if ucs_found else (None, None)
    return SoundLabel(
        text=text, source=source, detail=detail, ucs=ucs, ucs_source=ucs_source,
        loop_hint=tags.loop or by_name.loop, keywords=tags.keywords, problems=tuple(problems),
        sync=marks[0][0] if marks else None, sync_source=marks[0][1] if marks else "",
    )  # fmt: skip
