"""``sfxmatch library ...``: add, index, status, search, sync, remove (thin over a backend:
the daemon when one runs, a ``Pipeline`` here otherwise; ``sfxmatch._cli.backend``)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sfxmatch._cli.backend import (
    add_mode_options,
    add_model_options,
    backend_for,
    local_pipeline,
)
from sfxmatch._cli.progress import running

if TYPE_CHECKING:
    from sfxmatch.backend import Backend, SoundSync
    from sfxmatch.library.registry import IndexedSound
    from sfxmatch.library.syncpoints import SyncPoint
    from sfxmatch.pipeline import Pipeline

KIND_CHOICES = ("ambience", "effect", "music")


def warn_if_meaningless(backend: Backend) -> None:
    """Say once what a user must know about the model: random weights (meaningless results)
    and a licence that forbids commercial use."""
    from sfxmatch._cli.models import warn_about_model

    warn_about_model(backend.model, meaningless=backend.meaningless)


def add_library(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
        add_mode_options(sub)
        add_model_options(sub)


def _run_add(args: argparse.Namespace) -> int:
    from sfxmatch.errors import ConfigError

    overrides = []
    for rule in args.kind:
        glob, sep, kind = rule.rpartition("=")
        if not sep or not glob:
            raise ConfigError(f"--kind {rule!r}: write GLOB=KIND, e.g. 'Beds/**=ambience'")
        overrides.append((glob, kind))
    with backend_for(args) as backend:
        library = backend.library_add(
            args.path, args.name, catalogue=args.catalogue, kind_overrides=overrides
        )
    print(f"added library {library.name!r} at {library.root}; run `sfxmatch library index`")
    return 0


def _check_names(pipeline: Pipeline, names: list[str] | None) -> None:
    """Unknown library names fail with one line, before any warning or model load."""
    for name in names or ():
        pipeline.registry.get(name)


def _run_index(args: argparse.Namespace) -> int:
    try:
        with backend_for(args) as backend:
            pipeline = local_pipeline(backend)
            if pipeline is not None:  # here: say what is wrong before a model loads
                _check_names(pipeline, args.names)
                pipeline.load_model()  # a missing model is one line, before any warning
                warn_if_meaningless(pipeline)
            with running("index") as work:
                reports = backend.library_index(
                    args.names or None, cancel=work.cancel, on_file=work.file
                )
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


def _sound_json(found: SoundSync) -> dict[str, Any]:
    point = found.point
    return {
        "path": found.path,
        "sound_id": found.sound_id,
        "kind": found.kind,
        "label": found.label,
        "duration": found.duration,
        "sync_point": point.time,
        "sync_source": point.source,
        "sync_detail": point.detail,
        "peak": point.peak,
        "detected": found.detected,
    }


def _listed_json(sound: IndexedSound, point: SyncPoint) -> dict[str, Any]:
    from sfxmatch.pipeline import sound_sync

    return _sound_json(sound_sync(sound, point))


def _sound_line(sound: IndexedSound, point: SyncPoint) -> str:
    peak = f"  peak {point.peak:.3f} s" if point.peak is not None else ""
    return f"    {sound.entry.display_path}: sync {point.describe()}{peak}"


def _index_reader(backend: Backend) -> Pipeline:
    """The index files of the backend's model, read here: which other models indexed a
    library and its sounds one by one are not in the daemon's API. Loads no model."""
    from sfxmatch.pipeline import Pipeline

    return local_pipeline(backend) or Pipeline(
        model=backend.model, weights="random" if backend.meaningless else None
    )


def _run_status(args: argparse.Namespace) -> int:
    with backend_for(args) as backend:
        statuses = backend.library_status(args.name)
        model = backend.model
        reader = (
            _index_reader(backend) if args.sounds or any(s.sounds == 0 for s in statuses) else None
        )
        try:
            elsewhere = {
                s.library.name: reader.indexes_by_model(s.library.name)
                for s in statuses
                if s.sounds == 0 and reader is not None
            }
            sounds = (
                {s.library.name: reader.library_sounds(s.library.name) for s in statuses}
                if args.sounds and reader is not None
                else {}
            )
        finally:
            if reader is not None and reader is not backend:
                reader.close()
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
                    {"sounds_list": [_listed_json(a, b) for a, b in sounds[s.library.name]]}
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
    with backend_for(args) as backend:
        found = backend.library_search(
            args.text, kind=args.kind, library=args.library, top_k=args.top_k
        )
        warn_if_meaningless(backend)  # after: a user error stays one line
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
    with backend_for(args) as backend:
        if args.clear or seconds is not None:
            found = backend.library_set_sync(args.path, seconds)
        else:
            found = backend.sound_sync(args.path)
    if args.json:
        print(json.dumps(_sound_json(found), indent=2, ensure_ascii=False))
        return 0
    point = found.point
    peak = f", peak at {point.peak:.3f} s" if point.peak is not None else ""
    detected = f"; the detector found {found.detected:.3f} s" if found.detected is not None else ""
    print(f"{args.path}: sync point {point.describe()}{peak}{detected}")
    return 0


def _run_remove(args: argparse.Namespace) -> int:
    with backend_for(args) as backend:
        removed = backend.library_remove(args.name)
    print(f"removed library {args.name!r} ({removed} sounds forgotten; no file was touched)")
    return 0
