"""Compressed mix files go through pydub and the ffmpeg binary."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from sfxmatch import media
from sfxmatch.mix.output import write_mix

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg binary")


@pytest.mark.parametrize(("suffix", "codecs"), [(".flac", {"flac"}), (".mp3", {"mp3", "mp3float"})])
def test_compressed_mix_decodes_to_the_same_length(tmp_path: Path, suffix: str, codecs: set[str]):
    rng = np.random.default_rng(0)
    mix = (rng.normal(size=(2, 48_000)) * 0.1).astype(np.float32)
    out = write_mix(tmp_path / f"mix{suffix}", mix, 48_000)
    info = media.probe(out)
    assert info.audio[0].codec in codecs
    assert abs(info.duration - 1.0) < 0.06  # mp3 adds encoder padding
    assert [p.name for p in tmp_path.iterdir()] == [out.name]  # no temporary left behind
    if suffix == ".flac":  # lossless: the 24-bit WAV's samples come back
        back = media.load_audio(out, channels="keep").samples
        assert back.shape == mix.shape
        assert np.max(np.abs(back - mix)) < 1e-5
