"""The library indexer through ``Pipeline``: real sounds end to end, incremental runs, and a
corpus of bad and unusual files (tiny random-weights ImageBind, the real LanceDB store)."""

from __future__ import annotations

import importlib
import itertools
import os
import wave
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from sfxmatch.config import Settings
from sfxmatch.embed.encoder import window_starts
from sfxmatch.library.indexer import MAX_WINDOWS, gets_windows, window_hop
from sfxmatch.library.registry import decode_path
from sfxmatch.library.vector_ids import audio_vector_ids, label_vector_id, parse_vector_id
from sfxmatch.pipeline import Pipeline
from sfxmatch.testing.synth import make_audio_file, noise_burst, tone
from tiny_models import TINY_MODELS

scan_module = importlib.import_module("sfxmatch.library.scan")

RATE = 16000
IS_ROOT = os.name == "posix" and os.geteuid() == 0


# --------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module", params=TINY_MODELS)
def encoder(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[object]:
    """One tiny random-weights encoder for the module (building it costs seconds). One torch
    thread: on 2 shared cores a second one fights the indexer's reader thread (3x slower,
    see BENCHMARKS.md "Library indexing throughput")."""
    import torch
    from sfxmatch.embed.encoder import load_encoder

    settings = Settings(cache_dir=tmp_path_factory.mktemp("enc-cache"))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield load_encoder(request.param, weights="random", seed=0, settings=settings)
    finally:
        torch.set_num_threads(threads)


def make_pipeline(folder: Path, encoder: object) -> Pipeline:
    settings = Settings(cache_dir=folder / "cache", data_dir=folder / "data")
    return Pipeline(settings, encoder=encoder)  # type: ignore[arg-type]


def stored_rows(pipeline: Pipeline, library: str | None = None) -> list[dict[str, object]]:
    """Every row of the LanceDB table (not through the search path): ids as stored."""
    table = pipeline.store._open_table()  # type: ignore[attr-defined]
    columns = ["id", "sound_id", "library", "modality", "kind", "label", "path", "duration"]
    columns += ["start", "end"]
    rows = table.search().select(columns).limit(None).to_arrow().to_pylist()
    return [r for r in rows if library is None or r["library"] == library]


def expected_ids(pipeline: Pipeline, library: str) -> set[str]:
    """What the store must hold for ``library`` according to the committed index state."""
    config = pipeline.registry.get(library)
    sounds = pipeline.state.sounds(library)
    ids = {i for s in sounds for i in audio_vector_ids(s.entry.sound_id, s.windows)}
    return ids | {label_vector_id(config.library_id, s.label, s.kind) for s in sounds}


def assert_store_matches_state(pipeline: Pipeline, library: str) -> list[dict[str, object]]:
    rows = stored_rows(pipeline, library)
    counts = Counter(r["id"] for r in rows)
    assert [i for i, n in counts.items() if n > 1] == [], "duplicate ids in the store"
    assert set(counts) == expected_ids(pipeline, library)
    return rows


def write(path: Path, signal: np.ndarray, rate: int = RATE, **kwargs: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    make_audio_file(path, signal, rate, **kwargs)  # type: ignore[arg-type]
    return path


def fault_kinds(pipeline: Pipeline, library: str) -> dict[str, str]:
    (status,) = pipeline.library_status(library)
    return {os.path.basename(f.path): f.kind for f in status.faults}


# --------------------------------------------------------------------------- real sounds

REAL = ("minetest", "tuxpaint", "ovos")


@pytest.fixture(scope="module")
def real_index(
    tmp_path_factory: pytest.TempPathFactory,
    encoder: object,
    minetest_sounds: Path,
    tuxpaint_sounds: Path,
    ovos_sounds: Path,
) -> Iterator[tuple[Pipeline, dict[str, object]]]:
    folder = tmp_path_factory.mktemp("real-index")
    pipeline = make_pipeline(folder, encoder)
    roots = dict(zip(REAL, (minetest_sounds, tuxpaint_sounds, ovos_sounds), strict=True))
    for name, root in roots.items():
        pipeline.library_add(root, name)
    reports = {r.library: r for r in pipeline.library_index()}
    yield pipeline, {"reports": reports, "roots": roots}
    pipeline.close()


def _audio_files(root: Path) -> set[str]:
    exts = {".ogg", ".mp3", ".wav", ".flac"}
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.suffix in exts}


@pytest.mark.real_media
def test_real_sounds_every_file_indexed(real_index: tuple[Pipeline, dict[str, object]]) -> None:
    pipeline, info = real_index
    reports, roots = info["reports"], info["roots"]
    for name in REAL:
        report = reports[name]  # type: ignore[index]
        files = _audio_files(roots[name])  # type: ignore[index]
        assert report.failed == 0 and report.faults == (), report.faults
        assert report.added == report.indexed == len(files) > 0
        sounds = pipeline.state.sounds(name)
        assert {s.entry.relpath for s in sounds} == files
        assert all(s.kind in ("ambience", "effect", "music") and s.kind_reason for s in sounds)
        assert all(s.duration > 0 for s in sounds)
        (status,) = pipeline.library_status(name)
        assert status.sounds == len(files) and sum(status.by_kind.values()) == len(files)


@pytest.mark.real_media
def test_real_sounds_labels_read_like_a_person_wrote_them(
    real_index: tuple[Pipeline, dict[str, object]],
) -> None:
    pipeline, _ = real_index
    labels = {
        (name, s.entry.relpath): (s.label, s.label_source)
        for name in REAL
        for s in pipeline.state.sounds(name)
    }
    expected = {
        ("minetest", "default/sounds/default_dirt_footstep.1.ogg"): ("dirt footstep", "filename"),
        ("minetest", "default/sounds/default_break_glass.2.ogg"): ("break glass", "filename"),
        ("minetest", "carts/sounds/carts_cart_moving.1.ogg"): ("cart moving", "filename"),
        ("tuxpaint", "animals/amphibians/frog.ogg"): ("a frog", "sidecar"),
        ("tuxpaint", "animals/birds/hen.ogg"): ("a brown hen", "sidecar"),
        ("tuxpaint", "vehicles/emergency/firetruck.ogg"): ("a fire truck", "sidecar"),
        ("ovos", "cow.mp3"): ("cow", "filename"),
        ("ovos", "owl.mp3"): ("owl", "filename"),
    }
    for key, want in expected.items():
        assert labels[key] == want, key
    # No label keeps the plumbing of a file name: extensions, take numbers, mod prefixes.
    for label, _ in labels.values():
        assert label and label == label.strip()
        assert not label.endswith((".ogg", ".mp3", ".txt")), label
        assert not any(ch in label for ch in "_/"), label


@pytest.mark.real_media
def test_real_sounds_vectors_per_sound_and_per_label(
    real_index: tuple[Pipeline, dict[str, object]],
) -> None:
    pipeline, _ = real_index
    window = pipeline.encoder.spec.audio_window
    windowed = expected_windowed = 0
    total = 0
    for name in REAL:
        rows = assert_store_matches_state(pipeline, name)
        by_sound = Counter(r["sound_id"] for r in rows if r["modality"] == "audio")
        sounds = pipeline.state.sounds(name)
        for s in sounds:
            long_bed = gets_windows(s.kind, s.duration, window)
            expected_windowed += long_bed
            assert (s.windows > 0) == long_bed, s.entry.relpath
            assert 0 <= s.windows <= MAX_WINDOWS
            assert by_sound[s.entry.sound_id] == 1 + s.windows
            windowed += s.windows > 0
        assert set(by_sound) == {s.entry.sound_id for s in sounds}
        text = [r for r in rows if r["modality"] == "text"]
        keys = Counter((r["label"], r["kind"]) for r in text)
        assert set(keys) == {(s.label, s.kind) for s in sounds}
        assert max(keys.values()) == 1  # one text vector per distinct (label, kind)
        total += len(rows)
        # The whole-sound vector spans the sound; windows lie inside it.
        for r in rows:
            if r["modality"] == "audio":
                assert 0.0 <= r["start"] < r["end"] <= r["duration"] + 1e-6  # type: ignore[operator]
                if not str(r["id"]).endswith(":0"):
                    assert r["end"] - r["start"] == pytest.approx(window)  # type: ignore[operator]
    assert windowed == expected_windowed
    if window <= 2.0:
        assert windowed >= 1  # minetest's fire_large is an 8 s seamless loop
    assert pipeline.store.count() == total


@pytest.mark.real_media
def test_real_sounds_search_filters(real_index: tuple[Pipeline, dict[str, object]]) -> None:
    pipeline, _ = real_index
    effects = pipeline.library_search("a cow mooing", kind="effect", top_k=50)
    assert len(effects) == 50 and {c.kind for c in effects} == {"effect"}
    assert len({c.sound_id for c in effects}) == 50  # one candidate per sound
    ambience = pipeline.library_search("fire crackling", kind="ambience", top_k=50)
    assert ambience and {c.kind for c in ambience} == {"ambience"}
    ovos = pipeline.library_search("farm animal", library="ovos", top_k=50)
    root = str(pipeline.registry.get("ovos").root)
    assert len(ovos) == 10 and all(c.path.startswith(root + os.sep) for c in ovos)
    assert {c.label for c in ovos} >= {"cow", "dog", "cat", "owl"}
    both = pipeline.library_search("bird", library=["ovos", "tuxpaint"], top_k=200)
    roots = tuple(str(pipeline.registry.get(n).root) + os.sep for n in ("ovos", "tuxpaint"))
    assert len(both) == 10 + 112 and all(c.path.startswith(roots) for c in both)


@pytest.mark.real_media
def test_real_sounds_second_run_does_nothing(
    real_index: tuple[Pipeline, dict[str, object]],
) -> None:
    pipeline, _ = real_index
    before = pipeline.store.count()
    for report in pipeline.library_index():
        assert (report.added, report.changed, report.moved, report.deleted) == (0, 0, 0, 0)
        assert report.relabelled == report.failed == 0
        assert report.unchanged == report.indexed
        assert report.model_seconds == 0.0  # nothing embedded
    assert pipeline.store.count() == before


# --------------------------------------------------------------------------- incremental


def test_incremental_run_reports_and_stores_exactly_the_changes(
    tmp_path: Path, encoder: object
) -> None:
    root = tmp_path / "lib"
    write(root / "keep.wav", tone(300, 1.0, RATE))
    write(root / "change.wav", tone(350, 1.0, RATE))
    write(root / "door hinge.wav", tone(400, 1.0, RATE))
    write(root / "gone.wav", tone(450, 1.0, RATE))
    write(root / "said.wav", tone(500, 1.0, RATE))
    (root / "said.txt").write_text("Wooden door creaks.\n")
    spec = encoder.spec  # type: ignore[attr-defined]
    bed_seconds = 5 * spec.audio_window  # long enough for windows of any model
    write(root / "beds" / "forest bed.wav", noise_burst(bed_seconds, RATE, amplitude=0.2, seed=1))
    hop = window_hop(bed_seconds, spec.audio_window)
    bed_windows = len(
        window_starts(round(bed_seconds * spec.audio_rate), spec.audio_rate, spec.audio_window, hop)
    )
    with make_pipeline(tmp_path, encoder) as pipeline:
        pipeline.library_add(root, "inc", kind_overrides=[("beds/**", "ambience")])
        (first,) = pipeline.library_index()
        assert (first.added, first.indexed, first.failed) == (6, 6, 0)
        ids = {s.entry.relpath: s.entry.sound_id for s in pipeline.state.sounds("inc")}
        bed = pipeline.state.sound(ids["beds/forest bed.wav"])
        assert bed is not None and bed.kind == "ambience" and bed.windows == bed_windows > 1
        assert pipeline.state.sound(ids["said.wav"]).label == "wooden door creaks"  # type: ignore[union-attr]
        assert_store_matches_state(pipeline, "inc")

        write(root / "new one.wav", tone(550, 1.0, RATE))  # added
        write(root / "change.wav", tone(900, 1.5, RATE))  # changed content
        # The bed becomes 1 s long, too short for windows: all its window vectors must go.
        write(root / "beds" / "forest bed.wav", noise_burst(1.0, RATE, seed=2))
        (root / "moved").mkdir()
        os.rename(root / "door hinge.wav", root / "moved" / "creaky hinge.wav")  # moved
        os.unlink(root / "gone.wav")  # deleted
        (root / "said.txt").write_text("A heavy metal gate slams shut.\n")  # relabelled
        (second,) = pipeline.library_index()

        assert (second.added, second.changed, second.moved, second.deleted) == (1, 2, 1, 1)
        # Relabelled: the sound whose sidecar changed, and the moved one (its name is its label).
        assert second.relabelled == 2 and second.failed == 0
        assert second.unchanged == 2 and second.indexed == 6
        sounds = {s.entry.relpath: s for s in pipeline.state.sounds("inc")}
        assert set(sounds) == {
            "keep.wav", "change.wav", "moved/creaky hinge.wav", "said.wav", "beds/forest bed.wav",
            "new one.wav",
        }  # fmt: skip
        moved = sounds["moved/creaky hinge.wav"]
        assert moved.entry.sound_id == ids["door hinge.wav"]  # the id follows the file
        assert moved.label == "creaky hinge"
        assert sounds["change.wav"].entry.sound_id == ids["change.wav"]
        assert sounds["beds/forest bed.wav"].windows == 0
        assert sounds["beds/forest bed.wav"].kind == "ambience"  # by the override: too short

        rows = assert_store_matches_state(pipeline, "inc")
        assert not [
            r
            for r in rows
            if r["sound_id"] == ids["beds/forest bed.wav"]
            and parse_vector_id(str(r["id"])).kind == "window"
        ]
        assert not [r for r in rows if r["sound_id"] == ids["gone.wav"]]
        for r in rows:
            if r["sound_id"] == moved.entry.sound_id:
                assert decode_path(str(r["path"])) == str(root / "moved" / "creaky hinge.wav")
                assert r["label"] == "creaky hinge"
        said = [r for r in rows if r["sound_id"] == ids["said.wav"]]
        assert said and {r["label"] for r in said} == {"a heavy metal gate slams shut"}
        labels = {r["label"] for r in rows if r["modality"] == "text"}
        assert "wooden door creaks" not in labels and "door hinge" not in labels
        assert "a heavy metal gate slams shut" in labels

        found = pipeline.library_search("gate", library="inc", top_k=10)
        by_id = {c.sound_id: c for c in found}
        assert by_id[ids["said.wav"]].label == "a heavy metal gate slams shut"
        assert by_id[moved.entry.sound_id].path == str(root / "moved" / "creaky hinge.wav")
        assert ids["gone.wav"] not in by_id

        (third,) = pipeline.library_index()
        assert (third.added, third.changed, third.moved, third.deleted, third.relabelled) == (
            0, 0, 0, 0, 0,
        )  # fmt: skip


# --------------------------------------------------------------------------- bad input


def _six_channel_wav(path: Path, seconds: float = 1.0, rate: int = 48000) -> None:
    mono = tone(500, seconds, rate)[0]
    frames = (np.tile(mono[:, None], (1, 6)) * 20000).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(6)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(frames.tobytes())


BAD_UTF8 = b"caf\xe9 \xff door.wav"  # Latin-1 bytes: not valid UTF-8


@pytest.fixture
def bad_library(tmp_path: Path) -> Path:
    root = tmp_path / "bad lib"
    good = write(root / "good.wav", tone(440, 1.0, RATE))
    ogg = write(root / "stereo.ogg", tone(330, 3.0, 22050, channels=2), 22050)
    half = good.read_bytes()
    (root / "truncated.wav").write_bytes(half[: len(half) // 2])
    data = ogg.read_bytes()
    (root / "truncated.ogg").write_bytes(data[: len(data) // 2])
    (root / "zero length.wav").write_bytes(b"")
    (root / "text.wav").write_text("this is a shopping list, not audio\n" * 10)
    write(root / "one sample.wav", np.full((1, 1), 0.5, np.float32))
    write(root / "phone 8k.wav", tone(300, 2.5, 8000), 8000)
    write(root / "hires 96k.wav", tone(300, 2.5, 96000), 96000, sample_format="f32")
    _six_channel_wav(root / "surround six.wav")
    write(root / "sub folder" / "with spaces and café ☕ 雨.wav", tone(600, 1.0, RATE))
    with open(os.path.join(os.fsencode(root), BAD_UTF8), "wb") as f:
        f.write(good.read_bytes())
    with open(os.path.join(os.fsencode(root), b"not \xff audio.wav"), "wb") as f:
        f.write(b"GIF89a" + bytes(200))
    (root / "loop").symlink_to(".")
    (root / "self").symlink_to("self")
    write(root / "denied" / "hidden from me.wav", tone(700, 1.0, RATE))
    return root


@pytest.fixture
def deny(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """Make a folder or file unreadable: chmod for a normal user; root reads anyway, so
    there the scanner's listing and opening are refused instead."""
    denied: list[tuple[Path, int]] = []
    blocked: set[str] = set()
    real_scandir, real_open = scan_module._scandir, scan_module._open

    def scandir(path):  # type: ignore[no-untyped-def]
        if os.fspath(path) in blocked:
            raise PermissionError(13, "Permission denied", path)
        return real_scandir(path)

    def opener(path, *args, **kwargs):  # type: ignore[no-untyped-def]
        if os.fspath(path) in blocked:
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_open(path, *args, **kwargs)

    if IS_ROOT:
        monkeypatch.setattr(scan_module, "_scandir", scandir)
        monkeypatch.setattr(scan_module, "_open", opener)

    def apply(path: Path) -> None:
        if IS_ROOT:
            blocked.add(str(path))
        else:
            denied.append((path, path.stat().st_mode))
            path.chmod(0)

    yield apply
    for path, mode in denied:
        path.chmod(mode)


def test_bad_input_corpus_is_indexed_or_recorded_never_stops(
    bad_library: Path, tmp_path: Path, encoder: object, deny: object
) -> None:
    root = bad_library
    (root / "unreadable.wav").write_bytes((root / "good.wav").read_bytes())
    deny(root / "unreadable.wav")  # type: ignore[operator]
    deny(root / "denied")  # type: ignore[operator]
    with make_pipeline(tmp_path, encoder) as pipeline:
        pipeline.library_add(root, "bad")
        (report,) = pipeline.library_index()
        sounds = {os.fsencode(s.entry.relpath): s for s in pipeline.state.sounds("bad")}
        assert set(sounds) == {
            b"good.wav", b"stereo.ogg", b"truncated.wav", b"one sample.wav", b"phone 8k.wav",
            b"hires 96k.wav", b"surround six.wav", BAD_UTF8,
            "sub folder/with spaces and café ☕ 雨.wav".encode(),
        }  # fmt: skip
        durations = {k: round(s.duration, 3) for k, s in sounds.items()}
        assert durations[b"phone 8k.wav"] == durations[b"hires 96k.wav"] == 2.5
        assert durations[b"surround six.wav"] == 1.0
        assert durations[b"one sample.wav"] == pytest.approx(1 / RATE, abs=1e-3)
        assert 0.4 < durations[b"truncated.wav"] < 0.6  # the half that is there
        assert sounds[BAD_UTF8].label  # a label even from an undecodable name
        assert sounds["sub folder/with spaces and café ☕ 雨.wav".encode()].label.startswith(
            "with spaces and café"
        )

        faults = fault_kinds(pipeline, "bad")
        assert faults == {
            "truncated.ogg": "unreadable",
            "zero length.wav": "empty",
            "text.wav": "not_audio",
            "not \ufffd audio.wav": "not_audio",
            "loop": "symlink_loop",
            "self": "symlink_loop",
            "unreadable.wav": "unreadable",
            "denied": "permission_denied",
        }
        (status,) = pipeline.library_status("bad")
        assert all(f.reason for f in status.faults)
        assert report.indexed == len(sounds) and report.failed == 1  # truncated.ogg: at decode
        assert_store_matches_state(pipeline, "bad")

        # The invalid UTF-8 name round-trips to a path that opens the right file.
        found = pipeline.library_search("door", library="bad", top_k=20)
        path = next(c.path for c in found if c.sound_id == sounds[BAD_UTF8].entry.sound_id)
        assert os.fsencode(path) == os.path.join(os.fsencode(root), BAD_UTF8)


@pytest.mark.parametrize(
    ("seconds", "rate"),
    [
        pytest.param(600.0, 8000, id="10min-8k"),
        pytest.param(3600.0, 8000, id="1h-8k", marks=pytest.mark.slow),
    ],
)
def test_long_bed_windows_stay_capped(
    tmp_path: Path, encoder: object, seconds: float, rate: int
) -> None:
    """Ten minutes of 8 kHz audio keeps the test fast; the hour-long case is marked slow.
    Either way the bed is stored as at most MAX_WINDOWS windows covering its whole length."""
    root = tmp_path / "long"
    write(root / "night bed.wav", noise_burst(seconds, rate, amplitude=0.1), rate)
    with make_pipeline(tmp_path, encoder) as pipeline:
        pipeline.library_add(root, "long")
        (report,) = pipeline.library_index()
        assert report.failed == 0
        (sound,) = pipeline.state.sounds("long")
        assert sound.kind == "ambience" and sound.duration == pytest.approx(seconds, abs=0.01)
        assert MAX_WINDOWS - 2 <= sound.windows <= MAX_WINDOWS
        rows = assert_store_matches_state(pipeline, "long")
        windows = sorted(
            (r["start"], r["end"]) for r in rows if parse_vector_id(str(r["id"])).kind == "window"
        )
        assert windows[0][0] == 0.0 and windows[-1][1] == pytest.approx(seconds, abs=0.01)
        gaps = [b[0] - a[0] for a, b in itertools.pairwise(windows)]
        assert max(gaps) <= seconds / (MAX_WINDOWS - 2) + 1e-3  # spread over the whole bed


def test_good_file_turning_bad_keeps_its_vectors(
    tmp_path: Path, encoder: object, deny: object
) -> None:
    root = tmp_path / "lib"
    for name, freq in (("rain.wav", 300), ("thunder.wav", 400), ("wind.wav", 500)):
        write(root / name, tone(freq, 1.0, RATE))
    write(root / "vault" / "gong.wav", tone(600, 1.0, RATE))
    rain_bytes = (root / "rain.wav").read_bytes()
    with make_pipeline(tmp_path, encoder) as pipeline:
        pipeline.library_add(root, "turn")
        pipeline.library_index()
        ids = {s.label: s.entry.sound_id for s in pipeline.state.sounds("turn")}
        before = {r["id"] for r in stored_rows(pipeline, "turn")}

        (root / "rain.wav").write_text("overwritten by a text editor\n")  # not audio now
        thunder = (root / "thunder.wav").read_bytes()
        garbage = np.random.default_rng(0).bytes(len(thunder) - 44)
        (root / "thunder.wav").write_bytes(thunder[:44] + garbage)  # sniffs as WAV, won't decode
        (root / "wind.wav").write_bytes(b"")  # truncated to nothing
        deny(root / "vault")  # type: ignore[operator]
        (report,) = pipeline.library_index()

        assert report.deleted == 0 and report.indexed == 4
        assert report.changed == report.failed == 1  # thunder: changed, then not decodable
        assert fault_kinds(pipeline, "turn") == {
            "rain.wav": "not_audio",
            "thunder.wav": "unreadable",
            "wind.wav": "empty",
            "vault": "permission_denied",
        }
        assert {r["id"] for r in stored_rows(pipeline, "turn")} == before
        found = pipeline.library_search("rain", library="turn", top_k=10)
        assert {c.sound_id for c in found} == set(ids.values())

        (root / "rain.wav").write_bytes(rain_bytes)  # fixed: same content as indexed
        (root / "thunder.wav").write_bytes(thunder)
        (root / "wind.wav").unlink()  # really gone this time
        (again,) = pipeline.library_index()
        assert (again.deleted, again.changed, again.failed) == (1, 0, 0)
        assert fault_kinds(pipeline, "turn") == {"vault": "permission_denied"}
        assert {s.label for s in pipeline.state.sounds("turn")} == {"rain", "thunder", "gong"}
        assert_store_matches_state(pipeline, "turn")


def test_unreadable_at_decode_keeps_the_old_vectors(
    tmp_path: Path, encoder: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A changed file that sniffs as audio but cannot be decoded: a fault, the sound stays."""
    from sfxmatch import media

    root = tmp_path / "lib"
    target = write(root / "door.ogg", tone(440, 2.0, 22050, channels=2), 22050)
    with make_pipeline(tmp_path, encoder) as pipeline:
        pipeline.library_add(root, "dec")
        pipeline.library_index()
        before = {r["id"]: r["label"] for r in stored_rows(pipeline, "dec")}
        data = target.read_bytes()
        target.write_bytes(data[: len(data) // 2])  # the Ogg pages stop half way
        (report,) = pipeline.library_index()
        assert (report.changed, report.failed, report.indexed) == (1, 1, 1)
        assert fault_kinds(pipeline, "dec") == {"door.ogg": "unreadable"}
        assert {r["id"]: r["label"] for r in stored_rows(pipeline, "dec")} == before
        # Still a change next time (the state keeps the old content): retried, not forgotten.
        calls: list[str] = []
        real = media.load_audio
        monkeypatch.setattr(media, "load_audio", lambda p, **kw: calls.append(p) or real(p, **kw))
        (retry,) = pipeline.library_index()
        assert retry.changed == 1 and len(calls) == 1


def test_scan_and_decode_faults_do_not_mask_each_other(tmp_path: Path, encoder: object) -> None:
    """Faults are replaced per run: fixed files leave the list, new ones join it."""
    root = tmp_path / "lib"
    write(root / "a.wav", tone(440, 1.0, RATE))
    (root / "b.wav").write_text("not audio")
    with make_pipeline(tmp_path, encoder) as pipeline:
        pipeline.library_add(root, "f")
        pipeline.library_index()
        assert fault_kinds(pipeline, "f") == {"b.wav": "not_audio"}
        write(root / "b.wav", tone(300, 1.0, RATE))
        (root / "c.wav").write_bytes(b"")
        (report,) = pipeline.library_index()
        assert report.added == 1 and fault_kinds(pipeline, "f") == {"c.wav": "empty"}
