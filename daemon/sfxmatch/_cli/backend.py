"""Which backend a command runs on: the daemon when one runs, this process otherwise.

Every library and suggest command takes the same options: ``--daemon`` needs a running
daemon, ``--local`` never uses one, and by default a daemon is used when
``sfxmatch.client.find_daemon()`` finds one, unless the command names a model, random weights
or a store of its own (the daemon holds its own). Both backends have one shape
(``sfxmatch.backend.Backend``), so a command is written once.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sfxmatch.backend import Backend
    from sfxmatch.client import Client
    from sfxmatch.pipeline import Pipeline

DEFAULT_STORE = "lance"


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """Which encoder and store a command uses (shared by library and suggest)."""
    group = parser.add_argument_group("model and store")
    from sfxmatch.embed.registry import MODELS

    group.add_argument(
        "--model",
        default=None,
        metavar="NAME",
        help=f"the model: {', '.join(MODELS)} (default: $SFXMATCH_MODEL, else pe-av-base with "
        "a GPU and pe-av-small without; `sfxmatch models` lists them)",
    )
    group.add_argument(
        "--random-weights",
        action="store_true",
        help="DEVELOPMENT ONLY: run with random weights; results are meaningless",
    )
    group.add_argument(
        "--store",
        choices=("lance", "exact", "pinecone"),
        default=DEFAULT_STORE,
        help="vector store: embedded LanceDB (default), exact (numpy file), pinecone",
    )


def add_mode_options(parser: argparse.ArgumentParser) -> None:
    """``--daemon`` / ``--local`` (default: the daemon when one runs)."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--daemon",
        dest="mode",
        action="store_const",
        const="daemon",
        help="run on the sfxmatch daemon (fail if none is running)",
    )
    group.add_argument(
        "--local",
        dest="mode",
        action="store_const",
        const="local",
        help="run in this process even when a daemon is running",
    )
    parser.set_defaults(mode="auto")


def pipeline_from_args(args: argparse.Namespace) -> Pipeline:
    from sfxmatch.pipeline import Pipeline

    random = getattr(args, "random_weights", False)
    return Pipeline(
        model=getattr(args, "model", None),
        weights="random" if random else None,
        store_backend=getattr(args, "store", DEFAULT_STORE),
    )


def client_for(args: argparse.Namespace) -> Client | None:
    """The daemon client to use for ``args.mode``, or None to run in-process."""
    mode = getattr(args, "mode", "auto")
    if mode == "local":
        return None
    from sfxmatch.client import find_daemon

    client = find_daemon()
    if client is None and mode == "daemon":
        from sfxmatch.errors import ConfigError

        raise ConfigError("no sfxmatch daemon is running (start one with `sfxmatch daemon run`)")
    return client


def _own_model_or_store(args: argparse.Namespace) -> bool:
    return bool(
        getattr(args, "model", None)
        or getattr(args, "random_weights", False)
        or getattr(args, "store", DEFAULT_STORE) != DEFAULT_STORE
    )


def backend_for(args: argparse.Namespace) -> Backend:
    """The daemon's client or a pipeline here (module notes); use it in a ``with``."""
    if getattr(args, "mode", "auto") == "auto" and _own_model_or_store(args):
        return pipeline_from_args(args)
    client = client_for(args)
    if client is None:
        return pipeline_from_args(args)
    asked = getattr(args, "model", None)
    served = client.model if asked else None
    if asked and asked != served:
        from sfxmatch.errors import ConfigError

        client.close()
        raise ConfigError(
            f"the running daemon serves {served}, not {asked}: run with --local, or start "
            f"the daemon with --model {asked}"
        )
    return client


def local_pipeline(backend: Backend) -> Pipeline | None:
    """The pipeline when the work runs in this process, else None. Looked up without
    importing it: a command on a daemon never loads the pipeline's modules."""
    module = sys.modules.get("sfxmatch.pipeline")
    if module is not None and isinstance(backend, module.Pipeline):
        return backend
    return None
