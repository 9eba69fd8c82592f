"""The user's sound library: scan it, label its sounds, and tell ambience from effects and music.

- :mod:`~sfxmatch.library.scan`: find audio by content under library roots; a typed diff
  (added, changed, moved, deleted) against the previous snapshot with stable sound ids.
- :mod:`~sfxmatch.library.metadata`: a label text and a UCS category per sound, from a
  catalogue, embedded tags, a sidecar text or the file name, with the source recorded.
- :mod:`~sfxmatch.library.ucs`: the Universal Category System list and file-name convention.
- :mod:`~sfxmatch.library.kinds`: ambience / effect / music, with the reason.
"""

from sfxmatch.library.catalogue import Catalogue, load_catalogue, load_ontology
from sfxmatch.library.kinds import (
    KindDecision,
    KindOverrides,
    PromptSet,
    ZeroShot,
    classify_labels,
    decide_kind,
    embed_prompts,
    is_seamless_loop,
    zero_shot_kinds,
)
from sfxmatch.library.labels import SoundLabel
from sfxmatch.library.metadata import describe_sound
from sfxmatch.library.scan import (
    Changed,
    FileEntry,
    LibraryRoot,
    Moved,
    ScanFault,
    ScanResult,
    Snapshot,
    scan,
    sniff_file,
)
from sfxmatch.library.tags import read_embedded
from sfxmatch.library.ucs import UcsCategory, lookup_cat_id, parse_ucs_name
from sfxmatch.store.base import KINDS, Kind

__all__ = [
    "KINDS",
    "Catalogue",
    "Changed",
    "FileEntry",
    "Kind",
    "KindDecision",
    "KindOverrides",
    "LibraryRoot",
    "Moved",
    "PromptSet",
    "ScanFault",
    "ScanResult",
    "Snapshot",
    "SoundLabel",
    "UcsCategory",
    "ZeroShot",
    "classify_labels",
    "decide_kind",
    "describe_sound",
    "embed_prompts",
    "is_seamless_loop",
    "load_catalogue",
    "load_ontology",
    "lookup_cat_id",
    "parse_ucs_name",
    "read_embedded",
    "scan",
    "sniff_file",
    "zero_shot_kinds",
]
