"""The command line: in-process through ``main([...])``, and once or twice as a real process."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sfxmatch import __version__, scenes
from sfxmatch import _cli as cli


def _run(argv: list[str], capsys) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _python_m(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    return subprocess.run(
        [sys.executable, "-m", "sfxmatch", *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=env,
        timeout=120,
        check=False,
    )


def test_scenes_json_lists_the_cuts(cut_video, capsys):
    path, truth = cut_video
    code, out, err = _run(["scenes", path, "--json"], capsys)
    assert code == 0 and err == ""  # no progress noise when stderr is not a terminal
    document = json.loads(out)
    assert document["file"] == str(path)
    assert document["detector"] == "content" and document["threshold"] == 27
    assert [s["start_frame"] for s in document["scenes"][1:]] == list(truth.cut_frames)
    assert document["scenes"][-1]["end_frame"] == truth.frame_count
    assert document["scenes"][1]["start_timecode"] == "00:00:01.600"


def test_scenes_table_has_a_row_per_scene(cut_video, capsys):
    path, _ = cut_video
    code, out, _ = _run(["scenes", path, "--detector", "adaptive"], capsys)
    assert code == 0
    lines = out.splitlines()
    assert "4 scenes" in lines[0] and "adaptive" in lines[0]
    assert lines[1].split() == [
        "#",
        "start",
        "s",
        "end",
        "s",
        "start",
        "end",
        "frames",
        "first",
        "last",
    ]
    rows = [line.split() for line in lines[2:]]
    assert [row[0] for row in rows] == ["0", "1", "2", "3"]
    # Second scene: 1.6 s to 3.8 s, 55 frames, 40..94.
    assert rows[1] == ["1", "1.600", "3.800", "00:00:01.600", "00:00:03.800", "55", "40", "94"]


def test_options_reach_the_detector(cut_video, capsys):
    path, _ = cut_video
    code, out, _ = _run(
        ["scenes", path, "--json", "--min-scene-len", "1.5", "--threshold", "20"], capsys
    )
    document = json.loads(out)
    assert code == 0 and document["min_scene_len"] == 1.5 and document["threshold"] == 20
    assert len(document["scenes"]) == 3  # the 1.2 s shot merged away


def test_progress_bar_on_a_terminal_does_not_break_output(cut_video, capsys, monkeypatch):
    path, _ = cut_video
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    code, out, _ = _run(["scenes", path, "--json"], capsys)
    assert code == 0
    assert len(json.loads(out)["scenes"]) == 4


def test_version(capsys):
    with pytest.raises(SystemExit) as caught:
        cli.main(["--version"])
    assert caught.value.code == 0
    assert capsys.readouterr().out.strip() == f"sfxmatch {__version__}"


def _bad_input(kind: str, tmp_path: Path, audio_only_files) -> Path:
    if kind == "empty":
        path = tmp_path / "empty.mp4"
        path.write_bytes(b"")
    elif kind == "text":
        path = tmp_path / "notes.mp4"
        path.write_text("this is not a video\n" * 50)
    elif kind == "missing":
        path = tmp_path / "nowhere.mp4"
    elif kind == "directory":
        path = tmp_path / "folder.mp4"
        path.mkdir()
    else:
        path = audio_only_files["wav"][0]
    return path


@pytest.mark.parametrize("kind", ["empty", "text", "missing", "directory", "audio_only"])
def test_bad_input_gives_one_line_and_exit_2(kind, tmp_path, audio_only_files, capsys):
    path = _bad_input(kind, tmp_path, audio_only_files)
    code, out, err = _run(["scenes", path], capsys)
    assert code == 2
    assert out == ""
    assert len(err.splitlines()) == 1
    assert err.startswith(f"sfxmatch: error: {path}: ")


def test_bad_option_value_gives_one_line_and_exit_2(cut_video, capsys):
    code, _, err = _run(["scenes", cut_video[0], "--max-side", "4"], capsys)
    assert code == 2
    assert len(err.splitlines()) == 1 and err.startswith("sfxmatch: error: ")


def test_unicode_and_spaces_in_the_name_work(cut_video, tmp_path, capsys):
    path = tmp_path / "Szene 2 – café ☕ take:3.mp4"
    shutil.copyfile(cut_video[0], path)
    code, out, _ = _run(["scenes", path, "--json"], capsys)
    assert code == 0
    assert json.loads(out)["file"] == str(path)


def test_ctrl_c_exits_130_with_one_line(cut_video, capsys, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(scenes, "detect_scenes", interrupted)
    code, out, err = _run(["scenes", cut_video[0]], capsys)
    assert code == 130
    assert out == "" and err == "sfxmatch: interrupted\n"


def test_missing_command_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as caught:
        cli.main([])
    assert caught.value.code == 2
    assert "COMMAND" in capsys.readouterr().err


def test_python_m_sfxmatch_json_and_version(cut_video):
    path, truth = cut_video
    done = _python_m("scenes", str(path), "--json")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    starts = [s["start_frame"] for s in json.loads(done.stdout)["scenes"]]
    assert starts == [0, *truth.cut_frames]
    version = _python_m("--version")
    assert version.returncode == 0 and version.stdout.strip() == f"sfxmatch {__version__}"


def test_python_m_sfxmatch_bad_file_has_no_traceback(tmp_path):
    path = tmp_path / "bad name ü.mp4"
    path.write_text("not a video")
    done = _python_m("scenes", str(path))
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.splitlines() == [done.stderr.strip()]
    assert done.stderr.startswith(f"sfxmatch: error: {path}: ")
    assert "Traceback" not in done.stderr
