"""Where a sound's sync point comes from: what the file, its catalogue or its sidecar says
wins over the detector, and the user's override (CLI, API) over all of them; a library
indexed before sync points keeps working and gets them on its next index run."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path

import numpy as np
import pytest
from sfxmatch.library.catalogue import load_catalogue
from sfxmatch.library.metadata import describe_sound
from sfxmatch.library.syncpoints import BadTime, Mark, choose, parse_time
from sfxmatch.pipeline import Pipeline
from sfxmatch.testing import synth
from test_cli_library import TINY, env, run, shared_encoder  # noqa: F401

RATE = 48000
CUE_AT = 0.30  # the cue marker, before the event the detector finds
EVENT_AT = 0.37


def knock(lead: float, seed: int = 0) -> np.ndarray:
    return synth.sync_sound(lead, RATE, seed=seed).samples


@pytest.fixture
def sounds(tmp_path: Path) -> Path:
    root = tmp_path / "Library"
    root.mkdir()
    synth.make_bwf_file(
        root / "door cue.wav",
        knock(EVENT_AT),
        RATE,
        cues=[(round(0.05 * RATE), ""), (round(CUE_AT * RATE), "Sync")],
    )
    synth.make_audio_file(root / "door plain.wav", knock(0.2, seed=1), RATE)
    return root


def status_sounds(capsys: pytest.CaptureFixture[str]) -> dict[str, dict]:
    code, out, _ = run(capsys, "library", "status", "fx", "--sounds", "--json", *TINY)
    assert code == 0
    (library,) = json.loads(out)
    return {Path(s["path"]).name: s for s in library["sounds_list"]}


def test_cue_marker_wins_over_the_detector_and_the_cli_override_over_both(
    env: Path,  # noqa: F811
    sounds: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run(capsys, "library", "add", str(sounds), "--name", "fx", "--kind", "*=effect")[0] == 0
    assert run(capsys, "library", "index", *TINY)[0] == 0
    found = status_sounds(capsys)
    cue = found["door cue.wav"]
    assert (cue["sync_point"], cue["sync_source"]) == (CUE_AT, "file")
    assert cue["sync_detail"] == "BWF cue 'Sync'"  # the labelled cue, not the first one
    assert cue["detected"] == pytest.approx(EVENT_AT, abs=1 / RATE)  # what the audio says
    plain = found["door plain.wav"]
    assert plain["sync_source"] == "detector"
    assert plain["sync_point"] == pytest.approx(0.2, abs=1 / RATE)
    code, out, _ = run(capsys, "library", "status", "fx", *TINY)
    assert "sync points: 1 marked in the file, 1 found in the audio" in out

    # The user's override wins over the cue; search and suggest see it.
    path = str(sounds / "door cue.wav")
    code, out, _ = run(capsys, "library", "sync", path, "450ms", *TINY)
    assert code == 0 and "0.450 s (set by the user)" in out
    assert status_sounds(capsys)["door cue.wav"]["sync_source"] == "override"
    code, out, _ = run(capsys, "library", "search", "door", "--json", *TINY)
    by_name = {Path(c["path"]).name: c for c in json.loads(out)}
    assert (by_name["door cue.wav"]["sync_point"], by_name["door cue.wav"]["sync_source"]) == (
        0.45,
        "override",
    )
    assert run(capsys, "library", "index", *TINY)[0] == 0  # nothing changed: it stays
    assert status_sounds(capsys)["door cue.wav"]["sync_point"] == 0.45
    code, out, _ = run(capsys, "library", "sync", path, "--json", *TINY)
    assert json.loads(out)["sync_point"] == 0.45

    # Cleared: the cue again.
    code, out, _ = run(capsys, "library", "sync", path, "--clear", *TINY)
    assert code == 0 and "BWF cue 'Sync'" in out
    # Set again, then the file changes: the override was for the old sound and goes.
    assert run(capsys, "library", "sync", path, "0.1", *TINY)[0] == 0
    synth.make_bwf_file(sounds / "door cue.wav", knock(0.5, seed=3), RATE, cues=[(4800, "sync")])
    assert run(capsys, "library", "index", *TINY)[0] == 0
    cue = status_sounds(capsys)["door cue.wav"]
    assert (cue["sync_point"], cue["sync_source"]) == (0.1, "file")
    assert cue["detected"] == pytest.approx(0.5, abs=1 / RATE)  # recomputed: the file changed


def test_sync_mistakes_are_one_line_each(
    env: Path,  # noqa: F811
    sounds: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run(capsys, "library", "add", str(sounds), "--name", "fx")[0] == 0
    path = str(sounds / "door plain.wav")
    code, _, err = run(capsys, "library", "sync", path, "0.1", *TINY)
    assert code == 2 and "not indexed yet" in err and "library index fx" in err
    assert run(capsys, "library", "index", *TINY)[0] == 0
    outside = tmp_path / "elsewhere.wav"
    synth.make_audio_file(outside, knock(0.1), RATE)
    code, _, err = run(capsys, "library", "sync", str(outside), "0.1", *TINY)
    assert code == 2 and "not in any registered library" in err
    code, _, err = run(capsys, "library", "sync", path, "9", *TINY)
    assert code == 2 and "past the end of the sound" in err
    code, _, err = run(capsys, "library", "sync", path, "soon", *TINY)
    assert code == 2 and "is not a time" in err
    code, _, err = run(capsys, "library", "sync", path, "0.1", "--clear", *TINY)
    assert code == 2 and "not both" in err
    assert len(err.strip().splitlines()) == 1


def test_declared_sync_points_and_their_precedence(tmp_path: Path) -> None:
    """iXML sync points (relative; absolute against the file's time stamp; the recorder's
    pre-record count skipped), AIFF markers, sidecar lines, catalogue columns; catalogue
    over the file over the sidecar."""
    samples = knock(0.6)
    ixml = """<BWFXML><SYNC_POINT_LIST><SYNC_POINT_COUNT>2</SYNC_POINT_COUNT>
      <SYNC_POINT><SYNC_POINT_TYPE>RELATIVE</SYNC_POINT_TYPE>
        <SYNC_POINT_FUNCTION>PRE_RECORD_SAMPLECOUNT</SYNC_POINT_FUNCTION>
        <SYNC_POINT_LOW>4800</SYNC_POINT_LOW><SYNC_POINT_HIGH>0</SYNC_POINT_HIGH></SYNC_POINT>
      <SYNC_POINT><SYNC_POINT_TYPE>ABSOLUTE</SYNC_POINT_TYPE>
        <SYNC_POINT_FUNCTION>SLATE_GENERIC</SYNC_POINT_FUNCTION>
        <SYNC_POINT_COMMENT>clap</SYNC_POINT_COMMENT>
        <SYNC_POINT_LOW>{low}</SYNC_POINT_LOW><SYNC_POINT_HIGH>1</SYNC_POINT_HIGH></SYNC_POINT>
    </SYNC_POINT_LIST></BWFXML>"""
    midnight = (1 << 32) + 1_000_000  # samples since midnight of the file's first sample
    slate = midnight + 12_000  # 0.25 s into the file
    path = synth.make_bwf_file(
        tmp_path / "slate.wav",
        samples,
        RATE,
        ixml=ixml.format(low=slate & 0xFFFFFFFF),
        time_reference=midnight,
    )
    label = describe_sound(path)
    assert label.sync == Mark(0.25, "iXML SLATE_GENERIC 'clap'") and label.sync_source == "file"

    aiff = tmp_path / "marked.aiff"
    wav = synth.make_audio_file(tmp_path / "for aiff.wav", samples, RATE).path
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-i", str(wav), str(aiff)]
    subprocess.run(cmd, check=True)
    _add_aiff_marker(aiff, 24000, "Hit")
    assert describe_sound(aiff).sync == Mark(0.5, "AIFF marker 'Hit'")

    plain = tmp_path / "plain.wav"
    synth.make_audio_file(plain, samples, RATE)
    (tmp_path / "plain.txt").write_text("sync: 370 ms\nA door knock.\n")
    label = describe_sound(plain)
    assert label.text == "a door knock"  # the sync line is not the description
    assert label.sync == Mark(0.37, "plain.txt sync line") and label.sync_source == "sidecar"

    csv = tmp_path / "sounds.csv"
    csv.write_text("File,Description,Sync ms\nslate.wav,a slate,120\nplain.wav,,80\n")
    catalogue = load_catalogue(csv)
    label = describe_sound(path, relpath="slate.wav", catalogue=catalogue)
    assert label.sync == Mark(0.12, "sounds.csv line 2") and label.sync_source == "catalogue"
    label = describe_sound(plain, relpath="plain.wav", catalogue=catalogue)
    assert (label.sync.time, label.sync_source) == (0.08, "catalogue")  # type: ignore[union-attr]
    assert label.text == "a door knock"  # an empty description falls through to the sidecar

    # The rule itself: the override first; a point past the end of the sound is no point.
    assert choose(override=0.1, file=Mark(0.2, "f"), detected=0.3).source == "override"
    assert choose(file=Mark(5.0, "f"), detected=0.3, duration=1.0).source == "detector"
    assert choose().source == "start"
    assert [parse_time(t) for t in ("0.37", "370ms", "0:00.370", "1:00", "2 s")] == [
        0.37,
        0.37,
        0.37,
        60.0,
        2.0,
    ]
    for bad in ("", "-1", "1e9", "soon"):
        with pytest.raises(BadTime):
            parse_time(bad)


def _add_aiff_marker(path: Path, frame: int, name: str) -> None:
    """Append a MARK chunk (one marker) to an AIFF file and fix the FORM size."""
    import struct

    data = bytearray(path.read_bytes())
    text = name.encode()
    pstring = bytes([len(text)]) + text + (b"" if (len(text) + 1) % 2 == 0 else b"\0")
    body = struct.pack(">HhI", 1, 1, frame) + pstring
    data += b"MARK" + struct.pack(">I", len(body)) + body
    data[4:8] = struct.pack(">I", len(data) - 8)
    path.write_bytes(bytes(data))


# --------------------------------------------------------------------------- migration

_V1_COLUMNS = (
    "sound_id, library, library_id, root, relpath, size, mtime_ns, content_hash, format, label, "
    "label_source, label_detail, ucs_category, kind, kind_source, kind_reason, duration, "
    "windows, sidecar, problems"
)


def _downgrade_to_v1(db_path: Path) -> None:
    """The index as sfxmatch wrote it before sync points: no sync columns, no overrides."""
    db = sqlite3.connect(db_path)
    db.executescript(
        f"""
        CREATE TABLE old (
            sound_id TEXT PRIMARY KEY, library TEXT NOT NULL, library_id TEXT NOT NULL,
            root BLOB NOT NULL, relpath BLOB NOT NULL, size INTEGER NOT NULL,
            mtime_ns INTEGER NOT NULL, content_hash TEXT NOT NULL, format TEXT NOT NULL,
            label TEXT NOT NULL, label_source TEXT NOT NULL, label_detail TEXT NOT NULL,
            ucs_category TEXT NOT NULL, kind TEXT NOT NULL, kind_source TEXT NOT NULL,
            kind_reason TEXT NOT NULL, duration REAL NOT NULL, windows INTEGER NOT NULL,
            sidecar TEXT NOT NULL, problems TEXT NOT NULL
        );
        INSERT INTO old SELECT {_V1_COLUMNS} FROM sounds;
        DROP TABLE sounds;
        DROP TABLE sync_overrides;
        ALTER TABLE old RENAME TO sounds;
        CREATE INDEX IF NOT EXISTS sounds_library ON sounds(library);
        PRAGMA user_version = 0;
        """
    )
    db.commit()
    db.close()


class CountingEncoder:
    """The tiny encoder, counting audio embeddings (a migration must not need any)."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.audio_calls = 0

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def embed_audio(self, *args: object, **kwargs: object) -> object:
        self.audio_calls += 1
        return self.inner.embed_audio(*args, **kwargs)  # type: ignore[attr-defined]


def test_a_library_indexed_before_sync_points_is_searchable_then_analysed(
    tmp_path: Path,
    sounds: Path,
    shared_encoder: object,  # noqa: F811
) -> None:
    from sfxmatch.config import Settings

    settings = Settings(cache_dir=tmp_path / "cache", data_dir=tmp_path / "data")
    encoder = CountingEncoder(shared_encoder)
    with Pipeline(settings, encoder=encoder) as pipeline:  # type: ignore[arg-type]
        pipeline.library_add(sounds, "fx", kind_overrides=[("*", "effect")])
        pipeline.library_index()
        db_path = pipeline.state.path
        before = {s.entry.sound_id: s for s in pipeline.state.sounds("fx")}
    _downgrade_to_v1(db_path)

    encoder.audio_calls = 0
    with Pipeline(settings, encoder=encoder) as pipeline:  # type: ignore[arg-type]
        (status,) = pipeline.library_status("fx")
        assert status.sounds == 2 and status.sync_sources == {"start": 2}
        # Searchable and suggestible at once: the sync point is found on demand.
        found = {Path(c.path).name: c for c in pipeline.library_search("door", top_k=5)}
        assert (found["door cue.wav"].sync_point, found["door cue.wav"].sync_source) == (
            CUE_AT,
            "file",
        )
        assert found["door plain.wav"].sync_source == "detector"
        (report,) = pipeline.library_index()
        assert (report.analysed, report.added, report.changed, report.failed) == (2, 0, 0, 0)
        assert encoder.audio_calls == 0  # no sound embedded again
        (status,) = pipeline.library_status("fx")
        assert status.sync_sources == {"file": 1, "detector": 1}
        after = {s.entry.sound_id: s for s in pipeline.state.sounds("fx")}
        for sid, old in before.items():
            assert after[sid].label == old.label and after[sid].windows == old.windows
            assert after[sid].onset == pytest.approx(old.onset)
        (report,) = pipeline.library_index()
        assert report.analysed == 0  # once
