"""The ids of a library's vectors in the store: the one place they are composed and read.

- ``<sound_id>:0``: a sound's whole audio;
- ``<sound_id>:w<k>``: window ``k`` of a long bed (``k`` from 0);
- ``t:<library_id>:<digest>``: the text of a label of one kind in one library (the digest
  hashes kind and label, so any label text makes an id Pinecone takes).

Ids are deterministic, so an index run killed between the store's upsert and the state's
commit writes the same ids again next time (no duplicates). Sound ids are hex digits
(``library.scan.derive_sound_id``): none starts with ``t:``, and neither they nor library ids
hold a colon, so every id reads back unambiguously. Pure; no I/O.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

LABEL_PREFIX = "t"
WHOLE = "0"
WINDOW_PREFIX = "w"

VectorKind = Literal["sound", "window", "label"]


@dataclass(frozen=True)
class VectorId:
    """What an id names. ``window`` is set for windows, ``library_id`` and ``digest`` for
    labels (a label's text cannot be read back from its digest)."""

    kind: VectorKind
    sound_id: str = ""
    window: int | None = None
    library_id: str = ""
    digest: str = ""


def sound_vector_id(sound_id: str) -> str:
    """The id of a sound's whole-audio vector."""
    return f"{_part(sound_id, 'sound id')}:{WHOLE}"


def window_vector_id(sound_id: str, window: int) -> str:
    """The id of window ``window`` (0-based) of a sound."""
    if window < 0:
        raise ValueError(f"a window number is 0 or more, not {window}")
    return f"{_part(sound_id, 'sound id')}:{WINDOW_PREFIX}{window}"


def audio_vector_ids(sound_id: str, windows: int) -> list[str]:
    """Every audio vector id of a sound stored with ``windows`` window vectors."""
    return [sound_vector_id(sound_id)] + [window_vector_id(sound_id, k) for k in range(windows)]


def label_vector_id(library_id: str, label: str, kind: str) -> str:
    """The id of the text vector of ``label`` as a ``kind`` in the library ``library_id``."""
    digest = hashlib.blake2b(f"{kind}\0{label}".encode(), digest_size=10).hexdigest()
    return f"{LABEL_PREFIX}:{_part(library_id, 'library id')}:{digest}"


def parse_vector_id(vector_id: str) -> VectorId:
    """What ``vector_id`` names; ValueError for an id none of the functions above make."""
    head, sep, tail = vector_id.partition(":")
    if head == LABEL_PREFIX and sep:
        library_id, sep, digest = tail.partition(":")
        if sep and library_id and digest and ":" not in digest:
            return VectorId("label", library_id=library_id, digest=digest)
    elif head and sep and ":" not in tail:
        if tail == WHOLE:
            return VectorId("sound", sound_id=head)
        number = tail[len(WINDOW_PREFIX) :]
        # Digits as window_vector_id writes them (no sign, no leading zero).
        if tail.startswith(WINDOW_PREFIX) and number.isascii() and number.isdigit():
            window = int(number)
            if number == str(window):
                return VectorId("window", sound_id=head, window=window)
    raise ValueError(f"{vector_id!r} is not a vector id of sfxmatch's index")


def _part(value: str, what: str) -> str:
    # A colon inside a part would make ids ambiguous when read back.
    if not value or ":" in value:
        raise ValueError(f"a {what} is non-empty and has no colon, not {value!r}")
    return value
