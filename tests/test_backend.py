"""``Pipeline`` (in this process) and ``Client`` (through a daemon) have one shape: every
operation of ``sfxmatch.backend.Backend`` with the same argument names, kinds, defaults and
types, and the same return type."""

from __future__ import annotations

import inspect
import os
import threading
import typing
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from sfxmatch.backend import OPERATIONS, Backend, LibraryStatus, SoundSync
from sfxmatch.client import Client
from sfxmatch.library.registry import LibraryConfig
from sfxmatch.pipeline import Pipeline
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

# The names the protocol's annotations use only under TYPE_CHECKING.
NAMES: dict[str, Any] = {
    "Backend": Backend, "LibraryConfig": LibraryConfig, "LibraryStatus": LibraryStatus,
    "SoundSync": SoundSync, "IndexProgress": IndexProgress, "IndexReport": IndexReport,
    "Progress": Progress, "Kind": Kind, "Candidate": Candidate, "Edit": Edit,
    "RenderRequest": RenderRequest, "RenderResult": RenderResult, "Suggestions": Suggestions,
    "SuggestOptions": SuggestOptions, "threading": threading, "os": os, "Callable": Callable,
    "Sequence": Sequence,
}  # fmt: skip


def _shape(function: Callable[..., Any]) -> tuple[Any, ...]:
    signature = inspect.signature(function)
    hints = typing.get_type_hints(function, localns=NAMES)
    params = tuple(
        (p.name, p.kind, p.default, hints.get(p.name))
        for p in signature.parameters.values()
        if p.name != "self"
    )
    return params, hints.get("return")


@pytest.mark.parametrize("name", OPERATIONS)
def test_pipeline_and_client_have_the_protocols_signature(name: str) -> None:
    expected = _shape(getattr(Backend, name))
    assert _shape(getattr(Pipeline, name)) == expected
    assert _shape(getattr(Client, name)) == expected


def test_every_protocol_method_is_compared_and_both_have_the_rest() -> None:
    members = {n for n in vars(Backend) if not n.startswith("_")} | {"__enter__", "__exit__"}
    assert set(OPERATIONS) <= members
    for name in members - set(OPERATIONS):  # model, meaningless, close, with
        assert hasattr(Pipeline, name) or name == "model", name  # an attribute of each pipeline
        assert hasattr(Client, name), name
