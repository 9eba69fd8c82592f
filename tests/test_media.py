"""sfxmatch.media on synthetic media with exact ground truth: probe, frames (VFR, rotation,
sampling, downscale), one decode for several consumers, audio loading and WAV writing."""

from __future__ import annotations

import math
import struct
import subprocess
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from sfxmatch import media
from sfxmatch.errors import ConfigError, MediaError, StorageFullError
from sfxmatch.media import wav as media_wav
from sfxmatch.testing import synth


def _numbers(frames: list[media.Frame]) -> list[int | None]:
    return [synth.read_frame_number(f.image) for f in frames]


def _peak_hz(x: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spectrum) * rate / len(x))


# --------------------------------------------------------------------------- probe


def test_probe_constant_rate_video(cut_video: tuple[Path, synth.CutVideoTruth]) -> None:
    path, truth = cut_video
    info = media.probe(path)
    assert info.path == path and info.audio == ()
    assert info.duration == pytest.approx(truth.duration, abs=1e-6)
    v = info.video
    assert v is not None
    assert (v.width, v.height) == truth.size
    assert v.fps == truth.fps and v.rotation == 0
    assert v.frame_count == truth.frame_count
    assert v.variable_frame_rate is False


def test_probe_detects_variable_frame_rate(vfr_video: tuple[Path, synth.VfrVideoTruth]) -> None:
    path, truth = vfr_video
    v = media.probe(path).video
    assert v is not None
    assert v.variable_frame_rate is True
    assert v.frame_count == truth.frame_count
    assert float(v.fps) == pytest.approx(truth.average_fps, rel=0.02)


def test_probe_audio_and_video(av_file: tuple[Path, synth.AvFileTruth]) -> None:
    path, truth = av_file
    info = media.probe(path)
    assert info.video is not None and info.video.fps == truth.fps
    (a,) = info.audio
    assert (a.codec, a.sample_rate, a.channels, a.layout) == ("aac", truth.sample_rate, 2, "stereo")
    assert a.duration == pytest.approx(truth.duration, abs=0.01)


def test_probe_audio_only(audio_only_files: dict[str, tuple[Path, synth.AudioFileTruth]]) -> None:
    for path, truth in audio_only_files.values():
        info = media.probe(path)
        assert info.video is None, path
        (a,) = info.audio
        assert (a.sample_rate, a.channels) == (truth.sample_rate, truth.channels), path
        assert info.duration == pytest.approx(truth.duration, abs=0.03), path


# --------------------------------------------------------------------------- frames


def test_every_frame_of_vfr_video_at_its_exact_time(
    vfr_video: tuple[Path, synth.VfrVideoTruth],
) -> None:
    path, truth = vfr_video
    frames = list(media.iter_frames(path))
    assert [f.index for f in frames] == list(range(truth.frame_count))
    assert [f.time for f in frames] == list(truth.timestamps)  # exact, not approximate
    assert _numbers(frames) == list(range(truth.frame_count))
    img = frames[0].image
    assert img.shape == (truth.size[1], truth.size[0], 3) and img.dtype == np.uint8
    assert not img.flags.writeable


def test_sampled_vfr_video_holds_the_frame_on_screen(
    vfr_video: tuple[Path, synth.VfrVideoTruth],
) -> None:
    path, truth = vfr_video
    frames = list(media.iter_frames(path, rate=24))
    assert len(frames) == math.ceil(truth.duration * 24)
    assert [f.time for f in frames] == [k / 24 for k in range(len(frames))]
    assert _numbers(frames) == [truth.frame_at(k / 24) for k in range(len(frames))]


def test_rate_10_on_25_fps(cut_video: tuple[Path, synth.CutVideoTruth]) -> None:
    path, truth = cut_video
    frames = list(media.iter_frames(path, rate=10))
    assert len(frames) == math.ceil(truth.frame_count / truth.fps * 10)
    # t = k/10 s shows frame floor(k * 2.5): exact integer arithmetic, no drift at the end.
    assert _numbers(frames) == [k * 5 // 2 for k in range(len(frames))]


def test_rate_above_frame_rate_repeats_frames(cut_video: tuple[Path, synth.CutVideoTruth]) -> None:
    path, _ = cut_video
    frames = []
    for f in media.iter_frames(path, rate=Fraction(100)):
        frames.append(f)
        if len(frames) == 12:
            break
    assert _numbers(frames) == [k // 4 for k in range(12)]
    assert frames[0].image is frames[3].image  # held, not converted again


def test_rotated_video_is_upright(tmp_path: Path) -> None:
    for rotation in (90, 180, 270):
        truth = synth.make_rotated_video(tmp_path / f"r{rotation}.mp4", rotation, frame_count=3)
        info = media.probe(truth.path)
        assert info.video is not None
        assert info.video.rotation == rotation
        assert (info.video.width, info.video.height) == truth.upright_size
        frames = list(media.iter_frames(truth.path))
        w, h = truth.upright_size
        assert all(f.image.shape == (h, w, 3) for f in frames), rotation
        assert all(synth.is_upright(f.image) for f in frames), rotation
        assert _numbers(frames) == [0, 1, 2], rotation


def test_rotated_fixture_downscaled(rotated_video: tuple[Path, synth.RotatedVideoTruth]) -> None:
    path, truth = rotated_video
    w, h = truth.upright_size  # 320 x 240 upright, stored 240 x 320
    frames = list(media.iter_frames(path, max_side=160))
    assert len(frames) == truth.frame_count
    assert frames[0].image.shape == (h * 160 // w, 160, 3)
    assert all(synth.is_upright(f.image) for f in frames)


def test_mirrored_display_matrix(tmp_path: Path) -> None:
    """FFmpeg's display matrix can also mirror (front cameras): the picture must follow it."""
    path = tmp_path / "mirrored.mp4"
    img = np.zeros((64, 96, 3), np.uint8)
    img[:16, :16] = (255, 0, 0)
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 96, 64, "yuv420p"
        s.set_display_rotation(0, hflip=True)
        for p in [*s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")), *s.encode()]:
            out.mux(p)
    (frame,) = media.iter_frames(path)
    assert frame.image[:16, -16:, 0].mean() > 200  # the red corner moved to the right
    assert frame.image[:16, :16, 0].mean() < 50


def test_max_side_downscales_keeping_aspect(cut_video: tuple[Path, synth.CutVideoTruth]) -> None:
    path, _ = cut_video
    full = next(iter(media.iter_frames(path))).image
    small = next(iter(media.iter_frames(path, max_side=80))).image
    assert small.shape == (60, 80, 3)  # 320x240 -> longer side 80, aspect 4:3 kept
    # An area average of the full frame, so it is the same picture, only smaller.
    ref = full.reshape(60, 4, 80, 4, 3).astype(np.float32).mean(axis=(1, 3))
    assert np.abs(small.astype(np.float32) - ref).mean() < 6
    # Already small enough: untouched.
    assert next(iter(media.iter_frames(path, max_side=320))).image.shape == (240, 320, 3)


def test_decoder_threads_do_not_change_frames(
    video_only_file: tuple[Path, synth.CutVideoTruth],
) -> None:
    path, truth = video_only_file  # MPEG-4 part 2 in AVI: a second container and codec
    one = list(media.iter_frames(path, threads=1))
    auto = list(media.iter_frames(path, threads=0))
    assert _numbers(one) == _numbers(auto) == list(range(truth.frame_count))
    assert all(np.array_equal(a.image, b.image) for a, b in zip(one, auto, strict=True))
    assert [f.time for f in one] == [i / 25 for i in range(truth.frame_count)]


def test_downscaled_frames_of_one_pass_are_separate_and_exact(
    cut_video: tuple[Path, synth.CutVideoTruth],
) -> None:
    # One swscale context serves the whole pass: every frame still gets its own array, equal
    # to converting that frame alone.
    path, truth = cut_video
    frames = list(media.iter_frames(path, max_side=80))
    with av.open(str(path)) as container:
        alone = [
            vf.reformat(width=80, height=60, format="rgb24", interpolation="AREA").to_ndarray()
            for vf in container.decode(video=0)
        ]
    assert len(frames) == len(alone) == truth.frame_count
    assert all(np.array_equal(f.image, a) for f, a in zip(frames, alone, strict=True))
    assert len({id(f.image) for f in frames}) == len(frames)
    assert all(not f.image.flags.writeable for f in frames)


def test_fast_decoding_gives_the_same_frames_nearly_the_same_pictures(
    cut_video: tuple[Path, synth.CutVideoTruth],
) -> None:
    path, truth = cut_video  # H.264: fast skips its deblocking filter

    def blocks(image: np.ndarray, side: int) -> np.ndarray:
        """Mean colour of side x side blocks: what survives aliasing of fine texture."""
        h, w, _ = image.shape
        return image.reshape(h // side, side, w // side, side, 3).astype(np.float32).mean((1, 3))

    # Full size: only the deblocking differs, pixel for pixel a little.
    # Downscaled: fast bilinear aliases the fine texture of these frames, blocks agree.
    for max_side, side in ((None, 1), (80, 10)):
        exact = list(media.iter_frames(path, max_side=max_side))
        fast = list(media.iter_frames(path, max_side=max_side, fast=True))
        assert [f.time for f in fast] == [f.time for f in exact]
        assert [f.index for f in fast] == list(range(truth.frame_count))
        assert all(f.image.shape == e.image.shape for f, e in zip(fast, exact, strict=True))
        diff = [
            np.abs(blocks(f.image, side) - blocks(e.image, side)).mean()
            for f, e in zip(fast, exact, strict=True)
        ]
        assert max(diff) < 6, (max_side, max(diff))
        if max_side is None:
            assert _numbers(fast) == list(range(truth.frame_count))


def test_frames_and_audio_share_time_zero(av_file: tuple[Path, synth.AvFileTruth]) -> None:
    path, truth = av_file
    frames = list(media.iter_frames(path))
    assert frames[0].time == 0.0 and len(frames) == truth.frame_count
    assert _numbers(frames) == list(range(truth.frame_count))


def test_bad_arguments_are_config_errors(cut_video: tuple[Path, synth.CutVideoTruth]) -> None:
    path, _ = cut_video
    for kwargs in ({"rate": 0}, {"rate": -1.0}, {"rate": math.nan}, {"max_side": 0}):
        with pytest.raises(ConfigError):
            media.iter_frames(path, **kwargs)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- broadcast


def test_broadcast_feeds_every_consumer_from_one_decode(
    cut_video: tuple[Path, synth.CutVideoTruth],
) -> None:
    path, truth = cut_video
    seen_a: list[media.Frame] = []
    seen_b: list[media.Frame] = []
    order: list[str] = []

    def a(f: media.Frame) -> None:
        seen_a.append(f)
        order.append("a")

    def b(f: media.Frame) -> None:
        seen_b.append(f)
        order.append("b")

    frames = media.iter_frames(path, rate=5)
    assert media.broadcast(frames, [a, b]) == len(seen_a) == math.ceil(truth.duration * 5)
    assert all(x is y for x, y in zip(seen_a, seen_b, strict=True))  # the very same frames
    assert order == ["a", "b"] * len(seen_a)  # each frame to all consumers, then the next


def test_broadcast_stops_decoding_when_a_consumer_fails(
    cut_video: tuple[Path, synth.CutVideoTruth],
) -> None:
    path, _ = cut_video
    frames = media.iter_frames(path)

    def fail(f: media.Frame) -> None:
        if f.index == 3:
            raise RuntimeError("consumer broke")

    with pytest.raises(RuntimeError):
        media.broadcast(frames, [fail])
    assert next(frames, None) is None  # closed: the file is released


# --------------------------------------------------------------------------- audio


def test_audio_lengths_and_pitch_after_resampling(
    audio_only_files: dict[str, tuple[Path, synth.AudioFileTruth]],
) -> None:
    for path, truth in audio_only_files.values():
        # FFmpeg ends the Ogg Vorbis streams of its own libvorbis encoder a first packet's
        # worth of samples (128 or 256) early: it times the stream from that packet, which
        # decodes to nothing, and trims the last one to the final granule by those times.
        # We decode what its command line does (tests/test_media_decode_start.py), with the
        # sound's start where it is.
        n = _cli_length(path) if truth.codec == "libvorbis" else truth.n_samples
        assert truth.n_samples - 256 <= n <= truth.n_samples, path
        for rate in (16000, 48000):
            audio = media.load_audio(path, sample_rate=rate)
            assert audio.samples.dtype == np.float32, path
            assert audio.samples.shape == (1, round(n * rate / truth.sample_rate)), (path, rate)
            assert abs(_peak_hz(audio.samples[0], rate) - 440.0) <= 1.0, (path, rate)
            assert np.abs(audio.samples).max() == pytest.approx(0.5, abs=0.05), path
        native = media.load_audio(path, channels="keep")
        assert native.sample_rate == truth.sample_rate
        assert native.samples.shape == (truth.channels, n), path


def _cli_length(path: Path) -> int:
    """Samples per channel that FFmpeg's command line decodes from ``path``."""
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-ac", "1", "-f", "f32le", "-"]
    return len(subprocess.run(cmd, capture_output=True, check=True).stdout) // 4


def test_resampling_keeps_clicks_in_place(tmp_path: Path) -> None:
    times = (0.1, 0.5003, 0.9)
    src = synth.make_audio_file(tmp_path / "clicks.wav", synth.clicks(times, 44100, 1.2), 44100)
    for rate in (16000, 48000):
        x = media.load_audio(src.path, sample_rate=rate).samples[0]
        assert len(x) == round(1.2 * rate)
        for t in times:
            at = round(t * rate)
            assert abs(int(np.argmax(np.abs(x[at - 50 : at + 50]))) - 50) <= 1, (rate, t)


def test_mono_first_stereo_keep(tmp_path: Path) -> None:
    left = synth.tone(440.0, 0.5, 48000, 0.5)
    right = synth.tone(1000.0, 0.5, 48000, 0.25)
    path = tmp_path / "two tones.wav"
    synth.make_audio_file(path, np.concatenate([left, right]), 48000)
    keep = media.load_audio(path, channels="keep").samples
    assert keep.shape == (2, 24000)
    assert np.abs(keep - np.concatenate([left, right])).max() <= 1 / 32768
    mono = media.load_audio(path, channels="mono").samples
    assert np.array_equal(mono, keep.mean(axis=0, keepdims=True, dtype=np.float32))
    first = media.load_audio(path, channels="first").samples
    assert np.array_equal(first, keep[:1])
    assert abs(_peak_hz(first[0], 48000) - 440) < 3
    assert np.array_equal(media.load_audio(path, channels="stereo").samples, keep)
    one = tmp_path / "one.wav"
    synth.make_audio_file(one, left, 48000)
    dup = media.load_audio(one, channels="stereo").samples
    assert dup.shape == (2, 24000) and np.array_equal(dup[0], dup[1])


def test_start_and_duration_windows_are_sample_exact(tmp_path: Path) -> None:
    noise = synth.noise_burst(3.0, 48000, amplitude=0.5, seed=3, channels=2)
    for name in ("noise.wav", "noise.flac"):
        path = tmp_path / name
        synth.make_audio_file(path, noise, 48000)
        full = media.load_audio(path, channels="keep").samples
        # 0.3 s needs no seek; 2.1 s seeks back a second and trims to the sample.
        for start in (0.3, 2.1):
            win = media.load_audio(path, channels="keep", start=start, duration=0.5).samples
            a = round(start * 48000)
            assert np.array_equal(win, full[:, a : a + 24000]), (name, start)
        # Resampled: same offsets, and the filter was warmed up before the window.
        full16 = media.load_audio(path, sample_rate=16000).samples
        win16 = media.load_audio(path, sample_rate=16000, start=2.1, duration=0.5).samples
        assert win16.shape == (1, 8000)
        assert np.abs(win16 - full16[:, 33600:41600]).max() < 1e-4, name
        # Past the end: what is there, then nothing.
        assert media.load_audio(path, start=2.8, duration=1.0).samples.shape == (1, 9600)
        assert media.load_audio(path, start=5.0).samples.shape == (1, 0)


def test_audio_of_a_video_file(av_file: tuple[Path, synth.AvFileTruth]) -> None:
    path, truth = av_file
    audio = media.load_audio(path, sample_rate=16000, channels="keep")
    assert audio.samples.shape == (2, round(truth.duration * 16000))
    for t in truth.click_times:  # AAC smears the 4-sample click a little
        at = round(t * 16000)
        assert abs(int(np.argmax(np.abs(audio.samples[0, at - 80 : at + 80]))) - 80) <= 4


def test_bad_audio_arguments(
    audio_only_files: dict[str, tuple[Path, synth.AudioFileTruth]],
) -> None:
    path, _ = audio_only_files["wav"]
    bad: list[dict[str, object]] = [
        {"sample_rate": 0},
        {"channels": "surround"},
        {"start": -1.0},
        {"duration": math.inf},
        {"stream": -1},
    ]
    for kwargs in bad:
        with pytest.raises(ConfigError):
            media.load_audio(path, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(MediaError, match="1 audio stream"):
        media.load_audio(path, stream=1)


# --------------------------------------------------------------------------- WAV writing


def _chunks(path: Path) -> dict[bytes, bytes]:
    data = path.read_bytes()
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    assert struct.unpack("<I", data[4:8])[0] == len(data) - 8
    out, pos = {}, 12
    while pos < len(data):
        cid, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        out[cid] = data[pos + 8 : pos + 8 + size]
        pos += 8 + size + size % 2
    return out


def test_float_wav_round_trip_is_bit_exact(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    samples = rng.uniform(-1.2, 1.2, (2, 12345)).astype(np.float32)
    samples[0, :3] = (np.float32(1e-38), -0.0, np.float32(0.1))
    path = media.write_wav(tmp_path / "float.wav", media.Audio(samples, 44100))
    chunks = _chunks(path)
    tag, channels, rate, _, block, bits, cb = struct.unpack("<HHIIHHH", chunks[b"fmt "])
    assert (tag, channels, rate, block, bits, cb) == (3, 2, 44100, 8, 32, 0)
    assert struct.unpack("<I", chunks[b"fact"]) == (12345,)
    back = media.load_audio(path, channels="keep")
    assert back.sample_rate == 44100
    assert back.samples.tobytes() == samples.tobytes()


@pytest.mark.parametrize(("subtype", "bits"), [("pcm16", 16), ("pcm24", 24)])
def test_pcm_round_trip_within_one_lsb(tmp_path: Path, subtype: str, bits: int) -> None:
    rng = np.random.default_rng(2)
    samples = rng.uniform(-1, 1, (1, 4001)).astype(np.float32)  # odd length: padded chunk
    samples[0, :4] = (1.0, -1.0, 2.0, -3.0)  # full scale and beyond: clipped, not wrapped
    path = media.write_wav(
        tmp_path / f"{subtype}.wav", media.Audio(samples, 22050), subtype=subtype
    )  # type: ignore[arg-type]
    assert path.stat().st_size % 2 == 0
    tag, channels, rate, _, block, got_bits = struct.unpack("<HHIIHH", _chunks(path)[b"fmt "][:16])
    assert (tag, channels, rate, block, got_bits) == (1, 1, 22050, bits // 8, bits)
    back = media.load_audio(path, channels="keep").samples
    lsb = 2.0 ** (1 - bits)
    assert back.shape == samples.shape
    assert np.abs(back - np.clip(samples, -1, 1)).max() <= lsb
    assert back[0, 0] == pytest.approx(1 - lsb, abs=lsb / 4) and back[0, 1] == -1.0


def test_many_channels_use_wave_format_extensible(tmp_path: Path) -> None:
    samples = np.random.default_rng(3).uniform(-1, 1, (6, 1000)).astype(np.float32)
    path = media.write_wav(tmp_path / "surround.wav", media.Audio(samples, 48000))
    fmt = _chunks(path)[b"fmt "]
    assert struct.unpack("<H", fmt[:2])[0] == 0xFFFE and len(fmt) == 40
    assert np.array_equal(media.load_audio(path, channels="keep").samples, samples)


def test_write_wav_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "out.wav"
    first = media.write_wav(target, media.Audio(np.zeros((1, 100), np.float32), 8000))
    before = first.read_bytes()

    def broken(block: np.ndarray, subtype: str) -> bytes:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(media_wav, "_wav_bytes", broken)
    with pytest.raises(StorageFullError, match=r"out\.wav"):
        media.write_wav(target, media.Audio(np.ones((1, 100), np.float32), 8000))
    assert target.read_bytes() == before  # the old file is whole
    assert [p.name for p in tmp_path.iterdir()] == ["out.wav"]  # no temporary left behind


def test_write_wav_refuses_what_riff_cannot_hold(tmp_path: Path) -> None:
    huge = np.broadcast_to(np.float32(0), (2, 2**29 + 1))  # 4 GiB of samples, no memory
    with pytest.raises(MediaError, match="4 GiB"):
        media.write_wav(tmp_path / "huge.wav", media.Audio(huge, 48000))
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(MediaError, match="cannot be written"):
        media.write_wav(tmp_path / "no" / "dir.wav", media.Audio(np.zeros((1, 4)), 8000))
    with pytest.raises(ConfigError):
        media.write_wav(tmp_path / "x.wav", media.Audio(np.zeros(4), 8000))
    with pytest.raises(ConfigError):
        media.write_wav(tmp_path / "x.wav", media.Audio(np.zeros((1, 4)), 8000), subtype="mp3")  # type: ignore[arg-type]
