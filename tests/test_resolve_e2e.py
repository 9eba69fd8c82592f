"""The Resolve script end to end: the double's timeline, the real ``sfxmatch`` CLI as client,
a real indexed library and the tiny model. What lands on the tracks is what the CLI suggested."""

from __future__ import annotations

import importlib.util
import itertools
import json
import os
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import resolve_double as rd
from sfxmatch import media
from sfxmatch.config import Settings
from sfxmatch.pipeline import Pipeline
from sfxmatch.testing import synth
from test_service_support import short_dir
from tiny_models import TINY_MODELS

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "plugins" / "resolve" / "Suggest sounds.py"
CLIENT = Path(sys.executable).with_name("sfxmatch")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CLIENT.exists(), reason="the sfxmatch console script is not installed"),
]


@pytest.fixture(scope="module", params=TINY_MODELS)
def world(request, tmp_path_factory):
    """A tiny library (two beds, effects) indexed with a tiny model, and a video with a cut."""
    base = short_dir("sfxr-")  # a daemon's Unix socket path must stay short
    env = {
        **os.environ,
        "SFXMATCH_DATA_DIR": str(base / "data"),
        "SFXMATCH_CACHE_DIR": str(base / "cache"),
        "SFXMATCH_MODEL": request.param,
    }
    sounds = base / "sounds"
    sounds.mkdir()
    rate = 48_000
    for name, seconds, freq in (("rain bed", 25.0, 0), ("wind bed", 22.0, 0), ("knock", 0.4, 900)):
        samples = synth.noise_burst(seconds, rate) if not freq else synth.tone(freq, seconds, rate)
        samples = np.atleast_2d(samples).astype(np.float32) * 0.6
        media.write_wav(sounds / f"{name}.wav", media.Audio(samples, rate))
    video = base / "shot.mp4"
    synth.make_cut_video(video, fps=25, shot_lengths=(50, 50))
    settings = Settings.from_env(env)
    with Pipeline(settings, model=request.param) as pipeline:
        pipeline.library_add(sounds, "e2e", kind_overrides=[("*bed*", "ambience")])
        pipeline.library_index()
    return env, video, base


def _plugin():
    spec = importlib.util.spec_from_file_location("sfxmatch_resolve_e2e", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _project(video: Path, rate: str) -> rd.Project:
    project = rd.Project(rate, "01:00:00:00")
    for path in (video.parent / "sounds").iterdir():
        project.sounds[str(path)] = media.probe(path).duration
    timeline = project.timeline
    frames = rd.frames_of(4.0, rate)
    item = rd.MediaPoolItem(str(video), "25", 100, "Video")
    timeline.add_clip("video", 1, item, timeline.GetStartFrame(), frames, left=0, name="shot")
    return project


@pytest.fixture(params=["local", "daemon"])
def route(request, world):
    """The CLI the script runs works in-process, or hands the job to a running daemon."""
    if request.param == "local":
        yield None
        return
    from sfxmatch.service.server import Daemon, DaemonConfig

    env, _, base = world
    settings = Settings.from_env(env)
    pipeline = Pipeline(settings, model=env["SFXMATCH_MODEL"])
    config = DaemonConfig(data_dir=settings.data_dir, socket=base / "d.sock", grace=0.0)
    daemon = Daemon(config, pipeline=pipeline).start()
    yield daemon
    daemon.stop(grace=0)
    pipeline.close()


@pytest.mark.parametrize("rate", ["24"])  # a timeline rate other than the media's 25
def test_script_places_what_the_real_cli_suggested(world, route, tmp_path, monkeypatch, rate):
    env, video, _ = world
    for key in ("SFXMATCH_DATA_DIR", "SFXMATCH_CACHE_DIR", "SFXMATCH_MODEL"):
        monkeypatch.setenv(key, env[key])
    project = _project(video, rate)
    seen: list[str] = []

    def press_ok(window):
        seen.append(window.id)
        return "OK" if window.id == "sfxmatchPick" else "Close"

    ui = rd.UIManager(press_ok)
    summary = _plugin().main(
        resolve=rd.Resolve(project, ui),
        ui=ui,
        dispatcher=rd.UIDispatcher,
        env={**env, "SFXMATCH_CLIENT": str(CLIENT)},
        work_dir=str(tmp_path),
        log=lambda line: None,
    )
    assert summary["status"] == "placed", summary["message"]
    assert "sfxmatchPick" in seen
    # The edit the script sent is what the CLI read: find the suggestions it answered with.
    (edit_file,) = tmp_path.glob("*.edit.json")
    sent = json.loads(edit_file.read_text())
    assert Fraction(sent["fps"]) == Fraction(rate)
    assert sent["clips"][0]["path"] == str(video)
    timeline = project.timeline
    start = timeline.GetStartFrame()
    audio = {t.name: sorted(t.items, key=lambda i: i.start) for t in timeline.tracks["audio"]}
    assert audio.get("Ambience"), audio
    fps = Fraction(rate)
    for track, items in audio.items():
        for a, b in itertools.pairwise(items):
            assert a.end <= b.start, f"overlap on {track}"
        for item in items:
            assert start <= item.start < start + 4 * fps + 1
            assert item.media is not None and Path(item.media.path).parent.name == "sounds"
    assert summary["placed"] == sum(len(v) for v in audio.values())
    assert summary["dropped"] == []

    # A second run replaces its own clips: the same count, no duplicates.
    again = _plugin().main(
        resolve=rd.Resolve(project, ui),
        ui=ui,
        dispatcher=rd.UIDispatcher,
        env={**env, "SFXMATCH_CLIENT": str(CLIENT)},
        work_dir=str(tmp_path),
        log=lambda line: None,
    )
    assert again["status"] == "placed"
    assert again["replaced"] == summary["placed"]
    total = sum(len(t.items) for t in project.timeline.tracks["audio"])
    assert total == summary["placed"]
    if route is not None:  # the suggestions came from the daemon's jobs, not a local model
        from sfxmatch.client import Client
        from sfxmatch.service import paths

        with Client(route.addresses[0], paths.read_token(route.token_file)) as client:
            jobs = [j for j in client.list_jobs() if j.kind == "suggest"]
        assert len(jobs) == 2 and all(j.state == "succeeded" for j in jobs)
