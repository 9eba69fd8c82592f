"""``sfxmatch library add|index|status|search|remove`` through ``sfxmatch._cli.main`` (the
tiny random-weights model, built once for the module) and, for status, a real process."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sfxmatch import _cli as cli
from sfxmatch.config import Settings
from sfxmatch.pipeline import Pipeline
from sfxmatch.store.base import Filter
from sfxmatch.testing.synth import make_audio_file, noise_burst, tone

RATE = 16000
TINY = ["--model", "imagebind-tiny"]


@pytest.fixture(scope="module")
def shared_encoder(tmp_path_factory: pytest.TempPathFactory) -> object:
    from sfxmatch.embed.encoder import load_encoder

    settings = Settings(cache_dir=tmp_path_factory.mktemp("enc-cache"))
    return load_encoder("imagebind-tiny", weights="random", seed=0, settings=settings)


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shared_encoder: object) -> Path:
    """Data and cache under tmp_path; every Pipeline the CLI makes gets the shared encoder."""
    import sfxmatch.embed.encoder as encoder_module

    for name in [k for k in os.environ if k.startswith("SFXMATCH_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("SFXMATCH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SFXMATCH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(encoder_module, "load_encoder", lambda *a, **kw: shared_encoder)
    return tmp_path


@pytest.fixture
def library(tmp_path: Path) -> Path:
    root = tmp_path / "My Sounds"
    for name, freq in (("door slam", 200), ("glass break", 900), ("bell ring", 600)):
        path = root / "effects" / f"{name}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        make_audio_file(path, tone(freq, 1.0, RATE), RATE)
    (root / "beds").mkdir()
    make_audio_file(root / "beds" / "rain bed.wav", noise_burst(22.0, RATE, amplitude=0.2), RATE)
    (root / "effects" / "broken.wav").write_text("not audio, just a name\n")
    (root / "effects" / "door slam.txt").write_text("A heavy door slams.\n")
    return root


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def tree_digest(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def store_count(folder: Path, name: str) -> int:
    settings = Settings(cache_dir=folder / "cache", data_dir=folder / "data")
    with Pipeline(settings, model="imagebind-tiny") as pipeline:
        return pipeline.store.count(Filter(library=name))


def test_add_index_status_search_remove(
    env: Path, library: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files_before = tree_digest(library)
    code, out, _ = run(capsys, "library", "add", str(library), "--name", "sfx")
    assert code == 0 and "added library 'sfx'" in out and str(library) in out

    code, out, err = run(capsys, "library", "index", *TINY, "--json")
    assert code == 0, err
    (report,) = json.loads(out)
    assert report["library"] == "sfx" and report["added"] == report["indexed"] == 4
    assert report["failed"] == 0 and not report["cancelled"]
    assert [(Path(f["path"]).name, f["kind"]) for f in report["faults"]] == [
        ("broken.wav", "not_audio")
    ]
    assert "RANDOM weights" in err  # the development-only warning is never silent

    code, out, _ = run(capsys, "library", "index", *TINY)  # nothing to do, plain text
    assert code == 0
    assert out.splitlines()[0].startswith("sfx: 4 sounds indexed (0 added, 0 changed")

    code, out, _ = run(capsys, "library", "status", *TINY, "--json")
    assert code == 0
    (status,) = json.loads(out)
    assert status["name"] == "sfx" and status["root"] == str(library) and status["root_exists"]
    assert status["sounds"] == 4 and sum(status["by_kind"].values()) == 4
    assert status["by_kind"].get("ambience") == 1  # 22 s bed
    assert status["last_run"]["added"] == 0 and status["last_run"]["unchanged"] == 4
    assert [(Path(f["path"]).name, f["kind"]) for f in status["faults"]] == [
        ("broken.wav", "not_audio")
    ]

    code, out, _ = run(capsys, "library", "status", "sfx", *TINY)
    assert code == 0
    assert "4 sounds:" in out and "1 file(s) skipped:" in out
    assert f"{library / 'effects' / 'broken.wav'}: has an audio name but" in out

    code, out, _ = run(capsys, "library", "search", "door", *TINY, "--json", "--kind", "effect")
    assert code == 0
    found = json.loads(out)
    assert len(found) == 3 and {c["kind"] for c in found} == {"effect"}
    assert {c["label"] for c in found} == {"a heavy door slams", "glass break", "bell ring"}
    assert all(Path(c["path"]).is_file() for c in found)
    assert [c["score"] for c in found] == sorted((c["score"] for c in found), reverse=True)

    code, out, _ = run(capsys, "library", "search", "rain", *TINY, "--library", "sfx")
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 4 and lines[0].lstrip().startswith("1.")
    assert any("ambience" in line and "rain bed" in line for line in lines)

    assert store_count(env, "sfx") > 4
    code, out, _ = run(capsys, "library", "remove", "sfx", *TINY)
    assert code == 0 and "4 sounds forgotten" in out and "no file was touched" in out
    assert store_count(env, "sfx") == 0
    assert tree_digest(library) == files_before  # remove never touches the sounds
    code, out, _ = run(capsys, "library", "status", *TINY)
    assert code == 0 and out.startswith("no libraries yet")
    code, out, _ = run(capsys, "library", "status", *TINY, "--json")
    assert json.loads(out) == []


def test_remove_sweeps_vectors_no_committed_row_names(
    env: Path, library: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run killed between upsert and commit leaves vectors the state does not know."""
    from sfxmatch.store.base import Record, SoundMeta

    assert run(capsys, "library", "add", str(library), "--name", "sfx")[0] == 0
    assert run(capsys, "library", "index", *TINY)[0] == 0
    settings = Settings(cache_dir=env / "cache", data_dir=env / "data")
    with Pipeline(settings, model="imagebind-tiny") as pipeline:
        vector = np.ones(pipeline.store.dim, np.float32) / np.sqrt(pipeline.store.dim)
        meta = SoundMeta(sound_id="orphan", library="sfx", kind="effect", label="orphan")
        pipeline.store.upsert([Record("orphan:0", vector, meta)])
    assert run(capsys, "library", "remove", "sfx", *TINY)[0] == 0
    assert store_count(env, "sfx") == 0


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["library", "index", "nope", *TINY], id="index-unknown"),
        pytest.param(["library", "status", "nope", *TINY], id="status-unknown"),
        pytest.param(["library", "remove", "nope", *TINY], id="remove-unknown"),
        pytest.param(["library", "search", "x", "--library", "nope", *TINY], id="search-unknown"),
        pytest.param(["library", "add", "{root}/effects/door slam.wav"], id="add-a-file"),
        pytest.param(["library", "add", "{root}/missing"], id="add-missing"),
        pytest.param(["library", "add", "{root}/effects", "--name", "sfx"], id="duplicate-name"),
        pytest.param(["library", "add", "{root}", "--name", "again"], id="duplicate-root"),
        pytest.param(["library", "add", "{root}/beds", "--name", "/bad"], id="bad-name"),
        pytest.param(["library", "add", "{root}/beds", "--kind", "**=noise"], id="bad-kind"),
        pytest.param(["library", "search", "  ", *TINY], id="empty-search"),
    ],
)
def test_user_errors_are_one_line_exit_2(
    env: Path, library: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    assert run(capsys, "library", "add", str(library), "--name", "sfx")[0] == 0
    registry = (env / "data" / "libraries" / "libraries.json").read_text()
    code, out, err = run(capsys, *[a.replace("{root}", str(library)) for a in argv])
    assert code == 2
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("sfxmatch: error: "), err
    assert (env / "data" / "libraries" / "libraries.json").read_text() == registry


def test_status_in_a_real_process_lists_faults(
    env: Path, library: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "library", "add", str(library), "--name", "sfx")[0] == 0
    assert run(capsys, "library", "index", *TINY)[0] == 0
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SFXMATCH_")}
    environ.update(SFXMATCH_DATA_DIR=str(env / "data"), SFXMATCH_CACHE_DIR=str(env / "cache"))
    done = subprocess.run(
        [sys.executable, "-m", "sfxmatch", "library", "status", *TINY],
        env=environ, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "sfx: " + str(library) in done.stdout
    assert "1 file(s) skipped:" in done.stdout and "broken.wav: has an audio name" in done.stdout
    done = subprocess.run(
        [sys.executable, "-m", "sfxmatch", "library", "status", "nope", *TINY],
        env=environ, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "no library named 'nope'" in done.stderr
