"""Scene splitting: cuts to the frame, no false cuts, min length, VFR, decode-once."""

from __future__ import annotations

import itertools
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import pytest
from sfxmatch import media, scenes
from sfxmatch.errors import ConfigError, MediaError
from sfxmatch.scenes import Scene, SceneSplitter, detect_scenes

DETECTORS = ["content", "adaptive"]


def _assert_tiles(found: list[Scene], frame_count: int, duration: float) -> None:
    """Scenes cover the file without gap or overlap, in seconds and in frames."""
    assert [s.index for s in found] == list(range(len(found)))
    assert found[0].start == 0.0 and found[0].start_frame == 0
    for before, after in itertools.pairwise(found):
        assert before.end == after.start
        assert before.end_frame == after.start_frame
    assert found[-1].end_frame == frame_count
    assert found[-1].end == pytest.approx(duration, abs=1e-6)


def _frames(colours: list[tuple[int, int, int]], times: list[float], size=(48, 64)):
    """Hand-made frames: flat colours at given times (no decoder involved)."""
    for i, (colour, t) in enumerate(zip(colours, times, strict=True)):
        image = np.empty((*size, 3), np.uint8)
        image[:] = colour
        yield media.Frame(i, t, image)


RED, BLUE, GREEN = (220, 30, 30), (30, 30, 220), (30, 200, 60)


# --- files with known cuts -------------------------------------------------------------------


@pytest.mark.parametrize("detector", DETECTORS)
def test_cuts_found_to_the_frame(cut_video, detector):
    path, truth = cut_video
    found = detect_scenes(path, detector=detector)
    assert tuple(s.start_frame for s in found[1:]) == truth.cut_frames
    assert [s.start for s in found[1:]] == pytest.approx(truth.cut_times, abs=1e-9)
    _assert_tiles(found, truth.frame_count, truth.duration)


@pytest.mark.parametrize("detector", DETECTORS)
def test_fast_decoding_finds_the_same_cuts(cut_video, detector):
    # Analysis decoding (no deblocking, fast bilinear downscale) against full quality.
    path, truth = cut_video
    fast = detect_scenes(path, detector=detector)  # the default
    exact = detect_scenes(path, detector=detector, fast=False)
    assert fast == exact
    assert tuple(s.start_frame for s in fast[1:]) == truth.cut_frames
    by_pass = []
    for flag in (False, True):
        splitter = SceneSplitter(detector)
        media.broadcast(media.iter_frames(path, max_side=128, fast=flag), [splitter])
        by_pass.append(splitter.finish(truth.duration))
    assert by_pass[0] == by_pass[1] == exact


def test_command_line_start_up_imports_no_detector_and_no_torch():
    # The parser needs only scenes' constants: OpenCV and PySceneDetect (which starts an
    # ffmpeg process when imported) load with the first frame, torch never for scenes.
    code = (
        "import sys, sfxmatch._cli as c; c.build_parser(); "
        "print(sorted(m for m in ('cv2', 'scenedetect', 'torch') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_second_container_and_codec(video_only_file):
    path, truth = video_only_file  # MPEG-4 part 2 in AVI
    found = detect_scenes(path)
    assert tuple(s.start_frame for s in found[1:]) == truth.cut_frames


@pytest.mark.parametrize("detector", DETECTORS)
def test_no_false_cut_on_moving_object(moving_object_video, detector):
    path, truth = moving_object_video
    found = detect_scenes(path, detector=detector)
    assert len(found) == 1
    _assert_tiles(found, truth.frame_count, truth.duration)


@pytest.mark.real_media
@pytest.mark.parametrize("fast", [False, True], ids=["exact", "fast"])
def test_no_cut_in_real_long_take(vtest_avi, fast):
    # Both detectors share one decode of the 79.5 s file.
    path = vtest_avi
    splitters = {name: SceneSplitter(name) for name in DETECTORS}
    count = media.broadcast(
        media.iter_frames(path, max_side=scenes.DEFAULT_MAX_SIDE, fast=fast),
        list(splitters.values()),
    )
    assert count == 795
    for name, splitter in splitters.items():
        found = splitter.finish(media.probe(path).duration)
        assert len(found) == 1, f"{name} detector cut a single take: {found}"
        assert found[0].end == pytest.approx(79.5, abs=0.05)


SHORT_LAST_SHOT = 3  # frames at 10 fps: 0.3 s, under the 0.6 s minimum scene length


@pytest.fixture(scope="module")
def short_last_shot(
    tmp_path_factory: pytest.TempPathFactory, vtest_avi: Path, tree_avi: Path
) -> tuple[Path, int]:
    """Real footage ending on a short shot: 3 s of vtest.avi (a campus path), then 0.3 s of
    tree.avi (a tree through a window), both 320x240, 10 fps. The path and the cut's frame."""
    first = [f.image for f in media.iter_frames(vtest_avi, max_side=320) if f.time < 3.0 - 1e-6]
    tree = list(itertools.takewhile(lambda f: f.time < 6.0, media.iter_frames(tree_avi)))
    # Its rate varies: at each time, the frame on screen then.
    shown = [
        [f for f in tree if f.time <= 5.0 + k / 10 + 1e-6][-1].image for k in range(SHORT_LAST_SHOT)
    ]
    path = tmp_path_factory.mktemp("real") / "short_last_shot.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        for number, image in enumerate([*first, *shown]):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            frame.pts = number
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    assert len(first) == 30 and len(shown) == SHORT_LAST_SHOT
    return path, len(first)


@pytest.mark.real_media
@pytest.mark.parametrize("scan", ["quick", "every"])
def test_a_short_last_shot_of_real_footage_is_kept_as_pyscenedetect_keeps_it(
    short_last_shot: tuple[Path, int], scan: str
) -> None:
    # PySceneDetect's scene list runs from its last cut to the end of the video, however short
    # that last scene is (its CLI merges it only when asked: --merge-last-scene): the editor
    # cut there, and the bed may change there.
    path, cut = short_last_shot
    found = detect_scenes(path, scan=scan)  # type: ignore[arg-type]
    assert [(s.start_frame, s.end_frame) for s in found] == [(0, cut), (cut, cut + 3)]
    assert found[-1].duration == pytest.approx(0.3)
    _assert_tiles(found, cut + SHORT_LAST_SHOT, media.probe(path).duration)


@pytest.mark.real_media
def test_scenes_of_real_footage_with_a_short_last_shot_are_pyscenedetects(
    short_last_shot: tuple[Path, int],
) -> None:
    from scenedetect import ContentDetector, detect

    path, _ = short_last_shot
    theirs = detect(str(path), ContentDetector(min_scene_len=scenes.DEFAULT_MIN_SCENE_LEN))
    ours = detect_scenes(path)
    assert [(s.start_frame, s.end_frame) for s in ours] == [
        (start.frame_num, end.frame_num) for start, end in theirs
    ]


@pytest.mark.parametrize("detector", DETECTORS)
def test_min_scene_len_respected(cut_video, detector):
    # Shots last 1.6, 2.2, 1.2 and 2.0 s: with 1.5 s the 1.2 s shot must merge away.
    path, truth = cut_video
    found = detect_scenes(path, detector=detector, min_scene_len=1.5)
    assert all(s.duration >= 1.5 for s in found)
    assert {s.start_frame for s in found[1:]} < set(truth.cut_frames)
    assert len(found) == 3
    _assert_tiles(found, truth.frame_count, truth.duration)


def test_min_scene_len_longer_than_file_gives_one_scene(cut_video):
    path, truth = cut_video
    found = detect_scenes(path, min_scene_len=truth.duration + 1)
    assert [(s.start_frame, s.end_frame) for s in found] == [(0, truth.frame_count)]


def test_vfr_file_scene_times_are_frame_times(vfr_video):
    # Every frame has a new colour: without a minimum length most frames start a scene, and
    # each scene must start at that frame's own (irregular) presentation time.
    path, truth = vfr_video
    found = detect_scenes(path, min_scene_len=0)
    assert len(found) > 10
    for scene in found[1:]:
        assert scene.start == pytest.approx(truth.timestamps[scene.start_frame], abs=1e-6)
    assert found[-1].end_frame == truth.frame_count
    # The end is where the file says it ends: at least past the last frame's start.
    assert found[-1].end > truth.timestamps[-1]


def test_audio_only_file_is_refused(audio_only_files):
    path, _ = audio_only_files["wav"]
    with pytest.raises(MediaError) as caught:
        detect_scenes(path)
    assert caught.value.path == Path(path)
    assert "video" in caught.value.problem


# --- decode once ---------------------------------------------------------------------------


class _RecordingSplitter(SceneSplitter):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[np.ndarray] = []

    def feed(self, frame: media.Frame) -> None:
        self.images.append(frame.image)
        super().feed(frame)

    __call__ = feed


def test_broadcast_feeds_splitter_and_another_consumer_from_one_decode(cut_video, monkeypatch):
    path, truth = cut_video
    opened: list[str] = []
    real_open = av.open

    def counting_open(*args, **kwargs):
        opened.append(str(args[0]))
        return real_open(*args, **kwargs)

    monkeypatch.setattr(av, "open", counting_open)
    splitter = _RecordingSplitter()
    seen: list[media.Frame] = []
    count = media.broadcast(media.iter_frames(path, max_side=256), [splitter, seen.append])

    assert len(opened) == 1  # one container, one pass
    assert count == len(seen) == len(splitter.images) == splitter.frame_count == truth.frame_count
    assert all(a is f.image for a, f in zip(splitter.images, seen, strict=True))
    assert [f.index for f in seen] == list(range(truth.frame_count))
    found = splitter.finish(truth.duration)
    assert tuple(s.start_frame for s in found[1:]) == truth.cut_frames


def test_detect_scenes_decodes_once(cut_video, monkeypatch):
    path, _ = cut_video
    passes: list[int] = []
    real_iter = media.iter_frames

    def counting_iter(*args, **kwargs) -> Iterator[media.Frame]:
        passes.append(kwargs.get("max_side"))
        return real_iter(*args, **kwargs)

    monkeypatch.setattr(media, "iter_frames", counting_iter)
    detect_scenes(path, max_side=96)
    assert passes == [96]  # one pass, downscaled in the decoder


def test_big_frames_are_downscaled_by_the_splitter(cut_video):
    # Sharing a pass with a consumer that needs full-size frames gives the same cuts.
    path, truth = cut_video
    splitter = SceneSplitter(max_side=128)
    media.broadcast(media.iter_frames(path), [splitter])
    found = splitter.finish(truth.duration)
    assert tuple(s.start_frame for s in found[1:]) == truth.cut_frames


# --- progress and cancellation -------------------------------------------------------------


def test_progress_reports_seconds_up_to_the_end(cut_video):
    path, truth = cut_video
    reports: list[tuple[float, float]] = []
    detect_scenes(path, progress=lambda done, total: reports.append((done, total)))
    assert len(reports) > 10
    done = [d for d, _ in reports]
    assert done == sorted(done)
    assert all(t == pytest.approx(truth.duration, abs=0.05) for _, t in reports)
    assert reports[-1][0] == reports[-1][1]


def test_raising_from_progress_stops_and_closes_the_decoder(cut_video, monkeypatch):
    path, _ = cut_video
    generators: list = []
    real_iter = media.iter_frames

    def keeping_iter(*args, **kwargs):
        generators.append(real_iter(*args, **kwargs))
        return generators[-1]

    def interrupt(done: float, total: float) -> None:
        if done > 1.0:
            raise KeyboardInterrupt

    monkeypatch.setattr(media, "iter_frames", keeping_iter)
    with pytest.raises(KeyboardInterrupt):
        detect_scenes(path, progress=interrupt)
    assert generators[0].gi_frame is None  # generator closed, so its file is closed


# --- the splitter on hand-made frames ------------------------------------------------------


def test_splitter_uses_frame_times_for_variable_frame_rate():
    times = [0.0, 0.04, 0.2, 0.21, 0.9, 1.0, 1.5, 1.51, 1.9, 2.4]
    colours = [RED] * 6 + [BLUE] * 4
    splitter = SceneSplitter(min_scene_len=0.5)
    for frame in _frames(colours, times):
        splitter(frame)
    found = splitter.finish(3.0)
    assert [(s.start, s.end, s.start_frame, s.end_frame) for s in found] == [
        (0.0, 1.5, 0, 6),
        (1.5, 3.0, 6, 10),
    ]


def test_nothing_detected_gives_one_scene_over_the_whole_duration():
    splitter = SceneSplitter()
    for frame in _frames([GREEN] * 20, [i / 10 for i in range(20)]):
        splitter(frame)
    assert splitter.finish(2.0) == [Scene(0, 0.0, 2.0, 0, 20)]


def test_end_falls_back_to_last_frame_when_duration_is_short_or_missing():
    frames = list(_frames([GREEN] * 5, [0.0, 0.1, 0.2, 0.3, 0.4]))
    for duration in (None, 0.1):
        splitter = SceneSplitter()
        for frame in frames:
            splitter(frame)
        assert splitter.finish(duration)[0].end == pytest.approx(0.5)


@pytest.mark.parametrize("minimum", [0.0, 0.5])
def test_a_final_shot_shorter_than_the_minimum_is_a_scene_of_its_own(minimum: float) -> None:
    times = [i / 10 for i in range(12)]
    splitter = SceneSplitter(min_scene_len=minimum)
    for frame in _frames([RED] * 10 + [BLUE] * 2, times):
        splitter(frame)
    assert [(s.start_frame, s.end_frame) for s in splitter.finish(1.2)] == [(0, 10), (10, 12)]


def test_the_minimum_still_spaces_cuts_before_the_end() -> None:
    # A flash of two frames before the end is no cut of its own: the minimum length merges
    # it (PySceneDetect's filter), and the last scene starts where the flash did.
    times = [i / 10 for i in range(16)]
    splitter = SceneSplitter(min_scene_len=0.5)
    for frame in _frames([RED] * 10 + [BLUE] * 2 + [GREEN] * 4, times):
        splitter(frame)
    assert [(s.start_frame, s.end_frame) for s in splitter.finish(1.6)] == [(0, 10), (10, 16)]


def test_splitter_without_frames_gives_no_scenes_and_is_single_use():
    splitter = SceneSplitter()
    assert splitter.finish(5.0) == []
    with pytest.raises(RuntimeError):
        splitter(next(_frames([RED], [0.0])))


def test_finish_is_repeatable():
    splitter = SceneSplitter(min_scene_len=0)
    for frame in _frames([RED, RED, BLUE, BLUE], [0.0, 0.1, 0.2, 0.3]):
        splitter(frame)
    assert (
        splitter.finish(0.4)
        == splitter.finish(0.4)
        == [
            Scene(0, 0.0, 0.2, 0, 2),
            Scene(1, 0.2, 0.4, 2, 4),
        ]
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"detector": "histogram"},
        {"threshold": 0},
        {"threshold": float("nan")},
        {"min_scene_len": -1},
        {"max_side": 8},
    ],
)
def test_bad_options_raise_config_error(kwargs):
    with pytest.raises(ConfigError):
        SceneSplitter(**kwargs)


def test_format_timecode():
    assert scenes.format_timecode(0) == "00:00:00.000"
    assert scenes.format_timecode(3725.4567) == "01:02:05.457"
    assert scenes.format_timecode(59.9996) == "00:01:00.000"
