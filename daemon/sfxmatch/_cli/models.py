"""``sfxmatch models``: the models sfxmatch can run, their licences and weights, and fetching
a model's weights ahead of use (the installer does this for the default model)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from sfxmatch.config import Settings


def add_models(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "models",
        help="list the models, or fetch one's weights",
        description="List the models sfxmatch can run (licence, size, whether the weights are "
        "here, which libraries are indexed for each), or download a model's weights.",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(handler=_run_list)
    commands = parser.add_subparsers(title="models commands", metavar="ACTION")
    fetch = commands.add_parser(
        "fetch",
        help="download a model's weights into the user cache (resumable, hash-checked)",
    )
    fetch.add_argument(
        "name", nargs="?", help="the model (default: the default model for this machine)"
    )
    fetch.set_defaults(handler=_run_fetch)


def _run_list(args: argparse.Namespace) -> int:
    from sfxmatch.embed.encoder import resolve_model_name, weights_here
    from sfxmatch.embed.registry import MODELS

    settings = Settings.from_env()
    chosen = resolve_model_name(None, settings)
    indexed = _indexed_folders(settings)
    rows: list[dict[str, Any]] = []
    for spec in MODELS.values():
        keys = [k for k in indexed if k == spec.name or k.startswith(f"{spec.name}-")]
        rows.append(
            {
                "name": spec.name,
                "default": spec.name == chosen,
                "licence": spec.licence,
                "commercial_use": spec.commercial_use,
                "weights": "random (tests only)"
                if spec.random_only
                else ("here" if weights_here(spec, settings) else "not downloaded"),
                "weights_bytes": spec.weights_bytes,
                "indexed_sounds": sum(indexed[k] for k in keys),
                "pick_when": spec.pick_when,
            }
        )
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        size = f"{row['weights_bytes'] / 1e9:.1f} GB" if row["weights_bytes"] else "-"
        mark = "*" if row["default"] else " "
        print(
            f"{mark} {row['name']:<15} {row['licence']:<42} {size:>7}  {row['weights']:<18} "
            f"{row['indexed_sounds']:>6} sounds indexed"
        )
        print(f"    {row['pick_when']}")
    print("* the model used when none is named ($SFXMATCH_MODEL or --model choose another)")
    return 0


def _indexed_folders(settings: Settings) -> dict[str, int]:
    """Sounds indexed per index folder (model and weights), over every library."""
    from sfxmatch.library.registry import IndexState

    out: dict[str, int] = {}
    for path in sorted(settings.library_dir.glob("*/index.sqlite")):
        state = IndexState(path)
        try:
            out[path.parent.name] = sum(state.count(None).values())
        finally:
            state.close()
    return out


def _run_fetch(args: argparse.Namespace) -> int:
    from sfxmatch.embed.encoder import resolve_model_name
    from sfxmatch.embed.registry import get_model

    settings = Settings.from_env()
    spec = get_model(resolve_model_name(args.name, settings))
    if spec.random_only:
        print(f"{spec.name} has random weights made on the spot: nothing to fetch")
        return 0
    from sfxmatch._cli.progress import running

    with running(f"fetch {spec.name}") as work:
        progress = work.bytes if work.shows_bar else None
        if spec.family == "pe-av":
            from sfxmatch.embed.pe.hub import checkpoint_folder

            where = checkpoint_folder(spec, settings=settings, progress=progress)
        else:
            from sfxmatch.embed.checkpoint import IMAGEBIND_HUGE, ensure_checkpoint

            where = ensure_checkpoint(IMAGEBIND_HUGE, settings=settings, progress=progress)
    print(f"{spec.name}: weights in {where} ({spec.licence})")
    return 0


def warn_about_model(model: str, *, meaningless: bool) -> None:
    """Say once what a user must know about ``model``: random weights (meaningless results)
    and a licence that forbids commercial use (the library, suggest and daemon commands)."""
    from sfxmatch.embed.registry import MODELS

    if meaningless:
        print(
            "sfxmatch: WARNING: this model has RANDOM weights (development only): kinds, "
            "matches and suggestions are MEANINGLESS",
            file=sys.stderr,
        )
    spec = MODELS.get(model)
    if spec is not None and not spec.commercial_use and not meaningless:
        print(
            f"sfxmatch: note: {spec.name} is licensed {spec.licence}: do not use it for "
            "commercial work (pe-av-small/base/large are Apache-2.0)",
            file=sys.stderr,
        )
