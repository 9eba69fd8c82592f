"""Run the command line with the indexer stopped dead at a checkpoint (crash tests only).

``python -m sfxmatch.testing.crash POINT:N ARGS...`` runs ``sfxmatch ARGS...`` in this
process and SIGKILLs it the N-th time the indexer passes its checkpoint ``POINT`` (one of
``sfxmatch.library.indexer.CHECKPOINTS``): the test installs the hook, production code
never looks for one.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable, Sequence

from sfxmatch.library import indexer


def killer(spec: str) -> Callable[[str], None]:
    """A checkpoint hook that SIGKILLs this process at the n-th pass of ``point:n``."""
    point, _, nth = spec.partition(":")
    if point not in indexer.CHECKPOINTS:
        raise SystemExit(f"unknown checkpoint {point!r} (one of {', '.join(indexer.CHECKPOINTS)})")
    passes = 0

    def hook(name: str) -> None:
        nonlocal passes
        if name != point:
            return
        passes += 1
        if passes >= int(nth or 1):
            os.kill(os.getpid(), signal.SIGKILL)

    return hook


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        raise SystemExit("usage: python -m sfxmatch.testing.crash POINT:N SFXMATCH-ARGS...")
    indexer.set_checkpoint_hook(killer(args[0]))
    from sfxmatch._cli import main as cli_main

    return cli_main(args[1:])


if __name__ == "__main__":
    sys.exit(main())
