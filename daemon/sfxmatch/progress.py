"""Progress values shared by the facade, the indexer, the daemon and its client.

Plain frozen dataclasses with no heavy imports, so the client (no torch, no PyAV) and the
pipeline speak the same types instead of mirroring each other.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Progress:
    """One progress message: ``stage`` (e.g. "analyse", "mix"), its fraction done, a note."""

    stage: str
    fraction: float
    message: str = ""


@dataclass(frozen=True)
class IndexProgress:
    """Where an index run is: ``done`` of ``total`` files of the current stage."""

    library: str
    stage: str  # "scan", "index", "done"
    done: int
    total: int
    message: str = ""
