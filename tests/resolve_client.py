"""The client's ``resolve-clips`` for the Resolve script's scripted stand-ins: the real CLI.

A scripted client answers ``suggest`` with whatever suggestions a test builds; the clips the
script then asks to have framed are answered here by sfxmatch's own command, in-process
(:func:`resolve_clips`) or as a program (:func:`cli_program`), so the placements the tests
check are the package's.
"""

from __future__ import annotations

import io
import stat
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

from sfxmatch._cli import main

COMMAND = "resolve-clips"
DAEMON_DIR = Path(__file__).resolve().parents[1] / "daemon"


def asks_for_clips(argv: list[str]) -> bool:
    return COMMAND in argv


def resolve_clips(argv: list[str]) -> tuple[int, str, str]:
    """Run ``sfxmatch resolve-clips ...`` (the tail of ``argv``) in this process, as a runner
    does: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(argv[argv.index(COMMAND) :])
    return code, out.getvalue(), err.getvalue()


def cli_lines() -> str:
    """Python lines that hand a ``resolve-clips`` call of the program they are in to the real
    CLI of this checkout."""
    return (
        f"if {COMMAND!r} in sys.argv:\n"
        f"    sys.path.insert(0, {str(DAEMON_DIR)!r})\n"
        "    from sfxmatch._cli import main\n"
        f"    sys.exit(main(sys.argv[sys.argv.index({COMMAND!r}):]))\n"
    )


def cli_program(folder: Path) -> Path:
    """An executable ``sfxmatch`` that runs this checkout's CLI (for ``resolve-clips``)."""
    program = folder / "sfxmatch-cli"
    program.write_text(f"#!{sys.executable}\nimport sys\n{cli_lines()}sys.exit(2)\n")
    program.chmod(program.stat().st_mode | stat.S_IXUSR)
    return program
