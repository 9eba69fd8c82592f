"""The quick scan: reference frames only, skipped frames decoded where a cut could hide.

What it must show: the same scenes as decoding every frame (cuts to the frame, including cuts
on frames the pass never decoded), on every kind of file, and a fall-back to frame-by-frame
decoding wherever its shortcuts cannot be trusted.
"""

from __future__ import annotations

import threading
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from sfxmatch import media, scenes
from sfxmatch.errors import ConfigError, MediaError
from sfxmatch.scenes import detect_scenes


class _Windows:
    """Records the stretches the quick scan decodes in full."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[tuple[int, int | None]] = []
        real = scenes._ExactFrames.frames

        def recording(exact, first, last):
            self.calls.append((first, last))
            return real(exact, first, last)

        monkeypatch.setattr(scenes._ExactFrames, "frames", recording)


def _reference_indices(path: Path) -> set[int]:
    table = media.frame_table(path)
    assert table is not None
    frames = media.iter_frames(path, max_side=64, reference_only=True)
    return {table.index_of(f.time) for f in frames}


# --- the same cuts as frame by frame --------------------------------------------------------


def test_cuts_on_frames_the_pass_skipped_are_found_to_the_frame(b_frame_cut_video, monkeypatch):
    path, truth = b_frame_cut_video
    decoded = _reference_indices(path)
    assert len(decoded) < truth.frame_count * 0.6  # half the frames are never decoded ...
    skipped_cuts = [c for c in truth.cut_frames if c not in decoded]
    assert skipped_cuts  # ... and some cuts are among them
    windows = _Windows(monkeypatch)

    quick = detect_scenes(path, scan="quick")
    every = detect_scenes(path, scan="every")

    assert quick == every
    assert tuple(s.start_frame for s in quick[1:]) == truth.cut_frames
    assert quick[-1].end_frame == truth.frame_count
    # Only the gaps around cuts were decoded in full, each ending on a cut or the frame after.
    assert 0 < len(windows.calls) <= len(truth.cut_frames)
    for first, last in windows.calls:
        assert last is not None
        assert any(first <= cut <= last + 1 for cut in truth.cut_frames)


@pytest.mark.parametrize(
    "fixture",
    ["cut_video", "video_only_file", "moving_object_video", "vfr_video", "rotated_video"],
)
def test_quick_and_every_frame_scans_agree(fixture, request):
    path, _ = request.getfixturevalue(fixture)
    assert detect_scenes(path, scan="quick") == detect_scenes(path, scan="every")


@pytest.mark.parametrize("min_scene_len", [0.0, 0.3, 1.5])
def test_min_scene_len_decides_as_frame_by_frame(b_frame_cut_video, min_scene_len):
    # The minimum-length filter only counts time between frames above the threshold, which
    # the quick scan all feeds: at any length it keeps and drops the same cuts.
    path, _ = b_frame_cut_video
    quick = detect_scenes(path, scan="quick", min_scene_len=min_scene_len)
    assert quick == detect_scenes(path, scan="every", min_scene_len=min_scene_len)


def test_adaptive_detector_scans_every_frame(b_frame_cut_video, monkeypatch):
    # Its score compares each frame with its neighbours' average: it needs them all.
    path, truth = b_frame_cut_video
    passes: list[bool] = []
    real_iter = media.iter_frames

    def recording(*args, **kwargs):
        passes.append(kwargs.get("reference_only", False))
        return real_iter(*args, **kwargs)

    monkeypatch.setattr(media, "iter_frames", recording)
    found = detect_scenes(path, detector="adaptive", scan="quick")
    assert passes == [False]
    assert tuple(s.start_frame for s in found[1:]) == truth.cut_frames


@pytest.mark.real_media
def test_real_long_take_has_no_cut_and_no_stretch_decoded_again(vtest_avi, monkeypatch):
    # msmpeg4 has no B-frames: the reference pass is every frame, nothing to decode again.
    windows = _Windows(monkeypatch)
    quick = detect_scenes(vtest_avi, scan="quick")
    assert len(quick) == 1 and quick[0].end_frame == 795
    assert windows.calls == []
    assert quick == detect_scenes(vtest_avi, scan="every")


# --- where the shortcuts cannot be trusted ---------------------------------------------------


def _noise_video(path: Path, frames: int = 150) -> Path:
    """Every frame unrelated to the one before (B-frames, a keyframe a second): every gap
    could hide a cut, so decoding gaps again costs more than it saves."""
    rng = np.random.default_rng(7)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        stream.codec_context.max_b_frames = 3
        stream.codec_context.gop_size = 25
        stream.codec_context.options = {"x264-params": "bframes=3:b-adapt=0:scenecut=0"}
        for i in range(frames):
            image = np.repeat(np.repeat(rng.integers(0, 256, (8, 12, 3), np.uint8), 8, 0), 8, 1)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def test_when_gaps_cost_more_than_they_save_the_rest_is_scanned_frame_by_frame(
    tmp_path, monkeypatch
):
    path = _noise_video(tmp_path / "noise.mp4")
    windows = _Windows(monkeypatch)
    quick = detect_scenes(path, scan="quick", min_scene_len=0.0)
    assert quick == detect_scenes(path, scan="every", min_scene_len=0.0)
    assert len(quick) > 30  # noise cuts nearly everywhere: the comparison is not vacuous
    # It gave up on gaps well before the end and decoded the rest in one stretch.
    assert windows.calls[-1][1] is None
    assert windows.calls[-1][0] < 100


def test_frames_the_packets_do_not_number_send_it_frame_by_frame(b_frame_cut_video, monkeypatch):
    path, truth = b_frame_cut_video
    real = media.frame_table(path)
    assert real is not None
    shifted = media.FrameTable(tuple(t + 1e-4 for t in real.times), real.keyframes)
    monkeypatch.setattr(media, "frame_table", lambda _: shifted)
    found = detect_scenes(path, scan="quick")
    assert tuple(s.start_frame for s in found[1:]) == truth.cut_frames


def _raw_h264(path: Path, raw: Path) -> Path:
    """The H.264 of ``path`` as a raw Annex B stream: no container, no timestamps."""
    with av.open(str(path)) as source, av.open(str(raw), "w", format="h264") as target:
        stream = source.streams.video[0]
        out = target.add_stream_from_template(stream)
        for packet in source.demux(stream):
            if packet.size:
                packet.stream = out
                target.mux(packet)
    return raw


def test_raw_stream_without_timestamps_is_scanned_frame_by_frame(b_frame_cut_video, tmp_path):
    # A raw Annex B .h264 file: the packets cannot number the frames.
    path, truth = b_frame_cut_video
    raw = _raw_h264(path, tmp_path / "raw.h264")
    quick = detect_scenes(raw, scan="quick")
    assert quick == detect_scenes(raw, scan="every")
    assert tuple(s.start_frame for s in quick[1:]) == truth.cut_frames


def test_cancelling_stops_both_decoders(b_frame_cut_video):
    path, _ = b_frame_cut_video

    def interrupt(done: float, total: float) -> None:
        if done > 4.5:  # past the second cut: a stretch has been decoded in full
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        detect_scenes(path, scan="quick", progress=interrupt)
    assert not [t for t in threading.enumerate() if t.name == "sfxmatch-decode"]


def test_unknown_scan_mode_is_a_config_error(b_frame_cut_video):
    with pytest.raises(ConfigError, match="scan mode"):
        detect_scenes(b_frame_cut_video[0], scan="fastest")  # type: ignore[arg-type]


# --- the media pieces it stands on -----------------------------------------------------------


def test_frame_table_numbers_frames_as_a_full_decode(b_frame_cut_video):
    path, truth = b_frame_cut_video
    table = media.frame_table(path)
    assert table is not None and len(table) == truth.frame_count
    full = list(media.iter_frames(path, max_side=64))
    assert [table.index_of(f.time) for f in full] == [f.index for f in full]
    assert table.keyframes[0] == 0
    assert table.keyframe_before(truth.frame_count - 1) == table.keyframes[-1]
    assert table.index_of(full[3].time + 1e-6) is None


def test_reference_only_frames_are_the_full_decodes_pictures(b_frame_cut_video):
    path, truth = b_frame_cut_video
    table = media.frame_table(path)
    assert table is not None
    full = list(media.iter_frames(path, max_side=96, fast=True))
    sparse = list(media.iter_frames(path, max_side=96, fast=True, reference_only=True))
    indices = [table.index_of(f.time) for f in sparse]
    assert len(sparse) < len(full) and indices == sorted(set(indices))
    assert indices[-1] == truth.frame_count - 1  # the tail is decoded in full
    for index, frame in zip(indices, sparse, strict=True):
        assert np.array_equal(frame.image, full[index].image)


@pytest.mark.parametrize("first", [1, 41, 95, 150, 208])
def test_start_gives_the_full_decodes_frames_from_there(b_frame_cut_video, first):
    path, truth = b_frame_cut_video
    table = media.frame_table(path)
    assert table is not None
    full = list(media.iter_frames(path, max_side=96))
    tail = list(media.iter_frames(path, max_side=96, start=table.times[first]))
    assert [table.index_of(f.time) for f in tail] == list(range(first, truth.frame_count))
    for frame, expected in zip(tail, full[first:], strict=True):
        assert np.array_equal(frame.image, expected.image)


def test_start_between_frames_begins_at_the_next_one(cut_video):
    path, _ = cut_video
    tail = media.iter_frames(path, max_side=64, start=float(Fraction(81, 25)) - 0.01)
    assert next(tail).time == pytest.approx(81 / 25)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"rate": 10, "start": 1.0},
        {"rate": 10, "reference_only": True},
        {"start": float("nan")},
        {"reference_only": True, "start": 1.0},
    ],
)
def test_bad_pass_options_are_config_errors(cut_video, kwargs):
    with pytest.raises(ConfigError):
        media.iter_frames(cut_video[0], **kwargs)


def test_frame_table_of_bad_input_names_the_file(tmp_path, audio_only_files):
    wav, _ = audio_only_files["wav"]
    with pytest.raises(MediaError, match="no video stream") as raised:
        media.frame_table(wav)
    assert str(wav.name) in str(raised.value)
    missing = tmp_path / "missing clip.mp4"
    with pytest.raises(MediaError, match=r"missing clip\.mp4"):
        media.frame_table(missing)


# --- containers that seek by timestamp, or not at all ----------------------------------------


@pytest.fixture(scope="module")
def b_frame_ts(tmp_path_factory) -> tuple[Path, object]:
    """MPEG-TS: its demuxer seeks by timestamp and lands on any frame, not a keyframe."""
    from sfxmatch.testing import synth

    path = tmp_path_factory.mktemp("ts") / "cuts.ts"
    return path, synth.make_cut_video(path, shot_lengths=(100, 150, 35, 40), b_frames=3)


def test_mpeg_ts_quick_scan_and_late_starts(b_frame_ts):
    path, truth = b_frame_ts
    quick = detect_scenes(path, scan="quick")
    assert quick == detect_scenes(path, scan="every")
    assert tuple(s.start_frame for s in quick[1:]) == truth.cut_frames
    full = list(media.iter_frames(path, max_side=64))
    for first in (5, 120, 260, 300, len(full) - 1):  # the last ones lie past the last keyframe
        tail = list(media.iter_frames(path, max_side=64, start=full[first].time - 1e-6))
        assert [f.time for f in tail] == [f.time for f in full[first:]]
        pairs = zip(tail, full[first:], strict=True)
        assert all(np.array_equal(a.image, b.image) for a, b in pairs)


def test_a_raw_stream_starts_late_without_seeking(b_frame_cut_video, tmp_path):
    # FFmpeg cannot seek in a raw .h264 file (and a failed seek leaves it at its end).
    path, _ = b_frame_cut_video
    raw = _raw_h264(path, tmp_path / "raw.h264")
    full = list(media.iter_frames(raw, max_side=64))
    tail = list(media.iter_frames(raw, max_side=64, start=full[100].time))
    assert [f.time for f in tail] == [f.time for f in full[100:]]
    assert all(np.array_equal(a.image, b.image) for a, b in zip(tail, full[100:], strict=True))


def test_frame_table_is_remembered_until_the_file_changes(b_frame_cut_video, tmp_path):
    path, _ = b_frame_cut_video
    copy = tmp_path / "copy.mp4"
    copy.write_bytes(path.read_bytes())
    first = media.frame_table(copy)
    assert media.frame_table(copy) is first  # one packet scan for the quick pass and the gaps
    cut = _noise_video(copy, frames=30)  # another file at the same path
    again = media.frame_table(cut)
    assert again is not None and again is not first and len(again) == 30
