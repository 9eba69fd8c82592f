"""What a sound file says about itself, and the ``.txt`` beside it: the metadata readers.

iXML (USER and ASWG blocks), the BWF ``bext`` description, RIFF INFO / AIFF NAME-ANNO, ID3,
Vorbis comments, MP4 atoms, cue and smpl points; a sidecar ``name.txt``. These read; which
field becomes the label is decided in :mod:`sfxmatch.library.labels`.
"""

from __future__ import annotations

import io
import os
import struct
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any

import regex

from sfxmatch.library.labels import EmbeddedTags
from sfxmatch.library.syncpoints import Mark, file_mark, is_sync_line, sidecar_mark
from sfxmatch.library.text import (
    clean_text,
    decode_tag,
    description_lines,
    fold_name,
    is_descriptive,
    is_machine_line,
)
from sfxmatch.library.ucs import lookup_cat_id, lookup_names

# --------------------------------------------------------------------------- embedded tags


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
        value = decode_tag(value)
    if isinstance(value, list | tuple):
        value = " ".join(_as_text(v) for v in value)
    return str(value).replace("\x00", " ").strip() if value is not None else ""


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
        out[cid] = decode_tag(data[pos + 8 : pos + 8 + size]).strip()
        pos += 8 + size + (size & 1)
    return out


def _ixml(bag: _TagBag, raw: bytes) -> None:
    text = decode_tag(raw).strip()
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
            kind = _FIELD_KIND.get(fold_name(tag))
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
        bag.add("description", description_lines(decode_tag(raw[:256])), "bext description")
    for raw in chunks.get(b"LIST", []):
        info = _riff_info(raw)
        bag.add("description", info.get(b"ICMT"), "RIFF INFO ICMT")
        bag.add("description", info.get(b"ISBJ"), "RIFF INFO ISBJ")
        bag.add("title", info.get(b"INAM"), "RIFF INFO INAM")
        bag.add("keywords", info.get(b"IKEY"), "RIFF INFO IKEY")
    for cid, kind in ((b"ANNO", "description"), (b"COMT", "description"), (b"NAME", "title")):
        for raw in chunks.get(cid, []):
            data = raw[8:] if cid == b"COMT" else raw  # COMT: count, timestamp, marker, size
            bag.add(kind, decode_tag(data), f"AIFF {cid.decode()}")
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
            if fold_name(frame.desc) in ("", "description", "comment", "comments"):
                bag.add("description", frame.text, "ID3 COMM")
        for frame in tags.getall("TXXX"):
            kind = _FIELD_KIND.get(fold_name(frame.desc))
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
        kind = mp4_names.get(key) or _FIELD_KIND.get(fold_name(short))
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
        for line in decode_tag(raw).splitlines():
            if line.strip() and not is_machine_line(line) and not is_sync_line(line):
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
        mark = sidecar_mark(decode_tag(raw), os.path.basename(candidate))
        if mark is not None:
            return mark
    return None
