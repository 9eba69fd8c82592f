"""Walk sound-library roots, find audio by content, and diff against the previous snapshot.

Choices (the indexer relies on them):

- **Audio is recognised by content.** The first 4 KiB are sniffed for a container or
  stream signature (RIFF/RF64/BW64 WAVE, Wave64, AIFF/AIFC, FLAC, Ogg, MP3 frames behind an
  optional ID3 tag, ADTS AAC, MP4 audio brands, CAF, AU, APE, WavPack, AMR). A file with an
  audio extension whose content is not audio is reported as a fault; a file without an
  extension that is audio is found. Files with a known non-audio extension (.txt, .csv,
  pictures...) are not opened. MP4/ASF containers with a video brand count as audio only
  under their audio extensions (.m4a, .wma...), so videos lying in a library are not indexed.
- **Ids.** A sound's id is derived once, when the file is first seen, from the library id
  and the relative path (16 hex digits of BLAKE2b; salted on the rare collision with an id
  in use), then carried forward: a file that changes in place keeps its id, and a moved or
  renamed file (same content hash at a new path, old path gone) keeps the id of its old
  path, so vectors in the store and a user's picks stay attached to it.
- **Hashes.** A file is re-hashed only when its size or mtime changed (or it is new). Files
  up to 1 MiB are hashed whole; larger ones by their size plus four 64 KiB blocks (head,
  two inner, tail): cheap on multi-GB field recordings, and still sees edited BWF headers
  (head) and iXML chunks (tail). Same size, new mtime, same hash = "touched": unchanged.
- **Faults never stop the walk.** Each is recorded with a reason. Entries of the previous
  snapshot that sit under a folder that cannot be read now (or under a missing root, e.g.
  an unmounted drive) are carried over unchanged, not reported deleted.
- **Symlinks are followed** (libraries are often assembled from links), but every folder
  is entered once: a link back to an ancestor is a ``symlink_loop`` fault, a second way
  into a folder or file already scanned is a ``duplicate``. Hidden names (``.x``, which
  includes macOS ``._x.wav`` resource forks) are not part of a library.
- **Paths** are kept as Python strings in the file system's encoding with surrogate
  escapes, so names that are not valid UTF-8 round-trip exactly through ``os.fsencode``;
  ``Snapshot.to_json`` stores those as base64 of the raw bytes.
- **Excluded folders** (the daemon's ``--exclude``) are never read: an entry whose real
  path (links resolved) lies inside one is an ``excluded`` fault, whether a link leads
  there or the folder sits inside the library. It is not part of the library, so what was
  indexed from there before is deleted from the index.
- **Cancellation** is checked every few entries while walking and before every hash: a
  cancelled scan raises ``Cancelled`` within milliseconds and changes nothing.
- A scan speaks only for the roots it was given: entries of other libraries in the
  previous snapshot pass through untouched.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import json
import os
import stat
import threading
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Literal

from sfxmatch.errors import Cancelled, ConfigError
from sfxmatch.files import inside, real_paths

SNIFF_BYTES = 4096
FULL_HASH_LIMIT = 1 << 20  # files up to this size are hashed whole
HASH_BLOCK = 1 << 16  # bigger files: size + 4 blocks of this size

_AUDIO_EXTENSIONS = """
    wav wave bwf rf64 w64 aif aiff aifc flac ogg oga opus spx mp3 mp2 mpa m4a m4b m4r aac alac
    caf wma au snd ape wv amr"""
AUDIO_EXTENSIONS = frozenset("." + ext for ext in _AUDIO_EXTENSIONS.split())
# Never opened: sidecars and the usual clutter of a library folder.
_NOT_AUDIO_EXTENSIONS = """
    txt csv tsv json xml md nfo rtf pdf doc docx xls xlsx html htm ini cfg yaml yml toml log db
    sqlite sqlite3 png jpg jpeg gif bmp tif tiff webp zip rar 7z gz tar py lua sh exe dll app dmg
    reapeaks pk pkf asd peak sfk ptx rpp als mid midi"""
NOT_AUDIO_EXTENSIONS = frozenset("." + ext for ext in _NOT_AUDIO_EXTENSIONS.split())

AudioFormat = Literal[
    "wav", "w64", "aiff", "flac", "ogg", "opus", "speex", "mp3", "aac", "m4a", "mp4", "caf",
    "asf", "au", "ape", "wavpack", "amr",
]  # fmt: skip
# Containers that also hold video: audio only under their own audio extensions.
_MAYBE_AUDIO = {
    "mp4": frozenset({".m4a", ".m4b", ".m4r", ".aac", ".alac"}),
    "asf": frozenset({".wma"}),
}

FaultKind = Literal[
    "root_missing",  # a root that does not exist or is not a folder
    "permission_denied",  # a folder that cannot be listed
    "unreadable",  # a file or folder that cannot be read for another reason
    "symlink_loop",  # a link back to a folder above it (or a link cycle)
    "broken_symlink",
    "duplicate",  # a second way (link, hard link, nested root) into something already scanned
    "not_audio",  # an audio file name whose content is not audio
    "empty",  # a zero-length file with an audio name
    "special_file",  # a FIFO, socket or device with an audio name (never opened)
    "vanished",  # gone between listing and reading
    "excluded",  # inside a folder the daemon was told never to read (links resolved)
]
CANCEL_EVERY = 64  # entries walked between two looks at the cancel event


# --------------------------------------------------------------------------- sniffing

_MPEG_BITRATES = {  # kbit/s by (version is MPEG-1, layer), index 1..14
    (True, 1): (32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    (True, 2): (32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (True, 3): (32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (False, 1): (32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    (False, 2): (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
    (False, 3): (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_MPEG_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


def _mpeg_frame(buf: bytes, i: int) -> tuple[int, tuple[int, int, int]] | None:
    """(frame length, (version, layer, rate index)) of a valid MPEG audio header at ``i``."""
    if i + 4 > len(buf) or buf[i] != 0xFF or buf[i + 1] & 0xE0 != 0xE0:
        return None
    version, layer_bits = (buf[i + 1] >> 3) & 3, (buf[i + 1] >> 1) & 3
    bitrate_index, rate_index = buf[i + 2] >> 4, (buf[i + 2] >> 2) & 3
    if version == 1 or layer_bits == 0 or bitrate_index in (0, 15) or rate_index == 3:
        return None
    layer = 4 - layer_bits
    mpeg1 = version == 3
    bitrate = _MPEG_BITRATES[(mpeg1, layer)][bitrate_index - 1] * 1000
    rate = _MPEG_RATES[version][rate_index]
    padding = (buf[i + 2] >> 1) & 1
    if layer == 1:
        length = (12 * bitrate // rate + padding) * 4
    else:
        length = (144 if layer == 2 or mpeg1 else 72) * bitrate // rate + padding
    return length, (version, layer, rate_index)


def _adts_frame(buf: bytes, i: int) -> int | None:
    if i + 7 > len(buf) or buf[i] != 0xFF or buf[i + 1] & 0xF6 != 0xF0:
        return None
    if (buf[i + 2] >> 2) & 0xF > 12:  # sampling frequency index
        return None
    length = ((buf[i + 3] & 3) << 11) | (buf[i + 4] << 3) | (buf[i + 5] >> 5)
    return length if length >= 7 else None


def _find_frames(buf: bytes) -> AudioFormat | None:
    """MP3 or ADTS: two consecutive valid frame headers (one alone is too easy by chance)."""
    for i in range(len(buf) - 4):
        if buf[i] != 0xFF:
            continue
        adts = _adts_frame(buf, i)
        if adts is not None and (
            _adts_frame(buf, i + adts) is not None or (i == 0 and adts + 7 > len(buf))
        ):
            return "aac"
        frame = _mpeg_frame(buf, i)
        if frame is not None:
            following = _mpeg_frame(buf, i + frame[0])
            if following is not None and following[1] == frame[1]:
                return "mp3"
            if following is None and i + frame[0] + 4 > len(buf) and i == 0:
                return "mp3"  # one frame filling the whole sniffed head, right at the start
    return None


def sniff_audio(head: bytes) -> AudioFormat | None:
    """The audio format a file's first bytes announce, or None. Pure and cheap.

    ID3-tagged streams need the bytes after the tag: :func:`sniff_file` reads them.
    """
    if len(head) >= 12:
        kind, sub = head[:4], head[8:12]
        if kind in (b"RIFF", b"RF64", b"BW64") and sub == b"WAVE":
            return "wav"
        if kind == b"FORM" and sub in (b"AIFF", b"AIFC"):
            return "aiff"
        if head[4:8] == b"ftyp":
            return "m4a" if sub in (b"M4A ", b"M4B ", b"M4P ", b"F4A ", b"F4B ") else "mp4"
    if head[:8] == b"riff\x2e\x91\xcf\x11":
        return "w64"
    if head[:4] == b"fLaC":
        return "flac"
    if head[:4] == b"OggS":
        codec = head[28:36]
        if codec.startswith(b"OpusHead"):
            return "opus"
        if codec.startswith(b"Speex"):
            return "speex"
        if codec.startswith((b"\x80theora", b"\x01video")):
            return None  # an Ogg video
        return "ogg"
    if head[:4] == b"caff":
        return "caf"
    if head[:4] == b".snd":
        return "au"
    if head[:4] == b"MAC ":
        return "ape"
    if head[:4] == b"wvpk":
        return "wavpack"
    if head[:5] == b"#!AMR":
        return "amr"
    if head[:16] == bytes.fromhex("3026b2758e66cf11a6d900aa0062ce6c"):
        return "asf"
    return _find_frames(head)


def _id3_end(head: bytes) -> int | None:
    if len(head) < 10 or head[:3] != b"ID3" or head[3] == 0xFF or head[5] & 0x0F:
        return None
    size_bytes = head[6:10]
    if any(b & 0x80 for b in size_bytes):
        return None
    size = (size_bytes[0] << 21) | (size_bytes[1] << 14) | (size_bytes[2] << 7) | size_bytes[3]
    return 10 + size + (10 if head[5] & 0x10 else 0)


def sniff_file(path: str | os.PathLike[str]) -> AudioFormat | None:
    """Sniff a file (OSError propagates: the caller records it)."""
    with _open(path, "rb") as f:
        head = f.read(SNIFF_BYTES)
        end = _id3_end(head)
        if end is None:
            return sniff_audio(head)
        f.seek(end)  # after an ID3v2 tag: MP3 frames, ADTS or FLAC
        rest = f.read(SNIFF_BYTES)
        rest = rest.lstrip(b"\x00")  # tag padding written past the declared size
        return "flac" if rest[:4] == b"fLaC" else _find_frames(rest)


def _describe_not_audio(path: str) -> str:
    try:
        with _open(path, "rb") as f:
            head = f.read(512)
    except OSError:
        return "content is not a known audio format"
    fmt = sniff_audio(head)
    if fmt in _MAYBE_AUDIO:
        return f"content is an {fmt.upper()} container (likely video), not audio"
    if b"\x00" not in head:
        try:
            text = head.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            return f"content is text ({text[:24].strip()!r}...), not audio"
    return f"content is not a known audio format (starts with {head[:8]!r})"


# --------------------------------------------------------------------------- hashing


def content_hash(path: str | os.PathLike[str], size: int | None = None) -> str:
    """``b2:`` + BLAKE2b of the whole file (<= 1 MiB), or ``b2p:`` + BLAKE2b of the size and
    four 64 KiB blocks for bigger files. Equal hashes within a snapshot mean "same sound"."""
    h = hashlib.blake2b(digest_size=16)
    with _open(path, "rb") as f:
        if size is None:
            size = os.fstat(f.fileno()).st_size
        h.update(size.to_bytes(8, "little"))
        if size <= FULL_HASH_LIMIT:
            h.update(f.read())
            return "b2:" + h.hexdigest()
        for k in range(4):
            f.seek((size - HASH_BLOCK) * k // 3)
            h.update(f.read(HASH_BLOCK))
        return "b2p:" + h.hexdigest()


def _hashed_bytes(size: int) -> int:
    return size if size <= FULL_HASH_LIMIT else 4 * HASH_BLOCK


# --------------------------------------------------------------------------- values


def default_library_id(root: str | os.PathLike[str]) -> str:
    """A library id from the root's absolute path (give an explicit id to survive moving it)."""
    raw = os.fsencode(os.path.abspath(os.fspath(root)))
    return "lib-" + hashlib.blake2b(raw, digest_size=6).hexdigest()


@dataclass(frozen=True)
class LibraryRoot:
    path: Path
    library_id: str

    @classmethod
    def of(
        cls, root: str | os.PathLike[str] | LibraryRoot, library_id: str | None = None
    ) -> LibraryRoot:
        if isinstance(root, LibraryRoot):
            return root
        return cls(Path(os.path.abspath(os.fspath(root))), library_id or default_library_id(root))


@dataclass(frozen=True)
class FileEntry:
    """One audio file of a library, as of a scan."""

    sound_id: str
    library_id: str
    root: Path
    relpath: str  # "/"-separated, relative to root; surrogate-escaped where not UTF-8
    size: int
    mtime_ns: int
    content_hash: str
    format: AudioFormat

    @property
    def path(self) -> Path:
        return self.root / self.relpath

    @property
    def relpath_bytes(self) -> bytes:
        return os.fsencode(self.relpath)

    @property
    def display_path(self) -> str:
        """The relative path printable anywhere (invalid bytes shown as U+FFFD)."""
        return self.relpath_bytes.decode("utf-8", "replace")

    @property
    def key(self) -> tuple[str, str]:
        return (self.library_id, self.relpath)


@dataclass(frozen=True)
class ScanFault:
    path: Path
    kind: FaultKind
    reason: str

    def __str__(self) -> str:
        shown = os.fsencode(self.path).decode("utf-8", "replace")
        return f"{shown}: {self.reason}"


@dataclass(frozen=True)
class Changed:
    old: FileEntry
    new: FileEntry  # same sound_id, new size/mtime/hash


@dataclass(frozen=True)
class Moved:
    old: FileEntry
    new: FileEntry  # same sound_id and content hash, new path


def _enc(text: str) -> str | dict[str, str]:
    raw = os.fsencode(text)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return {"b64": base64.b64encode(raw).decode("ascii")}


def _dec(value: str | dict[str, str]) -> str:
    if isinstance(value, str):
        return value
    return os.fsdecode(base64.b64decode(value["b64"]))


def _row(e: FileEntry) -> list[object]:
    return [e.sound_id, e.library_id, _enc(e.relpath), e.size, e.mtime_ns, e.content_hash, e.format]


@dataclass(frozen=True)
class Snapshot:
    """Every audio file known after a scan: what the next scan is compared against."""

    roots: tuple[LibraryRoot, ...] = ()
    entries: tuple[FileEntry, ...] = ()

    @cached_property
    def by_key(self) -> dict[tuple[str, str], FileEntry]:
        return {e.key: e for e in self.entries}

    @cached_property
    def by_id(self) -> dict[str, FileEntry]:
        return {e.sound_id: e for e in self.entries}

    def to_json(self) -> str:
        roots = [{"library_id": r.library_id, "path": _enc(str(r.path))} for r in self.roots]
        entries = [_row(e) for e in self.entries]
        return json.dumps({"version": 1, "roots": roots, "entries": entries})

    @classmethod
    def from_json(cls, text: str) -> Snapshot:
        data = json.loads(text)
        if data.get("version") != 1:
            raise ConfigError(f"unknown library snapshot version {data.get('version')!r}")
        roots = tuple(LibraryRoot(Path(_dec(r["path"])), r["library_id"]) for r in data["roots"])
        where = {r.library_id: r.path for r in roots}
        entries = tuple(
            FileEntry(sid, lib, where[lib], _dec(rel), size, mtime, digest, fmt)
            for sid, lib, rel, size, mtime, digest, fmt in data["entries"]
        )
        return cls(roots, entries)


@dataclass(frozen=True)
class ScanResult:
    """The new snapshot and what changed since the previous one."""

    snapshot: Snapshot
    added: tuple[FileEntry, ...]
    changed: tuple[Changed, ...]
    moved: tuple[Moved, ...]
    deleted: tuple[FileEntry, ...]
    unchanged: tuple[FileEntry, ...]
    unreachable: tuple[FileEntry, ...]  # carried over: under a folder or root not readable now
    faults: tuple[ScanFault, ...]
    files_hashed: int = 0
    bytes_hashed: int = 0

    @property
    def to_process(self) -> tuple[FileEntry, ...]:
        """Entries whose audio and metadata must be (re)read and embedded."""
        return self.added + tuple(c.new for c in self.changed)

    def summary(self) -> str:
        return (
            f"{len(self.snapshot.entries)} sounds: {len(self.added)} added, {len(self.changed)} "
            f"changed, {len(self.moved)} moved, {len(self.deleted)} deleted, "
            f"{len(self.unchanged)} unchanged, {len(self.unreachable)} unreachable; "
            f"{len(self.faults)} faults"
        )


# --------------------------------------------------------------------------- walking

# Indirections so tests can simulate what root cannot (permission-denied folders/files).
_scandir = os.scandir
_open = open


@dataclass(frozen=True)
class _Found:
    root: LibraryRoot
    relpath: str
    path: str
    size: int
    mtime_ns: int
    format: AudioFormat

    def entry(self, sound_id: str, digest: str) -> FileEntry:
        return FileEntry(
            sound_id, self.root.library_id, self.root.path, self.relpath, self.size,
            self.mtime_ns, digest, self.format,
        )  # fmt: skip


def _check_cancel(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise Cancelled("the library scan was cancelled")


_Folder = tuple[str, str, str, frozenset[tuple[int, int]]]  # path, real path, relpath/, above


@dataclass
class _Walker:
    follow_symlinks: bool
    skip_hidden: bool
    excluded: tuple[str, ...] = ()  # real paths of folders never to read
    cancel: threading.Event | None = None
    faults: list[ScanFault] = field(default_factory=list)
    blocked: dict[str, set[str]] = field(default_factory=dict)  # library -> relpaths not readable
    seen_dirs: dict[tuple[int, int], str] = field(default_factory=dict)
    seen_files: dict[tuple[int, int], str] = field(default_factory=dict)

    def fault(self, path: str, kind: FaultKind, reason: str) -> None:
        self.faults.append(ScanFault(Path(path), kind, reason))

    def block(self, root: LibraryRoot, relpath: str) -> None:
        self.blocked.setdefault(root.library_id, set()).add(relpath)

    def walk(self, root: LibraryRoot) -> Iterator[_Found]:
        top = str(root.path)
        try:
            st = os.stat(top)
        except OSError as exc:
            self.fault(top, "root_missing", f"library root cannot be read: {exc.strerror or exc}")
            self.block(root, "")
            return
        if not stat.S_ISDIR(st.st_mode):
            self.fault(top, "root_missing", "library root is not a folder")
            self.block(root, "")
            return
        real_top = os.path.realpath(top)
        if self.excluded and (where := inside(real_top, self.excluded)) is not None:
            self.fault(top, "excluded", f"library root is inside the excluded folder {where}")
            return
        key = (st.st_dev, st.st_ino)
        if key in self.seen_dirs:
            self.fault(top, "duplicate", f"already scanned as {self.seen_dirs[key]}")
            return
        self.seen_dirs[key] = top
        stack: list[_Folder] = [(top, real_top, "", frozenset({key}))]
        walked = 0
        while stack:
            _check_cancel(self.cancel)
            folder, real_folder, prefix, ancestors = stack.pop()
            try:
                with _scandir(folder) as it:
                    listing = sorted(it, key=lambda e: os.fsencode(e.name))
            except PermissionError:
                self.fault(folder, "permission_denied", "permission denied: cannot list folder")
                self.block(root, prefix.rstrip("/"))
                continue
            except OSError as exc:
                self.fault(folder, "unreadable", f"folder cannot be listed: {exc.strerror or exc}")
                self.block(root, prefix.rstrip("/"))
                continue
            subfolders: list[_Folder] = []
            for entry in listing:
                walked += 1
                if walked % CANCEL_EVERY == 0:
                    _check_cancel(self.cancel)
                if self.skip_hidden and entry.name.startswith("."):
                    continue
                rel = prefix + entry.name
                found = self._visit(root, entry, rel, real_folder, ancestors, subfolders)
                if found is not None:
                    yield found
            stack.extend(reversed(subfolders))  # depth first, in name order

    def _visit(
        self,
        root: LibraryRoot,
        entry: os.DirEntry[str],
        rel: str,
        real_folder: str,
        ancestors: frozenset[tuple[int, int]],
        subfolders: list[_Folder],
    ) -> _Found | None:
        path = entry.path
        is_link = entry.is_symlink()
        if is_link and not self.follow_symlinks:
            return None
        real = os.path.realpath(path) if is_link else os.path.join(real_folder, entry.name)
        if self.excluded and (where := inside(real, self.excluded)) is not None:
            how = f"links to {real}, " if is_link else ""
            self.fault(path, "excluded", f"{how}inside the excluded folder {where}")
            return None
        try:
            st = entry.stat(follow_symlinks=True)
        except FileNotFoundError:
            if is_link:
                self.fault(path, "broken_symlink", "symlink to a missing target")
            else:
                self.fault(path, "vanished", "disappeared during the scan")
            return None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                self.fault(path, "symlink_loop", "symlink cycle (too many levels of links)")
            else:
                self.fault(path, "unreadable", f"cannot stat: {exc.strerror or exc}")
                self.block(root, rel)
            return None
        key = (st.st_dev, st.st_ino)
        if stat.S_ISDIR(st.st_mode):
            if key in ancestors:
                above = self.seen_dirs.get(key, "a parent folder")
                self.fault(path, "symlink_loop", f"links back to {above}")
            elif key in self.seen_dirs:
                self.fault(path, "duplicate", f"folder already scanned as {self.seen_dirs[key]}")
            else:
                self.seen_dirs[key] = path
                subfolders.append((path, real, rel + "/", ancestors | {key}))
            return None
        ext = os.path.splitext(entry.name)[1].lower()
        audio_name = ext in AUDIO_EXTENSIONS
        if not stat.S_ISREG(st.st_mode):
            if audio_name:
                self.fault(path, "special_file", "not a regular file (FIFO, socket or device)")
            return None
        if ext in NOT_AUDIO_EXTENSIONS:
            return None
        if st.st_size == 0:
            if audio_name:
                self.fault(path, "empty", "zero-length file")
            return None
        if key in self.seen_files:
            self.fault(path, "duplicate", f"same file as {self.seen_files[key]}")
            return None
        try:
            fmt = sniff_file(path)
        except FileNotFoundError:
            self.fault(path, "vanished", "disappeared during the scan")
            return None
        except PermissionError:
            self.fault(path, "unreadable", "permission denied: file cannot be read")
            self.block(root, rel)
            return None
        except OSError as exc:
            self.fault(path, "unreadable", f"cannot read: {exc.strerror or exc}")
            self.block(root, rel)
            return None
        if fmt in _MAYBE_AUDIO and ext not in _MAYBE_AUDIO[fmt]:
            fmt = None
        if fmt is None:
            if audio_name:
                self.fault(path, "not_audio", f"has an audio name but {_describe_not_audio(path)}")
            return None
        self.seen_files[key] = path
        return _Found(root, rel, path, st.st_size, st.st_mtime_ns, fmt)


def derive_sound_id(library_id: str, relpath: str, salt: int = 0) -> str:
    """16 hex digits naming a sound first seen at ``relpath`` in ``library_id``."""
    h = hashlib.blake2b(digest_size=8)
    h.update(library_id.encode("utf-8") + b"\0" + os.fsencode(relpath))
    if salt:
        h.update(b"\0" + str(salt).encode("ascii"))
    return h.hexdigest()


def _roots(roots: Iterable[str | os.PathLike[str] | LibraryRoot]) -> tuple[LibraryRoot, ...]:
    out: dict[str, LibraryRoot] = {}
    for item in roots:
        root = LibraryRoot.of(item)
        same = out.get(root.library_id)
        if same is not None and same.path != root.path:
            raise ConfigError(
                f"library id {root.library_id!r} names two roots: {same.path} and {root.path}"
            )
        out[root.library_id] = root
    if not out:
        raise ConfigError("no library root to scan")
    return tuple(out.values())


def scan(
    roots: Sequence[str | os.PathLike[str] | LibraryRoot],
    previous: Snapshot | None = None,
    *,
    follow_symlinks: bool = True,
    skip_hidden: bool = True,
    excluded: Iterable[str | os.PathLike[str]] = (),
    cancel: threading.Event | None = None,
) -> ScanResult:
    """Walk ``roots`` and compare with ``previous`` (None: a first scan, everything is added).

    Reads the first 4 KiB of every candidate file (8 KiB behind an ID3 tag), and hashes only
    new, moved and changed files (size or mtime differ). Never raises for a problem with a
    file or folder: see ``faults``. Nothing inside the ``excluded`` folders is read (links
    resolved). Raises ConfigError for no roots or a reused library id, and ``Cancelled``
    soon after ``cancel`` is set.
    """
    libraries = _roots(roots)
    previous = previous or Snapshot()
    walker = _Walker(
        follow_symlinks=follow_symlinks,
        skip_hidden=skip_hidden,
        excluded=real_paths(excluded),
        cancel=cancel,
    )
    old_by_key = previous.by_key
    seen: list[FileEntry] = []
    files_hashed = bytes_hashed = 0
    for root in libraries:
        for found in walker.walk(root):
            old = old_by_key.get((root.library_id, found.relpath))
            if old is not None and old.size == found.size and old.mtime_ns == found.mtime_ns:
                seen.append(found.entry(old.sound_id, old.content_hash))  # trusted as it was
                continue
            _check_cancel(cancel)
            try:
                digest = content_hash(found.path, found.size)
            except OSError as exc:
                walker.fault(found.path, "unreadable", f"cannot be hashed: {exc.strerror or exc}")
                walker.block(root, found.relpath)
                continue
            files_hashed += 1
            bytes_hashed += _hashed_bytes(found.size)
            seen.append(found.entry(old.sound_id if old is not None else "", digest))
    result = diff_snapshot(previous, libraries, seen, walker.blocked)
    return replace(
        result,
        faults=tuple(walker.faults),
        files_hashed=files_hashed,
        bytes_hashed=bytes_hashed,
    )


def diff_snapshot(
    previous: Snapshot,
    roots: Sequence[LibraryRoot],
    seen: Iterable[FileEntry],
    blocked: Mapping[str, Collection[str]] | None = None,
) -> ScanResult:
    """What changed between ``previous`` and the files a walk of ``roots`` saw: pure.

    ``seen`` holds every readable audio file found, with its content hash and, where its path
    was in ``previous``, that entry's sound id ("" for a new path). ``blocked`` maps a library
    id to the relative paths ("" for the root) that could not be read this time: previous
    entries under them are carried over as unreachable rather than deleted. Entries of
    libraries not among ``roots`` pass through untouched. New sounds get ids from their
    path, salted where an id is taken; a new path holding the content of a deleted (or
    replaced) one is a move, paired in path order.
    """
    blocked = blocked or {}
    scanned = {r.library_id for r in roots}
    old_by_key = previous.by_key
    kept: list[FileEntry] = []  # unchanged, changed, touched: keep their ids
    unchanged: list[FileEntry] = []
    changed: list[Changed] = []
    fresh: list[FileEntry] = []  # paths not in the previous snapshot
    seen_keys: set[tuple[str, str]] = set()
    for entry in seen:
        seen_keys.add(entry.key)
        old = old_by_key.get(entry.key)
        if old is None:
            fresh.append(replace(entry, sound_id=""))
            continue
        entry = replace(entry, sound_id=old.sound_id)
        kept.append(entry)
        if entry.content_hash == old.content_hash:
            unchanged.append(entry)  # as it was, or touched: same content, new mtime
        else:
            changed.append(Changed(old, entry))

    # Previous entries not seen again: gone, unreachable, or outside this scan.
    gone: list[FileEntry] = []
    unreachable: list[FileEntry] = []
    passthrough: list[FileEntry] = []
    for old in previous.entries:
        if old.key in seen_keys:
            continue
        if old.library_id not in scanned:
            passthrough.append(old)
        elif _under_any(old.relpath, blocked.get(old.library_id, ())):
            unreachable.append(old)
        else:
            gone.append(old)

    def order(e: FileEntry) -> tuple[str, bytes]:
        return (e.library_id, e.relpath_bytes)

    # Moves: a fresh path whose content is that of a gone entry, or of a path whose content
    # changed (renamed, then a new file saved under the old name); pair in path order.
    gone_by_hash: dict[str, list[FileEntry]] = {}
    for old in sorted(gone, key=order):
        gone_by_hash.setdefault(old.content_hash, []).append(old)
    replaced_by_hash: dict[str, list[Changed]] = {}
    for change in sorted(changed, key=lambda c: order(c.old)):
        replaced_by_hash.setdefault(change.old.content_hash, []).append(change)
    moved: list[Moved] = []
    new_entries: list[FileEntry] = []  # sound ids still to give
    for entry in sorted(fresh, key=order):
        if gone_by_hash.get(entry.content_hash):
            old = gone_by_hash[entry.content_hash].pop(0)
            moved.append(Moved(old, replace(entry, sound_id=old.sound_id)))
        elif replaced_by_hash.get(entry.content_hash):
            change = replaced_by_hash[entry.content_hash].pop(0)
            moved.append(Moved(change.old, replace(entry, sound_id=change.old.sound_id)))
            changed.remove(change)  # what is at the old path now is a new sound
            kept.remove(change.new)
            new_entries.append(change.new)
        else:
            new_entries.append(entry)
    moved_ids = {m.old.sound_id for m in moved}
    deleted = [e for e in gone if e.sound_id not in moved_ids]

    used = {e.sound_id for e in kept} | moved_ids | {e.sound_id for e in unreachable + passthrough}
    added: list[FileEntry] = []
    for entry in sorted(new_entries, key=order):
        salt = 0
        sound_id = derive_sound_id(entry.library_id, entry.relpath)
        while sound_id in used:  # e.g. a new file at the path a moved file left
            salt += 1
            sound_id = derive_sound_id(entry.library_id, entry.relpath, salt)
        used.add(sound_id)
        added.append(replace(entry, sound_id=sound_id))

    all_entries = kept + [m.new for m in moved] + added + unreachable + passthrough
    other_roots = tuple(r for r in previous.roots if r.library_id not in scanned)
    return ScanResult(
        snapshot=Snapshot(tuple(roots) + other_roots, tuple(sorted(all_entries, key=order))),
        added=tuple(sorted(added, key=order)),
        changed=tuple(sorted(changed, key=lambda c: order(c.new))),
        moved=tuple(sorted(moved, key=lambda m: order(m.new))),
        deleted=tuple(sorted(deleted, key=order)),
        unchanged=tuple(sorted(unchanged, key=order)),
        unreachable=tuple(sorted(unreachable, key=order)),
        faults=(),
    )


def _under_any(relpath: str, prefixes: Iterable[str]) -> bool:
    """Whether ``relpath`` is one of ``prefixes`` or inside one ("" is the whole root)."""
    return any(p == "" or relpath == p or relpath.startswith(p + "/") for p in prefixes)
