"""The package's imports go one way: no cycles, and the algorithms in ``match/`` reach no I/O.

The graph is read from the source with ``ast``: every ``import`` and ``from ... import``
statement of every module of ``daemon/sfxmatch``, at module level or inside a function or
class (a lazy import is still a dependency). Excluded: only the bodies of
``if TYPE_CHECKING:`` blocks, which never run. Relative imports are resolved. ``from P import
N`` is an edge to the module ``P.N`` when that is a module, else to ``P``.

**Cycles** are looked for over those explicit edges. Python also runs a package's
``__init__`` before any of its modules; those implicit edges are left out of the cycle check
(a package's ``__init__`` re-exporting its own modules would otherwise always be a "cycle"),
but they are followed for ``match/``, because they decide what importing it loads: there,
a package's ``__init__`` counts with what it runs when imported (its imports outside
functions; ``store``'s loads its backends lazily, on first use).

**I/O**: ``match/`` holds pure functions (``DESIGN.md``). What ``match/`` reaches through
package imports (explicit and implicit edges, transitively) must include none of:

- the package's modules that read or write files, sockets, databases or processes, or decode
  media: ``media``, ``files``, ``library.*`` (scans, index state in SQLite, tag readers),
  ``embed.*`` (weights, downloads, the embedding cache), the store's backends (``store``'s
  ``lance``, ``exact`` and ``pinecone``; ``store.base``, the contract of plain values, is
  allowed), ``scenes`` and ``suggest`` (decode video), ``mix.*`` (sound files, FFmpeg),
  ``timeline.*`` (timeline files), ``plot``, ``service.*``, ``client``, ``pipeline``, the
  CLI modules, ``user_service`` and ``testing.*``;
- and, imported directly by any module it reaches, the standard library's and third-party
  modules for files, processes and the network: ``os``, ``shutil``, ``tempfile``, ``io``,
  ``glob``, ``subprocess``, ``multiprocessing``, ``socket``, ``ssl``, ``asyncio``, ``http``,
  ``urllib``, ``sqlite3``, ``mmap``, ``fcntl``, ``av``, ``soundfile``, ``pydub``, ``lancedb``,
  ``pyarrow``, ``faiss``, ``pinecone``, ``grpc``, ``torch``, ``transformers``,
  ``huggingface_hub``, ``opentimelineio``, ``matplotlib``.

``pathlib`` and ``numpy`` are not on the list: ``errors`` names files with ``Path``, and every
algorithm needs arrays. So this check does not see file reads made through them:
``match.events.read_events`` and ``match.tuning``'s score files read and write the files the
``tune`` command names to them.

A second check runs in a fresh interpreter (``python -c``): importing every module of
``match/`` must load none of those package modules and none of the third-party libraries
above, whatever the package ``__init__`` files do.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "daemon" / "sfxmatch"
PACKAGE = "sfxmatch"

IO_MODULES = (
    "sfxmatch.media",
    "sfxmatch.files",
    "sfxmatch.library",
    "sfxmatch.embed",
    "sfxmatch.store.lance",
    "sfxmatch.store.exact",
    "sfxmatch.store.pinecone",
    "sfxmatch.scenes",
    "sfxmatch.suggest",
    "sfxmatch.mix",
    "sfxmatch.timeline",
    "sfxmatch.plot",
    "sfxmatch.service",
    "sfxmatch.client",
    "sfxmatch.pipeline",
    "sfxmatch._cli",
    "sfxmatch.user_service",
    "sfxmatch.testing",
)
IO_LIBRARIES = (
    "av", "soundfile", "pydub", "lancedb", "pyarrow", "faiss", "pinecone", "grpc", "torch",
    "transformers", "huggingface_hub", "opentimelineio", "matplotlib",
)  # fmt: skip
IO_STDLIB = (
    "os", "shutil", "tempfile", "io", "glob", "subprocess", "multiprocessing", "socket", "ssl",
    "asyncio", "http", "urllib", "sqlite3", "mmap", "fcntl",
)  # fmt: skip


@dataclass(frozen=True)
class Module:
    name: str
    path: Path
    is_package: bool


def package_modules() -> dict[str, Module]:
    found = {}
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts.pop()
        found[".".join(parts)] = Module(".".join(parts), path, is_package)
    return found


def _skipped_nodes(tree: ast.AST, *, eager_only: bool) -> set[int]:
    """Ids of every node inside an ``if TYPE_CHECKING:`` body, and with ``eager_only`` inside
    a function (what importing the module does not run)."""
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for statement in node.body:
                inside.update(id(n) for n in ast.walk(statement))
        elif eager_only and isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            inside.update(id(n) for n in ast.walk(node))
    return inside


def imported_names(module: Module, *, eager_only: bool = False) -> set[str]:
    """Every module name ``module`` imports (package ones resolved; others as written);
    with ``eager_only``, those it imports when it is itself imported."""
    tree = ast.parse(module.path.read_text(encoding="utf-8"))
    skipped = _skipped_nodes(tree, eager_only=eager_only)
    here = module.name if module.is_package else module.name.rpartition(".")[0]
    known = package_modules()
    names: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here.split(".")[: len(here.split(".")) - (node.level - 1)]
                source = ".".join([*base, *([node.module] if node.module else [])])
            else:
                source = node.module or ""
            for alias in node.names:
                child = f"{source}.{alias.name}"
                names.add(child if child in known else source)
    return names


def import_graph(*, eager_only: bool = False) -> dict[str, set[str]]:
    """Package module -> the package modules it imports explicitly."""
    modules = package_modules()
    return {
        name: {n for n in imported_names(m, eager_only=eager_only) if n in modules and n != name}
        for name, m in modules.items()
    }


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def parents(name: str) -> list[str]:
    """The packages Python imports before ``name``: ``a.b.c`` -> ``a``, ``a.b``."""
    parts = name.split(".")
    return [".".join(parts[:k]) for k in range(1, len(parts))]


def reached_from(
    starts: list[str], graph: dict[str, set[str]], eager: dict[str, set[str]]
) -> dict[str, str]:
    """Every package module importing ``starts`` may load, with one module that imports it:
    what each reached module imports (``graph``), its parent packages, and what a parent
    package imports when it is imported (``eager``)."""
    via: dict[str, str] = {s: s for s in starts}
    pending = [(s, graph) for s in starts]
    while pending:
        current, edges = pending.pop()
        steps = [(n, graph) for n in edges[current]]
        steps += [(p, eager) for p in parents(current) if p in graph]
        for nxt, nxt_edges in steps:
            if nxt not in via:
                via[nxt] = current
                pending.append((nxt, nxt_edges))
    return via


def is_io(name: str) -> bool:
    return any(name == m or name.startswith(m + ".") for m in IO_MODULES)


def match_modules() -> list[str]:
    return sorted(n for n in package_modules() if n == "sfxmatch.match" or n.startswith(
        "sfxmatch.match."))  # fmt: skip


def test_the_package_has_no_import_cycles() -> None:
    found = cycles(import_graph())
    assert not found, "import cycles (lazy imports count): " + "; ".join(
        " <-> ".join(c) for c in found
    )


def test_match_reaches_no_io_module() -> None:
    via = reached_from(match_modules(), import_graph(), import_graph(eager_only=True))
    reached_io = {name: via[name] for name in via if is_io(name)}
    assert not reached_io, f"match/ reaches I/O modules (module: imported by): {reached_io}"
    modules = package_modules()
    direct = {
        name: sorted(
            n for n in imported_names(modules[name])
            if n.split(".")[0] in IO_STDLIB + IO_LIBRARIES
        )
        for name in via
    }  # fmt: skip
    assert not {k: v for k, v in direct.items() if v}, "match/ reaches a module doing I/O"


def test_importing_match_loads_no_io_module() -> None:
    code = (
        "import importlib, json, sys\n"
        f"for name in {match_modules()!r}: importlib.import_module(name)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True,
        env={"PYTHONPATH": str(PACKAGE_DIR.parent), "PATH": ""},
    )  # fmt: skip
    loaded = json.loads(result.stdout)
    assert "sfxmatch.match.placement" in loaded
    assert [m for m in loaded if is_io(m)] == []
    libraries = (*IO_LIBRARIES, "sqlite3", "subprocess")
    assert [m for m in loaded if m.split(".")[0] in libraries] == []


# ------------------------------------------------------------- the checks themselves


def test_the_checker_sees_cycles_lazy_imports_and_skips_type_checking(tmp_path: Path) -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
    source = tmp_path / "mod.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "from . import suggestions\n"
        "if TYPE_CHECKING:\n    from sfxmatch.pipeline import Pipeline\n"
        "def f():\n    from sfxmatch.media import load_audio\n    import subprocess\n"
    )
    names = imported_names(Module("sfxmatch.mod", source, False))
    assert {"sfxmatch.suggestions", "sfxmatch.media", "subprocess"} <= names
    assert "sfxmatch.pipeline" not in names


@pytest.mark.parametrize(
    ("name", "expected"),
    [("sfxmatch.store.base", False), ("sfxmatch.store.lance", True), ("sfxmatch.media", True),
     ("sfxmatch.mediator", False), ("sfxmatch.library.scan", True),
     ("sfxmatch.suggestions", False)],
)  # fmt: skip
def test_the_io_set_is_by_whole_module_names(name: str, expected: bool) -> None:
    assert is_io(name) is expected
