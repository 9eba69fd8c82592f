"""Sounds editors cannot import are conformed into Broadcast WAV (sfxmatch.conform).

A library of Ogg Vorbis, Opus, FLAC, MP3 and WAV sounds, indexed with a tiny model: every
clip placed by the Resolve script in the Resolve double (which, like Resolve, imports only the
formats of its manual's list) and every clip of every exported timeline (generic, Resolve and
Premiere OTIO, FCP7 XML) points at a file in a format Resolve imports. The conform is made
once and reused until its source changes; ``keep_original_formats`` keeps the originals.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np
import opentimelineio as otio
import pytest
import resolve_double as rd
from resolve_client import asks_for_clips, resolve_clips
from sfxmatch import media
from sfxmatch.config import Settings
from sfxmatch.conform import ConformCache, importable, read_bext_description
from sfxmatch.errors import ConformError
from sfxmatch.pipeline import Pipeline
from sfxmatch.suggestions import SuggestOptions
from sfxmatch.testing import synth
from sfxmatch.timeline import timeline_to_string, to_otio
from sfxmatch.timeline.choices import payload
from sfxmatch.timeline.flavours import url_to_path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "plugins" / "resolve" / "Suggest sounds.py"
SOUNDS = {  # name: (seconds, tone Hz or 0 for noise, format)
    "rain bed": (6.0, 0, "ogg"),
    "wind bed": (5.0, 0, "opus"),
    "sea bed": (7.0, 0, "flac"),
    "room bed": (6.0, 0, "mp3"),
    "knock": (0.4, 900, "ogg"),
    "beep": (0.3, 1500, "opus"),
    "thud": (0.5, 120, "flac"),
    "click": (0.2, 3000, "wav"),
}

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg binary")


def encode(wav: Path, fmt: str) -> Path:
    if fmt == "wav":
        return wav
    out = wav.with_suffix("." + fmt)
    codec = {"ogg": "libvorbis", "opus": "libopus", "flac": "flac", "mp3": "libmp3lame"}[fmt]
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-i", str(wav), "-c:a", codec, str(out)], check=True
    )
    wav.unlink()
    return out


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    base = tmp_path_factory.mktemp("conform")
    settings = Settings.from_env(
        {"SFXMATCH_DATA_DIR": str(base / "data"), "SFXMATCH_CACHE_DIR": str(base / "cache")}
    )
    sounds = base / "sounds"
    sounds.mkdir()
    for name, (seconds, freq, fmt) in SOUNDS.items():
        samples = (
            synth.noise_burst(seconds, 48000) if not freq else synth.tone(freq, seconds, 48000)
        )
        wav = sounds / f"{name}.wav"
        media.write_wav(wav, media.Audio(np.atleast_2d(samples).astype(np.float32) * 0.5, 48000))
        encode(wav, fmt)
    video = base / "shot.mp4"
    synth.make_cut_video(video, fps=25, shot_lengths=(75, 75))
    pipeline = Pipeline(settings, model="pe-av-tiny")
    pipeline.library_add(sounds, "mixed", kind_overrides=[("*bed*", "ambience")])
    pipeline.library_index()
    yield pipeline, video, base
    pipeline.close()


def sound_paths(suggestions) -> set[str]:
    paths = {p.path for p in suggestions.placements}
    paths |= {c.path for p in suggestions.placements for c in p.alternatives}
    for scene in suggestions.scenes:
        paths |= {c.path for c in scene.ambience}
        paths |= {c.path for e in scene.effects for c in e.candidates}
    return paths


def timeline_media(timeline: otio.schema.Timeline) -> list[str]:
    return [
        url_to_path(clip.media_reference.target_url)
        for track in timeline.audio_tracks()
        for clip in track.find_clips()
    ]


def test_every_clip_points_at_a_format_resolve_imports(world, tmp_path):
    pipeline, video, _ = world
    options = SuggestOptions(top_k=8, max_effects=8, min_effect=0.1, spatial=False)
    s = pipeline.suggest(video, options)
    paths = sound_paths(s)
    assert paths and all(importable(p) for p in paths), sorted(paths)
    conformed = [p for p in paths if "conform" in Path(p).parts]
    assert conformed, "no sound of the library needed a conform"
    for path in conformed:
        with wave.open(path) as w:
            assert (w.getframerate(), w.getsampwidth()) == (48000, 3)
        original = read_bext_description(path)
        assert "(from " in original  # our label, then the original file's name
        assert Path(path).name.split(".")[0] in original
    # every exported timeline
    for flavour in ("generic", "resolve", "premiere"):
        timeline = to_otio(s, flavour)
        found = timeline_media(timeline)
        assert found and all(importable(p) for p in found), (flavour, found)
        xml = timeline_to_string(timeline, ".xml")
        read = otio.adapters.read_from_string(xml, adapter_name="fcp_xml")
        assert all(importable(p) for p in timeline_media(read))
    # the Resolve script, placing what the pipeline suggested, in the Resolve double
    project = rd.Project("25", "01:00:00:00")
    item = rd.MediaPoolItem(str(video), "25", 150, "Video")
    project.timeline.add_clip("video", 1, item, project.timeline.GetStartFrame(), 150)
    spec = importlib.util.spec_from_file_location("sfxmatch_resolve_conform", SCRIPT)
    plugin = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(plugin)
    ui = rd.UIManager(lambda w: "OK" if w.id == "sfxmatchPick" else "Close")
    summary = plugin.main(
        resolve=rd.Resolve(project, ui),
        runner=lambda argv, on_line: (
            resolve_clips(argv) if asks_for_clips(argv) else (0, json.dumps(payload(s)), "")
        ),
        ui=ui,
        dispatcher=rd.UIDispatcher,
        env={"SFXMATCH_CLIENT": str(video), "PATH": ""},
        work_dir=str(tmp_path),
        log=lambda line: None,
    )
    assert summary["status"] == "placed", summary["message"]
    assert summary["dropped"] == []
    placed = [i.media.path for t in project.timeline.tracks["audio"] for i in t.items]
    assert placed and all(importable(p) for p in placed)


def test_keep_original_formats_keeps_them(world):
    pipeline, video, _ = world
    options = SuggestOptions(top_k=8, spatial=False, keep_original_formats=True)
    paths = sound_paths(pipeline.suggest(video, options))
    assert any(not importable(p) for p in paths)
    assert all("conform" not in Path(p).parts for p in paths)


def test_a_conform_is_reused_until_its_source_changes(tmp_path):
    source = tmp_path / "lib" / "rain.wav"
    source.parent.mkdir()
    media.write_wav(
        source,
        media.Audio(np.atleast_2d(synth.noise_burst(1.0, 44100)).astype(np.float32) * 0.3, 44100),
    )
    ogg = encode(source, "ogg")
    cache = ConformCache(tmp_path / "conform", lambda _path: "lib-x")
    first = cache.conform(ogg, "rain")
    assert Path(first).parent == tmp_path / "conform" / "lib-x"
    assert cache.conformed == 1 and importable(first)
    made = os.stat(first)
    os.chmod(first, 0o644)
    again = ConformCache(tmp_path / "conform", lambda _path: "lib-x")
    assert again.conform(ogg, "rain") == first and again.conformed == 0  # reused
    assert os.stat(first).st_mtime_ns == made.st_mtime_ns
    # the source changes: a new conform, from the new content
    os.utime(ogg, ns=(made.st_mtime_ns + 10**9, made.st_mtime_ns + 10**9))
    changed = again.conform(ogg, "rain")
    assert changed != first and again.conformed == 1
    assert media.probe(changed).audio[0].sample_rate == 48000
    decoded = media.load_audio(changed).samples
    reference = media.load_audio(ogg, sample_rate=48000).samples
    assert decoded.shape == reference.shape
    assert np.max(np.abs(decoded - reference)) < 2.0**-22  # 24-bit rounding only


def test_a_sound_that_cannot_be_decoded_is_a_typed_error(tmp_path):
    bad = tmp_path / "broken.ogg"
    bad.write_bytes(b"OggS not really")
    with pytest.raises(ConformError) as caught:
        ConformCache(tmp_path / "c").conform(bad)
    assert caught.value.path == bad
    assert not list((tmp_path / "c").rglob("*.wav"))  # nothing half-written left
