"""Library indexing throughput: files per second through ``Pipeline.library_index``.

    .venv/bin/python benchmarks/bench_index.py --runs 3

Indexes the real sounds of shared/MEDIA.md (minetest 108 Ogg, tuxpaint 112 Ogg, ovos 10 MP3;
fetched into the test-media cache on first use) with the tiny random-weights ImageBind
(``--model``), into a fresh data folder (LanceDB store and index state) and a fresh, empty
embedding cache for every run, so nothing is served from a previous run. The encoder is
built once, outside the timings (its load time is reported apart), and warmed up by an
untimed run over ovos.

Per run it reports wall time and files/s for the whole index (scan, decode, labels, kinds,
embedding, store writes, commits), and splits it with the indexer's own counters:

- decode+features: ``IndexReport.decode_seconds``, reading, decoding to 16 kHz mono and
  metadata in the reader thread (the onset detector's part of it apart:
  ``IndexReport.sync_seconds``). It OVERLAPS the model time (the reader runs a batch ahead),
  so decode + model can exceed the wall time;
- model: ``IndexReport.model_seconds``, text and audio embedding on the main thread;
- store: time inside the vector store's upsert/get/delete (measured here by wrapping them);
- rest: wall - model - store (scan, hashing, SQLite commits, waiting on the reader).

The table is the median of ``--runs`` runs (each column's own median). Figures and the
command go into BENCHMARKS.md ("Library indexing throughput").

``--sync both`` (the default) runs every run twice, with the onset detector off and on
(``index_library(analyse_sync=...)``), in alternating order (off then on, then on then off,
...), so both see the same machine at the same moments; it prints a row for each and the
median over runs of each run's on/off ratio of files per second. ``--sync on``/``off``
measures one of them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

LIBRARIES = ("minetest", "tuxpaint", "ovos")


class TimedStore:
    """Forwards to a store, adding the seconds spent in its write and read calls."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self.seconds = 0.0

    def _timed(self, method: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - started

        return call

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._store, name)
        if name in ("upsert", "get", "delete", "labels", "count"):
            return self._timed(attr)
        return attr


def one_run(
    roots: dict[str, Path], model: str, encoder: Any, batch: int | None, sync: bool = True
) -> dict[str, Any]:
    from sfxmatch.config import Settings
    from sfxmatch.embed.cache import CachedEncoder, EmbeddingCache
    from sfxmatch.pipeline import Pipeline
    from sfxmatch.store import open_store

    with tempfile.TemporaryDirectory(prefix="bench-index-") as tmp:
        folder = Path(tmp)
        settings = Settings(
            cache_dir=folder / "cache", data_dir=folder / "data", index_batch=batch or None
        )
        cached = CachedEncoder(encoder, EmbeddingCache(settings.embeddings_dir / "e.sqlite"))
        store = TimedStore(open_store("lance", dim=encoder.dim, path=settings.store_dir / "b"))
        with Pipeline(settings, model=model, encoder=cached, store=store) as pipeline:  # type: ignore[arg-type]
            for name, root in roots.items():
                pipeline.library_add(root, name)
            started = time.perf_counter()
            reports = index_all(pipeline, sync)
            wall = time.perf_counter() - started
            vectors = pipeline.store.count()
    files = sum(r.indexed for r in reports)
    failed = sum(r.failed for r in reports)
    model_s = sum(r.model_seconds for r in reports)
    return {
        "files": files,
        "failed": failed,
        "vectors": vectors,
        "wall_s": wall,
        "files_per_s": files / wall,
        "decode_s": sum(r.decode_seconds for r in reports),
        "detector_s": sum(r.sync_seconds for r in reports),
        "model_s": model_s,
        "store_s": store.seconds,
        "rest_s": wall - model_s - store.seconds,
        "per_library": {r.library: {"files": r.indexed, "seconds": r.seconds} for r in reports},
    }


def index_all(pipeline: Any, sync: bool) -> list[Any]:
    """``Pipeline.library_index`` with the onset detector on or off."""
    from sfxmatch.library.indexer import index_library

    return [
        index_library(
            library,
            pipeline.encoder,
            pipeline.store,
            pipeline.state,
            zero_shot_min_margin=float("inf") if pipeline.meaningless else 0.0,
            analyse_sync=sync,
        )
        for library in pipeline.libraries()
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--model", default="imagebind-tiny")
    parser.add_argument("--batch", type=int, help="files per batch (default: the indexer's)")
    parser.add_argument("--libraries", nargs="+", default=list(LIBRARIES), choices=LIBRARIES)
    parser.add_argument("--json", type=Path, help="also write the raw runs here")
    parser.add_argument(
        "--sync", choices=("both", "on", "off"), default="both",
        help="the onset detector on, off, or both in each run (default: both, compared)",
    )  # fmt: skip
    args = parser.parse_args(argv)

    from sfxmatch.config import Settings
    from sfxmatch.embed.encoder import load_encoder
    from sfxmatch.testing.media import media_path

    roots = {name: media_path(name) for name in args.libraries}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-index-model-") as tmp:
        encoder = load_encoder(args.model, settings=Settings(cache_dir=Path(tmp)))
    load_s = time.perf_counter() - started
    print(f"{encoder.model_id}: built in {load_s:.1f} s", file=sys.stderr)

    # Untimed: torch's first calls (thread pools, kernels) would count against whichever
    # variant runs first.
    one_run({"ovos": media_path("ovos")}, args.model, encoder, args.batch, True)
    variants = {"both": (False, True), "on": (True,), "off": (False,)}[args.sync]
    runs: dict[bool, list[dict[str, Any]]] = {v: [] for v in variants}
    for number in range(args.runs):
        order = variants if number % 2 == 0 else tuple(reversed(variants))
        for sync in order:
            result = one_run(roots, args.model, encoder, args.batch, sync)
            runs[sync].append(result)
            print(
                f"run {number + 1}, detector {'on' if sync else 'off'}: {result['files']} files "
                f"in {result['wall_s']:.2f} s = {result['files_per_s']:.1f} files/s (decode "
                f"{result['decode_s']:.2f} s, model {result['model_s']:.2f} s, store "
                f"{result['store_s']:.2f} s)",
                file=sys.stderr,
            )

    header = (
        "| detector | files | vectors | wall s | files/s | decode+features s | of it detector s "
        "| model s | store s | rest s |"
    )
    print(header)
    print("|" + "---|" * 10)
    for sync, done in runs.items():

        def med(key: str, done: list[dict[str, Any]] = done) -> float:
            return statistics.median(r[key] for r in done)

        print(
            f"| {'on' if sync else 'off'} | {done[0]['files']} | {done[0]['vectors']} | "
            f"{med('wall_s'):.2f} | {med('files_per_s'):.1f} | {med('decode_s'):.2f} | "
            f"{med('detector_s'):.2f} | {med('model_s'):.2f} | {med('store_s'):.2f} | "
            f"{med('rest_s'):.2f} |"
        )
    if len(runs) == 2:
        ratios = [
            on["files_per_s"] / off["files_per_s"]
            for off, on in zip(runs[False], runs[True], strict=True)
        ]
        print(
            f"\nfiles/s with the detector on / off, per run: "
            f"{', '.join(f'{r:.3f}' for r in ratios)}; median {statistics.median(ratios):.3f}"
        )
    print(
        f"\nmodel {encoder.model_id} (built in {load_s:.1f} s, not counted); median of "
        f"{args.runs} runs; {platform.machine()}, {os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.1f}"
    )
    if args.json:
        raw = {("on" if k else "off"): v for k, v in runs.items()}
        args.json.write_text(json.dumps({"model": encoder.model_id, "runs": raw}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
