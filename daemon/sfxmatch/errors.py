"""Typed errors. ``str(error)`` is one line a user can act on; the CLI prints it as is."""

from __future__ import annotations

from pathlib import Path


class SfxmatchError(Exception):
    """Base of every error sfxmatch raises on purpose (user mistakes, bad input, missing files)."""


class MediaError(SfxmatchError):
    """A media file that cannot be used: names the file and what is wrong with it."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class ModelError(SfxmatchError):
    """The model cannot be built or its weights cannot be had (says how to provide them)."""


class ConfigError(SfxmatchError):
    """An option or configuration value that does not make sense."""
