"""The one facade: what the CLI, the daemon and the tests call.

``Pipeline`` owns the expensive things (the encoder, the vector store, the index state) and
opens them lazily, so ``library status`` never loads a model and a daemon pays the model
load once. Every long method takes ``progress`` (a callable receiving ``Progress`` values)
and ``cancel`` (a ``threading.Event``); cancelling raises ``Cancelled`` from ``suggest``
and ends ``library_index`` early with what was committed kept.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from sfxmatch.backend import LibraryStatus, SoundSync
from sfxmatch.config import Settings
from sfxmatch.errors import (
    AccessDeniedError,
    Cancelled,
    ConfigError,
    MissingFileError,
    NotFoundError,
    NotIndexedError,
    PreconditionError,
    UnknownLibraryError,
    UnknownSoundError,
)
from sfxmatch.files import exclusive, inside, real_paths, storage_writes
from sfxmatch.library.indexer import index_library
from sfxmatch.library.registry import (
    IndexedSound,
    IndexState,
    LibraryConfig,
    Registry,
    check_library_name,
    decode_path,
    display_path,
)
from sfxmatch.library.syncpoints import SyncPoint
from sfxmatch.progress import IndexProgress, IndexReport, Progress, ProgressFn
from sfxmatch.store.base import KINDS, Filter, Hit, Kind, VectorStore
from sfxmatch.suggestions import (
    Candidate,
    Edit,
    RenderRequest,
    RenderResult,
    Suggestions,
    SuggestOptions,
)

if TYPE_CHECKING:
    from sfxmatch.conform import ConformCache
    from sfxmatch.embed.encoder import Encoder
    from sfxmatch.suggest import Suggester

Weights = Literal["checkpoint", "random"]
# Seconds an index run (or a library removal) waits for another process updating the same
# model's index (the daemon, a local `library index`) before it says which one it is.
INDEX_LOCK_WAIT = 1.0


def _no_progress(_: Progress) -> None:
    return None


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "model"


class Pipeline:
    """Everything sfxmatch does, behind one object. Thread-safe for concurrent readers; index
    runs and model loads are serialised."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        model: str | None = None,
        weights: Weights | None = None,
        encoder: Encoder | None = None,
        store: VectorStore | None = None,
        store_backend: str = "lance",
        store_options: dict[str, Any] | None = None,
        seed: int = 0,
        excluded: Sequence[str | os.PathLike[str]] = (),
    ) -> None:
        from sfxmatch.embed.encoder import resolve_model_name
        from sfxmatch.embed.registry import get_model

        self.settings = settings or Settings.from_env()
        # Folders never read nor answered from (the daemon's --exclude), as real paths.
        self.excluded: tuple[str, ...] = real_paths(excluded)
        # The registry's name; without one (argument or $SFXMATCH_MODEL), the default for the
        # device the model will run on.
        self.model = (
            encoder.spec.name if encoder is not None else resolve_model_name(model, self.settings)
        )
        self.spec = get_model(self.model)
        if weights is None:
            weights = "random" if self.spec.random_only else "checkpoint"
        self.weights: Weights = weights
        self.seed = seed
        self._encoder = encoder
        self._given_encoder = encoder
        self._store = store
        self._store_backend = store_backend
        self._store_options = dict(store_options or {})
        self._state: IndexState | None = None
        self._sync_cache: dict[tuple[str, int, int], SyncPoint] = {}
        self._lock = threading.RLock()
        self._index_lock = threading.Lock()
        self.registry = Registry(self.settings.library_dir)

    # -- what the facade holds -----------------------------------------------------------

    @property
    def model_key(self) -> str:
        """Names the index and store folders: vectors of different models never mix."""
        if self._given_encoder is not None:
            return _slug(self._given_encoder.model_id)
        weights = "checkpoint" if self.weights == "checkpoint" else f"random-seed{self.seed}"
        return _slug(f"{self.model}-{weights}")

    @property
    def meaningless(self) -> bool:
        """True when the encoder has random weights: suggestions are for development only."""
        if self._encoder is not None:
            return "random" in self._encoder.model_id
        return self.weights == "random"

    @property
    def dim(self) -> int:
        if self._encoder is not None:
            return self._encoder.dim
        return self.spec.dim

    @property
    def encoder(self) -> Encoder:
        with self._lock:
            if self._encoder is None:
                from sfxmatch.embed.cache import CachedEncoder, EmbeddingCache
                from sfxmatch.embed.encoder import load_encoder

                encoder = load_encoder(
                    self.model, weights=self.weights, seed=self.seed, settings=self.settings
                )
                cache = EmbeddingCache(self.settings.embeddings_dir / "embeddings.sqlite")
                self._encoder = CachedEncoder(encoder, cache)
            return self._encoder

    def load_model(self) -> str:
        """Load the encoder now (the daemon's eager start); returns its model id."""
        return self.encoder.model_id

    @property
    def store(self) -> VectorStore:
        with self._lock:
            if self._store is None:
                from sfxmatch.store import open_store

                options = dict(self._store_options)
                if self._store_backend in ("lance", "exact"):
                    options.setdefault("path", self.settings.store_dir / self.model_key)
                self._store = open_store(self._store_backend, dim=self.dim, **options)  # type: ignore[arg-type]
            return self._store

    @property
    def state(self) -> IndexState:
        with self._lock:
            if self._state is None:
                folder = self.settings.library_dir / self.model_key
                self._state = IndexState(folder / "index.sqlite")
            return self._state

    def _updating_index(self) -> contextlib.AbstractContextManager[None]:
        """The index of this model (its SQLite state and vector store) changed by one
        process at a time: ``<library dir>/<model key>/index.lock``, held for a whole run.
        BusyError, naming the other process, when it stays taken."""
        folder = self.settings.library_dir / self.model_key
        return exclusive(
            folder / "index.lock", f"the {self.model_key} index in {folder}", wait=INDEX_LOCK_WAIT
        )

    def close(self) -> None:
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None
            if self._state is not None:
                self._state.close()
                self._state = None

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- library -------------------------------------------------------------------------

    def library_add(
        self,
        path: str | os.PathLike[str],
        name: str | None = None,
        *,
        catalogue: str | os.PathLike[str] | None = None,
        kind_overrides: Sequence[tuple[str, str]] = (),
    ) -> LibraryConfig:
        """Register a folder of sounds (nothing is read until ``library_index``)."""
        root = Path(os.path.abspath(os.fspath(path)))
        if not root.exists():
            raise MissingFileError(root, "no such folder")
        if not root.is_dir():
            raise ConfigError(f"{root}: is not a folder (add the folder that holds the sounds)")
        if not os.access(root, os.R_OK | os.X_OK):
            raise AccessDeniedError(f"{root}: permission denied")
        if catalogue is not None and not Path(catalogue).is_file():
            raise NotFoundError(f"{catalogue}: catalogue file not found")
        from sfxmatch.library.kinds import check_overrides

        check_overrides(kind_overrides)  # bounded, each glob valid, each kind known
        library = LibraryConfig(
            name=check_library_name(name or root.name),
            root=str(root),
            catalogue=os.path.abspath(catalogue) if catalogue else None,
            kind_overrides=tuple((str(g), str(k)) for g, k in kind_overrides),
            added_at=time.time(),
        )
        return self.registry.add(library)

    def libraries(self) -> list[LibraryConfig]:
        return self.registry.all()

    def conform_cache(self) -> ConformCache:
        """Where sounds editors cannot import are conformed (sfxmatch.conform): one folder
        per library under ``<library dir>/conform``, ``other`` for sounds outside them."""
        from sfxmatch.conform import ConformCache
        from sfxmatch.files import inside

        roots = {os.path.realpath(lib.root): lib.library_id for lib in self.libraries()}

        def folder_for(real: str) -> str:
            root = inside(real, sorted(roots, key=len, reverse=True))
            return roots[root] if root is not None else "other"

        return ConformCache(self.settings.library_dir / "conform", folder_for)

    def library_remove(self, name: str) -> int:
        """Forget a library: its vectors, its index rows, its registration. Returns how many
        sounds were removed. The sound files themselves are never touched."""
        self.registry.get(name)  # NotFoundError for an unknown library
        with self._index_lock, self._updating_index():
            sounds = self.state.sounds(name)
            # Every vector of the library, those no committed row names too (a run killed
            # between upsert and commit, stale labels): they all carry its name.
            self.store.delete(filter=Filter(library=name))
            self.state.forget_library(name)
            self.registry.remove(name)
        return len(sounds)

    def library_index(
        self,
        names: Sequence[str] | None = None,
        *,
        progress: ProgressFn | None = None,
        cancel: threading.Event | None = None,
        on_file: Callable[[IndexProgress], None] | None = None,
    ) -> list[IndexReport]:
        """Bring the index of each named library (default: all) up to date."""
        libraries = [self.registry.get(n) for n in names] if names else self.registry.all()
        if not libraries:
            raise PreconditionError("no library to index: add one with `sfxmatch library add PATH`")
        tell = progress or _no_progress
        reports = []
        with self._index_lock, self._updating_index():
            for number, library in enumerate(libraries):

                def relay(p: IndexProgress, number: int = number) -> None:
                    if on_file is not None:
                        on_file(p)
                    part = p.done / p.total if p.total else (1.0 if p.stage == "done" else 0.0)
                    fraction = (number + part) / len(libraries)
                    tell(Progress(f"index {p.library}", fraction, p.message))

                report = index_library(
                    library,
                    self.encoder,
                    self.store,
                    self.state,
                    progress=relay,
                    cancel=cancel,
                    batch_files=self.settings.index_batch,
                    # Random weights give meaningless label-vs-prompt cosines: let UCS, length
                    # and loops decide kinds instead.
                    zero_shot_min_margin=math.inf if self.meaningless else 0.0,
                    excluded=self.excluded,
                )
                reports.append(report)
                if cancel is not None and cancel.is_set():
                    break
        return reports

    def library_status(self, name: str | None = None) -> list[LibraryStatus]:
        libraries = [self.registry.get(name)] if name else self.registry.all()
        out = []
        for library in libraries:
            by_kind = self.state.count(library.name)
            out.append(
                LibraryStatus(
                    library=library,
                    sounds=sum(by_kind.values()),
                    by_kind=by_kind,
                    faults=tuple(self.state.faults(library.name)),
                    last_run=self.state.last_run(library.name),
                    root_exists=Path(library.root).is_dir(),
                    sync_sources=self.state.sync_counts(library.name),
                )
            )
        return out

    def indexes_by_model(self, name: str) -> dict[str, int]:
        """Sounds of library ``name`` indexed with each model that has an index here (keys
        are the index folders' names: model and weights, e.g. ``imagebind-huge-checkpoint``).
        A library indexed with one model is never searched with another's vectors; this says
        what switching models would need re-indexed."""
        self.registry.get(name)
        counts: dict[str, int] = {}
        for path in sorted(self.settings.library_dir.glob("*/index.sqlite")):
            key = path.parent.name
            state = self.state if key == self.model_key else IndexState(path)
            try:
                total = sum(state.count(name).values())
            finally:
                if state is not self.state:
                    state.close()
            if total:
                counts[key] = total
        return counts

    def library_search(
        self,
        text: str,
        *,
        kind: Kind | None = None,
        library: str | Sequence[str] | None = None,
        top_k: int = 10,
    ) -> list[Candidate]:
        """Sounds whose audio is nearest to ``text`` in the shared space (best first)."""
        if not text.strip():
            raise ConfigError("the search text is empty")
        if kind is not None and kind not in KINDS:
            raise ConfigError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
        for name in [library] if isinstance(library, str) else library or ():
            self.registry.get(name)  # an unknown library is an error, not "no match"
        vector = self.encoder.embed_text([text], space="audio")[0]
        return self.search_audio(vector, kind=kind, library=library, top_k=top_k)

    def search_audio(
        self,
        vector: np.ndarray,
        *,
        kind: Kind | None = None,
        library: str | Sequence[str] | None = None,
        labels: Sequence[str] | None = None,
        top_k: int = 10,
    ) -> list[Candidate]:
        """Audio nearest to ``vector``, one candidate per sound (its best window)."""
        flt = Filter(modality="audio", kind=kind, library=library, label=labels)
        if flt.is_empty:
            return []
        # Windows of one bed compete with each other: ask for more, keep each sound's best.
        hits = self.store.query(vector, top_k=min(4 * top_k + 8, 1000), filter=flt)
        if self.excluded:  # indexed before the folder was excluded, or by another process
            hits = [h for h in hits if not self.is_excluded(decode_path(h.meta.path))]
        return self.with_sync_points(candidates_from_hits(hits, top_k))

    # -- sync points ---------------------------------------------------------------------

    def with_sync_points(self, candidates: Sequence[Candidate]) -> list[Candidate]:
        """The candidates with their sound's sync point and peak (``library.syncpoints``).

        A sound indexed before sync points existed (its next index run analyses it) gets
        one found now, from its audio and its own markers, remembered for this process."""
        from dataclasses import replace

        points = self.state.sync_points(c.sound_id for c in candidates)
        out = []
        for c in candidates:
            point = points.get(c.sound_id)
            if point is None or point.source == "start":
                point = self._sync_on_demand(c.path, point)
            out.append(replace(c, sync_point=point.time, sync_source=point.source, peak=point.peak))
        return out

    def _sync_on_demand(self, path: str, stored: SyncPoint | None) -> SyncPoint:
        from sfxmatch.library.syncpoints import choose

        try:
            st = os.stat(path)
        except OSError:
            return stored or choose()
        key = (path, st.st_size, st.st_mtime_ns)
        with self._lock:
            hit = self._sync_cache.get(key)
        if hit is None:
            hit = analyse_sync(path)
            with self._lock:
                if len(self._sync_cache) > 4096:
                    self._sync_cache.clear()
                self._sync_cache[key] = hit
        return hit

    def sound_at(self, path: str | os.PathLike[str]) -> IndexedSound:
        """The indexed sound of a file (a path inside a registered library).

        UnknownSoundError when no library holds the path, NotIndexedError when the library
        has not indexed it (yet)."""
        given = os.fspath(path)
        for library in self.registry.all():
            relpath = _inside(given, library.root)
            if relpath is None:
                continue
            sound = self.state.sound_at(library.name, relpath)
            if sound is None:
                raise NotIndexedError(
                    f"{path}: in library {library.name!r} but not indexed yet; run "
                    f"`sfxmatch library index {library.name}` first"
                )
            return sound
        raise UnknownSoundError(f"{path}: not in any registered library (`sfxmatch library add`)")

    def sound_sync(self, path: str | os.PathLike[str]) -> SoundSync:
        """A sound of a library and the sync point it is placed by."""
        sound = self.sound_at(path)
        point = self.state.sync_points([sound.entry.sound_id])[sound.entry.sound_id]
        return sound_sync(sound, point)

    def library_set_sync(self, path: str | os.PathLike[str], seconds: float | None) -> SoundSync:
        """Set the user's sync point of one sound (seconds into the file), or with None go
        back to what the catalogue, the file or the detector says. It wins over all of
        them while the file's content stays the same. Returns the sound and its sync point
        now."""
        sound = self.sound_at(path)
        if seconds is not None:
            if not (isinstance(seconds, int | float) and math.isfinite(seconds) and seconds >= 0):
                raise ConfigError(f"a sync point is 0 or more seconds, not {seconds!r}")
            if sound.duration > 0 and seconds >= sound.duration:
                raise ConfigError(
                    f"{path}: {seconds:.3f} s is past the end of the sound "
                    f"({sound.duration:.3f} s long)"
                )
        self.state.set_override(sound, None if seconds is None else float(seconds))
        return self.sound_sync(path)

    def library_sounds(self, name: str) -> list[tuple[IndexedSound, SyncPoint]]:
        """Every indexed sound of a library with its sync point, by path."""
        self.registry.get(name)
        sounds = self.state.sounds(name)
        overrides = self.state.overrides(s.entry.sound_id for s in sounds)
        return [(s, s.sync_point(overrides.get(s.entry.sound_id))) for s in sounds]

    def is_excluded(self, path: str | os.PathLike[str]) -> bool:
        """Whether ``path`` (links resolved) lies in one of the excluded folders."""
        if not self.excluded:
            return False
        return inside(os.path.realpath(os.fspath(path)), self.excluded) is not None

    # -- suggest and render ----------------------------------------------------------------

    def suggest(
        self,
        source: str | os.PathLike[str] | Edit,
        options: SuggestOptions | None = None,
        *,
        progress: ProgressFn | None = None,
        cancel: threading.Event | None = None,
    ) -> Suggestions:
        """Per-scene ambience and synced effects for a video file or an editor's clip list.

        Deterministic for the same inputs, library and model. Raises ``Cancelled`` when
        ``cancel`` is set, MediaError/ConfigError for bad input (naming the file).
        """
        from sfxmatch.suggest import prepare_edit

        edit = prepare_edit(source if isinstance(source, Edit) else os.fspath(source))
        return self.suggester(options, progress=progress, cancel=cancel).run(edit)

    def suggester(
        self,
        options: SuggestOptions | None = None,
        *,
        progress: ProgressFn | None = None,
        cancel: threading.Event | None = None,
    ) -> Suggester:
        """A suggest run over the libraries ``options`` names (default: all), checked to
        exist and to be indexed for this model (which it loads), built from this facade's
        encoder, search and store."""
        from sfxmatch.suggest import Sounds, Suggester

        options = options or SuggestOptions()
        libraries = self._suggest_libraries(options)

        def search(
            vector: np.ndarray, *, kind: Kind, labels: Sequence[str] | None, top_k: int
        ) -> list[Candidate]:
            return self.search_audio(
                vector, kind=kind, library=libraries, labels=labels, top_k=top_k
            )

        return Suggester(
            self.encoder,
            Sounds(libraries, search, self.store),
            options,
            progress or _no_progress,
            cancel or threading.Event(),
            meaningless=self.meaningless,
            conform_cache=self.conform_cache,
        )

    def _suggest_libraries(self, options: SuggestOptions) -> tuple[str, ...]:
        known = [lib.name for lib in self.libraries()]
        libraries = tuple(options.libraries) or tuple(known)
        if not libraries:
            raise PreconditionError(
                "no sound library yet: `sfxmatch library add PATH`, then index it"
            )
        for name in libraries:
            if name not in known:
                raise UnknownLibraryError(name, sorted(known))
        # The index is per model: load the model first, so a missing checkpoint says how to
        # provide it rather than calling an index made with another model empty.
        self.load_model()
        indexed = sum(s.sounds for name in libraries for s in self.library_status(name))
        if indexed == 0:
            others = sorted({key for name in libraries for key in self.indexes_by_model(name)})
            why = f" for {self.model} (it is indexed for {', '.join(others)})" if others else ""
            raise NotIndexedError(
                f"library {', '.join(libraries)} has no indexed sounds{why}: run "
                "`sfxmatch library index` first"
            )
        return libraries

    def render(
        self,
        suggestions: Suggestions,
        request: RenderRequest,
        *,
        progress: ProgressFn | None = None,
        cancel: threading.Event | None = None,
    ) -> RenderResult:
        """Write what ``request`` asks for: mix, stems, muxed video, timeline, plot.

        A full disk raises StorageFullError."""
        with storage_writes("the rendered files"):
            return self._render(suggestions, request, progress=progress, cancel=cancel)

    def _render(
        self,
        suggestions: Suggestions,
        request: RenderRequest,
        *,
        progress: ProgressFn | None = None,
        cancel: threading.Event | None = None,
    ) -> RenderResult:
        from sfxmatch.mix import render_mix
        from sfxmatch.mix.output import write_mix, write_stems

        tell = progress or _no_progress
        files: list[tuple[str, str]] = []
        loudness = None
        wants_audio = request.mix or request.stems_dir or request.mux
        check_render_request(request, suggestions.edit)
        for target in (request.mix, request.mux, request.timeline, request.plot):
            if target:
                try:
                    Path(target).parent.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise ConfigError(f"{target}: its folder cannot be made ({exc})") from None
        if wants_audio:
            mix = render_mix(
                suggestions.placements,
                suggestions.edit.duration,
                sample_rate=request.sample_rate,
                target_lufs=request.target_lufs,
                true_peak_ceiling=request.true_peak_dbtp,
                progress=tell,
                cancel=cancel,
            )
            loudness = mix.loudness
            mix_path = request.mix
            if request.mix:
                files.append(("mix", str(write_mix(request.mix, mix.mix, mix.sample_rate))))
            if request.stems_dir:
                for name, path in write_stems(request.stems_dir, mix.stems).items():
                    files.append((f"stem:{name}", str(path)))
            if request.mux:
                from sfxmatch.media import Audio
                from sfxmatch.mix.mux import mux_video

                video = suggestions.edit.clips[0].path
                audio = mix_path or Audio(mix.mix, mix.sample_rate)
                files.append(("mux", str(mux_video(video, audio, request.mux, cancel=cancel))))
        if request.timeline:
            from sfxmatch.timeline import write_timeline

            tell(Progress("export", 0.0, request.timeline))
            path = write_timeline(suggestions, request.timeline, request.flavour)
            files.append(("timeline", str(path)))
        if request.plot:
            from sfxmatch.plot import plot_suggestions

            tell(Progress("plot", 0.0, request.plot))
            threshold = dict(suggestions.settings).get("sync_t")
            path = plot_suggestions(
                suggestions, request.plot, threshold=float(threshold) if threshold else None
            )
            files.append(("plot", str(path)))
        tell(Progress("render", 1.0, f"{len(files)} file(s) written"))
        return RenderResult(  # non-finite values (an empty or silent mix) become None
            files=tuple(files),
            loudness_lufs=loudness.loudness_after if loudness else None,
            true_peak_dbtp=loudness.true_peak_after if loudness else None,
            gain_db=loudness.gain_db if loudness else None,
            loudness_note=loudness.note if loudness else "",
        )


def check_render_request(request: RenderRequest, edit: Edit | None = None) -> None:
    """Refuse file names ``render`` cannot write, before any work (the CLI calls this before
    ``suggest``; ``edit``, when known, is checked against ``mux``)."""
    # Checked before anything is written (a wrong name must not cost a mix first).
    if request.timeline and Path(request.timeline).suffix.lower() not in (".otio", ".xml"):
        raise ConfigError(
            f"{Path(request.timeline).name}: timeline files end in .otio or .xml (FCP7)"
        )
    if request.mux:
        from sfxmatch.mix.mux import MUX_FORMATS

        if Path(request.mux).suffix.lower() not in MUX_FORMATS:
            raise ConfigError(
                f"{Path(request.mux).name}: the muxed video must end in "
                f"{', '.join(sorted(MUX_FORMATS))}"
            )
        # The mix goes under the whole source video.
        if edit is None:
            return
        clips = edit.clips
        if len(clips) != 1:
            raise ConfigError("--mux needs a single video, not an edit of many clips")
        if clips[0].source_in > 1e-6 or clips[0].record_start > 1e-6:
            raise ConfigError(
                f"--mux puts the mix under the whole of {Path(clips[0].path).name}: it needs "
                f"the video from its start, not a clip from {clips[0].source_in:.3f} s"
            )


def sound_sync(sound: IndexedSound, point: SyncPoint) -> SoundSync:
    """An indexed sound and its sync point as the value both backends return."""
    return SoundSync(
        path=display_path(sound.entry.path),
        library=sound.library,
        sound_id=sound.entry.sound_id,
        kind=sound.kind,
        label=sound.label,
        duration=sound.duration,
        point=point,
        detected=sound.onset,
    )


def _inside(path: str, root: str) -> str | None:
    """``path`` relative to the library ``root`` ("/"-separated), as given or with links
    resolved; None when it is not inside."""
    for p, r in (
        (os.path.abspath(path), os.path.abspath(root)),
        (os.path.realpath(path), os.path.realpath(root)),
    ):
        if p != r and p.startswith(r.rstrip(os.sep) + os.sep):
            return os.path.relpath(p, r).replace(os.sep, "/")
    return None


def analyse_sync(path: str) -> SyncPoint:
    """A sound's sync point found now (not from the index): its own markers or sidecar
    line, else the onset detector on its audio; ``start`` when it cannot be decoded."""
    from sfxmatch import media
    from sfxmatch.errors import MediaError
    from sfxmatch.library.syncpoints import choose
    from sfxmatch.library.tags import read_embedded, read_sidecar_sync
    from sfxmatch.match.onset import detect_onset

    try:
        audio = media.load_audio(path)
    except (MediaError, ConfigError):
        return choose()
    found = detect_onset(audio.samples, audio.sample_rate)
    return choose(
        file=read_embedded(path).mark,
        sidecar=read_sidecar_sync(path),
        detected=found.time,
        peak=found.peak,
        duration=audio.duration,
    )


def candidates_from_hits(hits: Sequence[Hit], top_k: int) -> list[Candidate]:
    """One candidate per sound, best score first. Pure."""
    best: dict[str, Hit] = {}
    for hit in hits:
        sid = hit.meta.sound_id
        if sid not in best or hit.score > best[sid].score:
            best[sid] = hit
    ranked = sorted(best.values(), key=lambda h: (-h.score, h.meta.sound_id))[:top_k]
    return [
        Candidate(
            sound_id=h.meta.sound_id,
            label=h.meta.label,
            path=decode_path(h.meta.path),
            score=float(h.score),
            kind=h.meta.kind,
            duration=float(h.meta.duration),
            ucs_category=h.meta.ucs_category,
        )
        for h in ranked
    ]


__all__ = [
    "Cancelled",
    "LibraryStatus",
    "Pipeline",
    "Progress",
    "ProgressFn",
    "SoundSync",
    "candidates_from_hits",
    "check_render_request",
]
