"""``sfxmatch suggest``: outputs, --json, --edit, --progress jsonl, and one-line errors."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import pytest
from sfxmatch._cli import main
from sfxmatch.suggestions import from_dict
from test_suggest import SuggestEnv, black_video, check_record_time, shared_env
from tiny_models import TINY_MODELS

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module", params=TINY_MODELS)
def env(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    ovos_sounds: Path,
    acoustic_scene_wav: Path,
) -> SuggestEnv:
    return shared_env(tmp_path_factory, ovos_sounds, acoustic_scene_wav, request.param)


@pytest.fixture
def cli_env(env: SuggestEnv, monkeypatch: pytest.MonkeyPatch) -> SuggestEnv:
    for name in ("SFXMATCH_MODEL", "SFXMATCH_OFFLINE", "SFXMATCH_IMAGEBIND_CHECKPOINT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.env().items():
        monkeypatch.setenv(name, value)
    return env


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("sfxmatch: error: ") and "Traceback" not in err
    return lines[0]


def test_suggest_writes_every_output_and_prints_json(
    cli_env: SuggestEnv, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    video = cli_env.short_scene_video.path
    out = tmp_path / "out"
    code = main(
        [
            "suggest", str(video), "--local", "--model", cli_env.pipeline.model,
            "--progress", "none",
            "-o", str(out / "x.otio"), "--mix", str(out / "m.wav"), "--plot", str(out / "p.png"),
            "--json",
        ]
    )  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    suggestions = from_dict(json.loads(captured.out))
    assert suggestions.meaningless and len(suggestions.scenes) == 3
    check_record_time(suggestions)
    assert suggestions.edit.clips[0].path == str(video.resolve())
    assert "MEANINGLESS" in captured.err and "RANDOM" in captured.err
    assert (out / "x.otio").stat().st_size > 0
    assert (out / "m.wav").read_bytes()[:4] == b"RIFF"
    assert (out / "p.png").read_bytes()[:8] == PNG_MAGIC
    timeline = json.loads((out / "x.otio").read_text(encoding="utf-8"))
    assert timeline["OTIO_SCHEMA"].startswith("Timeline.")


def test_suggest_an_edit_json_with_jsonl_progress(
    cli_env: SuggestEnv, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    video = str(cli_env.ntsc_video.path)
    edit = {
        "clips": [
            {"path": video, "source_in": 0.0, "source_out": 1.2, "record_start": 0.0},
            {"path": video, "source_in": 1.6, "source_out": 2.4, "record_start": 1.2},
        ],
        "fps": "30000/1001",
        "name": "from resolve",
    }
    edit_path = tmp_path / "edit.json"
    edit_path.write_text(json.dumps(edit), encoding="utf-8")
    args = ["suggest", "--edit", str(edit_path), "--local", "--model", cli_env.pipeline.model]
    code = main([*args, "--progress", "jsonl", "--json", "-o", str(tmp_path / "edit.otio")])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    s = from_dict(json.loads(captured.out))
    assert s.edit.fps == Fraction(30000, 1001) and s.edit.name == "from resolve"
    assert s.edit.duration == pytest.approx(2.0)
    check_record_time(s)
    assert any(sc.start == pytest.approx(1.2) for sc in s.scenes), "a cut at the join"
    records = [json.loads(line) for line in captured.err.splitlines() if line.startswith("{")]
    assert records, captured.err
    assert all(set(r) == {"stage", "fraction", "message"} for r in records)
    stages = [r["stage"] for r in records]
    assert "analyse" in stages and "done" in stages and "export" in stages
    assert stages.index("done") < stages.index("export")
    assert (tmp_path / "edit.otio").is_file()
    assert all(0.0 <= r["fraction"] <= 1.0 for r in records)


def test_summary_lists_scenes_and_files(
    cli_env: SuggestEnv, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    video = black_video(tmp_path / "black.mp4", 30)
    code = main(
        ["suggest", str(video), "--local", "--model", cli_env.pipeline.model, "--progress", "none",
         "--stems", str(tmp_path / "stems"), "--library", "beds"]
    )  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "1 scene(s)" in captured.out and "bed:" in captured.out
    assert "wrote stem:Ambience" in captured.out
    assert "mix loudness -23.0 LUFS" in captured.out


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["{missing}"], "no such file"),
        (["{garbage}"], "not a media file"),
        (["{video}", "--library", "nope"], "no library named 'nope'"),
        (["{video}", "--edit", "{edit}"], "give a VIDEO or --edit FILE"),
        (["--edit", "{edit}"], "is not a valid edit"),
        (["{video}", "--top-k", "0"], "top_k must be at least 1"),
        (["--edit", "{partial}", "--mux", "{tmp}/x.mkv"], "not a clip from 0.500 s"),
    ],
)
def test_bad_input_gives_one_line_and_exit_2(
    cli_env: SuggestEnv,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    expected: str,
) -> None:
    (tmp_path / "garbage.mp4").write_bytes(b"no video here")
    (tmp_path / "edit.json").write_text('{"clips": [{"path": 3}]}', encoding="utf-8")
    video = str(cli_env.ntsc_video.path)
    partial = {"clips": [{"path": video, "source_in": 0.5, "source_out": 1.5, "record_start": 0}]}
    (tmp_path / "partial.json").write_text(json.dumps({**partial, "fps": "25"}), encoding="utf-8")
    names = {
        "missing": str(tmp_path / "missing.mp4"),
        "garbage": str(tmp_path / "garbage.mp4"),
        "video": video,
        "edit": str(tmp_path / "edit.json"),
        "partial": str(tmp_path / "partial.json"),
        "tmp": str(tmp_path),
    }
    argv = [
        "suggest",
        *(a.format(**names) for a in args),
        "--local",
        "--model",
        cli_env.pipeline.model,
    ]
    code = main([*argv, "--progress", "none", "--mix", str(tmp_path / "m.wav")])
    captured = capsys.readouterr()
    assert code == 2
    assert expected in one_error_line(captured.err.replace(_WARNING, ""))
    assert not (tmp_path / "m.wav").exists()


_WARNING = (
    "sfxmatch: WARNING: this model has RANDOM weights (development only): kinds, matches and "
    "suggestions are MEANINGLESS\n"
)


def test_no_library_gives_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SFXMATCH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SFXMATCH_CACHE_DIR", str(tmp_path / "cache"))
    video = black_video(tmp_path / "v.mp4", 10)
    code = main(["suggest", str(video), "--local", "--model", "imagebind-tiny"])
    captured = capsys.readouterr()
    assert code == 2
    assert "sfxmatch library add" in one_error_line(captured.err.replace(_WARNING, ""))


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        # The default without a GPU: PE-AV small from the hub, through the user cache.
        (None, ("pe-av-small", "empty-cache/models/hub", "sfxmatch models fetch pe-av-small")),
        ("imagebind-huge", ("imagebind_huge.pth", "SFXMATCH_IMAGEBIND_CHECKPOINT")),
    ],
)
def test_missing_weights_say_how_to_provide_them(
    cli_env: SuggestEnv,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    model: str | None,
    expected: tuple[str, ...],
) -> None:
    # Libraries are registered (indexed with the tiny model); the model asked for has no
    # weights anywhere and downloads are off.
    monkeypatch.setenv("SFXMATCH_OFFLINE", "1")
    monkeypatch.delenv("SFXMATCH_MODEL", raising=False)
    monkeypatch.setenv("SFXMATCH_DEVICE", "cpu")
    monkeypatch.setenv("SFXMATCH_CACHE_DIR", str(tmp_path / "empty-cache"))
    chosen = ["--model", model] if model else []
    code = main(["suggest", str(cli_env.ntsc_video.path), "--local", "--progress", "none", *chosen])
    captured = capsys.readouterr()
    assert code != 0
    line = one_error_line(captured.err)
    assert all(part in line for part in expected), line
    assert "MEANINGLESS" not in captured.err
    written = [p for p in (tmp_path / "empty-cache").rglob("*") if p.is_file()]
    assert not [p for p in written if p.stat().st_size], "nothing downloaded"


@pytest.mark.parametrize(
    ("outputs", "expected"),
    [
        (["--mux", "{tmp}/x.avi"], "must end in .m4v, .mkv, .mov, .mp4"),
        (["-o", "{tmp}/x.edl"], "timeline files end in .otio or .xml"),
    ],
)
def test_bad_output_names_fail_before_any_work(
    cli_env: SuggestEnv,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    outputs: list[str],
    expected: str,
) -> None:
    argv = ["suggest", str(cli_env.ntsc_video.path), "--local", "--model", cli_env.pipeline.model]
    argv += [o.format(tmp=tmp_path) for o in outputs]
    code = main([*argv, "--progress", "jsonl", "--mix", str(tmp_path / "m.wav")])
    captured = capsys.readouterr()
    assert code == 2
    assert expected in one_error_line(captured.err)  # no progress line: nothing was started
    assert not list(tmp_path.iterdir())
