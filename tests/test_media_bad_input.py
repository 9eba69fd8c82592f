"""sfxmatch.media on bad input: each case is a MediaError naming the file and the problem;
nothing from PyAV and no OSError escapes. Odd but valid file names work."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import pytest
from sfxmatch import media
from sfxmatch.errors import MediaError
from sfxmatch.testing import synth

READERS: dict[str, Callable[[Path], object]] = {
    "probe": media.probe,
    "iter_frames": lambda p: list(media.iter_frames(p)),
    "load_audio": media.load_audio,
}


def _refused_by_all(path: Path, problem: str) -> None:
    for name, read in READERS.items():
        with pytest.raises(MediaError, match=problem) as caught:
            read(path)
        assert caught.value.path == path, name
        assert str(path) in str(caught.value), name


def _cut(src: Path, dst: Path, fraction: float) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * fraction)])
    return dst


def _remux(src: Path, dst: Path, **options: str) -> Path:
    """Copy the streams into another container (or the same one, differently laid out)."""
    with av.open(str(src)) as inp, av.open(str(dst), "w", options=options) as out:
        streams = {s.index: out.add_stream_from_template(s) for s in inp.streams}
        for packet in inp.demux():
            if packet.dts is not None:
                packet.stream = streams[packet.stream.index]
                out.mux(packet)
    return dst


def test_missing_file_and_directory(tmp_path: Path) -> None:
    _refused_by_all(tmp_path / "nope.mp4", "no such file")
    _refused_by_all(tmp_path, "is a directory")


def test_zero_byte_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.mp4"
    path.touch()
    _refused_by_all(path, r"is empty \(0 bytes\)")


def test_text_named_like_media(tmp_path: Path) -> None:
    for name in ("notes.mp4", "notes.wav"):
        path = tmp_path / name
        path.write_text("These are my notes, not a video.\n" * 20)
        _refused_by_all(path, "not a media file")
    noise = tmp_path / "noise.mov"
    noise.write_bytes(np.random.default_rng(0).integers(0, 256, 50_000, np.uint8).tobytes())
    _refused_by_all(noise, "not a media file")


def test_mp4_cut_in_half(tmp_path: Path, av_file: tuple[Path, synth.AvFileTruth]) -> None:
    src, _ = av_file
    # As written (index at the end): the index is gone with the second half.
    _refused_by_all(
        _cut(src, tmp_path / "half.mp4", 0.5), "truncated or damaged: it starts like an MP4"
    )
    # Index first ("faststart", what web video uses): it points past the end of the file.
    fast = _remux(src, tmp_path / "fast.mp4", movflags="faststart")
    assert media.probe(fast).video is not None
    _refused_by_all(_cut(fast, tmp_path / "fast_half.mp4", 0.5), "is truncated: its index")
    _refused_by_all(_cut(fast, tmp_path / "fast_most.mp4", 0.95), "is truncated: its index")


def test_avi_cut_mid_way(tmp_path: Path, video_only_file: tuple[Path, synth.CutVideoTruth]) -> None:
    src, truth = video_only_file
    # Cut mid-way: the header still counts every frame, so it is refused on opening.
    with pytest.raises(MediaError, match="header promises 45 frames"):
        media.probe(_cut(src, tmp_path / "half.avi", 0.5))
    # Cut near the end: what is there is delivered, then the short end is reported.
    short = _cut(src, tmp_path / "most.avi", 0.9)
    got: list[int | None] = []
    with pytest.raises(MediaError, match=r"ends early: its video stops at [\d.]+ s but the file"):
        for frame in media.iter_frames(short):
            got.append(synth.read_frame_number(frame.image))
    assert 10 <= len(got) < truth.frame_count  # keyframes are big: 90 % of bytes, 21 frames
    assert got == list(range(len(got)))


def test_matroska_cut_short(tmp_path: Path, av_file: tuple[Path, synth.AvFileTruth]) -> None:
    src, truth = av_file
    mkv = _remux(src, tmp_path / "clip.mkv")
    assert len(list(media.iter_frames(mkv))) == truth.frame_count
    cut = _cut(mkv, tmp_path / "cut.mkv", 0.6)
    assert media.probe(cut).duration == pytest.approx(truth.duration, abs=0.05)  # can't tell yet
    frames: list[media.Frame] = []
    with pytest.raises(MediaError, match="ends early") as caught:
        frames.extend(media.iter_frames(cut))
    assert caught.value.path == cut
    assert 0 < len(frames) < truth.frame_count
    assert [synth.read_frame_number(f.image) for f in frames] == list(range(len(frames)))
    # Sampled, the instants up to the last decodable frame still come before the error.
    sampled: list[media.Frame] = []
    with pytest.raises(MediaError, match="ends early"):
        sampled.extend(media.iter_frames(cut, rate=10))
    assert len(sampled) == -(-len(frames) * 10 // 25)  # ceil: every instant frames cover
    with pytest.raises(MediaError, match="ends early: its audio"):
        media.load_audio(cut)
    # A window the file still covers is fine.
    assert media.load_audio(cut, duration=0.2, sample_rate=8000).samples.shape == (1, 1600)


def test_truncated_audio_files(
    tmp_path: Path, audio_only_files: dict[str, tuple[Path, synth.AudioFileTruth]]
) -> None:
    for key, problem in [
        ("f32.wav", "ends early: its audio stops at 0.50 s but the file says 1.00 s"),
        ("flac", "truncated or damaged: it starts like a FLAC file"),  # FLAC reads its end
        ("ogg", "truncated or damaged: it starts like an Ogg file"),  # so does Ogg
    ]:
        cut = _cut(audio_only_files[key][0], tmp_path / f"cut.{key}", 0.5)
        with pytest.raises(MediaError, match=problem) as caught:
            media.load_audio(cut)
        assert caught.value.path == cut
    # 16-bit WAV: FFmpeg sizes the data by the file, not the header, so there is no way to
    # tell; what is there loads (documented leniency, not an accident).
    path, truth = audio_only_files["wav"]
    cut = _cut(path, tmp_path / "cut.wav", 0.5)
    n = media.load_audio(cut, channels="keep").samples.shape[1]
    assert truth.n_samples * 0.45 < n < truth.n_samples * 0.55


def test_wrong_kind_of_stream(
    audio_only_files: dict[str, tuple[Path, synth.AudioFileTruth]],
    video_only_file: tuple[Path, synth.CutVideoTruth],
) -> None:
    wav, _ = audio_only_files["wav"]
    with pytest.raises(MediaError, match="has no video stream") as caught:
        media.iter_frames(wav)  # refused on the call, before any iteration
    assert caught.value.path == wav
    avi, _ = video_only_file
    with pytest.raises(MediaError, match=r"has no audio stream \(video only\)") as caught:
        media.load_audio(avi)
    assert caught.value.path == avi


def test_unicode_and_spaces_in_names_work(
    tmp_path: Path, av_file: tuple[Path, synth.AvFileTruth]
) -> None:
    src, _ = av_file
    # A colon would make FFmpeg read "Take 2:" as a URL scheme if the name were passed bare.
    odd = tmp_path / "Ünïcødé dir ✓" / "Take 2: café – 夜 .mp4"
    odd.parent.mkdir()
    shutil.copy(src, odd)
    info = media.probe(odd)
    assert info.path == odd and info.video is not None and len(info.audio) == 1
    assert len(list(media.iter_frames(odd, rate=5))) == 10
    assert media.load_audio(odd, sample_rate=16000).samples.shape == (1, 32000)
    out = media.write_wav(odd.with_suffix(".wav"), media.Audio(np.zeros((1, 8)), 8000))
    assert media.load_audio(out).samples.shape == (1, 8)
