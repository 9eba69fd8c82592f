"""Text as labels: cleaning free text and file names into the words a person would write.

Pure functions: nothing here reads a file.
"""

from __future__ import annotations

import os
import unicodedata
from dataclasses import dataclass

import regex

from sfxmatch.library.ucs import UcsName, parse_ucs_name

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


def description_lines(text: str) -> str:
    """Drop machine lines (``sTAKE=01``, ``zSPEED=...``) that recorders write into bext."""
    kept = [line for line in text.splitlines() if line.strip() and not is_machine_line(line)]
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


def file_stem(name: str) -> str:
    """A file name without its extension (a dot in a long or spaced tail is not one)."""
    stem, ext = os.path.splitext(name)
    return stem if ext and len(ext) <= 6 and " " not in ext else name


def label_from_name(name: str) -> NameLabel:
    """Label from a file name (with or without extension), UCS convention first."""
    stem = file_stem(name)
    parsed = parse_ucs_name(stem)
    if parsed is not None:
        fx = f"{parsed.vendor_category or ''} {parsed.fx_name}".strip()
        text, loop = name_words(fx) if fx else ("", False)
        return NameLabel(text or parsed.category.text, parsed, loop)
    text, loop = name_words(stem)
    return NameLabel(text, None, loop)


# --------------------------------------------------------------------------- bytes


def decode_tag(raw: bytes) -> str:
    """A text field as files store it: up to the first NUL, UTF-8, else Windows-1252."""
    raw = raw.split(b"\x00", 1)[0] if b"\x00" in raw.rstrip(b"\x00") else raw.rstrip(b"\x00")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", "replace")


def is_machine_line(line: str) -> bool:
    """A ``key=value`` line recorders write (``sTAKE=01``, ``zSPEED=...``), not prose."""
    return bool(_KEY_VALUE_LINE.match(line))


def fold_name(text: str) -> str:
    """A field or column name folded for comparison: "ASWG fxName" -> "aswgfxname"."""
    return regex.sub(r"[^a-z0-9]", "", text.lower())
