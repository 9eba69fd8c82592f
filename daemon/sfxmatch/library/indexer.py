"""Index a library: scan it, label and classify its sounds, embed them, store the vectors.

One run per library (:func:`index_library`):

1. ``scan`` against the committed snapshot: only added, changed and moved files cost work;
   a sound whose sidecar text changed (or every sound, when the catalogue changed) is
   re-labelled without re-embedding its audio.
2. A reader thread decodes each file at its own rate, finds its sync point there (the onset
   of its main event and its peak, :mod:`sfxmatch.match.onset`, to the sample), makes it mono
   at the model's rate the way the model's reference loader does (``Encoder.prepare_audio``)
   and reads its metadata (with any sync point the catalogue, the file or its sidecar
   declares) while the main thread embeds the previous batch. Sounds indexed before sync
   points existed (no onset stored) are decoded once more for it, without embedding and
   without touching the store (``IndexReport.analysed``).
3. Per batch: embed new labels (text tower), decide each sound's kind, embed the audio
   (the whole sound; long ambience also as windows of the model's window length), upsert
   the vectors, then
   commit the batch's rows in one SQLite transaction.

Crash safety: vector ids are deterministic (:mod:`sfxmatch.library.vector_ids`), the store
upsert happens before the commit and deletions before the rows go. A run killed anywhere
leaves the state at its last commit; the next run redoes the uncommitted work, writing the
same ids again: no duplicates, nothing missing. A file that cannot be read is recorded as a
fault and skipped; its previously indexed vectors (if any) stay until it is readable again
or deleted (this includes a file the scan now reports as empty, not audio or unreadable: it
is still there, so not deleted).

``batch_files`` (files per committed batch, default 16; ``Settings.index_batch``, from
``SFXMATCH_INDEX_BATCH``) gives the crash tests many small commits. They also stop the
indexer at its checkpoints (after the scan, an upsert, a commit, a deletion) through a hook
that only a test installs (``set_checkpoint_hook``; ``sfxmatch.testing.crash`` in a child
process): production code never looks for it.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sfxmatch import media
from sfxmatch.errors import Cancelled, InternalError, MediaError, SfxmatchError
from sfxmatch.library.catalogue import Catalogue, load_catalogue
from sfxmatch.library.kinds import (
    KindOverrides,
    PromptSet,
    ZeroShot,
    decide_kind,
    embed_prompts,
    is_seamless_loop,
    zero_shot_kinds,
)
from sfxmatch.library.labels import SoundLabel
from sfxmatch.library.metadata import describe_sound
from sfxmatch.library.registry import (
    IndexedSound,
    IndexState,
    LibraryConfig,
    RunRecord,
    encode_path,
)
from sfxmatch.library.scan import FileEntry, ScanFault, ScanResult, scan
from sfxmatch.library.vector_ids import (
    audio_vector_ids,
    label_vector_id,
    sound_vector_id,
    window_vector_id,
)
from sfxmatch.match.onset import Onset, detect_onset
from sfxmatch.progress import IndexProgress, IndexProgressFn, IndexReport
from sfxmatch.store.base import KINDS, Record, SoundMeta, VectorStore

if TYPE_CHECKING:
    from sfxmatch.embed.encoder import Encoder

WINDOWED_MIN_SECONDS = 8.0  # ambience at least this long (and 1.5 windows) also gets windows
MAX_WINDOWS = 48  # a one-hour bed gets windows every ~78 s, not 3600 of them
BATCH_FILES = 16
CHECKPOINTS = ("scanned", "upserted", "committed", "deleted")  # where a crash test may stop it
# Scan faults of a file that is still there: its indexed sound is kept, not deleted.
KEEP_ON_FAULT = frozenset({"empty", "not_audio", "unreadable", "special_file", "broken_symlink"})


@dataclass
class _Work:
    entry: FileEntry
    relabel_only: bool  # same audio: label and kind again, vectors kept
    sync_only: bool = False  # same audio and label: only its sync point is found
    analyse: bool = True  # decode the audio to find its sync point (onset and peak)
    label: SoundLabel | None = None
    audio: np.ndarray | None = None  # mono at the model's rate
    duration: float = 0.0
    seamless: bool | None = None
    sidecar: str = ""
    onset: Onset | None = None
    fault: ScanFault | None = None

    @property
    def samples(self) -> np.ndarray:
        """The decoded audio of an item whose vectors are made (read before embedding)."""
        if self.audio is None:
            raise InternalError(f"{self.entry.display_path}: embedded before it was read")
        return self.audio


@dataclass
class _Timer:
    decode: float = 0.0
    model: float = 0.0
    sync: float = 0.0  # the onset detector's part of ``decode``
    lock: threading.Lock = field(default_factory=threading.Lock)


def sidecar_signature(path: str | os.PathLike[str]) -> str:
    """Size and mtime of the description texts that may sit beside a sound (``name.txt``,
    ``name.wav.txt``): when it changes, the sound is labelled again."""
    path = os.fspath(path)
    parts = []
    for candidate in (os.path.splitext(path)[0] + ".txt", path + ".txt"):
        try:
            st = os.stat(candidate)
        except OSError:
            continue
        parts.append(f"{os.path.basename(candidate)}:{st.st_size}:{st.st_mtime_ns}")
    return "|".join(parts)


def catalogue_signature(library: LibraryConfig) -> str:
    if not library.catalogue:
        return ""
    try:
        st = os.stat(library.catalogue)
    except OSError:
        return "missing"
    return f"{st.st_size}:{st.st_mtime_ns}"


def gets_windows(kind: str, duration: float, window: float) -> bool:
    """Whether a sound is also stored as windows: ambience long enough that matching its best
    part beats its whole (8 s, and half a window more than one window of the model)."""
    return kind == "ambience" and duration >= max(WINDOWED_MIN_SECONDS, 1.5 * window)


def window_hop(duration: float, window: float) -> float:
    """Seconds between window starts: half a window, or wider so a sound gets at most
    ``MAX_WINDOWS`` (``window_starts`` adds one window aligned to the end after the regular
    ones)."""
    return max(window / 2, (duration - window) / (MAX_WINDOWS - 2))


def _marks(label: SoundLabel) -> dict[str, Any]:
    """The sync point a label's sources declare, as IndexedSound fields."""
    mark = label.sync
    return {
        "marked": mark.time if mark else None,
        "marked_source": label.sync_source if mark else "",
        "marked_detail": mark.detail if mark else "",
    }


_checkpoint_hook: Callable[[str], None] | None = None


def set_checkpoint_hook(hook: Callable[[str], None] | None) -> None:
    """Crash tests only: call ``hook(name)`` at each of the indexer's ``CHECKPOINTS`` (it may
    raise, or kill the process); None removes it."""
    global _checkpoint_hook
    _checkpoint_hook = hook


def _checkpoint(name: str) -> None:
    if _checkpoint_hook is not None:
        _checkpoint_hook(name)


def _read(item: _Work, catalogue: Catalogue | None, timer: _Timer, encoder: Encoder) -> _Work:
    """Metadata and, unless only the label changed, the audio. Never raises for bad files."""
    started = time.perf_counter()
    path = item.entry.path
    try:
        item.sidecar = sidecar_signature(path)
        item.label = describe_sound(
            path, relpath=item.entry.relpath, fmt=item.entry.format, catalogue=catalogue
        )
        if not item.relabel_only or item.analyse:
            audio = media.load_audio(path, channels="mono")
            if audio.samples.shape[-1] == 0:
                raise MediaError(path, "holds no audio samples")
            if not np.isfinite(audio.samples).all():
                raise MediaError(path, "decodes to non-finite samples")
            if item.analyse:  # at the file's own rate: the sync point to its sample
                began = time.perf_counter()
                item.onset = detect_onset(audio.samples[0], audio.sample_rate)
                with timer.lock:
                    timer.sync += time.perf_counter() - began
        if not item.relabel_only:
            rate = encoder.spec.audio_rate
            samples = encoder.prepare_audio(audio.samples[0], audio.sample_rate)
            item.audio = samples
            item.duration = samples.size / rate
            item.seamless = is_seamless_loop(samples, rate)
    except SfxmatchError as exc:
        item.fault = ScanFault(path, "unreadable", str(getattr(exc, "problem", exc)))
    except (OSError, ValueError, RuntimeError, MemoryError) as exc:
        item.fault = ScanFault(path, "unreadable", f"cannot be decoded: {exc}")
    with timer.lock:
        timer.decode += time.perf_counter() - started
    return item


def _prefetch(
    items: Sequence[_Work],
    catalogue: Catalogue | None,
    timer: _Timer,
    stop: threading.Event,
    encoder: Encoder,
    cancel: threading.Event | None = None,
) -> Iterator[_Work]:
    """Read items in a background thread, a few ahead of the consumer.

    Ends as soon as ``cancel`` is set, without waiting for the file being read (a long
    decode): the reader only reads, and it leaves at its next step once ``stop`` is set."""
    out: queue.Queue[_Work | None] = queue.Queue(maxsize=2 * BATCH_FILES)

    def put(item: _Work | None) -> None:
        while not stop.is_set():
            with contextlib.suppress(queue.Full):
                out.put(item, timeout=0.1)
                return

    def work() -> None:
        try:
            for item in items:
                if stop.is_set():
                    break
                put(_read(item, catalogue, timer, encoder))
        finally:
            put(None)

    thread = threading.Thread(target=work, name="sfxmatch-index-reader", daemon=True)
    thread.start()
    try:
        while True:
            try:
                item = out.get(timeout=0.1)
            except queue.Empty:
                if cancel is not None and cancel.is_set():
                    return
                continue
            if item is None:
                return
            yield item
    finally:
        stop.set()
        if cancel is None or not cancel.is_set():
            thread.join()


class _Batcher:
    """Turns read items into stored vectors and committed rows."""

    def __init__(
        self,
        library: LibraryConfig,
        encoder: Encoder,
        store: VectorStore,
        state: IndexState,
        timer: _Timer,
        min_margin: float = 0.0,
    ) -> None:
        self.min_margin = min_margin
        self.library = library
        self.encoder = encoder
        self.store = store
        self.state = state
        self.timer = timer
        self.overrides = KindOverrides.from_mapping(dict(library.kind_overrides))
        self._prompts: PromptSet | None = None
        self._label_vectors: dict[str, np.ndarray] = {}

    def prompts(self) -> PromptSet:
        if self._prompts is None:
            with self.model_time():
                self._prompts = embed_prompts(self.encoder)
        return self._prompts

    @contextlib.contextmanager
    def model_time(self) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.timer.model += time.perf_counter() - started

    def label_vectors(self, labels: Sequence[str]) -> dict[str, np.ndarray]:
        missing = sorted({t for t in labels if t not in self._label_vectors})
        if missing:
            with self.model_time():
                # Labels describe sounds: the audio-text space.
                vectors = self.encoder.embed_text(missing, space="audio")
            self._label_vectors.update(zip(missing, np.asarray(vectors), strict=True))
        return {t: self._label_vectors[t] for t in labels}

    def commit(self, items: Sequence[_Work]) -> list[IndexedSound]:
        """Embed, upsert and commit one batch of successfully read items."""
        if not items:
            return []
        analysed = [self._analysed(it) for it in items if it.sync_only]
        items = [it for it in items if not it.sync_only]
        if not items:
            with self.state.transaction() as db:
                IndexState.put_sounds(db, analysed)
            return analysed
        texts = [it.label.text for it in items]  # type: ignore[union-attr]
        by_text = self.label_vectors(texts)
        shots: list[ZeroShot] = zero_shot_kinds(
            np.stack([by_text[t] for t in texts]), self.prompts()
        )
        sounds: list[IndexedSound] = []
        records: list[Record] = []
        stale: list[str] = []
        rate = self.encoder.spec.audio_rate
        full = [it for it in items if not it.relabel_only]
        whole: dict[str, np.ndarray] = {}
        if full:
            with self.model_time():
                vectors = self.encoder.embed_audio([it.samples for it in full], rate)
            whole = {it.entry.sound_id: v for it, v in zip(full, np.asarray(vectors), strict=True)}
        for item, shot in zip(items, shots, strict=True):
            entry, label = item.entry, item.label
            assert label is not None
            old = self.state.sound(entry.sound_id)
            duration = old.duration if item.relabel_only and old else item.duration
            decision = decide_kind(
                relpath=entry.relpath,
                path=entry.path,
                overrides=self.overrides,
                ucs=label.ucs,
                zero_shot=shot,
                duration=duration,
                seamless_loop=item.seamless,
                loop_hint=label.loop_hint,
                min_margin=self.min_margin,
            )
            onset = item.onset
            sound = IndexedSound(
                entry=entry,
                library=self.library.name,
                label=label.text,
                label_source=label.source,
                label_detail=label.detail,
                ucs_category=label.ucs.cat_id if label.ucs else "",
                kind=decision.kind,
                kind_source=decision.source,
                kind_reason=decision.reason,
                duration=duration,
                windows=0,
                sidecar=item.sidecar,
                problems=label.problems,
                onset=onset.time if onset else (old.onset if old and item.relabel_only else None),
                peak=onset.peak if onset else (old.peak if old and item.relabel_only else None),
                **_marks(label),
            )
            meta = self._meta(sound)
            if item.relabel_only and old is not None:
                # Same audio: carry the stored vectors over with the new label and kind.
                ids = audio_vector_ids(entry.sound_id, old.windows)
                kept = {r.id: r for r in self.store.get(ids)}
                if len(kept) != len(ids):  # vectors lost somehow: embed again next run
                    continue
                sound = replace(sound, windows=old.windows)
                for r in kept.values():
                    records.append(
                        Record(r.id, r.vector, replace(meta, start=r.meta.start, end=r.meta.end))
                    )
            else:
                records.append(Record(sound_vector_id(entry.sound_id), whole[entry.sound_id], meta))
                window = self.encoder.spec.audio_window
                if gets_windows(decision.kind, duration, window):
                    with self.model_time():
                        vectors, starts = self.encoder.embed_audio_windows(
                            item.samples, rate, window=window, hop=window_hop(duration, window)
                        )
                    for k, (vector, start) in enumerate(zip(vectors, starts, strict=True)):
                        end = min(duration, float(start) + window)
                        records.append(
                            Record(
                                window_vector_id(entry.sound_id, k),
                                vector,
                                replace(meta, start=float(start), end=end),
                            )
                        )
                    sound = replace(sound, windows=len(vectors))
                if old is not None and old.windows > sound.windows:
                    stale += audio_vector_ids(entry.sound_id, old.windows)[1 + sound.windows :]
            records.append(self._label_record(sound, by_text[sound.label]))
            sounds.append(sound)
        self.store.upsert(records)
        _checkpoint("upserted")
        if stale:
            self.store.delete(stale)
        with self.state.transaction() as db:
            IndexState.put_sounds(db, sounds + analysed)
        _checkpoint("committed")
        return sounds + analysed

    def _analysed(self, item: _Work) -> IndexedSound:
        """A sound indexed before sync points, with its sync point now: label, kind and
        vectors stay as they are (the store is not touched)."""
        old = self.state.sound(item.entry.sound_id)
        assert old is not None and item.label is not None and item.onset is not None
        return replace(
            old,
            entry=item.entry,
            onset=item.onset.time,
            peak=item.onset.peak,
            **_marks(item.label),
        )

    def _meta(self, sound: IndexedSound) -> SoundMeta:
        return SoundMeta(
            sound_id=sound.entry.sound_id,
            library=self.library.name,
            kind=sound.kind,  # type: ignore[arg-type]
            label=sound.label,
            ucs_category=sound.ucs_category,
            path=encode_path(sound.entry.path),
            duration=sound.duration,
            start=0.0,
            end=sound.duration,
        )

    def _label_record(self, sound: IndexedSound, vector: np.ndarray) -> Record:
        rid = label_vector_id(self.library.library_id, sound.label, sound.kind)
        meta = SoundMeta(
            sound_id=rid,
            library=self.library.name,
            kind=sound.kind,  # type: ignore[arg-type]
            label=sound.label,
            ucs_category=sound.ucs_category,
            modality="text",
        )
        return Record(rid, np.asarray(vector, np.float32), meta)

    def move(self, moves: Sequence[tuple[FileEntry, FileEntry]]) -> None:
        """Keep the vectors of moved sounds, with their new path."""
        updated: list[IndexedSound] = []
        records: list[Record] = []
        for old_entry, new_entry in moves:
            old = self.state.sound(old_entry.sound_id)
            if old is None:
                continue
            sound = replace(old, entry=new_entry)
            meta = self._meta(sound)
            for r in self.store.get(audio_vector_ids(old.entry.sound_id, old.windows)):
                records.append(
                    Record(r.id, r.vector, replace(meta, start=r.meta.start, end=r.meta.end))
                )
            updated.append(sound)
        if records:
            self.store.upsert(records)
        with self.state.transaction() as db:
            IndexState.put_sounds(db, updated)

    def delete(self, sound_ids: Sequence[str]) -> None:
        ids: list[str] = []
        for sid in sound_ids:
            old = self.state.sound(sid)
            if old is not None:
                ids += audio_vector_ids(sid, old.windows)
        if ids:
            self.store.delete(ids)
        _checkpoint("deleted")
        with self.state.transaction() as db:
            IndexState.drop_sounds(db, sound_ids)

    def collect_labels(self) -> None:
        """Label vectors for (label, kind) pairs no sound has any more go; missing ones come."""
        wanted = self.state.label_keys(self.library.name)
        stored = {h.id: (h.meta.label, h.meta.kind) for h in self._label_hits()}
        gone = [rid for rid, key in stored.items() if key not in wanted]
        if gone:
            self.store.delete(gone)

    def _label_hits(self) -> list[Record]:
        from sfxmatch.store.base import Filter

        flt = Filter(library=self.library.name, modality="text")
        labels = self.store.labels(flt)
        if not labels:
            return []
        library_id = self.library.library_id
        ids = [label_vector_id(library_id, label, kind) for label in labels for kind in KINDS]
        return self.store.get(ids)


def index_library(
    library: LibraryConfig,
    encoder: Encoder,
    store: VectorStore,
    state: IndexState,
    *,
    progress: IndexProgressFn | None = None,
    cancel: threading.Event | None = None,
    batch_files: int | None = None,
    zero_shot_min_margin: float = 0.0,
    excluded: Sequence[str | os.PathLike[str]] = (),
    analyse_sync: bool = True,
) -> IndexReport:
    """Bring the index of ``library`` up to date. See the module docstring for guarantees.

    ``analyse_sync`` False leaves the onset detector out (benchmarks compare the two; the
    sounds then have no detected sync point until a run with it).

    ``cancel`` is checked while scanning (every few entries), while comparing and between
    files: what was committed stays, the rest is done by the next run, and a run cancelled
    during its scan changes nothing. Nothing inside the ``excluded`` folders is read (see
    ``scan``). Raises only for problems with the library as a whole (root gone, store down,
    disk full: ``StorageFullError``). ``batch_files`` defaults to ``BATCH_FILES``.
    """
    if batch_files is None:
        batch_files = BATCH_FILES
    started = time.perf_counter()
    wall_started = time.time()
    cancel = cancel or threading.Event()
    timer = _Timer()
    tell = progress or (lambda p: None)
    root = Path(library.root)
    if not root.is_dir():
        raise SfxmatchError(
            f"{library.root}: the root of library {library.name!r} is not a readable folder"
        )

    tell(IndexProgress(library.name, "scan", 0, 0, f"scanning {library.root}"))
    try:
        result = scan(
            [library.scan_root], state.snapshot(library), excluded=excluded, cancel=cancel
        )
        _checkpoint("scanned")
        return _index_scanned(
            library, result, encoder, store, state, timer, tell, cancel, batch_files,
            zero_shot_min_margin, started, wall_started, analyse_sync,
        )  # fmt: skip
    except Cancelled:
        report = IndexReport(
            library=library.name, scanned=0, added=0, changed=0, moved=0, deleted=0,
            relabelled=0, unchanged=0, failed=0, faults=(),
            seconds=time.perf_counter() - started, decode_seconds=timer.decode,
            model_seconds=timer.model, cancelled=True,
            indexed=sum(state.count(library.name).values()),
        )  # fmt: skip
        tell(IndexProgress(library.name, "done", 0, 0, "cancelled"))
        return report


def _index_scanned(
    library: LibraryConfig,
    result: ScanResult,
    encoder: Encoder,
    store: VectorStore,
    state: IndexState,
    timer: _Timer,
    tell: IndexProgressFn,
    cancel: threading.Event,
    batch_files: int,
    zero_shot_min_margin: float,
    started: float,
    wall_started: float,
    analyse_sync: bool = True,
) -> IndexReport:
    """The rest of ``index_library`` once the scan is done (``Cancelled`` when cancelled
    before the first commit)."""
    batcher = _Batcher(library, encoder, store, state, timer, zero_shot_min_margin)

    catalogue: Catalogue | None = None
    if library.catalogue:
        catalogue = load_catalogue(library.catalogue)
    faults = list(result.faults)
    # A file still there but now empty, not audio or unreadable is a fault, not a deletion:
    # its sound stays indexed until the file is readable again or really gone.
    faulted = {os.fsencode(f.path) for f in result.faults if f.kind in KEEP_ON_FAULT}
    deleted = [e for e in result.deleted if os.fsencode(e.path) not in faulted]

    if cancel.is_set():
        raise Cancelled("indexing was cancelled")  # nothing changed yet
    if deleted:
        batcher.delete([e.sound_id for e in deleted])
    if result.moved:
        batcher.move([(m.old, m.new) for m in result.moved])

    # Unchanged sounds whose label sources changed, and moved ones (a file name may be the
    # label): relabel only. A changed catalogue relabels everything.
    known = {s.entry.sound_id: s for s in state.sounds(library.name)}
    cat_sig = catalogue_signature(library)
    last = state.last_run(library.name)
    catalogue_changed = last is not None and last.summary.get("catalogue", "") != cat_sig
    relabel = []
    cancelled = False
    for number, e in enumerate(result.unchanged):  # two stats per sound: long for 100k
        if number % 256 == 0 and cancel.is_set():
            cancelled = True
            break
        if e.sound_id in known and (
            catalogue_changed or known[e.sound_id].sidecar != sidecar_signature(e.path)
        ):
            relabel.append(e)
    relabel += [m.new for m in result.moved]
    # Touched files (same content, new mtime) must be committed with their new stat.
    touched = [
        e
        for e in result.unchanged
        if e.sound_id in known and known[e.sound_id].entry.mtime_ns != e.mtime_ns
    ]
    if touched and not cancelled:
        with state.transaction() as db:
            IndexState.put_sounds(db, [replace(known[e.sound_id], entry=e) for e in touched])

    work = (
        []
        if cancelled
        else [_Work(e, relabel_only=False, analyse=analyse_sync) for e in result.to_process]
    )
    queued = {w.entry.sound_id for w in work}
    if not cancelled:
        for e in relabel:
            if e.sound_id not in queued:
                # A sound indexed before sync points is analysed while it is relabelled.
                never = known.get(e.sound_id) is None or known[e.sound_id].onset is None
                work.append(_Work(e, relabel_only=True, analyse=analyse_sync and never))
                queued.add(e.sound_id)
    if not cancelled and analyse_sync:
        # Sounds indexed before sync points: their audio is decoded once more to find them
        # (no embedding, the store untouched).
        work += [
            _Work(e, relabel_only=True, sync_only=True)
            for e in result.unchanged
            if e.sound_id in known and known[e.sound_id].onset is None
            and e.sound_id not in queued
        ]  # fmt: skip
    total = len(work)
    done = failed = 0
    relabelled = sum(1 for w in work if w.relabel_only and not w.sync_only)
    analysed = sum(1 for w in work if w.sync_only)
    stop = threading.Event()
    batch: list[_Work] = []
    tell(IndexProgress(library.name, "index", 0, total, result.summary()))

    def flush() -> None:
        nonlocal done
        batcher.commit(batch)
        done += len(batch)
        batch.clear()
        tell(IndexProgress(library.name, "index", done + failed, total, ""))

    try:
        for item in _prefetch(work, catalogue, timer, stop, encoder, cancel):
            if cancel.is_set():
                cancelled = True
                break
            if item.fault is not None:
                faults.append(item.fault)
                failed += 1
                tell(IndexProgress(library.name, "index", done + failed, total, str(item.fault)))
                continue
            batch.append(item)
            if len(batch) >= batch_files:
                flush()
        cancelled = cancelled or cancel.is_set()  # the reader stops at once when cancelled
        if batch and not cancelled:
            flush()
    finally:
        stop.set()

    with state.transaction() as db:
        IndexState.replace_faults(db, library.name, faults)
    if not cancelled:
        batcher.collect_labels()
    indexed = sum(state.count(library.name).values())
    report = IndexReport(
        library=library.name,
        scanned=len(result.snapshot.entries),
        added=len(result.added),
        changed=len(result.changed),
        moved=len(result.moved),
        deleted=len(deleted),
        relabelled=relabelled,
        unchanged=len(result.unchanged),
        failed=failed,
        faults=tuple(faults),
        seconds=time.perf_counter() - started,
        decode_seconds=timer.decode,
        model_seconds=timer.model,
        cancelled=cancelled,
        indexed=indexed,
        analysed=analysed,
        sync_seconds=timer.sync,
    )
    summary = report.summary() | {"catalogue": cat_sig}
    state.add_run(RunRecord(library.name, wall_started, time.time(), summary))
    tell(IndexProgress(library.name, "done", total, total, "cancelled" if cancelled else "done"))
    return report
