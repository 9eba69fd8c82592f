"""files.atomic_write: the one way sfxmatch replaces a file (every writer goes through it)."""

from __future__ import annotations

import ast
import os
import stat
from pathlib import Path

import pytest
from sfxmatch import files
from sfxmatch.files import atomic_write, write_text_atomic

PACKAGE = Path(files.__file__).parent


def test_a_finished_block_replaces_the_file_flushed_with_the_users_mode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd))[1])
    target = tmp_path / "sub" / "out.bin"
    with atomic_write(target, suffix=".bin") as tmp:
        assert tmp.parent == target.parent and tmp.name.endswith(".bin")
        assert not target.exists()
        tmp.write_bytes(b"new")
    assert target.read_bytes() == b"new"
    assert len(synced) == 2  # the file, then its folder
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~files.umask()
    assert [p.name for p in target.parent.iterdir()] == ["out.bin"]


def test_a_failing_block_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "keep.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_write(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("writer failed")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def test_private_files_stay_private_and_existing_modes_are_kept(tmp_path: Path) -> None:
    secret = write_text_atomic(tmp_path / "token", "x", private=True)
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    shared = tmp_path / "shared.txt"
    shared.write_text("a")
    shared.chmod(0o664)
    write_text_atomic(shared, "b")
    assert shared.read_text() == "b" and stat.S_IMODE(shared.stat().st_mode) == 0o664


def test_no_module_renames_a_temporary_file_of_its_own() -> None:
    """Replacing a file is atomic_write's job: a module calling os.replace / os.rename or
    mkstemp beside a target is a hand-written copy. The exceptions are not file writes:
    a download's finished part file, the embedding cache moving a damaged file aside, a
    log rotation, the token's hard-link dance (it must refuse an existing token) and the
    tiny test model's folder published whole."""
    allowed = {
        "files.py": 2,  # atomic_write itself: mkstemp and os.replace
        "embed/checkpoint.py": 1,
        "embed/cache.py": 1,
        "embed/pe/tiny.py": 1,
        "user_service.py": 1,
        "service/paths.py": 1,
    }
    found: dict[str, int] = {}
    for path in PACKAGE.rglob("*.py"):
        if "_generated" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and (node.value.id, node.attr)
                in {("os", "replace"), ("os", "rename"), ("tempfile", "mkstemp")}
            ):
                name = path.relative_to(PACKAGE).as_posix()
                found[name] = found.get(name, 0) + 1
    assert found == allowed
