"""Which libraries the user has added, and the per-model index state of their sounds.

Two files under ``Settings.library_dir``:

- ``libraries.json``: the registered libraries (name, root folder, catalogue, kind overrides),
  written atomically; small and human-readable.
- ``<model>/index.sqlite``: what has been indexed with one model: a row per sound (its scan
  entry, label, kind and how many vectors it has in the store), the faults of the last run
  and a short history of runs. SQLite (WAL) makes each batch's commit atomic, so a killed
  indexer resumes from its last commit; the store's upserts are idempotent by id, so work
  redone after a kill writes the same vectors again instead of duplicates.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sfxmatch.errors import ConfigError, LimitError, PreconditionError, UnknownLibraryError
from sfxmatch.files import exclusive, storage_writes, write_text_atomic
from sfxmatch.library.scan import FileEntry, LibraryRoot, ScanFault, Snapshot
from sfxmatch.library.syncpoints import Mark, SyncPoint, choose

_NAME = re.compile(r"^[\w][\w .@+-]{0,63}$", re.UNICODE)
MAX_LIBRARIES = 200  # registered libraries at most
# libraries.json is never larger than MAX_LIBRARIES libraries with the most kind overrides
# (about 6 MB); a bigger file was not written by sfxmatch and is not read whole.
MAX_REGISTRY_BYTES = 16 * 1024 * 1024


def library_id_for(name: str) -> str:
    """The scan's library id: derived from the name, so moving the root keeps sound ids."""
    return "lib-" + hashlib.blake2b(name.encode("utf-8"), digest_size=6).hexdigest()


def check_library_name(name: str) -> str:
    if not _NAME.match(name or ""):
        raise ConfigError(
            f"library name {name!r} must be 1-64 letters, digits, spaces or . _ @ + - "
            "and start with a letter or digit"
        )
    return name


@dataclass(frozen=True)
class LibraryConfig:
    """One library: a root folder and how to read it."""

    name: str
    root: str
    catalogue: str | None = None  # CSV/TSV or AudioSet-style label file the user points to
    kind_overrides: tuple[tuple[str, str], ...] = ()  # (glob, kind), last match wins
    added_at: float = 0.0

    @property
    def library_id(self) -> str:
        return library_id_for(self.name)

    @property
    def scan_root(self) -> LibraryRoot:
        return LibraryRoot(Path(self.root), self.library_id)

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "root": self.root,
            "catalogue": self.catalogue,
            "kind_overrides": [list(p) for p in self.kind_overrides],
            "added_at": self.added_at,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LibraryConfig:
        overrides = data.get("kind_overrides") or []
        return cls(
            name=str(data["name"]),
            root=str(data["root"]),
            catalogue=str(data["catalogue"]) if data.get("catalogue") else None,
            kind_overrides=tuple((str(g), str(k)) for g, k in overrides),
            added_at=float(data.get("added_at") or 0.0),
        )


REGISTRY_LOCK_WAIT = 30.0  # seconds a change of the library list waits for another one


class Registry:
    """The registered libraries, in ``libraries.json``.

    Reads see the whole old file or the whole new one (it is replaced atomically); each
    change (read, modify, write) holds ``libraries.lock``, so changes from threads and
    processes at once (the daemon's calls, a local CLI) all land."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder / "libraries.json"
        self.lock_path = folder / "libraries.lock"

    def _changing(self) -> contextlib.AbstractContextManager[None]:
        return exclusive(self.lock_path, f"the library list {self.path}", wait=REGISTRY_LOCK_WAIT)

    def all(self) -> list[LibraryConfig]:
        try:
            size = self.path.stat().st_size
            if size > MAX_REGISTRY_BYTES:
                raise PreconditionError(
                    f"{self.path}: {size / 2**20:.0f} MB, more than any library list sfxmatch "
                    "writes; move it away and add the libraries again"
                )
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise PreconditionError(
                f"{self.path}: the library list cannot be read ({exc.strerror or exc})"
            ) from None
        try:
            data = json.loads(text)
            return [LibraryConfig.from_json(item) for item in data["libraries"]]
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise PreconditionError(
                f"{self.path}: is not a valid library list ({type(exc).__name__}); move it "
                "away and add the libraries again"
            ) from None

    def get(self, name: str) -> LibraryConfig:
        for library in self.all():
            if library.name == name:
                return library
        raise UnknownLibraryError(name, [lib.name for lib in self.all()])

    def add(self, library: LibraryConfig) -> LibraryConfig:
        check_library_name(library.name)
        with self._changing():
            return self._add(library)

    def _add(self, library: LibraryConfig) -> LibraryConfig:
        libraries = self.all()
        if len(libraries) >= MAX_LIBRARIES:
            raise LimitError(
                f"{len(libraries)} libraries are registered, the most sfxmatch keeps; "
                "remove one first"
            )
        for other in libraries:
            if other.name == library.name:
                raise ConfigError(
                    f"a library named {library.name!r} already exists (root {other.root})"
                )
            if os.path.realpath(other.root) == os.path.realpath(library.root):
                raise ConfigError(f"{library.root} is already library {other.name!r}")
        self._write([*libraries, library])
        return library

    def remove(self, name: str) -> LibraryConfig:
        with self._changing():
            library = self.get(name)
            self._write([lib for lib in self.all() if lib.name != name])
        return library

    def _write(self, libraries: Iterable[LibraryConfig]) -> None:
        data = {"version": 1, "libraries": [lib.to_json() for lib in libraries]}
        write_text_atomic(self.path, json.dumps(data, indent=2, ensure_ascii=False), private=True)


# --------------------------------------------------------------------------- index state


@dataclass(frozen=True)
class IndexedSound:
    """A sound as indexed: its scan entry and what the indexer made of it."""

    entry: FileEntry
    library: str
    label: str
    label_source: str
    label_detail: str
    ucs_category: str
    kind: str
    kind_source: str
    kind_reason: str
    duration: float
    windows: int  # extra window vectors beyond the whole-sound vector
    sidecar: str  # signature of the sidecar texts when labelled (a change re-labels)
    problems: tuple[str, ...] = ()
    # Sync point (seconds into the sound): the detector's onset of the main event and the
    # peak (None: not analysed yet, a sound indexed before sync points), and what the
    # catalogue, the file or its sidecar declares (source "" when nothing does).
    onset: float | None = None
    peak: float | None = None
    marked: float | None = None
    marked_source: str = ""
    marked_detail: str = ""

    def sync_point(self, override: float | None = None) -> SyncPoint:
        """The sync point this sound is placed by (:func:`syncpoints.choose`)."""
        mark = Mark(self.marked, self.marked_detail) if self.marked is not None else None
        return choose(
            override=override,
            catalogue=mark if self.marked_source == "catalogue" else None,
            file=mark if self.marked_source == "file" else None,
            sidecar=mark if self.marked_source == "sidecar" else None,
            detected=self.onset,
            peak=self.peak,
            duration=self.duration,
        )


@dataclass(frozen=True)
class RecordedFault:
    library: str
    path: str
    kind: str
    reason: str
    at: float


@dataclass(frozen=True)
class RunRecord:
    library: str
    started: float
    finished: float
    summary: dict[str, object] = field(default_factory=dict)


_SCHEMA = """
CREATE TABLE IF NOT EXISTS sounds (
    sound_id TEXT PRIMARY KEY,
    library TEXT NOT NULL,
    library_id TEXT NOT NULL,
    root BLOB NOT NULL,
    relpath BLOB NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    content_hash TEXT NOT NULL,
    format TEXT NOT NULL,
    label TEXT NOT NULL,
    label_source TEXT NOT NULL,
    label_detail TEXT NOT NULL,
    ucs_category TEXT NOT NULL,
    kind TEXT NOT NULL,
    kind_source TEXT NOT NULL,
    kind_reason TEXT NOT NULL,
    duration REAL NOT NULL,
    windows INTEGER NOT NULL,
    sidecar TEXT NOT NULL,
    problems TEXT NOT NULL,
    onset REAL,
    peak REAL,
    marked REAL,
    marked_source TEXT NOT NULL DEFAULT '',
    marked_detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS sounds_library ON sounds(library);
CREATE TABLE IF NOT EXISTS sync_overrides (
    sound_id TEXT PRIMARY KEY, library TEXT NOT NULL, content_hash TEXT NOT NULL,
    time REAL NOT NULL, set_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS faults (
    library TEXT NOT NULL, path TEXT NOT NULL, kind TEXT NOT NULL, reason TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS faults_library ON faults(library);
CREATE TABLE IF NOT EXISTS runs (
    library TEXT NOT NULL, started REAL NOT NULL, finished REAL NOT NULL, summary TEXT NOT NULL
);
"""

_COLUMNS = [
    *("sound_id", "library", "library_id", "root", "relpath", "size", "mtime_ns"),
    *("content_hash", "format", "label", "label_source", "label_detail", "ucs_category"),
    *("kind", "kind_source", "kind_reason", "duration", "windows", "sidecar", "problems"),
    *("onset", "peak", "marked", "marked_source", "marked_detail"),
]
SCHEMA_VERSION = 2
"""1: sounds without sync points; 2: the sync columns and ``sync_overrides`` (rows of a
version 1 index have NULL ``onset``: the next index run analyses their audio, and until then
suggest finds their sync points on demand)."""
_SYNC_COLUMNS = {
    "onset": "REAL",
    "peak": "REAL",
    "marked": "REAL",
    "marked_source": "TEXT NOT NULL DEFAULT ''",
    "marked_detail": "TEXT NOT NULL DEFAULT ''",
}


def display_path(raw: str | bytes | os.PathLike[str]) -> str:
    """A path printable anywhere (bytes that are not UTF-8 shown as U+FFFD)."""
    return os.fsencode(raw).decode("utf-8", "replace")


def encode_path(path: str | os.PathLike[str]) -> str:
    """A path as text that survives UTF-8 stores (Arrow, JSON, protobuf): itself when it is
    valid UTF-8, else ``b64:`` and its bytes. ``decode_path`` inverts it."""
    raw = os.fsencode(path)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return "b64:" + base64.b64encode(raw).decode("ascii")
    return "b64:" + base64.b64encode(raw).decode("ascii") if text.startswith("b64:") else text


def decode_path(text: str) -> str:
    if text.startswith("b64:"):
        return os.fsdecode(base64.b64decode(text[4:]))
    return text


class IndexState:
    """The SQLite file of one model's index. Use as a context manager.

    One connection shared by the threads of a process (the daemon serves several calls at
    once): every statement and every transaction runs under one lock, so a reader never
    sees a half-open transaction of another thread. Other processes coordinate through
    SQLite's own file locking (WAL).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.RLock()
        with self._storage():
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = _LockedConnection(
                sqlite3.connect(path, timeout=60.0, isolation_level=None, check_same_thread=False),
                self._lock,
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            self._migrate()

    def _migrate(self) -> None:
        """Bring an index written by an older sfxmatch to ``SCHEMA_VERSION``: columns are
        added (existing rows keep everything they had), nothing is dropped or rewritten."""
        (version,) = self._db.execute("PRAGMA user_version").fetchall()[0]
        if int(version) >= SCHEMA_VERSION:
            return
        with self.transaction() as db:
            have = {row[1] for row in db.execute("PRAGMA table_info(sounds)")}
            for name, kind in _SYNC_COLUMNS.items():
                if name not in have:
                    db.execute(f"ALTER TABLE sounds ADD COLUMN {name} {kind}")
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _storage(self) -> contextlib.AbstractContextManager[None]:
        return storage_writes("the sound index", self.path.parent)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> IndexState:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic commit: everything inside lands, or nothing does."""
        with self._lock, self._storage():
            db = self._db.raw
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                if db.in_transaction:  # SQLite rolls back by itself on some errors (disk full)
                    db.execute("ROLLBACK")
                raise
            try:
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise

    # -- sounds --------------------------------------------------------------------------

    def sounds(self, library: str) -> list[IndexedSound]:
        rows = self._db.execute(
            f"SELECT {', '.join(_COLUMNS)} FROM sounds WHERE library = ? ORDER BY relpath",
            (library,),
        )
        return [_sound(row) for row in rows]

    def sound(self, sound_id: str) -> IndexedSound | None:
        row = self._db.execute(
            f"SELECT {', '.join(_COLUMNS)} FROM sounds WHERE sound_id = ?", (sound_id,)
        ).fetchone()
        return _sound(row) if row else None

    def snapshot(self, library: LibraryConfig) -> Snapshot:
        """What the next scan of ``library`` is compared against: the committed sounds."""
        root = library.scan_root
        entries = tuple(
            FileEntry(
                s.entry.sound_id,
                root.library_id,
                root.path,
                s.entry.relpath,
                s.entry.size,
                s.entry.mtime_ns,
                s.entry.content_hash,
                s.entry.format,
            )
            for s in self.sounds(library.name)
        )
        return Snapshot((root,), entries)

    @staticmethod
    def put_sounds(db: sqlite3.Connection, sounds: Iterable[IndexedSound]) -> None:
        db.executemany(
            f"INSERT OR REPLACE INTO sounds ({', '.join(_COLUMNS)}) "
            f"VALUES ({', '.join('?' * len(_COLUMNS))})",
            [_row(s) for s in sounds],
        )

    @staticmethod
    def drop_sounds(db: sqlite3.Connection, sound_ids: Iterable[str]) -> None:
        ids = [(i,) for i in sound_ids]
        db.executemany("DELETE FROM sounds WHERE sound_id = ?", ids)
        db.executemany("DELETE FROM sync_overrides WHERE sound_id = ?", ids)

    # -- sync points ---------------------------------------------------------------------

    def set_override(self, sound: IndexedSound, seconds: float | None) -> None:
        """Set (or, with None, remove) the user's sync point of ``sound``; it holds while
        the file's content stays the same."""
        with self.transaction() as db:
            db.execute("DELETE FROM sync_overrides WHERE sound_id = ?", (sound.entry.sound_id,))
            if seconds is not None:
                db.execute(
                    "INSERT INTO sync_overrides (sound_id, library, content_hash, time, set_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (sound.entry.sound_id, sound.library, sound.entry.content_hash, seconds,
                     time.time()),
                )  # fmt: skip

    def overrides(self, sound_ids: Iterable[str] | None = None) -> dict[str, float]:
        """Sound id -> the user's sync point, for sounds whose content is what it was when
        it was set (a changed file's override no longer applies)."""
        sql = (
            "SELECT o.sound_id, o.time FROM sync_overrides o JOIN sounds s "
            "ON s.sound_id = o.sound_id AND s.content_hash = o.content_hash"
        )
        if sound_ids is None:
            return dict(self._db.execute(sql).fetchall())
        ids = list(dict.fromkeys(sound_ids))
        out: dict[str, float] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            rows = self._db.execute(
                f"{sql} WHERE o.sound_id IN ({', '.join('?' * len(chunk))})", chunk
            )
            out.update(dict(rows.fetchall()))
        return out

    def sound_at(self, library: str, relpath: str) -> IndexedSound | None:
        """The sound of ``library`` at ``relpath`` (relative to its root), if indexed."""
        row = self._db.execute(
            f"SELECT {', '.join(_COLUMNS)} FROM sounds WHERE library = ? AND relpath = ?",
            (library, os.fsencode(relpath)),
        ).fetchone()
        return _sound(row) if row else None

    def sounds_by_id(self, sound_ids: Iterable[str]) -> dict[str, IndexedSound]:
        ids = list(dict.fromkeys(sound_ids))
        out: dict[str, IndexedSound] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            rows = self._db.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM sounds "
                f"WHERE sound_id IN ({', '.join('?' * len(chunk))})",
                chunk,
            )
            out.update((str(row[0]), _sound(row)) for row in rows)
        return out

    def sync_points(self, sound_ids: Iterable[str]) -> dict[str, SyncPoint]:
        """Sound id -> its sync point, for the ids that are indexed."""
        sounds = self.sounds_by_id(sound_ids)
        overrides = self.overrides(sounds)
        return {sid: s.sync_point(overrides.get(sid)) for sid, s in sounds.items()}

    def sync_counts(self, library: str) -> dict[str, int]:
        """Sounds per sync-point source (override, catalogue, file, sidecar, detector,
        start) of one library: :meth:`IndexedSound.sync_point`'s precedence, in SQL."""
        fits = "(s.duration <= 0 OR {0} < s.duration)"
        rows = self._db.execute(
            "SELECT CASE "
            f"WHEN o.sound_id IS NOT NULL AND {fits.format('o.time')} THEN 'override' "
            f"WHEN s.marked IS NOT NULL AND s.marked_source != '' AND {fits.format('s.marked')} "
            "THEN s.marked_source "
            f"WHEN s.onset IS NOT NULL AND {fits.format('s.onset')} THEN 'detector' "
            "ELSE 'start' END AS source, COUNT(*) FROM sounds s LEFT JOIN sync_overrides o "
            "ON o.sound_id = s.sound_id AND o.content_hash = s.content_hash "
            "WHERE s.library = ? GROUP BY source",
            (library,),
        )
        return {str(k): int(n) for k, n in rows}

    def count(self, library: str | None) -> dict[str, int]:
        """Sounds per kind of one library (None: of every library)."""
        if library is None:
            rows = self._db.execute("SELECT kind, COUNT(*) FROM sounds GROUP BY kind")
        else:
            rows = self._db.execute(
                "SELECT kind, COUNT(*) FROM sounds WHERE library = ? GROUP BY kind", (library,)
            )
        return dict(rows.fetchall())

    def label_keys(self, library: str) -> set[tuple[str, str]]:
        """Distinct (label, kind) pairs of the library's sounds."""
        rows = self._db.execute(
            "SELECT DISTINCT label, kind FROM sounds WHERE library = ?", (library,)
        )
        return {(label, kind) for label, kind in rows}

    # -- faults and runs -----------------------------------------------------------------

    @staticmethod
    def replace_faults(db: sqlite3.Connection, library: str, faults: Iterable[ScanFault]) -> None:
        now = time.time()
        db.execute("DELETE FROM faults WHERE library = ?", (library,))
        db.executemany(
            "INSERT INTO faults (library, path, kind, reason, at) VALUES (?, ?, ?, ?, ?)",
            [(library, display_path(f.path), f.kind, f.reason, now) for f in faults],
        )

    def faults(self, library: str) -> list[RecordedFault]:
        rows = self._db.execute(
            "SELECT library, path, kind, reason, at FROM faults WHERE library = ? ORDER BY path",
            (library,),
        )
        return [RecordedFault(*row) for row in rows]

    def add_run(self, run: RunRecord) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO runs (library, started, finished, summary) VALUES (?, ?, ?, ?)",
                (run.library, run.started, run.finished, json.dumps(run.summary)),
            )
            # Keep a short history per library.
            db.execute(
                "DELETE FROM runs WHERE library = ? AND rowid NOT IN (SELECT rowid FROM runs "
                "WHERE library = ? ORDER BY finished DESC LIMIT 20)",
                (run.library, run.library),
            )

    def last_run(self, library: str) -> RunRecord | None:
        row = self._db.execute(
            "SELECT library, started, finished, summary FROM runs WHERE library = ? "
            "ORDER BY finished DESC LIMIT 1",
            (library,),
        ).fetchone()
        return RunRecord(row[0], row[1], row[2], json.loads(row[3])) if row else None

    def forget_library(self, library: str) -> None:
        with self.transaction() as db:
            for table in ("sounds", "faults", "runs", "sync_overrides"):
                db.execute(f"DELETE FROM {table} WHERE library = ?", (library,))


class _LockedConnection:
    """A sqlite3 connection whose statements run under a lock and read their rows at once
    (a cursor iterated later, outside the lock, could interleave with another thread)."""

    def __init__(self, db: sqlite3.Connection, lock: threading.RLock) -> None:
        self.raw = db
        self._lock = lock

    def execute(self, sql: str, params: Iterable[object] = ()) -> _Rows:
        with self._lock:
            return _Rows(self.raw.execute(sql, tuple(params)).fetchall())

    def executescript(self, sql: str) -> None:
        with self._lock:
            self.raw.executescript(sql)

    def close(self) -> None:
        with self._lock:
            self.raw.close()


# SQLite's values are dynamically typed: a row is a tuple of whatever the column holds.
Row = tuple[Any, ...]


class _Rows(list[Row]):
    """Rows already fetched, with the cursor methods the callers use."""

    def fetchone(self) -> Row | None:
        return self[0] if self else None

    def fetchall(self) -> list[Row]:
        return list(self)


def _row(s: IndexedSound) -> tuple[object, ...]:
    e = s.entry
    return (
        e.sound_id, s.library, e.library_id, os.fsencode(e.root), e.relpath_bytes, e.size,
        e.mtime_ns, e.content_hash, e.format, s.label, s.label_source, s.label_detail,
        s.ucs_category, s.kind, s.kind_source, s.kind_reason, s.duration, s.windows, s.sidecar,
        json.dumps(list(s.problems)), s.onset, s.peak, s.marked, s.marked_source,
        s.marked_detail,
    )  # fmt: skip


def _sound(row: Row) -> IndexedSound:
    (sid, library, library_id, root, relpath, size, mtime, digest, fmt, label, lsrc, ldet,
     ucs, kind, ksrc, kreason, duration, windows, sidecar, problems, onset, peak, marked,
     msrc, mdet) = row  # fmt: skip
    entry = FileEntry(
        str(sid), str(library_id), Path(os.fsdecode(root)), os.fsdecode(relpath),
        int(size), int(mtime), str(digest), fmt,
    )  # fmt: skip
    return IndexedSound(
        entry, str(library), str(label), str(lsrc), str(ldet), str(ucs), str(kind), str(ksrc),
        str(kreason), float(duration), int(windows), str(sidecar),
        tuple(json.loads(str(problems))), _real(onset), _real(peak), _real(marked),
        str(msrc or ""), str(mdet or ""),
    )  # fmt: skip


def _real(value: Any) -> float | None:
    return None if value is None else float(value)
