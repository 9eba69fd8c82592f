"""Only ``sfxmatch.config`` reads the environment: every other module gets its settings from
``Settings`` (or config's readers), so a test or the daemon can hand them in."""

from __future__ import annotations

import ast
from pathlib import Path

import sfxmatch
from sfxmatch.config import Settings

PACKAGE = Path(sfxmatch.__file__).resolve().parent
ALLOWED = {PACKAGE / "config.py"}
EXEMPT_FOLDERS = (PACKAGE / "testing", PACKAGE / "_generated")  # test helpers, generated code
READERS = {"environ", "environb", "getenv", "getenvb", "putenv", "unsetenv"}


def _reads(tree: ast.AST) -> list[tuple[int, str]]:
    """Where a module touches ``os.environ``/``os.getenv``, or imports them from ``os``."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in READERS:
            if isinstance(node.value, ast.Name) and node.value.id in ("os", "_os", "posix"):
                found.append((node.lineno, f"os.{node.attr}"))
        elif isinstance(node, ast.ImportFrom) and node.module in ("os", "posix"):
            found += [(node.lineno, f"from os import {a.name}") for a in node.names
                      if a.name in READERS]  # fmt: skip
    return found


def test_no_module_outside_config_reads_the_environment() -> None:
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path in ALLOWED or any(path.is_relative_to(f) for f in EXEMPT_FOLDERS):
            continue
        for line, what in _reads(ast.parse(path.read_text(encoding="utf-8"))):
            offenders.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {what}")
    assert offenders == [], "read the environment in sfxmatch.config (Settings) instead"


def test_the_scan_finds_every_way_of_reading() -> None:
    source = (
        "import os\nfrom os import environ, getenv\n"
        "a = os.environ['X']\nb = os.getenv('Y')\nc = os.environ.get('Z')\n"
    )
    assert [what for _, what in _reads(ast.parse(source))] == [
        "from os import environ",
        "from os import getenv",
        "os.environ",
        "os.getenv",
        "os.environ",
    ]


def test_settings_hold_what_modules_used_to_read() -> None:
    env = {
        "SFXMATCH_INDEX_BATCH": "4",
        "SFXMATCH_DAEMON_ADDRESS": " unix:///tmp/x.sock ",
        "SFXMATCH_DAEMON_TOKEN_FILE": "/tmp/token",
        "PINECONE_API_KEY": "secret",
    }
    settings = Settings.from_env(env)
    assert settings.index_batch == 4
    assert settings.daemon_address == "unix:///tmp/x.sock"
    assert settings.daemon_token_file == Path("/tmp/token")
    assert settings.pinecone_api_key == "secret" and "secret" not in repr(settings)
