"""An audio file's first decoded sample is sample 0 of the sound, as the reference decoders
have it: every real OGG and MP3 of the test media, and Opus, M4A and MP3 files encoded by
FFmpeg's own command line from real recordings, against FFmpeg's command line (and, where it
reads the format, libsndfile).

"First audible sample": the first sample within 40 dB of the file's loudest. FFmpeg's command
line is the Debian ``ffmpeg`` binary (a different FFmpeg from the one PyAV bundles).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import mutagen.mp4
import numpy as np
import pytest
import soundfile
from sfxmatch import media
from sfxmatch.testing import synth

pytestmark = pytest.mark.real_media

AUDIBLE_DB = -40.0
AAC_FRAME = 1024  # samples an AAC frame decodes to: the most padding an encoder adds


def cli_decode(path: Path) -> tuple[np.ndarray, int]:
    """Mono float32 samples at the file's rate, as FFmpeg's command line decodes them."""
    rate = media.probe(path).audio[0].sample_rate
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-ac", "1", "-f", "f32le", "-"]
    out = subprocess.run(cmd, capture_output=True, check=True).stdout
    return np.frombuffer(out, np.float32), rate


def first_audible(x: np.ndarray) -> int:
    level = np.abs(x)
    peak = float(level.max())
    assert peak > 0, "silent"
    return int(np.flatnonzero(level >= peak * 10 ** (AUDIBLE_DB / 20))[0])


def real_sounds(*folders: Path) -> list[Path]:
    return sorted(
        p for folder in folders for ext in ("ogg", "mp3") for p in folder.rglob(f"*.{ext}")
    )


def compare(path: Path) -> tuple[Path, int, int, int, int, int | None, int]:
    ours = media.load_audio(path)
    cli, rate = cli_decode(path)
    assert ours.sample_rate == rate
    x = ours.samples[0]
    reference: int | None = None
    try:
        ref, _ = soundfile.read(str(path), dtype="float32", always_2d=True)
        reference = first_audible(ref.mean(axis=1)) if np.abs(ref).max() > 0 else None
    except soundfile.LibsndfileError:
        reference = None
    silent = float(np.abs(x).max()) == 0.0
    ours_first = -1 if silent else first_audible(x)
    cli_first = -1 if silent else first_audible(cli)
    return path, ours_first, cli_first, len(x), len(cli), reference, rate


def test_every_real_ogg_and_mp3_starts_and_ends_where_ffmpegs_command_line_does(
    minetest_sounds: Path, tuxpaint_sounds: Path, ovos_sounds: Path
) -> None:
    files = real_sounds(minetest_sounds, tuxpaint_sounds, ovos_sounds)
    assert len(files) >= 200
    with ThreadPoolExecutor(2) as pool:
        rows = list(pool.map(compare, files))
    shifted = []
    for path, ours, cli, n_ours, n_cli, reference, rate in rows:
        if abs(ours - cli) > 1 or abs(n_ours - n_cli) > rate / 1000:
            shifted.append((path.name, ours, cli, n_ours, n_cli))
        if reference is not None and ours >= 0:
            assert abs(ours - reference) <= 1, (path.name, ours, "libsndfile", reference)
    assert not shifted, shifted


def test_a_vorbis_file_timed_from_its_first_packet_is_not_padded(minetest_sounds: Path) -> None:
    """The issue's file: FFmpeg's libraries give its first frame the time 256 (samples)."""
    path = next(minetest_sounds.rglob("doors_glass_door_open.ogg"))
    ours = media.load_audio(path).samples[0]
    cli, _ = cli_decode(path)
    assert len(ours) == len(cli)
    assert np.abs(ours - cli).max() < 1e-6  # sample for sample, no leading zeros
    assert float(np.abs(ours[:256]).max()) > 0
    # A window later in the file is cut from the same timeline (it seeks and decodes again).
    window = media.load_audio(path, start=0.2, duration=0.1).samples[0]
    at = round(0.2 * 22050)
    assert np.abs(window - ours[at : at + len(window)]).max() < 1e-6


@pytest.fixture(scope="module")
def encoded(tmp_path_factory: pytest.TempPathFactory, ovos_sounds: Path) -> Iterator[dict]:
    """A real recording (ovos' dog, decoded to WAV at 48 kHz) encoded by FFmpeg's command
    line as Opus (pre-skip), M4A (AAC priming in an edit list), M4A without an edit list but
    with iTunes' ``iTunSMPB`` tag, MP3 (LAME encoder delay and padding) and Ogg Vorbis."""
    folder = tmp_path_factory.mktemp("encoded")
    wav = folder / "dog.wav"
    src = next(ovos_sounds.rglob("dog.mp3"))
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(src), "-ac", "1", "-ar", "48000"]
    subprocess.run([*cmd, "-c:a", "pcm_f32le", str(wav)], check=True)
    truth = media.load_audio(wav).samples[0]
    files = {"wav": wav}
    for name, args in {
        "opus": ["-c:a", "libopus", "-b:a", "96k"],
        "m4a": ["-c:a", "aac"],
        "smpb.m4a": ["-c:a", "aac", "-use_editlist", "0"],
        "mp3": ["-c:a", "libmp3lame", "-q:a", "2"],
        "ogg": ["-c:a", "libvorbis"],
    }.items():
        out = folder / f"dog.{name}"
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(wav), *args, str(out)])
        files[name] = out
    # iTunes' gapless tag: priming, padding and the original length, as Apple's encoders write.
    tagged = mutagen.mp4.MP4(files["smpb.m4a"])
    coded = tagged.info.length  # seconds of AAC frames, priming and padding included
    total = round(coded * 48000)
    padding = total - AAC_FRAME - len(truth)
    words = [0, AAC_FRAME, max(0, padding)]
    value = " " + " ".join(f"{w:08X}" for w in words) + f" {len(truth):016X}" + " 00000000" * 8
    tagged.tags["----:com.apple.iTunes:iTunSMPB"] = [mutagen.mp4.MP4FreeForm(value.encode())]
    tagged.save()
    yield {"truth": truth, "files": files}


@pytest.mark.parametrize("name", ["opus", "m4a", "smpb.m4a", "mp3", "ogg"])
def test_encoded_real_recordings_start_on_their_first_sample(encoded: dict, name: str) -> None:
    path: Path = encoded["files"][name]
    truth: np.ndarray = encoded["truth"]
    ours = media.load_audio(path, sample_rate=48000).samples[0]
    cli, rate = cli_decode(path)
    native = media.load_audio(path).samples[0]
    assert abs(first_audible(native) - first_audible(cli)) <= 1
    # Against the sound that was encoded (all at 48 kHz but Vorbis' resampled comparison):
    # the event sits on the same sample.
    assert abs(first_audible(ours) - first_audible(truth)) <= 1
    lag = _lag(ours, truth)
    assert abs(lag) <= 1, lag
    if name.endswith("m4a"):
        # FFmpeg 5.1's command line keeps AAC's end padding, which the edit list (or the
        # iTunSMPB tag) says to drop: we end the sound where the file says it ends.
        assert abs(len(native) - len(truth)) <= rate / 1000
        assert 0 <= len(cli) - len(native) < AAC_FRAME
        assert float(np.abs(cli[len(native) :]).max(initial=0.0)) < 0.05
    else:
        assert abs(len(native) - len(cli)) <= rate / 1000
    if name in ("opus", "mp3", "ogg"):
        ref, _ = soundfile.read(str(path), dtype="float32", always_2d=True)
        assert abs(first_audible(ref[:, 0]) - first_audible(native)) <= 1


def _lag(x: np.ndarray, y: np.ndarray, search: int = 3000) -> int:
    """The shift (samples) that best aligns ``x`` on ``y``: x[i + lag] ~ y[i]."""
    n = min(len(x), len(y)) - 2 * search
    core = y[search : search + n]
    scores = [float(np.dot(x[search + k : search + k + n], core)) for k in range(-search, search)]
    return int(np.argmax(scores)) - search


def test_synthetic_clicks_stay_on_their_samples_through_every_codec(tmp_path: Path) -> None:
    """Clicks at known samples survive each encoder and our decode on the same samples."""
    rate = 48000
    times = (0.0103, 0.3, 0.7)
    src = synth.make_audio_file(tmp_path / "src.wav", synth.clicks(times, rate, 1.0), rate)
    for ext, codec in (
        ("ogg", "libvorbis"),
        ("opus", "libopus"),
        ("mp3", "libmp3lame"),
        ("m4a", "aac"),
    ):
        out = tmp_path / f"clicks.{ext}"
        cmd = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(src.path), "-c:a", codec]
        subprocess.run([*cmd, str(out)], check=True)
        x = np.abs(media.load_audio(out, sample_rate=rate).samples[0])
        for t in times:
            at = round(t * rate)
            found = at - 200 + int(np.argmax(x[max(0, at - 200) : at + 200]))
            assert abs(found - at) <= 2, (ext, t, found, at)
