"""installer/install.sh (run in dry-run and in a stand-in home) and install.ps1 (static)."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parent.parent
INSTALL_SH = REPO / "installer" / "install.sh"
INSTALL_PS1 = REPO / "installer" / "install.ps1"
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
CUDA_INDEX = "https://download.pytorch.org/whl/cu128"
RESOLVE_LINUX = ".local/share/DaVinciResolve/Fusion/Scripts/Utility"
RESOLVE_MACOS = (
    "Library/Application Support/Blackmagic Design/DaVinci Resolve/Fusion/Scripts/Utility"
)


def fake_program(folder: Path, name: str, body: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    program = folder / name
    program.write_text(f"#!/bin/sh\n{body}\n")
    program.chmod(0o755)
    return program


def fake_source(tmp_path: Path) -> Path:
    """A source tree with two Resolve scripts, the live check, and things not to copy."""
    source = tmp_path / "src"
    resolve = source / "plugins" / "resolve"
    (resolve / "helpers").mkdir(parents=True)
    (source / "pyproject.toml").write_text("[project]\nname = 'sfxmatch'\n")
    (resolve / "Suggest sounds.py").write_text("print('suggest')\n")
    (resolve / "sfxmatch_common.py").write_text("X = 1\n")
    (resolve / "live_check.py").write_text("print('developer only')\n")
    (resolve / "README.md").write_text("docs\n")
    (resolve / "helpers" / "nested.py").write_text("print('nested')\n")
    return source


def run_installer(
    tmp_path: Path,
    *args: str,
    gpu: str | None = None,
    os_name: str | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """install.sh with HOME in tmp_path; ``gpu``: what a fake nvidia-smi says ("" = fails)."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    if gpu is not None:
        body = f"echo '{gpu}'" if gpu else "echo 'NVIDIA-SMI has failed: no driver' >&2; exit 9"
        fake_program(bin_dir, "nvidia-smi", body)
    env = {
        "HOME": str(home),
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', os.defpath)}",
        "LANG": "C.UTF-8",
    }
    if os_name is not None:
        env["SFXMATCH_INSTALL_OS"] = os_name
    done = subprocess.run(
        ["bash", str(INSTALL_SH), "--python", sys.executable, *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )
    if check:
        assert done.returncode == 0, done.stdout + done.stderr
    return done


def commands(output: str) -> list[list[str]]:
    """The commands install.sh printed (lines '+ ...', shell-quoted)."""
    return [shlex.split(line[2:]) for line in output.splitlines() if line.startswith("+ ")]


def said(output: str, key: str) -> str:
    """The value of a '[sfxmatch] key: value' line."""
    for line in output.splitlines():
        if line.startswith(f"[sfxmatch] {key}: "):
            return line.split(": ", 1)[1]
    raise AssertionError(f"no '{key}:' line in:\n{output}")


# --- install.sh ---------------------------------------------------------------------------


def test_install_sh_syntax() -> None:
    done = subprocess.run(["bash", "-n", str(INSTALL_SH)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed")
def test_install_sh_is_shellcheck_clean() -> None:
    done = subprocess.run(["shellcheck", str(INSTALL_SH)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout


def test_dry_run_plan_without_a_gpu(tmp_path: Path) -> None:
    source = fake_source(tmp_path)
    done = run_installer(tmp_path, "--dry-run", "--source", str(source), gpu="")
    out = done.stdout
    home = tmp_path / "home"
    venv = home / ".local" / "share" / "sfxmatch" / "venv"
    assert said(out, "venv") == str(venv)
    assert said(out, "torch").startswith(f"cpu 2.13.0 from {CPU_INDEX} ")
    planned = commands(out)
    assert [sys.executable, "-m", "venv", str(venv)] in planned
    pip = [str(venv / "bin/python"), "-m", "pip", "install", "--quiet"]
    torch = [c for c in planned if "torch==2.13.0" in c]
    assert torch == [[*pip, "--index-url", CPU_INDEX, "torch==2.13.0"]]
    install_pkg = [*pip, str(source)]
    assert planned.index(torch[0]) < planned.index(install_pkg)  # torch first, exactly
    fetch = [c for c in planned if c[1:3] == ["models", "fetch"]]
    assert fetch == [[str(venv / "bin/sfxmatch"), "models", "fetch"]]  # the machine's default
    assert [str(venv / "bin/sfxmatch"), "daemon", "install"] in planned
    client = home / ".config" / "sfxmatch" / "client.json"
    assert json.loads(said(out, f"write {client}")) == {"executable": str(venv / "bin/sfxmatch")}
    resolve = home / RESOLVE_LINUX
    assert said(out, "DaVinci Resolve scripts folder") == str(resolve)
    copied = sorted(Path(c[-1]).name for c in planned if c[:2] == ["cp", "-f"])
    assert copied == ["Suggest sounds.py", "sfxmatch_common.py"]  # not live_check, not nested
    assert all(Path(c[-1]).parent == resolve for c in planned if c[:2] == ["cp", "-f"])
    # A dry run changes nothing.
    assert list(home.iterdir()) == []


def test_a_named_model_is_fetched(tmp_path: Path) -> None:
    done = run_installer(
        tmp_path, "--dry-run", "--no-service", "--no-plugins", "--model", "pe-av-large", gpu=""
    )
    fetch = [c for c in commands(done.stdout) if c[1:3] == ["models", "fetch"]]
    assert len(fetch) == 1 and fetch[0][3:] == ["pe-av-large"]


def test_dry_run_with_a_gpu_picks_the_cuda_index(tmp_path: Path) -> None:
    gpu = "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-1234)"
    done = run_installer(tmp_path, "--dry-run", gpu=gpu)
    torch = said(done.stdout, "torch")
    assert torch.startswith(f"cuda 2.13.0 from {CUDA_INDEX} ")
    assert "NVIDIA H100" in torch
    assert any(c[-3:-1] == ["--index-url", CUDA_INDEX] for c in commands(done.stdout))


def test_a_failing_nvidia_smi_means_cpu(tmp_path: Path) -> None:
    done = run_installer(tmp_path, "--dry-run", gpu="")
    assert said(done.stdout, "torch").startswith(f"cpu 2.13.0 from {CPU_INDEX} ")


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="this machine has nvidia-smi")
def test_no_nvidia_smi_means_cpu(tmp_path: Path) -> None:
    done = run_installer(tmp_path, "--dry-run")
    assert "no NVIDIA GPU" in said(done.stdout, "torch")


def test_torch_can_be_forced(tmp_path: Path) -> None:
    done = run_installer(tmp_path, "--dry-run", "--torch", "cuda", gpu="")
    assert said(done.stdout, "torch").startswith(f"cuda 2.13.0 from {CUDA_INDEX} ")
    other = run_installer(tmp_path, "--dry-run", "--torch-index", "https://example.invalid/x")
    assert " from https://example.invalid/x " in said(other.stdout, "torch")


def test_prefix_and_skips(tmp_path: Path) -> None:
    prefix = tmp_path / "opt" / "sfx"
    done = run_installer(
        tmp_path,
        "--dry-run",
        "--prefix",
        str(prefix),
        "--no-model",
        "--no-service",
        "--no-plugins",
        gpu="",
    )
    assert said(done.stdout, "venv") == str(prefix / "venv")
    planned = commands(done.stdout)
    assert ["mkdir", "-p", str(prefix)] in planned
    assert not any("ensure_checkpoint" in " ".join(c) for c in planned)
    assert not any(c[1:] == ["daemon", "install"] for c in planned)
    assert not any(c[0] == "cp" for c in planned)
    assert "client.json" not in done.stdout


def test_macos_plan(tmp_path: Path) -> None:
    gpu = "GPU 0: NVIDIA RTX (UUID: GPU-1)"  # ignored: macOS wheels come from PyPI
    done = run_installer(tmp_path, "--dry-run", os_name="Darwin", gpu=gpu)
    home = tmp_path / "home"
    support = home / "Library" / "Application Support"
    venv = support / "sfxmatch" / "venv"
    assert said(done.stdout, "venv") == str(venv)
    assert said(done.stdout, "torch").startswith("macos 2.13.0 from https://pypi.org/simple ")
    client = support / "sfxmatch" / "client.json"
    assert json.loads(said(done.stdout, f"write {client}")) == {
        "executable": str(venv / "bin/sfxmatch")
    }
    assert said(done.stdout, "DaVinci Resolve scripts folder") == str(home / RESOLVE_MACOS)


def test_other_platforms_are_refused(tmp_path: Path) -> None:
    done = run_installer(tmp_path, "--dry-run", os_name="FreeBSD", check=False)
    assert done.returncode != 0 and "install.ps1" in done.stderr


def test_unknown_option_is_an_error(tmp_path: Path) -> None:
    done = run_installer(tmp_path, "--dry-run", "--frobnicate", check=False)
    assert done.returncode != 0 and "unknown option: --frobnicate" in done.stderr


def test_real_run_writes_client_file_and_scripts_and_reruns(tmp_path: Path) -> None:
    source = fake_source(tmp_path)
    prefix = tmp_path / "prefix"
    exe = fake_program(prefix / "venv" / "bin", "sfxmatch", "exit 0")
    args = ("--prefix", str(prefix), "--source", str(source), "--no-env", "--no-model")
    args += ("--no-service",)
    home = tmp_path / "home"
    resolve = home / RESOLVE_LINUX
    client = home / ".config" / "sfxmatch" / "client.json"
    for _ in range(2):  # the second run must succeed and leave the same result
        run_installer(tmp_path, *args, gpu="")
        assert json.loads(client.read_text(encoding="utf-8")) == {"executable": str(exe)}
        assert sorted(p.name for p in resolve.iterdir()) == [
            "Suggest sounds.py",
            "sfxmatch_common.py",
        ]
        assert (resolve / "Suggest sounds.py").read_text() == "print('suggest')\n"
    (source / "plugins" / "resolve" / "Suggest sounds.py").write_text("print('v2')\n")
    run_installer(tmp_path, *args, gpu="")
    assert (resolve / "Suggest sounds.py").read_text() == "print('v2')\n"  # updated in place


def test_no_env_without_an_environment_fails(tmp_path: Path) -> None:
    done = run_installer(
        tmp_path,
        "--prefix",
        str(tmp_path / "empty"),
        "--no-env",
        "--no-model",
        gpu="",
        check=False,
    )
    assert done.returncode != 0 and "run without --no-env first" in done.stderr


def test_service_step_is_run_and_a_failure_is_a_warning(tmp_path: Path) -> None:
    prefix = tmp_path / "prefix"
    log = tmp_path / "calls.txt"
    fake_program(prefix / "venv" / "bin", "sfxmatch", f'echo "$@" >> "{log}"; exit 0')
    run_installer(tmp_path, "--prefix", str(prefix), "--no-env", "--no-model", "--no-plugins")
    assert log.read_text().splitlines()[-1] == "daemon install"
    fake_program(prefix / "venv" / "bin", "sfxmatch", "exit 1")  # no daemon command: fallback
    fake_program(prefix / "venv" / "bin", "python", f'echo "$@" >> "{log}"; exit 5')
    done = run_installer(
        tmp_path, "--prefix", str(prefix), "--no-env", "--no-model", "--no-plugins", check=False
    )
    assert log.read_text().splitlines()[-1] == "-m sfxmatch.user_service install"
    assert done.returncode == 1 and "could not be installed" in done.stderr


def _resolve_plugin() -> ModuleType:
    path = REPO / "plugins" / "resolve" / "Suggest sounds.py"
    if not path.exists():
        pytest.skip("the Resolve plugin is not in this checkout")
    spec = importlib.util.spec_from_file_location("suggest_sounds_for_test", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not hasattr(module, "client_config_path"):
        pytest.skip("the Resolve plugin has no client_config_path()")
    return module


def test_client_file_is_where_the_resolve_plugin_looks(tmp_path: Path) -> None:
    plugin = _resolve_plugin()
    home = tmp_path / "home"
    linux = run_installer(tmp_path, "--dry-run", gpu="")
    expected = plugin.client_config_path(platform="linux", env={}, home=str(home))
    assert said(linux.stdout, f"write {expected}")
    mac = run_installer(tmp_path, "--dry-run", os_name="Darwin", gpu="")
    expected = plugin.client_config_path(platform="darwin", env={}, home=str(home))
    assert said(mac.stdout, f"write {expected}")
    windows = plugin.client_config_path(platform="win32", env={"APPDATA": "APPDATA"}, home="H")
    assert windows.replace("\\", "/") == "APPDATA/sfxmatch/client.json"
    assert r'Join-Path $env:APPDATA "sfxmatch\client.json"' in INSTALL_PS1.read_text()


# --- install.ps1 --------------------------------------------------------------------------


def _strip_ps_strings_and_comments(text: str) -> str:
    """PowerShell code with strings emptied and comments removed (newlines kept)."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if text.startswith("<#", i):
            end = text.index("#>", i + 2) + 2
            out.append("\n" * text.count("\n", i, end))
            i = end
        elif char == "#":
            while i < n and text[i] != "\n":
                i += 1
        elif char == "'":
            end = text.index("'", i + 1) + 1  # no escapes in single-quoted strings
            out.append("''" + "\n" * text.count("\n", i, end))
            i = end
        elif char == '"':
            j = i + 1
            while text[j] != '"':
                j += 2 if text[j] == "`" else 1  # a backtick escapes the next character
            out.append('""' + "\n" * text.count("\n", i, j))
            i = j + 1
        else:
            out.append(char)
            i += 1
    return "".join(out)


def test_install_ps1_static_checks() -> None:
    text = INSTALL_PS1.read_text(encoding="utf-8")
    # the options, as PowerShell parameters
    param = re.search(r"param\((.*?)\n\)", text, flags=re.S)
    assert param is not None
    names = ("Prefix", "NoModel", "Model", "NoService", "NoPlugins", "DryRun", "NoEnv", "Torch")
    for name in names:
        assert re.search(rf"\${name}\b", param.group(1)), name
    # the steps
    assert "Set-StrictMode -Version 3" in text and '$ErrorActionPreference = "Stop"' in text
    assert '"torch==$TorchVersion"' in text and '$TorchVersion = "2.13.0"' in text
    assert CPU_INDEX in text and CUDA_INDEX in text
    assert "nvidia-smi -L" in text
    assert '"-m", "venv"' in text
    assert '@($Exe, "models", "fetch")' in text
    assert '@($Exe, "daemon", "install")' in text
    assert r'Join-Path $Venv "Scripts\sfxmatch.exe"' in text
    assert r"Blackmagic Design\DaVinci Resolve\Support\Fusion\Scripts\Utility" in text
    assert '$_.Name -ne "live_check.py"' in text
    assert "UTF8Encoding $false" in text  # no BOM: json.load would reject it
    assert "if ($Model) { $fetch += $Model }" in text  # -Model names the model to fetch


def test_install_ps1_brackets_balance() -> None:
    code = _strip_ps_strings_and_comments(INSTALL_PS1.read_text(encoding="utf-8"))
    pairs = {")": "(", "}": "{", "]": "["}
    stack: list[str] = []
    for number, line in enumerate(code.splitlines(), 1):
        for char in line:
            if char in "({[":
                stack.append(char)
            elif char in pairs:
                assert stack and stack[-1] == pairs[char], f"unbalanced {char} on line {number}"
                stack.pop()
    assert stack == []


@pytest.mark.skipif(shutil.which("pwsh") is None, reason="PowerShell is not installed")
def test_install_ps1_parses_with_powershell() -> None:
    command = (
        "$errors = $null; [System.Management.Automation.Language.Parser]::ParseFile("
        f"'{INSTALL_PS1}', [ref]$null, [ref]$errors) | Out-Null; "
        "if ($errors.Count) { $errors | ForEach-Object { $_.ToString() }; exit 1 }"
    )
    done = subprocess.run(
        ["pwsh", "-NoProfile", "-Command", command], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr


# --- the Python version -------------------------------------------------------------------


def test_one_minimum_python_everywhere() -> None:
    """pyproject, ruff, both installers and the READMEs all say 3.11 (the code uses
    asyncio.timeout and atomic regex groups, which 3.10 lacks)."""
    pyproject = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    assert 'requires-python = ">=3.11"' in pyproject and 'target-version = "py311"' in pyproject
    for script in (INSTALL_SH, INSTALL_PS1):
        text = script.read_text(encoding="utf-8")
        assert "sys.version_info >= (3, 11)" in text, script.name
        assert "3.11 or newer" in text and "3.10" not in text, script.name
    for readme in (REPO / "README.md", REPO / "installer" / "README.md"):
        assert "Python 3.11" in readme.read_text(encoding="utf-8"), readme


def test_a_python_older_than_3_11_is_refused(tmp_path: Path) -> None:
    # The real interpreter, made to report itself as 3.10.
    code = 'import sys; sys.version_info = (3, 10, 14, "final", 0); exec(sys.argv[2])'
    body = f"exec '{sys.executable}' -c '{code}' \"$@\""
    old = fake_program(tmp_path / "old", "python3.10", body)
    done = run_installer(tmp_path, "--dry-run", "--python", str(old), check=False)
    assert done.returncode != 0
    assert f"{old} is not Python 3.11 or newer" in done.stderr
