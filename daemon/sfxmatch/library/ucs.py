"""The Universal Category System (UCS): category list and the file-name convention.

The list (``ucs_categories.json`` beside this file) is the complete UCS v8.2 table of
82 categories and 753 CatIDs (CatID, Category, SubCategory, CatShort); synonyms are left out.

File names follow ``CatID[-UserCategory]_[VendorCategory-]FXName_CreatorID_SourceID[_UserData]``:
``_`` separates blocks and ``-`` only marks the optional user/vendor parts. UCS asks that the
CatID's case be kept, so file names are matched case-sensitively (fewer false hits on names
such as ``test_tone.wav``); metadata fields, often upper-cased by tools, are matched loosely.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

UCS_DATA_FILE = "ucs_categories.json"


@dataclass(frozen=True)
class UcsCategory:
    """One UCS row, e.g. ``DOORWood`` = DOORS / WOOD (short name DOOR)."""

    cat_id: str
    category: str  # upper case, as in the list: "DOORS"
    subcategory: str  # "WOOD"; "MISC" and "GENERAL" are the catch-alls
    cat_short: str  # "DOOR"

    @property
    def text(self) -> str:
        """Words a person would use: ``doors wood``, ``rain`` (catch-all subcategories dropped)."""
        sub = "" if self.subcategory in ("MISC", "GENERAL") else self.subcategory
        words = f"{self.category} {sub}".replace("&", " ").lower().split()
        return " ".join(dict.fromkeys(words))  # "SWOOSHES SWISH" stays, "RAIN RAIN" would not


@dataclass(frozen=True)
class UcsName:
    """The blocks of a UCS file name; ``fx_name`` without the vendor part."""

    category: UcsCategory
    user_category: str | None
    vendor_category: str | None
    fx_name: str
    creator_id: str | None
    source_id: str | None
    user_data: str | None


@dataclass(frozen=True)
class _Table:
    version: str
    by_id: dict[str, UcsCategory]
    by_id_folded: dict[str, UcsCategory]
    by_names: dict[tuple[str, str], UcsCategory]


def _fold(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", text.lower())


@cache
def _table() -> _Table:
    raw = json.loads(resources.files(__package__).joinpath(UCS_DATA_FILE).read_text("utf-8"))
    rows = [UcsCategory(*row) for row in raw["rows"]]
    by_id = {row.cat_id: row for row in rows}
    for alias, target in raw.get("aliases", {}).items():
        by_id[alias] = by_id[target]
    return _Table(
        version=raw["version"],
        by_id=by_id,
        by_id_folded={_fold(key): row for key, row in by_id.items()},
        by_names={(_fold(r.category), _fold(r.subcategory)): r for r in rows},
    )


def ucs_version() -> str:
    """Version of the bundled UCS list."""
    return _table().version


def all_categories() -> tuple[UcsCategory, ...]:
    """Every UCS row, in list order (aliases not repeated)."""
    return tuple(dict.fromkeys(_table().by_id.values()))


def lookup_cat_id(cat_id: str, *, exact_case: bool = False) -> UcsCategory | None:
    """The row for a CatID. ``exact_case=False`` also accepts ``DOORWOOD`` or ``doorwood``."""
    table = _table()
    found = table.by_id.get(cat_id.strip())
    if found is None and not exact_case:
        found = table.by_id_folded.get(_fold(cat_id))
    return found


def lookup_names(category: str, subcategory: str | None = None) -> UcsCategory | None:
    """The row for a Category / SubCategory pair written out (``Doors``, ``Wood``).

    A category alone (or an unknown subcategory) gives its MISC row, where it has one.
    """
    table = _table()
    cat = _fold(category)
    if subcategory:
        found = table.by_names.get((cat, _fold(subcategory)))
        if found is not None:
            return found
    return table.by_names.get((cat, "misc")) or table.by_names.get((cat, "general"))


def parse_ucs_name(stem: str) -> UcsName | None:
    """Parse a file name without extension; None unless its first block is a known CatID.

    ``DOORWood_Creaky Door Open_JD_Cabin`` -> DOORWood, fx_name "Creaky Door Open".
    """
    blocks = stem.split("_")
    cat_block = blocks[0].strip()
    cat_id, _, user_category = cat_block.partition("-")
    category = lookup_cat_id(cat_id, exact_case=True)
    if category is None:
        return None
    fx_block = blocks[1].strip() if len(blocks) > 1 else ""
    vendor, sep, fx_name = fx_block.partition("-")
    if not sep:
        vendor, fx_name = "", fx_block
    rest = [block.strip() or None for block in blocks[2:]] + [None, None]
    return UcsName(
        category=category,
        user_category=user_category.strip() or None,
        vendor_category=vendor.strip() or None,
        fx_name=fx_name.strip(),
        creator_id=rest[0],
        source_id=rest[1],
        user_data="_".join(blocks[4:]).strip() or None,
    )
