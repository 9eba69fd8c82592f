"""The vector-store contract: typed records, a small filter, and the ``VectorStore`` protocol.

Every backend (exact numpy, LanceDB, Pinecone) stores the same values and answers the same
questions; the conformance tests run one suite against all of them. Vectors are unit-length
float32 (ImageBind embeddings, renormalised), so cosine similarity is a dot product and every
backend reports ``score = cosine`` (higher is better).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Literal, Protocol, TypeVar, get_args, runtime_checkable

import numpy as np
from numpy.typing import ArrayLike, NDArray

from sfxmatch.errors import StoreError

Kind = Literal["ambience", "effect", "music"]
KINDS: tuple[Kind, ...] = get_args(Kind)

Modality = Literal["audio", "text"]
"""What a vector embeds: a window of the sound's audio, or the text of its label."""
MODALITIES: tuple[Modality, ...] = get_args(Modality)

DEFAULT_DIM = 1024  # ImageBind huge
MAX_ID_LENGTH = 512  # Pinecone's limit; every backend enforces it so ids stay portable
UNIT_TOLERANCE = 1e-3  # float32 embeddings renormalised upstream land well inside this


_S = TypeVar("_S", bound="StoreLifecycle")


class StoreLifecycle:
    """What every backend shares about being open or closed, and use as a context manager."""

    _closed: bool = False

    def close(self) -> None:
        self._closed = True

    def __enter__(self: _S) -> _S:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("the store is closed")


@dataclass(frozen=True, slots=True)
class SoundMeta:
    """What is known about the sound a vector belongs to (one sound, many vectors)."""

    sound_id: str
    library: str
    kind: Kind
    label: str
    ucs_category: str = ""
    path: str = ""
    duration: float = 0.0  # seconds, the whole sound
    modality: Modality = "audio"
    start: float = 0.0  # seconds: the window of the sound this vector embeds (audio vectors)
    end: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {self.kind!r}")
        if self.modality not in MODALITIES:
            raise ValueError(f"modality must be one of {MODALITIES}, not {self.modality!r}")
        if not self.library:
            raise ValueError("library must not be empty")
        if not self.sound_id:
            raise ValueError("sound_id must not be empty")
        for name in ("duration", "start", "end"):
            value = getattr(self, name)
            if not math.isfinite(value):
                raise ValueError(f"{name} must be finite, not {value!r}")

    def to_dict(self) -> dict[str, str | float]:
        """Flat, JSON- and Arrow-friendly metadata (every value a str or a float)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SoundMeta:
        return cls(
            sound_id=str(data["sound_id"]),
            library=str(data["library"]),
            kind=data["kind"],
            label=str(data["label"]),
            ucs_category=str(data.get("ucs_category", "")),
            path=str(data.get("path", "")),
            duration=float(data.get("duration", 0.0)),
            modality=data.get("modality", "audio"),
            start=float(data.get("start", 0.0)),
            end=float(data.get("end", 0.0)),
        )


META_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(SoundMeta))


@dataclass(frozen=True, slots=True, eq=False)
class Record:
    """One stored vector: a unit float32 array of shape (dim,) and its sound's metadata."""

    id: str
    vector: NDArray[np.float32]
    meta: SoundMeta

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Record):
            return NotImplemented
        return (
            self.id == other.id
            and self.meta == other.meta
            and np.array_equal(self.vector, other.vector)
        )

    __hash__ = None  # type: ignore[assignment]  # mutable array inside: not hashable


@dataclass(frozen=True, slots=True)
class Hit:
    """A query result: the record's id, its cosine similarity to the query, its metadata."""

    id: str
    score: float
    meta: SoundMeta


FilterValue = str | Iterable[str] | None
FILTER_FIELDS: tuple[str, ...] = (
    "kind",
    "label",
    "ucs_category",
    "library",
    "modality",
    "sound_id",
)


@dataclass(frozen=True, slots=True)
class Filter:
    """Equality (a str) or membership (an iterable of str) per field; fields combine with AND.

    ``Filter(kind="effect", label=["Door Slam", 'Rain "heavy"'])``. Memberships are stored as
    sorted tuples; filters that mean the same compare (and hash) equal. An empty membership
    list matches nothing.
    """

    # Equality and hashing go by the normalised clauses, so Filter(label="a") equals
    # Filter(label=["a"]): they mean the same.
    kind: FilterValue = field(default=None, compare=False)
    label: FilterValue = field(default=None, compare=False)
    ucs_category: FilterValue = field(default=None, compare=False)
    library: FilterValue = field(default=None, compare=False)
    modality: FilterValue = field(default=None, compare=False)
    sound_id: FilterValue = field(default=None, compare=False)
    _clauses: tuple[tuple[str, tuple[str, ...]], ...] = field(init=False, repr=False, default=())

    def __post_init__(self) -> None:
        clauses: list[tuple[str, tuple[str, ...]]] = []
        for name in FILTER_FIELDS:
            value = getattr(self, name)
            if value is None:
                continue
            values = (value,) if isinstance(value, str) else tuple(sorted(set(value)))
            for v in values:
                if not isinstance(v, str):
                    raise TypeError(f"filter {name} values must be str, not {type(v).__name__}")
            if name == "kind":
                bad = [v for v in values if v not in KINDS]
                if bad:
                    raise ValueError(f"filter kind {bad[0]!r} is not one of {KINDS}")
            object.__setattr__(self, name, values[0] if isinstance(value, str) else values)
            clauses.append((name, values))
        object.__setattr__(self, "_clauses", tuple(clauses))

    @property
    def clauses(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """``(field, allowed values)`` for every field that is constrained."""
        return self._clauses

    @property
    def is_empty(self) -> bool:
        """True when the filter matches nothing (some field has an empty membership list)."""
        return any(not values for _, values in self._clauses)

    def values(self, name: str) -> tuple[str, ...] | None:
        """The allowed values of one field, or None when that field is unconstrained."""
        for clause_name, values in self._clauses:
            if clause_name == name:
                return values
        return None

    def without(self, name: str) -> Filter:
        """The same filter with one field left unconstrained."""
        kwargs: dict[str, FilterValue] = {n: v for n, v in self._clauses if n != name}
        return Filter(**kwargs)

    def matches(self, meta: SoundMeta) -> bool:
        return all(getattr(meta, name) in values for name, values in self._clauses)


@runtime_checkable
class VectorStore(Protocol):
    """A persistent collection of unit vectors with sound metadata, searched by cosine.

    ``id`` is the primary key: upserting an existing id replaces it (no duplicates), across
    libraries too. Writes are visible to reads of the same store object once the call returns
    (Pinecone is eventually consistent across clients; see its module).
    """

    @property
    def dim(self) -> int: ...

    def upsert(self, records: Iterable[Record]) -> int:
        """Insert or replace by id; returns how many records were written."""
        ...

    def delete(self, ids: Iterable[str] | None = None, *, filter: Filter | None = None) -> None:
        """Remove these ids, or every record ``filter`` matches (one of the two, as Pinecone's
        delete takes one selector); unknown ids are ignored."""
        ...

    def get(self, ids: Sequence[str]) -> list[Record]:
        """The stored records for these ids, in the order asked; unknown ids are left out."""
        ...

    def query(self, vector: ArrayLike, top_k: int = 10, filter: Filter | None = None) -> list[Hit]:
        """The ``top_k`` records most similar to ``vector`` (renormalised), best first."""
        ...

    def count(self, filter: Filter | None = None) -> int: ...

    def labels(self, filter: Filter | None = None) -> list[str]:
        """Distinct labels of the matching records, sorted (for label-first search)."""
        ...

    def close(self) -> None: ...


# --- helpers shared by the backends -------------------------------------------------------


def check_id(record_id: str) -> str:
    """Ids are non-empty printable ASCII of at most 512 characters (portable to Pinecone)."""
    if not isinstance(record_id, str) or not record_id:
        raise ValueError(f"record id must be a non-empty str, not {record_id!r}")
    if len(record_id) > MAX_ID_LENGTH:
        raise ValueError(f"record id longer than {MAX_ID_LENGTH} characters: {record_id[:40]}...")
    if not (record_id.isascii() and record_id.isprintable()):
        raise ValueError(f"record id must be printable ASCII: {record_id!r}")
    return record_id


def check_vector(vector: ArrayLike, dim: int, *, what: str = "vector") -> NDArray[np.float32]:
    """A contiguous float32 copy of shape (dim,); raises unless finite and unit-length."""
    array = np.ascontiguousarray(np.asarray(vector, dtype=np.float32).reshape(-1))
    if array.shape != (dim,):
        raise ValueError(f"{what} has {array.size} values, the store holds {dim}-d vectors")
    norm = float(np.linalg.norm(array))
    if not math.isfinite(norm) or abs(norm - 1.0) > UNIT_TOLERANCE:
        raise ValueError(f"{what} must be unit-length (cosine = dot), its norm is {norm:.6f}")
    return array


def normalize_query(vector: ArrayLike, dim: int) -> NDArray[np.float32]:
    """The query as a unit float32 vector (queries need not be pre-normalised)."""
    array = np.asarray(vector, dtype=np.float32).reshape(-1)
    if array.shape != (dim,):
        raise ValueError(f"query has {array.size} values, the store holds {dim}-d vectors")
    norm = float(np.linalg.norm(array))
    if not math.isfinite(norm) or norm == 0.0:
        raise ValueError("query vector must be finite and non-zero")
    return np.ascontiguousarray(array / norm, dtype=np.float32)


def check_top_k(top_k: int) -> int:
    if not isinstance(top_k, int) or top_k < 1:
        raise ValueError(f"top_k must be a positive int, not {top_k!r}")
    return top_k


def prepare_records(records: Iterable[Record], dim: int) -> list[Record]:
    """Validated records, one per id (the last wins, as a sequence of upserts would)."""
    by_id: dict[str, Record] = {}
    for record in records:
        if not isinstance(record, Record):
            raise TypeError(f"expected Record, not {type(record).__name__}")
        check_id(record.id)
        vector = check_vector(record.vector, dim, what=f"vector of {record.id!r}")
        by_id.pop(record.id, None)  # keep first-seen order of the final values
        by_id[record.id] = Record(record.id, vector, record.meta)
    return list(by_id.values())


def prepare_ids(ids: Iterable[str]) -> list[str]:
    """Validated ids, duplicates removed, order kept."""
    if isinstance(ids, str):
        raise TypeError("pass a sequence of ids, not a single str")
    return list(dict.fromkeys(check_id(i) for i in ids))


def delete_selector(ids: Iterable[str] | None, filter: Filter | None) -> list[str] | Filter:
    """What a ``delete`` call removes: validated ids, or the filter. Exactly one is given."""
    if (ids is None) == (filter is None):
        raise TypeError("delete takes ids or a filter (exactly one)")
    if filter is not None:
        if not isinstance(filter, Filter):
            raise TypeError(f"filter must be a Filter, not {type(filter).__name__}")
        return filter
    assert ids is not None
    return prepare_ids(ids)


def chunks(items: Sequence[Any] | np.ndarray, size: int) -> Iterable[Any]:
    """Consecutive slices of at most ``size`` items."""
    for start in range(0, len(items), size):
        yield items[start : start + size]
