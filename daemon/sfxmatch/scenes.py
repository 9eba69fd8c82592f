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
    "DetectorName",
    "ProgressCallback",
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

    def feed(self, frame: media.Frame) -> None:
        """Analyse the next frame of the pass."""
        if self._scenes is not None:
            raise RuntimeError("SceneSplitter.finish() was called; use a new splitter")
        # FrameTimecode refuses negative times, which edit lists can produce.
        detector = self._detector or self._start()
        timecode = _timecode_type()(max(0.0, frame.time), self._fps, frame.index)
        self._cuts.extend(detector.process_frame(timecode, self._prepare(frame.image)))
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

    def _prepare(self, image: np.ndarray) -> np.ndarray:
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
        # A final sliver shorter than the minimum joins the scene before it, so every
        # scene honours min_scene_len (only a file shorter than that gives a short one).
        if starts and end - starts[-1][1] < self.min_scene_len:
            starts.pop()
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


def detect_scenes(
    path: str | Path,
    *,
    detector: DetectorName = "content",
    threshold: float | None = None,
    min_scene_len: float = DEFAULT_MIN_SCENE_LEN,
    max_side: int | None = DEFAULT_MAX_SIDE,
    threads: int = 0,
    fast: bool = True,
    progress: ProgressCallback | None = None,
) -> list[Scene]:
    """Scenes of a video file, decoding it once at ``max_side`` pixels (None: full size).

    A file where nothing is detected gives one scene spanning all of it. Raises
    ``MediaError`` for unreadable files or files without a video stream, ``ConfigError``
    for bad options. ``threads`` goes to the decoder (0 = FFmpeg's choice). ``fast`` decodes
    for analysis (``media.iter_frames(fast=True)``: no in-loop deblocking, fast bilinear
    downscale), which finds the same cuts for a fifth to a third less time (BENCHMARKS.md);
    False decodes at full quality.
    """
    info = media.probe(path)
    if info.video is None:
        raise MediaError(path, "has no video stream")
    splitter = SceneSplitter(
        detector,
        threshold=threshold,
        min_scene_len=min_scene_len,
        max_side=max_side,
        fps=info.video.fps,
    )
    total = info.duration
    step = total / _PROGRESS_STEPS if total > 0 else math.inf
    next_report = 0.0
    side = max(info.video.width, info.video.height)
    scale = min(1.0, max_side / side) if max_side is not None and side > 0 else 1.0
    frame_bytes = max(1, round(info.video.width * scale) * round(info.video.height * scale) * 3)
    depth = min(_PREFETCH_MAX, max(_PREFETCH_MIN, _PREFETCH_BYTES // frame_bytes))
    frames = _Prefetched(
        media.iter_frames(path, max_side=max_side, threads=threads, fast=fast), depth
    )
    # closing(): on Ctrl-C or a raising callback the decoding thread stops, closing the file.
    # Decoding starts now; the first feed spends the detector's imports meanwhile.
    with contextlib.closing(frames):
        for frame in frames:
            splitter.feed(frame)
            if progress is not None and frame.time >= next_report:
                progress(min(frame.time, total), total)
                next_report = frame.time + step
    if splitter.frame_count == 0:
        raise MediaError(path, "no video frame could be decoded")
    scenes = splitter.finish(info.duration)
    if progress is not None:
        progress(total, total)
    return scenes


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
