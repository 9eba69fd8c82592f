"""sfxmatch.mix.output and .mux: WAV mix and stems, the mix muxed under the picture."""

from __future__ import annotations

import threading
from pathlib import Path

import av
import numpy as np
import pytest
from sfxmatch import media
from sfxmatch.errors import Cancelled, ConfigError, MediaError
from sfxmatch.mix import (
    Stems,
    audio_codec_for,
    mux_video,
    render_mix,
    safe_filename,
    stem_paths,
    write_mix,
    write_stems,
)
from sfxmatch.progress import Progress
from sfxmatch.suggestions import Placement
from sfxmatch.testing import synth

SR = 48000


@pytest.fixture(scope="module")
def picture(tmp_path_factory: pytest.TempPathFactory) -> synth.AvFileTruth:
    """2 s H.264 + AAC mp4 whose own audio has clicks at 0.5, 1.0, 1.5 s."""
    return synth.make_av_file(tmp_path_factory.mktemp("mux") / "picture.mp4", duration=2.0)


def new_audio(duration: float = 2.0, times: tuple[float, ...] = (0.3, 1.1)) -> media.Audio:
    return media.Audio(synth.clicks(times, SR, duration, amplitude=0.8, width=4, channels=2), SR)


def video_packets(path: Path) -> list[bytes]:
    with av.open(str(path)) as c:
        return [bytes(p) for p in c.demux(c.streams.video[0]) if p.size]


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


# --------------------------------------------------------------------------- WAV files


def test_mix_and_stems_are_written_and_read_back_exactly(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    a = rng.uniform(-0.3, 0.3, (2, SR)).astype(np.float32)
    b = rng.uniform(-0.3, 0.3, (2, SR)).astype(np.float32)
    stems = Stems(SR, SR, (("Ambience", a), ("SFX 1", b)))
    mix_path = write_mix(tmp_path / "mix.wav", a + b, SR)
    back = media.load_audio(mix_path, channels="keep")
    assert back.sample_rate == SR
    np.testing.assert_array_equal(back.samples, a + b)
    paths = write_stems(tmp_path / "stems", stems)
    assert [p.name for p in paths.values()] == ["Ambience.wav", "SFX 1.wav"]
    total = sum(media.load_audio(p, channels="keep").samples for p in paths.values())
    np.testing.assert_allclose(total, a + b, atol=1e-7)
    assert leftovers(tmp_path) == [] and leftovers(tmp_path / "stems") == []


def test_stem_names_are_made_filesystem_safe_and_unique(tmp_path: Path) -> None:
    assert safe_filename("SFX 1") == "SFX 1"
    assert safe_filename("../../etc/passwd") == "etc_passwd"
    assert safe_filename("Pluie: forêt/nuit?") == "Pluie_ foret_nuit"
    assert safe_filename("CON") == "_CON"
    assert safe_filename("...") == "track"
    paths = stem_paths(tmp_path, ("a/b", "a:b", "A?B"))
    names = [p.name for p in paths.values()]
    assert names == ["a_b.wav", "a_b_2.wav", "A_B_3.wav"]
    assert all(p.parent == tmp_path for p in paths.values())


def test_stems_that_cannot_be_written_leave_nothing(tmp_path: Path) -> None:
    blocker = tmp_path / "stems"
    blocker.write_text("a file where the folder should be")
    stems = Stems(SR, 10, (("SFX 1", np.zeros((2, 10), np.float32)),))
    with pytest.raises(MediaError) as info:
        write_stems(blocker, stems)
    assert info.value.path == blocker
    folder = tmp_path / "ok"
    folder.mkdir()
    (folder / "SFX 2.wav").mkdir()  # the second stem's name is taken by a folder
    two = Stems(SR, 10, (("SFX 1", np.zeros((2, 10), np.float32)), ("SFX 2", np.zeros((2, 10)))))
    with pytest.raises(MediaError) as info:
        write_stems(folder, two)
    assert info.value.path.name == "SFX 2.wav"
    assert not (folder / "SFX 1.wav").exists() and leftovers(folder) == []


# --------------------------------------------------------------------------- mux


@pytest.mark.parametrize(("ext", "codec"), [("mp4", "aac"), ("mov", "pcm_s24le"), ("mkv", "aac")])
def test_mux_copies_the_picture_and_encodes_the_mix(
    tmp_path: Path, picture: synth.AvFileTruth, ext: str, codec: str
) -> None:
    out = mux_video(picture.path, new_audio(), tmp_path / f"out.{ext}")
    assert out == tmp_path / f"out.{ext}"
    info = media.probe(out)
    assert info.video is not None and len(info.audio) == 1
    assert info.audio[0].codec == codec == audio_codec_for(out)
    assert info.audio[0].channels == 2
    assert info.duration == pytest.approx(picture.duration, abs=0.05)
    assert video_packets(out) == video_packets(picture.path)  # stream copy, not re-encoded
    sound = media.load_audio(out, channels="first").samples[0]
    loud = np.flatnonzero(np.abs(sound) > 0.3)
    assert abs(int(loud[0]) - round(0.3 * SR)) <= 2  # the new clicks, not the old 0.5 s one
    assert not np.any(np.abs(sound[round(0.45 * SR) : round(0.55 * SR)]) > 0.3)
    assert leftovers(tmp_path) == []


def test_mux_audio_is_fitted_to_the_picture(tmp_path: Path, picture: synth.AvFileTruth) -> None:
    long = mux_video(picture.path, new_audio(3.5, (0.3, 3.0)), tmp_path / "long.mov")
    short = mux_video(picture.path, new_audio(1.0, (0.3,)), tmp_path / "short.mov")
    for path in (long, short):
        audio = media.load_audio(path, channels="keep")
        assert audio.samples.shape[1] == round(picture.duration * SR)
    assert not np.any(media.load_audio(short, channels="first").samples[0, SR:])


def test_mux_from_a_wav_path_of_a_rendered_mix(tmp_path: Path, picture: synth.AvFileTruth) -> None:
    click = tmp_path / "click.wav"
    synth.make_audio_file(click, synth.clicks([0.0], SR, 0.05), SR, sample_format="f32")
    ps = [
        Placement(
            track="SFX 1",
            kind="effect",
            sound_id="c",
            path=str(click),
            label="click",
            record_start=0.8,
            duration=0.05,
        )
    ]
    result = render_mix(ps, picture.duration, normalise=False)
    wav = write_mix(tmp_path / "mix.wav", result.mix, result.sample_rate)
    out = mux_video(picture.path, wav, tmp_path / "final.mp4")
    sound = media.load_audio(out, channels="first").samples[0]
    assert abs(int(np.argmax(np.abs(sound))) - round(0.8 * SR)) <= 2


def test_mux_errors_name_the_file_and_leave_nothing(
    tmp_path: Path, picture: synth.AvFileTruth
) -> None:
    missing = tmp_path / "nope.mp4"
    with pytest.raises(MediaError) as info:
        mux_video(missing, new_audio(), tmp_path / "a.mp4")
    assert info.value.path == missing
    sound_only = tmp_path / "sound.wav"
    synth.make_tone_file(sound_only, duration=0.5)
    with pytest.raises(MediaError) as info:
        mux_video(sound_only, new_audio(), tmp_path / "b.mp4")
    assert info.value.path == sound_only and "video" in info.value.problem
    with pytest.raises(ConfigError):
        mux_video(picture.path, new_audio(), tmp_path / "c.avi")
    nowhere = tmp_path / "no_such_dir" / "d.mp4"
    with pytest.raises(MediaError) as info:
        mux_video(picture.path, new_audio(), nowhere)
    assert info.value.path == nowhere
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sound.wav"]


def test_mux_cancel_leaves_nothing(tmp_path: Path, picture: synth.AvFileTruth) -> None:
    cancel = threading.Event()
    cancel.set()
    out = tmp_path / "cancelled.mp4"
    with pytest.raises(Cancelled):
        mux_video(picture.path, new_audio(), out, cancel=cancel)
    assert list(tmp_path.iterdir()) == []


def test_mux_reports_progress(tmp_path: Path, picture: synth.AvFileTruth) -> None:
    seen: list[Progress] = []
    mux_video(picture.path, new_audio(), tmp_path / "p.mp4", progress=seen.append)
    fractions = [p.fraction for p in seen if p.stage == "mux"]
    assert fractions and fractions == sorted(fractions) and fractions[-1] == 1.0
