"""Kill the indexer anywhere, run it again: no duplicate ids, nothing missing, exact counts.

Two layers:
- in-process: a checkpoint hook (``indexer.set_checkpoint_hook``) raises at the indexer's
  checkpoints (fast, every point);
- real: ``sfxmatch library index`` SIGKILLed at a checkpoint by the hook that
  ``python -m sfxmatch.testing.crash`` installs, and by the test itself once progress shows
  files done, then resumed (slow: a process start loads torch, LanceDB and the model each time).

Both use the real LanceDB store and small batches (``Settings.index_batch`` /
``SFXMATCH_INDEX_BATCH``).
"""

from __future__ import annotations

import importlib
import os
import re
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sfxmatch.config import Settings
from sfxmatch.library.vector_ids import audio_vector_ids, label_vector_id
from sfxmatch.pipeline import Pipeline
from sfxmatch.testing.synth import make_audio_file, noise_burst, tone

indexer = importlib.import_module("sfxmatch.library.indexer")

RATE = 16000
BATCH = 4
WORDS = ("door", "glass", "step", "bell", "drip", "click", "whoosh", "thud", "chime")
BED_SECONDS = 8.0
BED_WINDOWS = 7  # 2 s windows every 1 s over 8 s
LIBRARY = "crashlib"


def make_library(root: Path, n_short: int = 36, n_beds: int = 4) -> dict[str, int]:
    """Short effects and 8 s beds (ambience by override, so windowed); returns relpath ->
    expected window count."""
    expected: dict[str, int] = {}
    for i in range(n_short):
        rel = f"set {i % 3}/{WORDS[i % len(WORDS)]} {chr(97 + i // len(WORDS))}.wav"
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        make_audio_file(path, tone(180 + 23 * i, 0.4 + 0.02 * i, RATE), RATE)
        expected[rel] = 0
    for i in range(n_beds):
        rel = f"beds/forest bed {chr(97 + i)}.wav"
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        make_audio_file(path, noise_burst(BED_SECONDS, RATE, amplitude=0.2, seed=i), RATE)
        expected[rel] = BED_WINDOWS
    return expected


def open_pipeline(folder: Path, encoder: object | None = None) -> Pipeline:
    settings = Settings(cache_dir=folder / "cache", data_dir=folder / "data", index_batch=BATCH)
    return Pipeline(settings, model="imagebind-tiny", encoder=encoder)  # type: ignore[arg-type]


def stored_ids(pipeline: Pipeline) -> Counter[str]:
    table = pipeline.store._open_table()  # type: ignore[attr-defined]
    rows = table.search().select(["id", "library"]).limit(None).to_arrow().to_pylist()
    assert {r["library"] for r in rows} <= {LIBRARY}
    return Counter(r["id"] for r in rows)


def check_after_kill(pipeline: Pipeline) -> tuple[int, int]:
    """What must hold at any instant: no duplicate ids, and every committed sound whose file
    is still there has all its vectors (upserts come before commits; the vectors of deleted
    files go before their rows). Returns (rows, vectors)."""
    ids = stored_ids(pipeline)
    assert [i for i, n in ids.items() if n > 1] == []
    sounds = pipeline.state.sounds(LIBRARY)
    for s in sounds:
        if not s.entry.path.exists():
            continue
        missing = [i for i in audio_vector_ids(s.entry.sound_id, s.windows) if i not in ids]
        assert missing == [], s.entry.relpath
    return len(sounds), sum(ids.values())


def check_complete(pipeline: Pipeline, root: Path, expected: dict[str, int]) -> None:
    """After a run that finished: the index is exactly the files on disk."""
    ids = stored_ids(pipeline)
    assert [i for i, n in ids.items() if n > 1] == []
    sounds = pipeline.state.sounds(LIBRARY)
    assert len(sounds) == len(expected)  # one row per file
    assert {s.entry.relpath: s.windows for s in sounds} == expected
    assert all(s.entry.path.is_file() for s in sounds)
    assert len({s.entry.sound_id for s in sounds}) == len(sounds)
    config = pipeline.registry.get(LIBRARY)
    want = {i for s in sounds for i in audio_vector_ids(s.entry.sound_id, s.windows)}
    labels = {label_vector_id(config.library_id, s.label, s.kind) for s in sounds}
    assert set(ids) == want | labels
    n_vectors = len(expected) + sum(expected.values()) + len(labels)
    assert pipeline.store.count() == n_vectors
    assert not pipeline.library_status(LIBRARY)[0].faults


# --------------------------------------------------------------------------- in-process


class Killed(BaseException):
    """Stands for SIGKILL: nothing after the kill point runs, nothing catches it."""


@pytest.fixture(scope="module")
def encoder(tmp_path_factory: pytest.TempPathFactory) -> object:
    from sfxmatch.embed.encoder import load_encoder

    settings = Settings(cache_dir=tmp_path_factory.mktemp("enc-cache"))
    return load_encoder("imagebind-tiny", weights="random", seed=0, settings=settings)


@pytest.fixture
def kill_at() -> Iterator[dict[str, object]]:
    plan: dict[str, object] = {"spec": None}
    counter: Counter[str] = Counter()

    def kill_point(name: str) -> None:
        spec = plan["spec"]
        if not spec:
            return
        point, _, nth = str(spec).partition(":")
        if point == name:
            counter[name] += 1
            if counter[name] >= int(nth):
                plan["spec"] = None
                counter.clear()
                raise Killed(spec)

    indexer.set_checkpoint_hook(kill_point)
    try:
        yield plan
    finally:
        indexer.set_checkpoint_hook(None)


def test_killed_in_process_at_every_point_then_resumed(
    tmp_path: Path, encoder: object, kill_at: dict[str, object]
) -> None:
    root = tmp_path / "lib"
    expected = make_library(root, n_short=14, n_beds=2)  # 4 batches of 4
    with open_pipeline(tmp_path, encoder) as pipeline:
        pipeline.library_add(root, LIBRARY, kind_overrides=[("beds/**", "ambience")])

        def run(spec: str | None) -> None:
            kill_at["spec"] = spec
            if spec is None:
                pipeline.library_index([LIBRARY])
                return
            with pytest.raises(Killed):
                pipeline.library_index([LIBRARY])

        run("scanned:1")
        assert check_after_kill(pipeline) == (0, 0)
        run("upserted:1")  # first batch stored, not committed
        rows, vectors = check_after_kill(pipeline)
        assert rows == 0 and vectors > 0
        run("upserted:2")  # first batch committed, second stored
        assert check_after_kill(pipeline)[0] == BATCH
        run("committed:1")
        assert check_after_kill(pipeline)[0] == 2 * BATCH
        run(None)
        check_complete(pipeline, root, expected)
        count = pipeline.store.count()

        # Deletions: killed after the vectors went, before the rows did.
        gone = sorted(expected)[::5]
        for rel in gone:
            (root / rel).unlink()
            del expected[rel]
        run("deleted:1")
        assert check_after_kill(pipeline)[0] == len(expected) + len(gone)
        assert pipeline.store.count() < count
        run(None)
        check_complete(pipeline, root, expected)


def test_cancel_between_batches_keeps_what_was_committed(tmp_path: Path, encoder: object) -> None:
    import threading

    root = tmp_path / "lib"
    expected = make_library(root, n_short=12, n_beds=0)
    cancel = threading.Event()
    with open_pipeline(tmp_path, encoder) as pipeline:
        pipeline.library_add(root, LIBRARY, kind_overrides=[("beds/**", "ambience")])

        def stop_after_two_batches(p: object) -> None:
            if getattr(p, "stage", "") == "index" and getattr(p, "done", 0) >= 2 * BATCH:
                cancel.set()

        (report,) = pipeline.library_index(cancel=cancel, on_file=stop_after_two_batches)
        assert report.cancelled and report.indexed == 2 * BATCH
        assert check_after_kill(pipeline)[0] == 2 * BATCH
        (report,) = pipeline.library_index()
        assert not report.cancelled and report.added == len(expected) - 2 * BATCH
        check_complete(pipeline, root, expected)


# --------------------------------------------------------------------------- real kills


def _env(folder: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SFXMATCH_")}
    env.update(
        SFXMATCH_DATA_DIR=str(folder / "data"),
        SFXMATCH_CACHE_DIR=str(folder / "cache"),
        SFXMATCH_INDEX_BATCH=str(BATCH),
    )
    return env


ARGS = ["library", "index", "--model", "imagebind-tiny"]
INDEX = [sys.executable, "-m", "sfxmatch", *ARGS]


def index_process(folder: Path, kill: str | None = None) -> subprocess.CompletedProcess[str]:
    # Killed at a checkpoint: the testing entry point installs the hook, then runs the CLI.
    command = [sys.executable, "-m", "sfxmatch.testing.crash", kill, *ARGS] if kill else INDEX
    return subprocess.run(command, env=_env(folder), capture_output=True, text=True, timeout=300)


def check_killed(folder: Path) -> tuple[int, int]:
    with open_pipeline(folder) as pipeline:
        return check_after_kill(pipeline)


@pytest.mark.slow
def test_sigkilled_index_process_resumes_exactly(tmp_path: Path) -> None:
    root = tmp_path / "lib"
    expected = make_library(root)
    with open_pipeline(tmp_path) as pipeline:
        pipeline.library_add(root, LIBRARY, kind_overrides=[("beds/**", "ambience")])

    for kill, rows in (("scanned:1", 0), ("upserted:1", 0), ("upserted:2", BATCH)):
        done = index_process(tmp_path, kill)
        assert done.returncode == -signal.SIGKILL, done.stderr
        assert check_killed(tmp_path)[0] == rows, kill
    done = index_process(tmp_path, "committed:1")  # a new process: its first commit
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert check_killed(tmp_path)[0] == 2 * BATCH

    # Killed from outside once the progress output shows files done (no timing guesses).
    proc = subprocess.Popen(
        INDEX, env=_env(tmp_path), stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
        text=True,
    )  # fmt: skip
    assert proc.stderr is not None
    progress = re.compile(rf"^{LIBRARY}: index (\d+)/(\d+)")
    seen = []
    for line in proc.stderr:
        seen.append(line)
        match = progress.match(line)
        if match and int(match.group(1)) > 0:
            proc.send_signal(signal.SIGKILL)
            break
    assert proc.wait(timeout=300) == -signal.SIGKILL, "".join(seen)
    proc.stderr.close()
    assert check_killed(tmp_path)[0] >= 3 * BATCH

    done = index_process(tmp_path)
    assert done.returncode == 0, done.stderr
    with open_pipeline(tmp_path) as pipeline:
        check_complete(pipeline, root, expected)
        before = pipeline.store.count()

    gone = sorted(expected)[1::6]
    for rel in gone:
        (root / rel).unlink()
        del expected[rel]
    done = index_process(tmp_path, "deleted:1")
    assert done.returncode == -signal.SIGKILL, done.stderr
    rows, vectors = check_killed(tmp_path)
    assert rows == len(expected) + len(gone) and vectors < before

    done = index_process(tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"{len(expected)} sounds indexed" in done.stdout
    with open_pipeline(tmp_path) as pipeline:
        check_complete(pipeline, root, expected)
