"""The committed generated code is what grpcio-tools makes from the .proto today."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("grpc_tools")

from sfxmatch.service import codegen


def test_generated_code_is_current(tmp_path: Path) -> None:
    written = codegen.generate(tmp_path)
    fresh = {p.relative_to(tmp_path) for p in written}
    committed = {
        p.relative_to(codegen.GENERATED)
        for p in codegen.GENERATED.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert committed == fresh, "stale or missing generated files: run protos/generate.py --clean"
    for relative in sorted(fresh):
        assert (codegen.GENERATED / relative).read_bytes() == (tmp_path / relative).read_bytes(), (
            f"{relative} is stale: run `python protos/generate.py`"
        )


def test_stubs_import_messages_relatively() -> None:
    text = (codegen.GENERATED / "sfxmatch" / "v1" / "sfxmatch_pb2_grpc.py").read_text()
    assert "from . import sfxmatch_pb2" in text and "from sfxmatch.v1" not in text
