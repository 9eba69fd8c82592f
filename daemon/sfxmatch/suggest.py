"""``Pipeline.suggest``: from picture to ranked, synced, placed sounds.

Per source clip of the edit, one decode pass feeds three consumers: the scene splitter, the
segment sampler (the model's frames per 0.1 s segment, embedded in batches as they fill)
and a 4 fps keeper for whole-scene embeddings. Then, per scene: effect intervals by AutoSync
over the softmax of segment-vs-label similarity, sounds for each interval from inside its
label, the bed by VTA or VA search reranked by those effects. The effects that are kept are
then located on screen (a few frames of each, decoded again near it, through the encoder's
emitter maps) for pan and gain. Placement turns the choices into clips on
"Ambience"/"Ambience 2" (beds checkerboarded so they crossfade at cuts) and "SFX 1..n".

Algorithms live in :mod:`sfxmatch.match` (placement policy in :mod:`sfxmatch.match.placement`);
this module only wires them to media, the encoder and the library's index. It is given those
as narrow parts (:class:`Sounds`, an ``Encoder``) and never imports the facade that builds it
(``Pipeline.suggester``).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, cast

import numpy as np

from sfxmatch import media
from sfxmatch.conform import ConformCache, conform_suggestions
from sfxmatch.embed.encoder import SceneInput
from sfxmatch.errors import (
    Cancelled,
    ConfigError,
    MediaError,
    MissingFileError,
)
from sfxmatch.library.vector_ids import sound_vector_id
from sfxmatch.match.ambience import rerank_by_effects, search_ambience
from sfxmatch.match.autosync import SyncParams, softmax_scores, sync_intervals
from sfxmatch.match.placement import borrow_ambience, keep_strongest_effects, place, spot_effects
from sfxmatch.match.scan import ScanPlan, coarse_step, fill, is_coarse, refine_gap
from sfxmatch.match.spatial import Location, horizontal_position, pan_gain_keyframes
from sfxmatch.progress import Progress
from sfxmatch.scenes import DetectorName, SceneSplitter
from sfxmatch.store.base import Filter, Kind, VectorStore
from sfxmatch.suggestions import (
    Candidate,
    Edit,
    EffectSuggestion,
    Keyframe,
    SceneSuggestion,
    SourceClip,
    Suggestions,
    SuggestOptions,
    Trace,
)

if TYPE_CHECKING:
    from sfxmatch.embed.encoder import Encoder

SCENE_FRAME_RATE = 4.0  # about this many frames a second embed a scene (full scans)
SEGMENT_BATCH = 16
# Segments per placed effect located on screen (keyframes between them). A located segment
# costs a video-tower pass (PE-AV: a 0.4 TFLOP frame, about a second on a laptop CPU): on a CPU
# the emitter is found at the effect's first and last segment and pans in a line between.
LOCATE_FRAMES = 8
LOCATE_FRAMES_CPU = 2
PLOT_TRACES = 8  # labels whose traces are kept for the plot


class SearchAudio(Protocol):
    """Sounds of the run's libraries whose audio is nearest ``vector``: one candidate per
    sound, best first, with its sync point (``Pipeline.search_audio``)."""

    def __call__(
        self, vector: np.ndarray, *, kind: Kind, labels: Sequence[str] | None, top_k: int
    ) -> list[Candidate]: ...


@dataclass(frozen=True)
class Sounds:
    """The indexed sounds a suggest run chooses from: the libraries searched, their audio
    search, and the store for their label texts and whole-sound vectors (read only)."""

    libraries: tuple[str, ...]
    search: SearchAudio
    store: VectorStore


def edit_for_video(path: str | Path) -> Edit:
    """A whole video as a one-clip edit at its own frame rate."""
    info = media.probe(path)
    if info.video is None:
        raise MediaError(Path(path), "has no video stream to suggest sounds for")
    duration = info.duration
    if not duration > 0:
        raise MediaError(Path(path), "has no duration (empty or unreadable)")
    clip = SourceClip(str(Path(path).resolve()), 0.0, duration, 0.0, Path(path).name)
    return Edit(
        clips=(clip,),
        fps=info.video.fps if info.video.fps > 0 else Fraction(25),
        width=info.video.width,
        height=info.video.height,
        name=Path(path).stem,
    )


@dataclass
class _ClipAnalysis:
    """What one decode pass of one clip gave, in clip-local seconds."""

    clip: SourceClip
    scenes: list[tuple[float, float]]
    segment_times: np.ndarray  # (N,) segment starts
    segment_vectors: np.ndarray  # (N, dim)
    scene_frames: list[np.ndarray] = field(default_factory=list)
    scene_frame_times: list[float] = field(default_factory=list)


def segment_offsets(frames: int, segment: float) -> list[float]:
    """Where in a segment its frames are sampled: evenly, centred (one frame: the middle), so
    a segment's evidence is not biased early or late and AutoSync's onsets are not either."""
    return [(j + 0.5) * segment / frames for j in range(frames)]


class _SegmentSampler:
    """The on-screen frames of every segment, handed on segment by segment."""

    def __init__(
        self,
        count: int,
        segment: float,
        frames_per_segment: int,
        on_segment: Callable[[int, np.ndarray], None],
    ) -> None:
        offsets = segment_offsets(frames_per_segment, segment)
        self.per_segment = frames_per_segment
        self.samples = [k * segment + o for k in range(count) for o in offsets]
        self.next = 0
        self.previous: np.ndarray | None = None
        self.pending: list[np.ndarray] = []
        self.on_segment = on_segment

    def feed(self, time: float, image: np.ndarray) -> None:
        # A sample before this frame's time shows the previous frame (the one on screen).
        while self.next < len(self.samples) and self.samples[self.next] < time - 1e-6:
            self._take(self.previous if self.previous is not None else image)
        while self.next < len(self.samples) and self.samples[self.next] <= time + 1e-6:
            self._take(image)
        self.previous = image

    def finish(self) -> None:
        while self.next < len(self.samples) and self.previous is not None:
            self._take(self.previous)

    def _take(self, image: np.ndarray) -> None:
        self.pending.append(image)
        self.next += 1
        if len(self.pending) == self.per_segment:
            self.on_segment(self.next // self.per_segment - 1, np.stack(self.pending))
            self.pending = []


class _SegmentScan:
    """Which segments are embedded as the decode pass goes, in batches: every one (``plan``
    None), or coarse-to-fine (:mod:`sfxmatch.match.scan`): the coarse ones, then the
    segments between two of them where scores move or a cut lies. A segment's frames are kept
    until its gap is decided and ``keep`` segments more (for a cut reported late)."""

    def __init__(
        self,
        count: int,
        plan: ScanPlan | None,
        embed: Callable[[np.ndarray], np.ndarray],
        score: Callable[[np.ndarray], np.ndarray],
        keep: int,
    ) -> None:
        self.count = count
        self.plan = plan
        self.embed = embed
        self.score = score
        self.keep = keep
        self.clips: dict[int, np.ndarray] = {}
        self.vectors: dict[int, np.ndarray] = {}
        self.scores: dict[int, np.ndarray] = {}
        self.queue: list[int] = []
        self.coarse: list[int] = []  # coarse segments embedded so far, in order
        self.decided = 0  # gaps between coarse[i] and coarse[i + 1] decided for i < decided
        self.unrefined: list[tuple[int, int]] = []  # decided gaps left to interpolation
        self.after_moved = False  # the last decided gap moved: the next one is refined too
        self.cuts: set[int] = set()

    def add(self, index: int, clip: np.ndarray) -> None:
        self.clips[index] = clip
        if self.plan is None or is_coarse(index, self.count, self.plan.step):
            self.queue.append(index)
        if len(self.queue) >= SEGMENT_BATCH:
            self._advance()

    def cut(self, index: int) -> None:
        """A scene starts in segment ``index``: a decided gap across it is refined after all
        while its frames are here."""
        if index in self.cuts or self.plan is None:
            return
        self.cuts.add(index)
        for gap in [g for g in self.unrefined if g[0] < index <= g[1]]:
            self.unrefined.remove(gap)
            self._refine(gap)

    def finish(self) -> dict[int, np.ndarray]:
        self._advance()
        return self.vectors

    def _advance(self) -> None:
        coarse = list(self.queue)  # in a coarse-to-fine scan only coarse segments queue
        self._embed(self.queue)
        self.queue = []
        if self.plan is None:
            self.clips.clear()
            return
        self.coarse += coarse
        newest = self.coarse[-1] if self.coarse else -1
        while self.decided < len(self.coarse) - 1:
            a, b = self.coarse[self.decided], self.coarse[self.decided + 1]
            self.decided += 1
            moved = refine_gap(self.scores[a], self.scores[b], self.plan)
            # A gap that moved takes its neighbours with it (match.scan: bridged peaks).
            if moved and self.unrefined and self.unrefined[-1][1] == a:
                self._refine(self.unrefined.pop())
            near = moved or self.after_moved
            self.after_moved = moved
            if near or any(a < c <= b for c in self.cuts):
                self._refine((a, b))
            else:
                self.unrefined.append((a, b))
        for k in [k for k in self.clips if k < newest - self.keep]:
            del self.clips[k]

    def _refine(self, gap: tuple[int, int]) -> None:
        a, b = gap
        if all(k in self.clips for k in range(a + 1, b)):
            self._embed(list(range(a + 1, b)))

    def _embed(self, indices: list[int]) -> None:
        for start in range(0, len(indices), SEGMENT_BATCH):
            chunk = [k for k in indices[start : start + SEGMENT_BATCH] if k not in self.vectors]
            if not chunk:
                continue
            vectors = np.asarray(self.embed(np.stack([self.clips[k] for k in chunk])), np.float32)
            scores = self.score(vectors)
            for k, vector, row in zip(chunk, vectors, scores, strict=True):
                self.vectors[k] = vector
                self.scores[k] = row


class Suggester:
    """One ``suggest`` call: holds the library's labels and the running state.

    Built from narrow parts (``Pipeline.suggester`` builds it, having checked that the
    libraries exist and are indexed for the encoder's model): ``meaningless`` marks the
    result as made with random weights; ``conform_cache`` gives where sounds editors cannot
    import are conformed (unless the options keep the originals)."""

    def __init__(
        self,
        encoder: Encoder,
        sounds: Sounds,
        options: SuggestOptions,
        progress: Callable[[Progress], None],
        cancel: threading.Event,
        *,
        meaningless: bool = False,
        conform_cache: Callable[[], ConformCache] | None = None,
    ) -> None:
        self.encoder = encoder
        self.sounds = sounds
        self.options = options
        self.progress = progress
        self.cancel = cancel
        self.meaningless = meaningless
        # Called only when sounds are conformed (the cache lists the libraries' folders).
        self.conform_cache = conform_cache
        self.libraries = sounds.libraries
        # Seconds spent per stage (decode, scenes, embed, score, sync, search, place): for
        # benchmarks, kept out of ``Suggestions`` so equal inputs still give equal values.
        self.timings: dict[str, float] = {}
        self.scan_counts = (0, 0)  # segments embedded, segments in all

    @contextmanager
    def _timed(self, stage: str) -> Iterator[None]:
        began = time.perf_counter()
        try:
            yield
        finally:
            self.timings[stage] = self.timings.get(stage, 0.0) + time.perf_counter() - began

    # -- the steps -----------------------------------------------------------------------

    def run(self, edit: Edit) -> Suggestions:
        self._tell = lambda stage, f, msg="": self.progress(Progress(stage, f, msg))
        encoder = self.encoder
        effect_labels = self._labels("effect")
        ambience_labels = self._labels("ambience")
        self._tell("labels", 1.0, f"{len(effect_labels)} effect and {len(ambience_labels)} "
                   "ambience labels")  # fmt: skip
        with self._timed("embed"):
            # Labels are compared with picture: the video-text space.
            effect_vectors = (
                encoder.embed_text(effect_labels, space="video")
                if effect_labels
                else np.zeros((0, encoder.dim))
            )
            ambience_vectors = (
                encoder.embed_text(ambience_labels, space="video")
                if ambience_labels
                else np.zeros((0, encoder.dim))
            )

        scenes: list[SceneSuggestion] = []
        traces: dict[str, tuple[list[float], list[float]]] = {}
        total = edit.duration or 1.0
        done = 0.0
        for clip in sorted(edit.clips, key=lambda c: c.record_start):
            analysis = self._analyse(clip, effect_vectors, done, total)
            done += clip.duration
            scenes += self._scenes_of(
                analysis, effect_labels, effect_vectors, ambience_labels, ambience_vectors,
                first_index=len(scenes), traces=traces,
            )  # fmt: skip
        opts = self.options
        with self._timed("place"):
            scenes = borrow_ambience(scenes, opts.min_ambience_scene)
            scenes = keep_strongest_effects(scenes, opts.max_effects)
        if opts.spatial:
            with self._timed("locate"):
                scenes = self._locate(scenes, edit, effect_labels, effect_vectors)
        with self._timed("place"):
            scenes = spot_effects(
                scenes, edit, preroll_frames=opts.preroll_frames, ring_out=opts.ring_out
            )
            placements = place(scenes, edit, crossfade=opts.crossfade)
        kept_traces = self._traces(traces, scenes)
        settings = tuple(
            (name, str(getattr(self.options, name))) for name in self.options.__slots__
        )
        result = Suggestions(
            edit=edit,
            scenes=tuple(scenes),
            placements=tuple(placements),
            model_id=encoder.model_id,
            traces=kept_traces,
            meaningless=self.meaningless,
            settings=settings,
        )
        if not self.options.keep_original_formats and self.conform_cache is not None:
            with self._timed("conform"):
                result = conform_suggestions(result, self.conform_cache())
        self._tell("done", 1.0, f"{len(scenes)} scenes, {len(placements)} placements")
        return result

    def _labels(self, kind: Kind) -> list[str]:
        flt = Filter(kind=kind, modality="text", library=self.libraries)
        return self.sounds.store.labels(flt)

    def _cancelled(self) -> None:
        if self.cancel.is_set():
            raise Cancelled("suggest was cancelled")

    def _analyse(
        self, clip: SourceClip, effect_vectors: np.ndarray, done: float, total: float
    ) -> _ClipAnalysis:
        """One decode pass over the clip's source range."""
        opts = self.options
        encoder = self.encoder
        info = media.probe(clip.path)
        if info.video is None:
            raise MediaError(Path(clip.path), "has no video stream")
        splitter = SceneSplitter(
            cast(DetectorName, opts.detector),  # SceneSplitter refuses an unknown name
            threshold=opts.threshold, min_scene_len=opts.min_scene_len,
            fps=info.video.fps or None,
        )  # fmt: skip
        count = math.floor(clip.duration / opts.segment + 1e-9)
        temperature = opts.temperature or encoder.temperature

        def embed(clips: np.ndarray) -> np.ndarray:
            self._cancelled()
            return encoder.embed_video_segments(clips)

        def score(vectors: np.ndarray) -> np.ndarray:
            if not len(effect_vectors):
                return np.zeros((len(vectors), 0))
            return softmax_scores(vectors @ effect_vectors.T, temperature)

        plan = self._scan_plan(encoder)
        # Frames kept past a decided gap: PySceneDetect may report a cut up to a minimum
        # scene length after it happened, and the gap across it is then refined after all.
        keep = math.ceil((opts.min_scene_len + 0.5) / opts.segment) + 1
        scan = _SegmentScan(count, plan, embed, score, keep)
        analysis = _ClipAnalysis(clip, [], np.zeros(0), np.zeros((0, encoder.dim)))
        # Whole scenes are embedded from the frames of every ``stride``-th segment: those a
        # coarse scan embeds anyway (an encoder that remembers frames, as PE-AV's does, pays
        # nothing more for them), or about SCENE_FRAME_RATE a second in a full scan.
        stride = plan.step if plan else max(1, round(1 / (SCENE_FRAME_RATE * opts.segment)))
        first_offset = segment_offsets(encoder.spec.segment_frames, opts.segment)[0]

        def on_segment(k: int, clip: np.ndarray) -> None:
            if k % stride == 0:
                analysis.scene_frames.append(clip[0])
                analysis.scene_frame_times.append(k * opts.segment + first_offset)
            scan.add(k, clip)

        sampler = _SegmentSampler(count, opts.segment, encoder.spec.segment_frames, on_segment)
        reported = 0
        index = 0
        # An editor's clip often starts minutes into its file: decoding starts at the keyframe
        # before it (and only frames others refer to are decoded up to it).
        frames = media.iter_frames(
            clip.path,
            max_side=encoder.spec.decode_side,
            threads=media.PASS_DECODER_THREADS,
            start=clip.source_in - 1e-6 if clip.source_in > 1e-6 else None,
        )
        stream = iter(frames)
        try:
            while True:
                with self._timed("decode"):
                    frame = next(stream, None)
                if frame is None:
                    break
                if frame.time < clip.source_in - 1e-6:
                    continue
                local = frame.time - clip.source_in
                if local >= clip.duration:
                    break
                with self._timed("scenes"):
                    splitter.feed(media.Frame(index, local, frame.image))
                with self._timed("embed"):
                    for cut in splitter.cut_times[reported:]:
                        scan.cut(math.floor(cut / opts.segment + 1e-9))
                    reported = len(splitter.cut_times)
                    sampler.feed(local, frame.image)
                index += 1
                if index % 25 == 0:
                    self._cancelled()
                    self._tell("analyse", min(1.0, (done + local) / total), Path(clip.path).name)
        finally:
            close = getattr(frames, "close", None)
            if callable(close):
                close()
        if index == 0:
            raise MediaError(Path(clip.path), f"no frame between {clip.source_in:.3f} s and "
                             f"{clip.source_out:.3f} s")  # fmt: skip
        with self._timed("embed"):
            sampler.finish()
            embedded = scan.finish()
        if not analysis.scene_frames and sampler.previous is not None:
            # Shorter than one segment: the scene is still embedded, from its one picture.
            analysis.scene_frames.append(sampler.previous)
            analysis.scene_frame_times.append(0.0)
        with self._timed("scenes"):
            found = splitter.finish(clip.duration)
        analysis.scenes = [(s.start, min(s.end, clip.duration)) for s in found]
        if embedded:
            analysis.segment_vectors = self._segment_vectors(
                len(sampler.samples) // sampler.per_segment, embedded, analysis.scenes
            )
        self.scan_counts = (
            self.scan_counts[0] + len(embedded),
            self.scan_counts[1] + len(analysis.segment_vectors),
        )
        analysis.segment_times = np.arange(len(analysis.segment_vectors)) * opts.segment
        return analysis

    def _scan_plan(self, encoder: Encoder) -> ScanPlan | None:
        """Coarse-to-fine for this run, or None for a full scan: ``scan`` "auto" scans
        coarse-to-fine where the model runs on a CPU (every segment costs most there)."""
        opts = self.options
        coarse = opts.scan == "coarse" or (
            opts.scan == "auto" and encoder.placement.device.startswith("cpu")
        )
        if not coarse:
            return None
        step = coarse_step(opts.coarse_step, opts.segment, opts.min_scene_len)
        params = SyncParams(t=opts.sync_t, d=opts.sync_d)
        levels = {opts.sync_t} | ({params.high, params.low} if opts.rule == "hysteresis" else set())
        # A change of half AutoSync's stability tolerance at the threshold cannot break a
        # run whose level is at least the threshold: smaller moves are left to interpolation.
        return ScanPlan(step, tuple(sorted(levels)), rise=opts.sync_d * opts.sync_t / 2)

    def _segment_vectors(
        self, count: int, embedded: dict[int, np.ndarray], scenes: list[tuple[float, float]]
    ) -> np.ndarray:
        """Every segment's vector: embedded, or interpolated inside its scene, unit length."""
        segment = self.options.segment
        starts = np.arange(count) * segment
        scene_of = np.zeros(count, np.int64)
        for number, (start, _) in enumerate(scenes):
            scene_of[starts >= start - 1e-6] = number
        rows = fill(count, embedded, scene_of)
        norms = np.linalg.norm(rows, axis=1, keepdims=True)
        return (rows / np.maximum(norms, 1e-12)).astype(np.float32)

    def _scenes_of(
        self,
        a: _ClipAnalysis,
        effect_labels: list[str],
        effect_vectors: np.ndarray,
        ambience_labels: list[str],
        ambience_vectors: np.ndarray,
        *,
        first_index: int,
        traces: dict[str, tuple[list[float], list[float]]],
    ) -> list[SceneSuggestion]:
        opts = self.options
        clip = a.clip
        temperature = opts.temperature or self.encoder.temperature
        with self._timed("score"):
            scores = (
                softmax_scores(a.segment_vectors @ effect_vectors.T, temperature)
                if len(effect_labels) and len(a.segment_vectors)
                else np.zeros((len(a.segment_vectors), len(effect_labels)))
            )
        record = clip.record_start
        for li, label in enumerate(effect_labels):
            t, v = traces.setdefault(label, ([], []))
            t.extend((a.segment_times + record).tolist())
            v.extend(scores[:, li].tolist())
        self._tell("embed scenes", 0.0, f"{len(a.scenes)} scenes")
        scene_inputs = [_scene_input(a, start, end) for start, end in a.scenes]
        with self._timed("embed"):
            scene_vectors = (
                self.encoder.embed_scenes(scene_inputs)
                if scene_inputs
                else np.empty((0, self.encoder.spec.dim), np.float32)
            )
        params = SyncParams(
            t=opts.sync_t, d=opts.sync_d, max_gap=opts.max_gap, min_duration=opts.min_effect
        )
        out = []
        for number, ((start, end), scene_vector) in enumerate(
            zip(a.scenes, scene_vectors, strict=True)
        ):
            self._cancelled()
            inside = (a.segment_times >= start - 1e-6) & (a.segment_times < end - 1e-6)
            idx = np.flatnonzero(inside)
            effects = []
            if len(idx) and len(effect_labels):
                for li, label in enumerate(effect_labels):
                    with self._timed("sync"):
                        intervals = sync_intervals(
                            a.segment_times[idx], scores[idx, li], opts.rule, params,
                            step=opts.segment, label=label,
                        )  # fmt: skip
                    for interval in intervals:
                        seg = idx[interval.first : interval.stop]
                        query = a.segment_vectors[seg].mean(axis=0)
                        with self._timed("search"):
                            found = self.sounds.search(
                                query, kind="effect", labels=[label], top_k=opts.top_k
                            )
                        if not found:
                            continue
                        effects.append(
                            EffectSuggestion(
                                label=label,
                                start=record + interval.start,
                                end=record + min(interval.end, end),
                                confidence=float(interval.confidence),
                                candidates=tuple(found),
                                scene_index=first_index + number,
                                rule=opts.rule,
                                trace=Trace(
                                    label,
                                    tuple((a.segment_times[idx] + record).round(6).tolist()),
                                    tuple(scores[idx, li].round(6).tolist()),
                                ),
                            )
                        )
            effects.sort(key=lambda e: (e.start, -e.confidence, e.label))
            with self._timed("search"):
                ambience, labels_used = self._ambience(
                    np.asarray(scene_vector), ambience_labels, ambience_vectors,
                    effects,
                )  # fmt: skip
            out.append(
                SceneSuggestion(
                    index=first_index + number,
                    start=record + start,
                    end=record + end,
                    ambience=tuple(ambience),
                    effects=tuple(effects),
                    ambience_labels=tuple(labels_used),
                )
            )
        return out

    def _ambience(
        self,
        scene_vector: np.ndarray,
        labels: list[str],
        label_vectors: np.ndarray,
        effects: Sequence[EffectSuggestion],
    ) -> tuple[list[Candidate], list[tuple[str, float]]]:
        opts = self.options
        if not labels:
            return [], []

        def search(vector: np.ndarray, within: Sequence[str] | None) -> list[Candidate]:
            return self.sounds.search(
                vector, kind="ambience", labels=within, top_k=max(opts.top_k, 10)
            )

        found, used = search_ambience(
            scene_vector, opts.ambience_mode, labels=labels, label_vectors=label_vectors,
            vta_labels=opts.vta_labels, search=search,
        )  # fmt: skip
        chosen_effects = [e.candidates[0].sound_id for e in effects if e.candidates]
        if found and chosen_effects and opts.rerank_weight > 0:
            vectors = self._audio_vectors([c.sound_id for c in found])
            effect_vectors = self._audio_vectors(chosen_effects)
            if len(vectors) == len(found) and len(effect_vectors):
                found = rerank_by_effects(found, vectors, effect_vectors, opts.rerank_weight)
        return found[: opts.top_k], used

    def _audio_vectors(self, sound_ids: Sequence[str]) -> np.ndarray:
        """The whole-sound vectors of these sounds (each once, in order; missing ones left
        out)."""
        ids = [sound_vector_id(sid) for sid in dict.fromkeys(sound_ids)]
        records = self.sounds.store.get(ids)
        if not records:
            return np.zeros((0, self.encoder.dim), np.float32)
        by_id = {r.id: r.vector for r in records}
        return np.stack([by_id[i] for i in ids if i in by_id])

    def _locate(
        self,
        scenes: list[SceneSuggestion],
        edit: Edit,
        labels: Sequence[str],
        label_vectors: np.ndarray,
    ) -> list[SceneSuggestion]:
        """Pan and gain for each kept effect, from where its label is on screen.

        Only effects that are placed are located, on up to ``LOCATE_FRAMES`` of their
        segments: those frames are decoded again from the keyframe before them (cheap next
        to running every segment's emitter map during the pass, and gradient-based maps
        would make that pass several times dearer).
        """
        from dataclasses import replace

        encoder = self.encoder
        segment = self.options.segment
        offsets = segment_offsets(encoder.spec.segment_frames, segment)
        most = LOCATE_FRAMES_CPU if encoder.placement.device.startswith("cpu") else LOCATE_FRAMES
        vector_of = dict(zip(labels, np.asarray(label_vectors, np.float32), strict=True))
        # (scene number, effect number, clip, record times of the located segments)
        jobs: list[tuple[int, int, SourceClip, np.ndarray]] = []
        for si, scene in enumerate(scenes):
            for ei, effect in enumerate(scene.effects):
                clip = _clip_at(edit, effect.start)
                if clip is None or effect.label not in vector_of:
                    continue
                count = max(1, math.floor((effect.end - effect.start) / segment + 1e-9))
                picks = np.unique(np.linspace(0, count - 1, min(count, most)).round())
                jobs.append((si, ei, clip, effect.start + picks * segment))
        automation: dict[tuple[int, int], tuple[Keyframe, ...]] = {}
        for clip in dict.fromkeys(job[2] for job in jobs):
            mine = [job for job in jobs if job[2] is clip]
            # Source times of every frame the maps need, in order.
            wanted = sorted(
                {
                    round(clip.source_in + (t - clip.record_start) + o, 6)
                    for *_, times in mine
                    for t in times
                    for o in offsets
                }
            )
            self._cancelled()
            frames = self._frames_at(clip, wanted)
            rows, row_labels = [], []
            for _, _, _, times in mine:
                for t in times:
                    source = clip.source_in + (t - clip.record_start)
                    rows.append(np.stack([frames[round(source + o, 6)] for o in offsets]))
            for si, ei, _, times in mine:
                row_labels += [vector_of[scenes[si].effects[ei].label]] * len(times)
            maps, strength = encoder.emitter_maps(np.stack(rows), np.stack(row_labels))
            x = horizontal_position(maps)
            at = 0
            for si, ei, _, times in mine:
                part = slice(at, at + len(times))
                at += len(times)
                location = Location(x[part], strength[part].astype(np.float64))
                automation[si, ei] = tuple(
                    Keyframe(t, g, p) for t, g, p in pan_gain_keyframes(times, location)
                )
        return [
            replace(
                scene,
                effects=tuple(
                    replace(e, automation=automation.get((si, ei), ()))
                    for ei, e in enumerate(scene.effects)
                ),
            )
            for si, scene in enumerate(scenes)
        ]

    def _frames_at(self, clip: SourceClip, times: Sequence[float]) -> dict[float, np.ndarray]:
        """The picture on screen at each source time (the last frame shown at or before it),
        decoded in runs from the keyframe before each run's first time."""
        side = self.encoder.spec.decode_side
        out: dict[float, np.ndarray] = {}
        runs: list[list[float]] = []
        for t in times:  # sorted; a gap of a few seconds is cheaper to seek over than decode
            if runs and t - runs[-1][-1] < 3.0:
                runs[-1].append(t)
            else:
                runs.append([t])
        for run in runs:
            frames = media.iter_frames(clip.path, max_side=side, start=max(0.0, run[0] - 0.5))
            pending = iter(run)
            want = next(pending, None)
            shown: np.ndarray | None = None
            try:
                for frame in frames:
                    while want is not None and frame.time > want + 1e-6:
                        out[want] = shown if shown is not None else frame.image
                        want = next(pending, None)
                    if want is None:
                        break
                    shown = frame.image
            finally:
                close = getattr(frames, "close", None)
                if callable(close):
                    close()
            while want is not None and shown is not None:  # past the last frame
                out[want] = shown
                want = next(pending, None)
            if want is not None:
                raise MediaError(Path(clip.path), f"no frame near {want:.3f} s")
        return out

    def _traces(
        self, traces: dict[str, tuple[list[float], list[float]]], scenes: list[SceneSuggestion]
    ) -> tuple[Trace, ...]:
        placed = {e.label for s in scenes for e in s.effects}
        strongest = sorted(traces, key=lambda k: (-(max(traces[k][1], default=0.0)), k))
        chosen = list(dict.fromkeys([*sorted(placed), *strongest]))[:PLOT_TRACES]
        return tuple(
            Trace(label, tuple(round(t, 6) for t in traces[label][0]),
                  tuple(round(v, 6) for v in traces[label][1]))
            for label in chosen
        )  # fmt: skip


def _scene_input(a: _ClipAnalysis, start: float, end: float) -> SceneInput:
    """The kept frames of a scene; one shorter than the keeping stride gets the frame on
    screen at its start."""
    times = np.asarray(a.scene_frame_times, np.float64)
    if np.any((times >= start - 1e-6) & (times < end - 1e-6)):
        return SceneInput(a.scene_frames, a.scene_frame_times, start, end)
    before = np.flatnonzero(times <= start + 1e-6)
    shown = int(before[-1]) if before.size else 0
    return SceneInput([a.scene_frames[shown]], [start], start, end)


def _clip_at(edit: Edit, record_time: float) -> SourceClip | None:
    """The clip of the edit playing at ``record_time``."""
    for clip in edit.clips:
        if clip.record_start - 1e-6 <= record_time < clip.record_start + clip.duration - 1e-9:
            return clip
    return None


def prepare_edit(source: str | Path | Edit) -> Edit:
    """The edit to suggest for: a video file as a one-clip edit, or an editor's clip list;
    MediaError naming a clip's file when it is missing, ConfigError for an empty edit."""
    edit = source if isinstance(source, Edit) else edit_for_video(source)
    if not edit.clips:
        raise ConfigError("the edit has no clips")
    for clip in edit.clips:
        if not Path(clip.path).is_file():
            raise MissingFileError(Path(clip.path))
    return edit
