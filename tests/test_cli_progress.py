"""The one progress helper of the command line: quiet off a terminal, JSON lines when asked,
and Ctrl-C cancels the work it wraps."""

from __future__ import annotations

import json

import pytest
from sfxmatch._cli.progress import running
from sfxmatch.progress import IndexProgress, Progress


def test_ctrl_c_sets_the_cancel_event_and_goes_on_to_main() -> None:
    with pytest.raises(KeyboardInterrupt), running("work") as work:
        seen = work.cancel
        raise KeyboardInterrupt
    assert seen.is_set()


def test_off_a_terminal_only_index_stages_are_said(capsys: pytest.CaptureFixture[str]) -> None:
    with running("index") as work:
        work.progress(Progress("analyse", 0.5, "scene 1"))
        work.seconds(3.0, 10.0)
        work.bytes(1, 2)
        for done in (0, 1, 2):
            work.file(IndexProgress("fx", "index", done, 3))
        work.file(IndexProgress("fx", "done", 3, 3))
    lines = capsys.readouterr().err.splitlines()
    assert lines == ["fx: index 0/3 ", "fx: index 1/3 ", "fx: done 3/3 "]


def test_jsonl_is_one_record_per_progress(capsys: pytest.CaptureFixture[str]) -> None:
    with running("suggest", style="jsonl") as work:
        work.progress(Progress("analyse", 0.25, "scene 1"))
    (line,) = capsys.readouterr().err.splitlines()
    assert json.loads(line) == {"stage": "analyse", "fraction": 0.25, "message": "scene 1"}
