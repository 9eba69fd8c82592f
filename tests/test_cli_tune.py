"""``sfxmatch tune``: AutoSync parameters ranked against DCASE-style annotations."""

from __future__ import annotations

import json
from pathlib import Path

from sfxmatch._cli import main
from sfxmatch.match.tuning import save_scores, synthetic_corpus


def _corpus(folder: Path) -> Path:
    traces, annotations = synthetic_corpus(2, seed=3, noise=0.002, duration=30.0, n_labels=8)
    folder.mkdir()
    for name, scores in traces.items():
        save_scores(folder / f"{name}.npz", scores)
    lines = [
        f"{name}.mp4\t{e.onset:.3f}\t{e.offset:.3f}\t{e.label}"
        for name, events in annotations.items()
        for e in events
    ]
    notes = folder.parent / "annotations.txt"
    notes.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return notes


def test_tune_ranks_a_grid_and_finds_the_events(tmp_path, capsys):
    notes = _corpus(tmp_path / "traces")
    code = main(
        ["tune", str(tmp_path / "traces"), str(notes), "--rule", "hysteresis", "--json",
         "--t", "0.05,0.1,0.3", "--max-gap", "0.2", "--min-duration", "0.3"]
    )  # fmt: skip
    assert code == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 3  # one per value of t
    assert rows[0]["f1"] >= rows[-1]["f1"]
    assert rows[0]["f1"] > 0.8
    assert rows[0]["onset_error"] < 0.1


def test_tune_names_a_bad_annotation_line(tmp_path, capsys):
    _corpus(tmp_path / "traces")
    bad = tmp_path / "bad.txt"
    bad.write_text("clip.mp4\tnot-a-number\t2.0\tdog\n", encoding="utf-8")
    assert main(["tune", str(tmp_path / "traces"), str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bad.txt:1" in err[0]
