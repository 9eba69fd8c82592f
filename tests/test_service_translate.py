"""Failures mapped by class to status codes; request bounds; storage-full recognition."""

from __future__ import annotations

import errno
import json
import sqlite3
import time
from pathlib import Path

import grpc
import pytest
from sfxmatch.errors import (
    Cancelled,
    ConfigError,
    LimitError,
    NotFoundError,
    StorageFullError,
    is_storage_full,
)
from sfxmatch.files import storage_writes, write_text_atomic
from sfxmatch.library.registry import MAX_LIBRARIES, LibraryConfig, Registry
from sfxmatch.service import translate
from sfxmatch.service.translate import status_for

LANCE_FULL = RuntimeError(
    "lance error: LanceError(IO): No space left on device (os error 28), "
    "/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/lance-file-13.0.0/src/writer.rs:258:9"
)


def _sqlite_full() -> sqlite3.OperationalError:
    error = sqlite3.OperationalError("database or disk is full")
    error.sqlite_errorcode = 13  # type: ignore[attr-defined]
    return error


@pytest.mark.parametrize(
    "error",
    [
        OSError(errno.ENOSPC, "No space left on device"),
        OSError(errno.EDQUOT, "Disk quota exceeded"),
        OSError(errno.EFBIG, "File too large"),
        LANCE_FULL,
        _sqlite_full(),
    ],
)
def test_a_full_disk_is_recognised_and_raised_as_storage_full(error: Exception) -> None:
    assert is_storage_full(error)
    with pytest.raises(StorageFullError) as raised, storage_writes("the vector store", "/data"):
        raise error
    code, message = status_for(raised.value)
    assert code is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert message.startswith("no space left to write the vector store (in /data)")
    assert ".rs" not in message and "os error" not in message


def test_other_failures_are_not_storage_full() -> None:
    others = (RuntimeError("lance error: bad schema"), OSError(errno.EIO, "I/O"), ValueError("x"))
    for error in others:
        assert not is_storage_full(error)
        with pytest.raises(type(error)), storage_writes("x"):
            raise error


def test_failures_map_by_class_and_internal_says_no_internals() -> None:
    assert status_for(Cancelled("stop"))[0] is grpc.StatusCode.CANCELLED
    assert status_for(LimitError("too many"))[0] is grpc.StatusCode.INVALID_ARGUMENT
    # Where a request nests too deeply, its reader says so; from anywhere else it is a bug.
    assert status_for(RecursionError())[0] is grpc.StatusCode.INTERNAL
    assert status_for(OSError(errno.ENOSPC, "full"))[0] is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert status_for(NotFoundError("no"))[0] is grpc.StatusCode.NOT_FOUND
    code, message = status_for(LANCE_FULL.__class__("lance error: bug at /src/x.rs:1:2"))
    assert code is grpc.StatusCode.INTERNAL
    assert message == "internal error in the daemon (RuntimeError); its log has the details"


def test_a_full_disk_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = write_text_atomic(tmp_path / "libraries.json", "old")

    def full(*_args: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("os.fsync", full)
    with pytest.raises(StorageFullError, match=r"libraries\.json"):
        write_text_atomic(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["libraries.json"]


def test_the_registry_is_bounded(tmp_path: Path) -> None:
    registry = Registry(tmp_path)
    many = [LibraryConfig(f"lib{i}", f"/sounds/{i}") for i in range(MAX_LIBRARIES)]
    registry._write(many)
    with pytest.raises(LimitError, match=f"{MAX_LIBRARIES} libraries"):
        registry.add(LibraryConfig("one more", "/sounds/more"))
    (tmp_path / "libraries.json").write_text(json.dumps({"libraries": []}) + " " * (17 << 20))
    with pytest.raises(Exception, match="more than any library list"):
        registry.all()


def test_deep_json_is_refused_by_the_reader_itself_in_linear_time() -> None:
    policy = translate.PathPolicy()
    with pytest.raises(ConfigError, match="nests too deeply") as deep:
        translate.suggestions_from_json("[" * 200_000 + "]" * 200_000, policy)
    assert status_for(deep.value)[0] is grpc.StatusCode.INVALID_ARGUMENT
    # A long string inside brackets costs one pass of the C reader (a regular expression
    # over it took 3 s and 4 GB at 32 MiB).
    long = "[" * 70 + '"' + "a" * (16 << 20) + '"' + "]" * 70
    began = time.perf_counter()
    with pytest.raises(ConfigError, match="not valid suggestions") as odd:
        translate.suggestions_from_json(long, policy)
    assert time.perf_counter() - began < 1.0 and len(str(odd.value)) <= 300
    with pytest.raises(ConfigError, match="not JSON"):
        translate.suggestions_from_json("{", policy)


def test_bounds_are_refused_as_invalid_argument() -> None:
    for value in (float("inf"), float("nan"), -1.0, translate.MAX_GRACE + 1):
        with pytest.raises(ConfigError, match="grace must be within") as refused:
            translate.check_grace(value)
        assert status_for(refused.value)[0] is grpc.StatusCode.INVALID_ARGUMENT
    assert translate.check_grace(0) == 0 and translate.check_grace(2.5) == 2.5
    with pytest.raises(ConfigError, match="at most 64"):
        translate.names(["x"] * 65, "library name")
    with pytest.raises(ConfigError, match="segment must be within"):
        translate.options_from_msg(translate.pb.SuggestOptions(segment=1e-9))


def test_the_readme_documents_every_bound_and_names_real_tests() -> None:
    import re as regex

    repo = Path(__file__).resolve().parents[1]
    readme = (repo / "README.md").read_text(encoding="utf-8")
    for what, bound in translate.BOUNDS.items():
        assert f"| {what} | {bound} |" in readme, what
    section = readme.split("## Reliability", 1)[1].split("\n## ", 1)[0]
    named = regex.findall(r"`(tests/[\w/]+\.py)(?:::(\w+))?`", section)
    assert len(named) >= 20
    for path, test in named:
        source = (repo / path).read_text(encoding="utf-8")
        assert not test or f"def {test}(" in source, f"{path}::{test}"
