"""What a front-end can ask of sfxmatch, whether the work runs here or on a daemon.

``Backend`` is the shape that :class:`sfxmatch.pipeline.Pipeline` (in this process) and
:class:`sfxmatch.client.Client` (through a running daemon) both have: the same method names,
argument names and return types, so the CLI is written once against it
(``tests/test_backend.py`` compares their signatures). The values they return that are not
the suggestion types (``sfxmatch.suggestions``) or the index's own records
(``sfxmatch.library.registry``) live here, light enough for the client (no torch, no PyAV).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from sfxmatch.library.syncpoints import SyncPoint

if TYPE_CHECKING:
    from types import TracebackType

    from sfxmatch.library.registry import LibraryConfig, RecordedFault, RunRecord
    from sfxmatch.progress import IndexProgress, IndexReport, Progress
    from sfxmatch.store.base import Kind
    from sfxmatch.suggestions import (
        Candidate,
        Edit,
        RenderRequest,
        RenderResult,
        Suggestions,
        SuggestOptions,
    )


@dataclass(frozen=True)
class LibraryStatus:
    """One library as the index knows it."""

    library: LibraryConfig
    sounds: int
    by_kind: dict[str, int]
    faults: tuple[RecordedFault, ...]
    last_run: RunRecord | None
    root_exists: bool
    sync_sources: dict[str, int] = field(default_factory=dict)  # sounds per sync-point source


@dataclass(frozen=True)
class SoundSync:
    """One indexed sound and the sync point it is placed by (``point``: where it comes from
    and its peak); ``detected`` is the onset detector's answer, whatever wins."""

    path: str  # printable (bytes that are not UTF-8 shown as U+FFFD)
    library: str
    sound_id: str
    kind: str
    label: str
    duration: float
    point: SyncPoint
    detected: float | None

    @property
    def sync_point(self) -> float:
        return self.point.time

    @property
    def source(self) -> str:
        return self.point.source


class Backend(Protocol):
    """The operations every CLI command runs through (module notes)."""

    @property
    def model(self) -> str:
        """The model's registry name (the daemon's own when through a daemon)."""
        ...

    @property
    def meaningless(self) -> bool:
        """True when the model has random weights: results are for development only."""
        ...

    def close(self) -> None: ...

    def __enter__(self) -> Backend: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def library_add(
        self,
        path: str | os.PathLike[str],
        name: str | None = None,
        *,
        catalogue: str | os.PathLike[str] | None = None,
        kind_overrides: Sequence[tuple[str, str]] = (),
    ) -> LibraryConfig: ...

    def library_remove(self, name: str) -> int: ...

    def library_status(self, name: str | None = None) -> list[LibraryStatus]: ...

    def library_index(
        self,
        names: Sequence[str] | None = None,
        *,
        progress: Callable[[Progress], None] | None = None,
        cancel: threading.Event | None = None,
        on_file: Callable[[IndexProgress], None] | None = None,
    ) -> list[IndexReport]: ...

    def library_search(
        self,
        text: str,
        *,
        kind: Kind | None = None,
        library: str | Sequence[str] | None = None,
        top_k: int = 10,
    ) -> list[Candidate]: ...

    def sound_sync(self, path: str | os.PathLike[str]) -> SoundSync: ...

    def library_set_sync(
        self, path: str | os.PathLike[str], seconds: float | None
    ) -> SoundSync: ...

    def suggest(
        self,
        source: str | os.PathLike[str] | Edit,
        options: SuggestOptions | None = None,
        *,
        progress: Callable[[Progress], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> Suggestions: ...

    def render(
        self,
        suggestions: Suggestions,
        request: RenderRequest,
        *,
        progress: Callable[[Progress], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> RenderResult: ...


# Protocol methods the test compares between Pipeline and Client, signature by signature.
OPERATIONS = (
    "library_add",
    "library_remove",
    "library_status",
    "library_index",
    "library_search",
    "sound_sync",
    "library_set_sync",
    "suggest",
    "render",
)

if TYPE_CHECKING:
    from sfxmatch.client import Client
    from sfxmatch.pipeline import Pipeline

    def _both_are_backends(here: Pipeline, there: Client) -> tuple[Backend, Backend]:
        return here, there  # the type checker proves both have the protocol's shape


__all__ = ["OPERATIONS", "Backend", "LibraryStatus", "SoundSync"]
