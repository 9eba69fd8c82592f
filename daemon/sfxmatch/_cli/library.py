"""``sfxmatch library ...``: add, index, status, search, remove (thin over ``Pipeline``)."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sfxmatch.library.indexer import IndexProgress
    from sfxmatch.pipeline import Pipeline

KIND_CHOICES = ("ambience", "effect", "music")


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
        default="lance",
        help="vector store: embedded LanceDB (default), exact (numpy file), pinecone",
    )


def pipeline_from_args(args: argparse.Namespace) -> Pipeline:
    from sfxmatch.pipeline import Pipeline

    weights = "random" if getattr(args, "random_weights", False) else None
    return Pipeline(model=args.model, weights=weights, store_backend=args.store)


def warn_if_meaningless(pipeline: Pipeline) -> None:
    """Say once what a user must know about the model: random weights (meaningless results)
    and a licence that forbids commercial use."""
    from sfxmatch._cli.models import warn_about_model

    warn_about_model(pipeline.model, meaningless=pipeline.meaningless)


def add_library(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "library",
        help="manage and search your sound libraries",
        description="Register sound folders, index them (labels, kinds, embeddings), check "
        "what was indexed and search it by text.",
    )
    commands = parser.add_subparsers(title="library commands", metavar="ACTION", required=True)

    add = commands.add_parser("add", help="register a folder of sounds")
    add.add_argument("path", type=Path, help="the library's root folder")
    add.add_argument("--name", help="library name (default: the folder's name)")
    add.add_argument("--catalogue", type=Path, help="CSV/TSV of file descriptions to trust first")
    add.add_argument(
        "--kind",
        action="append",
        default=[],
        metavar="GLOB=KIND",
        help="override the kind of matching files, e.g. 'Beds/**=ambience' (repeatable)",
    )
    add.set_defaults(handler=_run_add, needs_model=False)

    index = commands.add_parser("index", help="index new and changed sounds")
    index.add_argument("names", nargs="*", help="libraries to index (default: all)")
    index.add_argument("--json", action="store_true", help="print the reports as JSON")
    from sfxmatch._cli.daemon import add_mode_options

    add_mode_options(index)
    index.set_defaults(handler=_run_index)

    status = commands.add_parser("status", help="what is indexed, and what could not be")
    status.add_argument("name", nargs="?", help="one library (default: all)")
    status.add_argument(
        "--sounds", action="store_true", help="list every sound with its sync point and peak"
    )
    status.add_argument("--json", action="store_true", help="print JSON")
    status.set_defaults(handler=_run_status)

    sync = commands.add_parser(
        "sync",
        help="show or set a sound's sync point (where its own event is)",
        description="A sound is placed so that its sync point lands on the picture's event. "
        "It comes from the catalogue, the file's own markers (BWF cue, iXML sync point, AIFF "
        "marker), a `sync = 0.37` line in its .txt sidecar, or the onset detector. Give "
        "SECONDS (0.37, 370ms, 0:00.370) to set it yourself: that wins over all of them "
        "while the file stays the same.",
    )
    sync.add_argument("path", type=Path, help="a sound inside a registered library")
    sync.add_argument("seconds", nargs="?", help="the sync point, seconds into the sound")
    sync.add_argument("--clear", action="store_true", help="remove your sync point")
    sync.add_argument("--json", action="store_true", help="print JSON")
    sync.set_defaults(handler=_run_sync, needs_model=False)

    search = commands.add_parser("search", help="find sounds by a text description")
    search.add_argument("text", help='what it sounds like, e.g. "rain on a tin roof"')
    search.add_argument("--kind", choices=KIND_CHOICES, help="only this kind")
    search.add_argument("--library", action="append", help="only these libraries (repeatable)")
    search.add_argument("--top-k", type=int, default=10, help="how many (default: %(default)s)")
    search.add_argument("--json", action="store_true", help="print JSON")
    search.set_defaults(handler=_run_search)

    remove = commands.add_parser("remove", help="forget a library (the files are not touched)")
    remove.add_argument("name", help="library name")
    remove.set_defaults(handler=_run_remove)

    for sub in (add, index, status, search, remove, sync):
        add_model_options(sub)


def _run_add(args: argparse.Namespace) -> int:
    from sfxmatch.errors import ConfigError

    overrides = []
    for rule in args.kind:
        glob, sep, kind = rule.rpartition("=")
        if not sep or not glob:
            raise ConfigError(f"--kind {rule!r}: write GLOB=KIND, e.g. 'Beds/**=ambience'")
        overrides.append((glob, kind))
    with pipeline_from_args(args) as pipeline:
        library = pipeline.library_add(
            args.path, args.name, catalogue=args.catalogue, kind_overrides=overrides
        )
    print(f"added library {library.name!r} at {library.root}; run `sfxmatch library index`")
    return 0


@contextlib.contextmanager
def _index_bar() -> Iterator[Callable[[IndexProgress], None]]:
    """Files/s and ETA on a terminal; a line per library otherwise."""
    if not sys.stderr.isatty():
        last: dict[str, float] = {}
        shown: dict[str, tuple[str, bool]] = {}  # library -> (stage, any file done) printed

        def plain(p: IndexProgress) -> None:
            # Every stage change (the scan summary rides on "index 0/N") and the first files
            # done; then at most one line per 10 s.
            now = time.monotonic()
            seen = (p.stage, p.done > 0)
            if shown.get(p.library, ("", False)) != seen or now - last.get(p.library, 0.0) > 10:
                last[p.library] = now
                shown[p.library] = seen
                print(f"{p.library}: {p.stage} {p.done}/{p.total} {p.message}", file=sys.stderr)

        yield plain
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=False) as bar:
        tasks: dict[str, Any] = {}
        started: dict[str, float] = {}

        def update(p: IndexProgress) -> None:
            if p.library not in tasks:
                tasks[p.library] = bar.add_task(p.library, total=None, rate="")
            task = tasks[p.library]
            if p.stage == "index" and p.library not in started:
                started[p.library] = time.monotonic()
            elapsed = time.monotonic() - started.get(p.library, time.monotonic())
            rate = f"{p.done / elapsed:.1f} files/s" if elapsed > 0 and p.done else ""
            bar.update(task, completed=p.done, total=p.total or None, rate=rate)

        yield update


def _check_names(pipeline: Pipeline, names: list[str] | None) -> None:
    """Unknown library names fail with one line, before any warning or model load."""
    for name in names or ():
        pipeline.registry.get(name)


def _run_index(args: argparse.Namespace) -> int:
    from sfxmatch._cli.daemon import client_for

    # A running daemon holds the store open: index through it so it sees every new sound.
    client = None if (args.model or args.random_weights) else client_for(args)
    if client is not None:
        with _index_bar() as on_file:
            reports = client.library_index(args.names or None, on_file=on_file)
        return _print_reports(args, reports)
    cancel = threading.Event()
    with pipeline_from_args(args) as pipeline:
        _check_names(pipeline, args.names)
        pipeline.load_model()  # a missing model is one line, before any warning
        warn_if_meaningless(pipeline)
        with _index_bar() as on_file:
            try:
                reports = pipeline.library_index(args.names or None, cancel=cancel, on_file=on_file)
            except KeyboardInterrupt:
                # Batches already committed stay; the next run picks up the rest.
                print(
                    "sfxmatch: index stopped; what was done is kept, run it again to finish",
                    file=sys.stderr,
                )
                return 130
    return _print_reports(args, reports)


def _print_reports(args: argparse.Namespace, reports: list[Any]) -> int:
    if args.json:
        print(json.dumps([_report_json(r) for r in reports], indent=2, ensure_ascii=False))
        return 0
    for r in reports:
        print(
            f"{r.library}: {r.indexed} sounds indexed ({r.added} added, {r.changed} changed, "
            f"{r.moved} moved, {r.deleted} deleted, {r.relabelled} relabelled, {r.failed} failed) "
            f"in {r.seconds:.1f} s"
        )
        if getattr(r, "analysed", 0):
            print(f"  {r.analysed} sound(s) indexed before sync points now have them")
        if r.faults:
            print(f"  {len(r.faults)} problem(s): see `sfxmatch library status {r.library}`")
    return 0


def _report_json(r: Any) -> dict[str, Any]:
    data = {k: v for k, v in dataclasses.asdict(r).items() if k != "faults"}
    from sfxmatch.library.registry import display_path

    data["faults"] = [
        {"path": display_path(f.path), "kind": f.kind, "reason": f.reason} for f in r.faults
    ]
    return data


def _sound_json(sound: Any, point: Any) -> dict[str, Any]:
    from sfxmatch.library.registry import display_path

    return {
        "path": display_path(sound.entry.path),
        "sound_id": sound.entry.sound_id,
        "kind": sound.kind,
        "label": sound.label,
        "duration": sound.duration,
        "sync_point": point.time,
        "sync_source": point.source,
        "sync_detail": point.detail,
        "peak": point.peak,
        "detected": sound.onset,
    }


def _sound_line(sound: Any, point: Any) -> str:
    peak = f"  peak {point.peak:.3f} s" if point.peak is not None else ""
    return f"    {sound.entry.display_path}: sync {point.describe()}{peak}"


def _run_status(args: argparse.Namespace) -> int:
    with pipeline_from_args(args) as pipeline:
        statuses = pipeline.library_status(args.name)
        elsewhere = {
            s.library.name: pipeline.indexes_by_model(s.library.name)
            for s in statuses
            if s.sounds == 0
        }
        model = pipeline.model
        sounds = (
            {s.library.name: pipeline.library_sounds(s.library.name) for s in statuses}
            if args.sounds
            else {}
        )
    if args.json:
        out = [
            {
                "name": s.library.name,
                "root": s.library.root,
                "root_exists": s.root_exists,
                "sounds": s.sounds,
                "by_kind": s.by_kind,
                "last_run": s.last_run.summary if s.last_run else None,
                "faults": [{"path": f.path, "kind": f.kind, "reason": f.reason} for f in s.faults],
                "model": model,
                "indexed_with_other_models": elsewhere.get(s.library.name, {}),
                "sync_sources": s.sync_sources,
                **(
                    {"sounds_list": [_sound_json(a, b) for a, b in sounds[s.library.name]]}
                    if args.sounds
                    else {}
                ),
            }
            for s in statuses
        ]
        print(json.dumps(out, indent=2, ensure_ascii=False))
        return 0
    if not statuses:
        print("no libraries yet: add one with `sfxmatch library add PATH`")
    for s in statuses:
        kinds = ", ".join(f"{n} {k}" for k, n in sorted(s.by_kind.items())) or "nothing indexed"
        missing = "" if s.root_exists else "  (ROOT FOLDER MISSING)"
        print(f"{s.library.name}: {s.library.root}{missing}")
        print(f"  {s.sounds} sounds: {kinds} (with {model})")
        others = elsewhere.get(s.library.name)
        if others:
            listed = ", ".join(f"{n} with {key}" for key, n in others.items())
            print(
                f"  indexed for other models ({listed}): `sfxmatch library index "
                f"{s.library.name}` indexes it for {model}"
            )
        if s.sync_sources:
            order = ("override", "catalogue", "file", "sidecar", "detector", "start")
            words = {
                "override": "set by you",
                "catalogue": "from the catalogue",
                "file": "marked in the file",
                "sidecar": "from sidecar texts",
                "detector": "found in the audio",
                "start": "not analysed yet (index again)",
            }
            parts = [f"{s.sync_sources[k]} {words[k]}" for k in order if s.sync_sources.get(k)]
            print(f"  sync points: {', '.join(parts)}")
        if s.last_run:
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(s.last_run.finished))
            print(f"  last indexed {when}")
        for sound, point in sounds.get(s.library.name, []):
            print(_sound_line(sound, point))
        if s.faults:
            print(f"  {len(s.faults)} file(s) skipped:")
            for f in s.faults:
                print(f"    {f.path}: {f.reason}")
    return 0


def _run_search(args: argparse.Namespace) -> int:
    with pipeline_from_args(args) as pipeline:
        found = pipeline.library_search(
            args.text, kind=args.kind, library=args.library, top_k=args.top_k
        )
        warn_if_meaningless(pipeline)  # after: a user error stays one line
    if args.json:
        print(json.dumps([dataclasses.asdict(c) for c in found], indent=2, ensure_ascii=False))
        return 0
    if not found:
        print("no match (is the library indexed? `sfxmatch library status`)")
    for rank, c in enumerate(found, 1):
        sync = f"sync {c.sync_point:.3f} s ({c.sync_source})"
        print(f"{rank:>3}. {c.score:+.3f}  {c.kind:<8}  {c.label}  {sync}  ({c.path})")
    return 0


def _run_sync(args: argparse.Namespace) -> int:
    from sfxmatch.errors import ConfigError
    from sfxmatch.library.syncpoints import BadTime, parse_time

    if args.clear and args.seconds is not None:
        raise ConfigError("give SECONDS to set the sync point or --clear to remove it, not both")
    seconds: float | None = None
    if args.seconds is not None:
        try:
            seconds = parse_time(args.seconds)
        except BadTime as exc:
            raise ConfigError(str(exc)) from None
    with pipeline_from_args(args) as pipeline:
        if args.clear or seconds is not None:
            sound, point = pipeline.library_set_sync(args.path, seconds)
        else:
            sound, point = pipeline.sound_sync(args.path)
    if args.json:
        print(json.dumps(_sound_json(sound, point), indent=2, ensure_ascii=False))
        return 0
    peak = f", peak at {point.peak:.3f} s" if point.peak is not None else ""
    detected = f"; the detector found {sound.onset:.3f} s" if sound.onset is not None else ""
    print(f"{args.path}: sync point {point.describe()}{peak}{detected}")
    return 0


def _run_remove(args: argparse.Namespace) -> int:
    with pipeline_from_args(args) as pipeline:
        removed = pipeline.library_remove(args.name)
    print(f"removed library {args.name!r} ({removed} sounds forgotten; no file was touched)")
    return 0
