"""Split a video into scenes with PySceneDetect's detectors, from frames decoded once.

``SceneSplitter`` is a frame consumer: ``media.broadcast`` can feed it alongside other
consumers (segment samplers for the embedder, ...) so the file is decoded a single time.
``detect_scenes`` is the one-call path: probe, decode downscaled, split.

Scenes tile the whole file: the first starts at 0 s, each ends where the next starts, the
last ends at the file's duration. Frame numbers count the frames the decoder delivered
(``Frame.index``); ``end_frame`` is exclusive.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import math
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Literal, cast, get_args

import numpy as np

from sfxmatch import media
from sfxmatch.errors import ConfigError, MediaError

# OpenCV and PySceneDetect are imported when a splitter is made, not with this module: they
# take about 0.25 s (PySceneDetect even starts an ffmpeg process to look for it), which
# detect_scenes spends while the decoder thread already decodes, and a command line that only
# builds its parser from this module's constants never spends.
if TYPE_CHECKING:
    from scenedetect.common import FrameTimecode
    from scenedetect.detector import SceneDetector

    class _FrameTimecode(FrameTimecode):
        frame_index: int

        def __init__(self, seconds: float, fps: Fraction, frame_index: int) -> None: ...


__all__ = [
    "DEFAULT_MAX_SIDE",
    "DEFAULT_MIN_SCENE_LEN",
    "DEFAULT_THRESHOLDS",
    "DETECTORS",
    "SCAN_MODES",
    "DetectorName",
    "ProgressCallback",
    "ScanMode",
    "Scene",
    "SceneSplitter",
    "detect_scenes",
    "format_timecode",
]

DetectorName = Literal["content", "adaptive"]
DETECTORS: tuple[str, ...] = get_args(DetectorName)

DEFAULT_THRESHOLDS: dict[str, float] = {
    # Mean HSV change per pixel (0-255) that makes a cut: PySceneDetect's default, and the
    # value the source report used.
    "content": 27.0,
    # Ratio of a frame's change to its neighbours' average change (PySceneDetect's default).
    "adaptive": 3.0,
}

DEFAULT_MIN_SCENE_LEN = 0.6
"""Seconds. PySceneDetect's CLI default: short enough to keep real quick cuts (a 0.6 s
shot still carries an ambience change), long enough that flashes, strobes and
muzzle-fire merge instead of shattering a shot into slivers no sound could fit. Given in
seconds, not frames, so it means the same at 24 and 60 fps."""

DEFAULT_MAX_SIDE = 128
"""Longest side, in pixels, of the picture the detector compares (128x72 for 16:9). Chosen by
benchmarks/bench_scenes.py (BENCHMARKS.md): cut scores on the synthetic cuts are the same at
96, 128, 256 and 384 px (within 2 of 56-84, threshold 27), while the motion noise of a long
take falls with size (vtest: highest non-cut score 6.0 at 128 px, 7.5 at 256), so nothing is
lost against PySceneDetect's 256 px; the pass costs about 30 % less CPU on 768x576 footage.
Decoding to it directly in swscale makes conversion and detection nearly free next to decoding."""

ProgressCallback = Callable[[float, float], None]
"""Called as ``progress(done_seconds, total_seconds)``. Seconds rather than frames: they
stay right for variable-frame-rate files whose frame count is only an estimate. Raising
from the callback (e.g. a daemon job's cancellation) stops decoding cleanly."""

_PROGRESS_STEPS = 200  # reports per file: smooth bar, negligible overhead
_NOMINAL_FPS = Fraction(30)  # FrameTimecode insists on a rate; we only use its seconds


@dataclass(frozen=True)
class Scene:
    """One scene: seconds from the start of the file, and frame numbers (end exclusive)."""

    index: int
    start: float
    end: float
    start_frame: int
    end_frame: int

    @property
    def duration(self) -> float:
        return self.end - self.start

    @property
    def frame_count(self) -> int:
        return self.end_frame - self.start_frame


def format_timecode(seconds: float) -> str:
    """``HH:MM:SS.mmm``, independent of the frame rate (fits variable-frame-rate files)."""
    millis = round(max(0.0, seconds) * 1000)
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{millis:03d}"


@functools.cache
def _timecode_type() -> type[_FrameTimecode]:
    from scenedetect.common import FrameTimecode

    class FrameTimecodeAt(FrameTimecode):
        """A timecode that remembers which decoded frame it belongs to.

        Detectors hand back the very timecode objects they were fed (possibly a few frames
        late), so the frame number of a cut is read off exactly, even for variable frame rate
        where converting seconds back to a frame number would be a guess.
        """

        def __init__(self, seconds: float, fps: Fraction, frame_index: int) -> None:
            super().__init__(timecode=seconds, fps=fps)
            self.frame_index = frame_index

    return cast("type[_FrameTimecode]", FrameTimecodeAt)


def _make_detector(name: str, threshold: float, min_scene_len: float) -> SceneDetector:
    from scenedetect.detectors import AdaptiveDetector, ContentDetector

    # min_scene_len goes in as float seconds: both detectors then compare times, not
    # frame numbers, which keeps it exact for variable frame rate.
    if name == "content":
        return ContentDetector(threshold=threshold, min_scene_len=min_scene_len)
    return AdaptiveDetector(adaptive_threshold=threshold, min_scene_len=min_scene_len)


class SceneSplitter:
    """Consumer of ``media.Frame`` values that finds scene cuts; one use per video.

    Feed every frame of one pass in order (``splitter(frame)`` or ``splitter.feed(frame)``),
    then call ``finish(duration)``. Frames larger than ``max_side`` are downscaled here, so
    the splitter can share a pass with consumers that need bigger pictures; frames that
    are already small (``iter_frames(max_side=...)``) are used as they are.
    """

    def __init__(
        self,
        detector: DetectorName = "content",
        *,
        threshold: float | None = None,
        min_scene_len: float = DEFAULT_MIN_SCENE_LEN,
        max_side: int | None = DEFAULT_MAX_SIDE,
        fps: float | Fraction | None = None,
    ) -> None:
        if detector not in DETECTORS:
            raise ConfigError(
                f"unknown scene detector {detector!r}; choose one of {', '.join(DETECTORS)}"
            )
        if threshold is None:
            threshold = DEFAULT_THRESHOLDS[detector]
        if not (math.isfinite(threshold) and threshold > 0):
            raise ConfigError(f"scene threshold must be a positive number, not {threshold}")
        if not (math.isfinite(min_scene_len) and min_scene_len >= 0):
            raise ConfigError(
                f"minimum scene length must be 0 or more seconds, not {min_scene_len}"
            )
        if max_side is not None and max_side < 16:
            raise ConfigError(f"max_side must be at least 16 pixels, not {max_side}")
        self.detector: DetectorName = detector
        self.threshold = float(threshold)
        self.min_scene_len = float(min_scene_len)
        self.max_side = max_side
        self._fps_given = fps if fps and fps > 0 else None
        self._fps = _NOMINAL_FPS
        self._detector: SceneDetector | None = None  # made at the first frame (imports)
        self._cuts: list[_FrameTimecode] = []
        self._first_time: float | None = None
        self._last: _FrameTimecode | None = None
        self._previous_time: float | None = None
        self._frame_count = 0
        self._scenes: list[Scene] | None = None

    @property
    def frame_count(self) -> int:
        """Frames seen so far."""
        return self._frame_count

    @property
    def cut_times(self) -> list[float]:
        """Seconds of the cuts found so far, in order. PySceneDetect reports a cut when its
        detector is sure: up to a minimum scene length after the cut happened."""
        return [cut.seconds for cut in self._cuts]

    def feed(self, frame: media.Frame) -> None:
        """Analyse the next frame of the pass."""
        if self._scenes is not None:
            raise RuntimeError("SceneSplitter.finish() was called; use a new splitter")
        # FrameTimecode refuses negative times, which edit lists can produce.
        detector = self._detector or self._start()
        timecode = _timecode_type()(max(0.0, frame.time), self._fps, frame.index)
        self._cuts.extend(detector.process_frame(timecode, self.prepare(frame.image)))
        if self._first_time is None:
            self._first_time = timecode.seconds
        if self._last is not None:
            self._previous_time = self._last.seconds
        self._last = timecode
        self._frame_count += 1

    __call__ = feed

    def _start(self) -> SceneDetector:
        from scenedetect.common import framerate_to_fraction

        if self._fps_given is not None:
            self._fps = framerate_to_fraction(self._fps_given)
        self._detector = _make_detector(self.detector, self.threshold, self.min_scene_len)
        return self._detector

    def prepare(self, image: np.ndarray) -> np.ndarray:
        """A frame as the detector compares it: BGR, downscaled to ``max_side``."""
        import cv2

        height, width = image.shape[:2]
        if self.max_side is not None and max(height, width) > self.max_side:
            scale = self.max_side / max(height, width)
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            # INTER_AREA averages, so fine moving texture does not alias into flicker.
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        # Detectors expect OpenCV's BGR; hue differences (and so thresholds) depend on it.
        return cv2.cvtColor(image, cv2.COLOR_RGB2BGR)

    def finish(self, duration: float | None = None) -> list[Scene]:
        """Flush the detector and return the scenes (empty when no frame was fed).

        ``duration`` (seconds, e.g. ``MediaInfo.duration``) is where the last scene ends;
        when missing or shorter than the frames seen, the end of the last frame is used.
        """
        if self._scenes is not None:
            return list(self._scenes)
        if self._last is None:
            self._scenes = []
            return []
        assert self._detector is not None  # made with the first frame
        self._cuts.extend(self._detector.post_process(self._last))
        end = self._end_of_video(duration)
        starts = sorted({cut.frame_index: cut.seconds for cut in self._cuts}.items())
        starts = [(index, seconds) for index, seconds in starts if index > 0]
        # The last scene runs from the last cut to the end, however short, as PySceneDetect's
        # scene list has it (its CLI merges it only with --merge-last-scene): the minimum
        # length spaces cuts, and a cut near the end is still the editor's cut.
        bounds = [(0, 0.0), *starts, (self._last.frame_index + 1, end)]
        self._scenes = [
            Scene(
                index=i,
                start=start,
                end=stop,
                start_frame=start_frame,
                end_frame=stop_frame,
            )
            for i, ((start_frame, start), (stop_frame, stop)) in enumerate(
                itertools.pairwise(bounds)
            )
        ]
        return list(self._scenes)

    def _end_of_video(self, duration: float | None) -> float:
        assert self._last is not None
        last = self._last.seconds
        if self._previous_time is not None and last > self._previous_time:
            frame_span = last - self._previous_time
        else:
            frame_span = float(1 / self._fps)
        if duration is not None and math.isfinite(duration) and duration > last:
            return float(duration)
        return last + frame_span


ScanMode = Literal["quick", "every"]
SCAN_MODES: tuple[str, ...] = get_args(ScanMode)


def detect_scenes(
    path: str | Path,
    *,
    detector: DetectorName = "content",
    threshold: float | None = None,
    min_scene_len: float = DEFAULT_MIN_SCENE_LEN,
    max_side: int | None = DEFAULT_MAX_SIDE,
    threads: int = 0,
    fast: bool = True,
    scan: ScanMode = "quick",
    progress: ProgressCallback | None = None,
) -> list[Scene]:
    """Scenes of a video file, decoding it once at ``max_side`` pixels (None: full size).

    A file where nothing is detected gives one scene spanning all of it. Raises
    ``MediaError`` for unreadable files or files without a video stream, ``ConfigError``
    for bad options. ``threads`` goes to the decoder (0: ``media.PASS_DECODER_THREADS``).
    ``fast`` decodes for analysis (``media.iter_frames(fast=True)``: no in-loop deblocking,
    fast bilinear downscale), which finds the same cuts for a fifth to a third less time
    (BENCHMARKS.md); False decodes at full quality.

    ``scan="quick"`` (the content detector only; the adaptive one needs every frame's score)
    decodes only the frames others are predicted from, and decodes the skipped ones in full
    wherever the change across a gap could hide a cut: the same frames reach the detector
    wherever it could cut, so the same cuts come out (``_quick_scan`` says why).
    ``scan="every"`` decodes and compares every frame.
    """
    if scan not in SCAN_MODES:
        raise ConfigError(f"unknown scan mode {scan!r}; choose one of {', '.join(SCAN_MODES)}")
    info = media.probe(path)
    if info.video is None:
        raise MediaError(path, "has no video stream")

    def splitter() -> SceneSplitter:
        return SceneSplitter(
            detector,
            threshold=threshold,
            min_scene_len=min_scene_len,
            max_side=max_side,
            fps=info.video.fps if info.video else None,
        )

    report = _Reporter(progress, info.duration)
    decode = _Decode(
        Path(path),
        max_side,
        threads or media.PASS_DECODER_THREADS,
        fast,
        _prefetch_depth(info, max_side),
    )
    scenes: SceneSplitter | None = None
    if scan == "quick" and detector == "content":
        table = media.frame_table(path)
        if table is not None:
            scenes = splitter()
            try:
                _quick_scan(decode, table, scenes, report)
            except (_Unnumbered, MediaError):
                # Frames the packets did not account for, or a stretch that would not decode
                # on its own: scan frame by frame (which says what is wrong with a bad file).
                scenes = None
    if scenes is None:
        scenes = splitter()
        _every_frame_scan(decode, scenes, report)
    if scenes.frame_count == 0:
        raise MediaError(path, "no video frame could be decoded")
    result = scenes.finish(info.duration)
    report.done()
    return result


class _Reporter:
    """Progress in seconds of the file, about ``_PROGRESS_STEPS`` times per pass."""

    def __init__(self, progress: ProgressCallback | None, total: float) -> None:
        self.progress = progress
        self.total = total
        self.step = total / _PROGRESS_STEPS if total > 0 else math.inf
        self.next_report = 0.0

    def __call__(self, time: float) -> None:
        if self.progress is not None and time >= self.next_report:
            self.progress(min(time, self.total), self.total)
            self.next_report = time + self.step

    def done(self) -> None:
        if self.progress is not None:
            self.progress(self.total, self.total)


@dataclass(frozen=True)
class _Decode:
    """How a scan decodes its file: analysis pictures of ``max_side`` pixels."""

    path: Path
    max_side: int | None
    threads: int
    fast: bool
    depth: int  # frames decoded ahead in the worker thread

    def frames(
        self, *, reference_only: bool = False, start: float | None = None
    ) -> Iterator[media.Frame]:
        return media.iter_frames(
            self.path,
            max_side=self.max_side,
            threads=self.threads,
            fast=self.fast,
            reference_only=reference_only,
            start=start,
        )

    def prefetched(self, *, reference_only: bool = False) -> _Prefetched:
        return _Prefetched(self.frames(reference_only=reference_only), self.depth)


def _prefetch_depth(info: media.MediaInfo, max_side: int | None) -> int:
    assert info.video is not None
    side = max(info.video.width, info.video.height)
    scale = min(1.0, max_side / side) if max_side is not None and side > 0 else 1.0
    frame_bytes = max(1, round(info.video.width * scale) * round(info.video.height * scale) * 3)
    return min(_PREFETCH_MAX, max(_PREFETCH_MIN, _PREFETCH_BYTES // frame_bytes))


def _every_frame_scan(decode: _Decode, scenes: SceneSplitter, report: _Reporter) -> None:
    frames = decode.prefetched()
    # closing(): on Ctrl-C or a raising callback the decoding thread stops, closing the file.
    # Decoding starts now; the first feed spends the detector's imports meanwhile.
    with contextlib.closing(frames):
        for frame in frames:
            scenes.feed(frame)
            report(frame.time)


_GATE = 0.5
"""A gap between two decoded frames whose change reaches this share of the threshold has its
skipped frames decoded. A cut between them changes the picture by at least the cut's own
change less the motion of the frames around it (the detector's score is a mean of absolute
differences, so the triangle inequality bounds it): a cut at the threshold with motion under
half of it on either side still passes, and cuts are usually two to three times the
threshold (synthetic cuts here score 56-84 against 27) while a long take's frame-to-frame
motion stays under a quarter of it (6.0 on vtest)."""


class _Unnumbered(Exception):
    """A decoded frame is not where the packet table puts it: the quick scan cannot know which
    frames it skipped, so the file is scanned frame by frame instead."""


def _quick_scan(
    decode: _Decode, table: media.FrameTable, scenes: SceneSplitter, report: _Reporter
) -> None:
    """Feed ``scenes`` the frames where a cut could be, decoding as few as that allows.

    One pass decodes the reference frames only (every frame of a stream without B-frames);
    frames nothing refers to are left out, typically one between each pair of decoded ones.
    For each gap, the change between the frames on either side is measured the detector's
    way: under ``_GATE`` times the threshold nothing in the gap can be a cut, and the frame
    after it goes to the detector as the next one (its score there is under the threshold,
    as every score in the gap would have been); otherwise the gap's frames are decoded in
    full (``_ExactFrames``) and all go to the detector. The detector thus sees every frame
    above its threshold, with its true score, and its minimum-length filter, which only
    counts time between such frames, decides as in a frame-by-frame scan, provided the motion
    next to a cut stays under half the threshold. One case differs: a transient (a flash, a
    strobe) that begins and ends inside one run of skipped frames, between two frames that
    look alike, is never seen, where a frame-by-frame scan cuts at its first frame (a false
    cut, which ``min_scene_len`` does not stop when it is the first in a while). A run is one
    frame with x264's defaults (B-pyramid), up to the encoder's B-frame count without a
    pyramid (2 or 3 for most MPEG-2 and hardware encoders).

    Decoding a gap starts at the keyframe before it, decoding only reference frames up to
    the gap (or goes on from the last gap decoded, when that is nearer). Should gaps cost
    more frames than the pass saves (fast motion
    everywhere, rare keyframes), the rest of the file is decoded frame by frame: never more
    than a frame-by-frame scan plus one keyframe interval.
    """
    gate = scenes.threshold * _GATE
    exact = _ExactFrames(decode, table)
    coarse = decode.prefetched(reference_only=True)
    fed: media.Frame | None = None  # the last frame the detector saw
    fed_hsv: np.ndarray | None = None
    skipped = 0
    slack = _largest_keyframe_interval(table)

    def feed(frame: media.Frame) -> None:
        nonlocal fed
        scenes.feed(frame)
        report(frame.time)
        fed = frame

    with contextlib.closing(coarse), contextlib.closing(exact):
        for decoded in coarse:
            index = table.index_of(decoded.time)
            if index is None or (fed is not None and index <= fed.index):
                raise _Unnumbered
            frame = media.Frame(index, decoded.time, decoded.image)
            hsv = _hsv(scenes.prepare(frame.image))
            first_missing = fed.index + 1 if fed is not None else 0
            if index > first_missing:
                skipped += index - first_missing
                if fed_hsv is None or _content_change(fed_hsv, hsv) >= gate:
                    for exact_frame in exact.frames(first_missing, index):
                        feed(exact_frame)
                    if exact.decoded > skipped + slack:
                        # Gaps no longer pay: frame by frame from here to the end.
                        for exact_frame in exact.frames(index + 1, None):
                            feed(exact_frame)
                        return
                    fed_hsv = hsv
                    continue
            feed(frame)
            fed_hsv = hsv
        if fed is not None and fed.index + 1 < len(table):  # a tail the pass did not decode
            for exact_frame in exact.frames(fed.index + 1, None):
                feed(exact_frame)


def _largest_keyframe_interval(table: media.FrameTable) -> int:
    bounds = [*table.keyframes, len(table)]
    return max(b - a for a, b in itertools.pairwise(bounds))


def _hsv(bgr: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.cvtColor(bgr, cv2.COLOR_BGR2HSV)


def _content_change(before: np.ndarray, after: np.ndarray) -> float:
    """The content detector's score between two pictures: the mean absolute change of hue,
    saturation and value, averaged over the three (its default weights)."""
    delta = np.abs(before.astype(np.int16) - after.astype(np.int16))
    return float(delta.reshape(-1, 3).mean(axis=0).mean())


class _ExactFrames:
    """Every frame of a stretch of the file, decoded in full, numbered by the packet table.

    A cursor: a stretch that starts ahead of where the last one stopped is reached by decoding
    on, unless seeking to the keyframe before it means fewer frames to decode. ``decoded``
    counts the frames this cost, those decoded only to reach a stretch included.
    """

    def __init__(self, decode: _Decode, table: media.FrameTable) -> None:
        self.decode = decode
        self.table = table
        self.decoded = 0
        self._frames: Iterator[media.Frame] | None = None
        self._next = 0  # the frame the cursor would deliver next

    def frames(self, first: int, last: int | None) -> Iterator[media.Frame]:
        """Frames ``first`` to ``last`` (None: the end of the file), inclusive, in order."""
        keyframe = self.table.keyframe_before(first)
        if self._frames is None or self._next > first or first - self._next > first - keyframe:
            self.close()
            self._frames = self.decode.frames(start=self.table.times[first])
            self._next = first
            self.decoded += first - keyframe  # decoded only to build the pictures
        stop = len(self.table) - 1 if last is None else last
        while self._next <= stop:
            frame = next(self._frames, None)
            index = None if frame is None else self.table.index_of(frame.time)
            if frame is None or index != self._next:
                raise _Unnumbered
            self._next += 1
            self.decoded += 1
            if index >= first:
                yield media.Frame(index, frame.time, frame.image)

    def close(self) -> None:
        close = getattr(self._frames, "close", None)
        if close is not None:
            close()
        self._frames = None


_PREFETCH_BYTES = 32 << 20  # pictures decoded ahead, at most
_PREFETCH_MIN = 8  # frames: enough to ride out jitter
_PREFETCH_MAX = 512  # small analysis frames: room to decode on while the detector imports
_END = object()


class _Prefetched(Iterator[media.Frame]):
    """The same frames, decoded and converted in a worker thread while the caller detects.

    PyAV (decode, swscale) and OpenCV release the GIL, so decoding the next frame overlaps
    with analysing this one: on two cores this is what PySceneDetect's own decode thread
    buys it. The worker starts at once and owns the frame iterator, closing it however the
    pass ends; its errors (a MediaError at a damaged end) are raised in the caller's thread.
    Call ``close()`` (or use ``contextlib.closing``) to stop it early.
    """

    def __init__(self, frames: Iterator[media.Frame], depth: int) -> None:
        self._frames = frames
        self._handoff: queue.Queue[object] = queue.Queue(depth)
        self._stop = threading.Event()
        self._done = False
        self._worker = threading.Thread(target=self._work, name="sfxmatch-decode", daemon=True)
        self._worker.start()

    def _offer(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._handoff.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def _work(self) -> None:
        try:
            for frame in self._frames:
                if not self._offer(frame):
                    return
        except BaseException as error:  # handed to the caller, who raises it
            self._offer(error)
        else:
            self._offer(_END)
        finally:
            close = getattr(self._frames, "close", None)
            if close is not None:
                close()  # the generator's own finally closes the file

    def __next__(self) -> media.Frame:
        if self._done:
            raise StopIteration
        item = self._handoff.get()
        if item is _END:
            self.close()
            raise StopIteration
        if isinstance(item, BaseException):
            self.close()
            raise item
        return cast(media.Frame, item)

    def close(self) -> None:
        """Stop the worker (it closes the file) and wait for it; idempotent."""
        self._done = True
        self._stop.set()
        self._worker.join()
