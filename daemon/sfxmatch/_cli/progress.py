"""The one progress display of the command line, and Ctrl-C.

Every command that works for a while runs inside :func:`running`: a bar on stderr when it is
a terminal; otherwise quiet (a line per library stage while indexing, at most one per 10 s;
nothing else), or JSON lines for scripts (``suggest --progress jsonl``). Ctrl-C sets the
reporter's ``cancel`` event, which the work was given (a local run stops at its next check,
a daemon call is cancelled and the daemon cancels its job), and exits 130 through ``main``.
"""

from __future__ import annotations

import contextlib
import json
import sys
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from sfxmatch.progress import IndexProgress, Progress

Style = Literal["bar", "jsonl", "none"]
LINE_EVERY = 10.0  # seconds between quiet lines of one library's index run


class Reporter:
    """What the running work reports to, and the event that cancels it."""

    def __init__(self, description: str, style: Style) -> None:
        self.cancel = threading.Event()
        self._description = description
        self._style = style
        self._bar: Any = None
        self._tasks: dict[str, Any] = {}
        self._started: dict[str, float] = {}
        self._last_line: dict[str, tuple[tuple[str, bool], float]] = {}
        if style == "bar" and sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self._bar = Progress(
                TextColumn("{task.description:<14}"),
                BarColumn(),
                TextColumn("{task.fields[detail]}"),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self._bar.start()

    def _show(self, name: str, done: float, total: float | None, detail: str) -> None:
        if name not in self._tasks:
            self._tasks[name] = self._bar.add_task(name, total=None, detail="")
        self._bar.update(self._tasks[name], completed=done, total=total or None, detail=detail)

    def progress(self, p: Progress) -> None:
        """A stage's fraction done (suggest, render)."""
        if self._style == "jsonl":
            record = {"stage": p.stage, "fraction": round(p.fraction, 4), "message": p.message}
            print(json.dumps(record), file=sys.stderr, flush=True)
        elif self._bar is not None:
            self._show(p.stage, p.fraction, 1.0, p.message[:40])

    def file(self, p: IndexProgress) -> None:
        """Files of a library's index run: files/s on a bar, else a quiet line per stage."""
        now = time.monotonic()
        if self._bar is not None:
            if p.stage == "index":
                self._started.setdefault(p.library, now)
            elapsed = now - self._started.get(p.library, now)
            rate = f"{p.done / elapsed:.1f} files/s" if elapsed > 0 and p.done else ""
            self._show(p.library, p.done, p.total, f"{p.done}/{p.total} {rate}")
            return
        if self._style == "none":
            return
        # Every stage change (the scan summary rides on "index 0/N") and the first files
        # done; then at most one line per LINE_EVERY seconds.
        seen = (p.stage, p.done > 0)
        shown, at = self._last_line.get(p.library, (("", False), 0.0))
        if shown != seen or now - at > LINE_EVERY:
            self._last_line[p.library] = (seen, now)
            print(f"{p.library}: {p.stage} {p.done}/{p.total} {p.message}", file=sys.stderr)

    def seconds(self, done: float, total: float) -> None:
        """Seconds of media done (scenes)."""
        if self._bar is not None:
            self._show(self._description, done, total, f"{done:.0f}/{total:.0f} s")

    def bytes(self, done: int, total: int | None) -> None:
        """Bytes downloaded or checked (model weights)."""
        if self._bar is not None:
            size = f"{done / 1e6:.0f}/{total / 1e6:.0f} MB" if total else f"{done / 1e6:.0f} MB"
            self._show(self._description, done, total, size)

    @property
    def shows_bar(self) -> bool:
        return self._bar is not None

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


@contextlib.contextmanager
def running(description: str = "", *, style: Style = "bar") -> Iterator[Reporter]:
    """Report the work done inside to one display; Ctrl-C cancels it (module notes)."""
    reporter = Reporter(description, style)
    try:
        yield reporter
    except KeyboardInterrupt:
        reporter.cancel.set()  # worker threads and a daemon call stop too
        raise
    finally:
        reporter.close()
