"""Progress and report values shared by the facade, the indexer, the daemon and its client.

Plain frozen dataclasses with no heavy imports, so the client (no torch, no PyAV) and the
pipeline speak the same types instead of mirroring each other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sfxmatch.library.scan import ScanFault


@dataclass(frozen=True)
class Progress:
    """One progress message: ``stage`` (e.g. "analyse", "mix"), its fraction done, a note."""

    stage: str
    fraction: float
    message: str = ""


ProgressFn = Callable[[Progress], None]
"""What long work reports to: called with each :class:`Progress`."""


@dataclass(frozen=True)
class IndexProgress:
    """Where an index run is: ``done`` of ``total`` files of the current stage."""

    library: str
    stage: str  # "scan", "index", "done"
    done: int
    total: int
    message: str = ""


IndexProgressFn = Callable[[IndexProgress], None]


@dataclass(frozen=True)
class IndexReport:
    """What one run did, per library."""

    library: str
    scanned: int
    added: int
    changed: int
    moved: int
    deleted: int
    relabelled: int
    unchanged: int
    failed: int
    faults: tuple[ScanFault, ...]
    seconds: float
    decode_seconds: float  # reading, decoding and features (reader thread)
    model_seconds: float  # text and audio embedding
    cancelled: bool = False
    indexed: int = 0  # sounds in the index after the run
    analysed: int = 0  # unchanged sounds given their sync points (indexed before them)
    sync_seconds: float = 0.0  # the onset detector's part of decode_seconds

    def summary(self) -> dict[str, object]:
        counts = {k: v for k, v in self.__dict__.items() if k not in ("faults", "library")}
        return counts | {"faults": len(self.faults)}
