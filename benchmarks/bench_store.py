"""Vector-store benchmark: top-10 latency with a kind filter, and recall@10 against exact search.

    .venv/bin/python benchmarks/bench_store.py --sizes 100000 1000000 --data random clustered

For each size and data set it writes a LanceDB store through ``LanceStore.upsert`` (the real
write path), times ``build_index()`` (faiss IVF per kind, plus the table's scalar indexes),
then runs the same queries through:

- exact numpy over the kind's rows, contiguous (the ground truth, and the baseline to beat);
- ``ExactStore`` (what ``LanceStore`` uses below ``min_rows``), up to ``--exact-store-max``;
- ``LanceStore.query`` at each ``--nprobe`` (faiss IVF, fp16 vectors);
- optionally Lance's own IVF indexes (``--lance-native IVF_RQ IVF_SQ ...``) queried through
  lancedb with a SQL prefilter, at each ``--lance-nprobes``/``--lance-refine``.

Latency is single-threaded, one query at a time, after a warm-up; p50/p99 over ``--queries``
queries. The main filter is ``kind = 'ambience'`` (30 % of rows: the per-scene ambience
search). A second, narrow filter (``kind = 'effect'`` and 5 labels: the "audio inside the
top labels" step of label-first search) is reported for the store as well.

Data:
- ``random``: i.i.d. uniform unit vectors. The worst case for any ANN index: the nearest
  neighbours are barely nearer than anything else (cosine ~0.1 in 1024-d against ~0.03
  for the rest), so lists and codes carry almost no information and recall needs a large
  share of the data scanned.
- ``clustered``: ``--clusters`` random centres, each point = centre + Gaussian noise of norm
  ``--spread`` (1.0: cosine ~0.71 to its centre); queries are fresh points of random
  clusters. Closer to real embeddings, which sit on clumpy, low-dimensional manifolds.

Figures and the command used go into BENCHMARKS.md ("Vector store"). Needs ~6.5 GB of
memory and ~6 GB of disk (under ``--workdir``) per million vectors.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sfxmatch.store.base import Filter, Kind, Record, SoundMeta
from sfxmatch.store.exact import ExactStore, top_k_indices
from sfxmatch.store.lance import LanceIndexConfig, LanceStore

KIND_SHARES: dict[Kind, float] = {"effect": 0.6, "ambience": 0.3, "music": 0.1}
QUERY_KIND: Kind = "ambience"
N_LABELS = 5000
TOP_K = 10


@dataclass
class Dataset:
    name: str
    vectors: NDArray[np.float32]  # (n, dim) unit rows
    kinds: NDArray[np.int8]  # index into KIND_SHARES
    queries: NDArray[np.float32]


def unit_rows(x: NDArray[np.float32]) -> NDArray[np.float32]:
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def make_dataset(args: argparse.Namespace, name: str, n: int) -> Dataset:
    rng = np.random.default_rng(args.seed)
    dim = args.dim
    vectors = np.empty((n, dim), dtype=np.float32)
    step = 50_000
    if name == "random":
        for start in range(0, n, step):
            stop = min(n, start + step)
            vectors[start:stop] = unit_rows(rng.standard_normal((stop - start, dim), np.float32))
        q = unit_rows(rng.standard_normal((args.queries, dim), np.float32))
    else:
        centres = unit_rows(rng.standard_normal((args.clusters, dim), np.float32))
        sigma = np.float32(args.spread / np.sqrt(dim))  # noise of norm ~spread

        def points(count: int) -> NDArray[np.float32]:
            which = rng.integers(0, args.clusters, count)
            noise = rng.standard_normal((count, dim), np.float32) * sigma
            return unit_rows(centres[which] + noise)

        for start in range(0, n, step):
            stop = min(n, start + step)
            vectors[start:stop] = points(stop - start)
        q = points(args.queries)
    shares = np.array(list(KIND_SHARES.values()))
    kinds = rng.choice(len(shares), size=n, p=shares).astype(np.int8)
    return Dataset(name, vectors, kinds, q)


def label_of(i: int) -> str:
    return f"label {i % N_LABELS}"


def records(data: Dataset, start: int, stop: int) -> Iterator[Record]:
    names = list(KIND_SHARES)
    for i in range(start, stop):
        meta = SoundMeta(f"s{i // 4}", "bench", names[data.kinds[i]], label_of(i), "AMB")
        yield Record(f"r{i}", data.vectors[i], meta)


def percentiles(samples_s: list[float]) -> dict[str, float]:
    ms = np.array(samples_s) * 1000.0
    return {"p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99))}


def timed(
    fn: Callable[[NDArray[np.float32]], list[str]], queries: NDArray[np.float32], warm: int
) -> tuple[list[float], list[list[str]]]:
    for q in queries[:warm]:
        fn(q)
    samples, results = [], []
    for q in queries:
        t0 = time.perf_counter()
        results.append(fn(q))
        samples.append(time.perf_counter() - t0)
    return samples, results


def recall(found: list[list[str]], truth: list[list[str]]) -> float:
    hits = sum(len(set(f) & set(t)) for f, t in zip(found, truth, strict=True))
    return hits / max(1, sum(len(t) for t in truth))


def exact_search(
    data: Dataset, rows: NDArray[np.intp]
) -> Callable[[NDArray[np.float32]], list[str]]:
    matrix = np.ascontiguousarray(data.vectors[rows])  # best case for numpy: contiguous

    def search(q: NDArray[np.float32]) -> list[str]:
        return [f"r{rows[i]}" for i in top_k_indices(matrix @ q, TOP_K)]

    return search


def run_size(args: argparse.Namespace, data: Dataset, workdir: Path) -> list[dict[str, Any]]:
    n, dim = data.vectors.shape
    out: list[dict[str, Any]] = []
    tag = f"{data.name} n={n:,}"

    def report(
        engine: str,
        samples: list[float],
        found: list[list[str]] | None,
        truth: list[list[str]],
        **extra: Any,
    ) -> None:
        row = {
            "data": data.name,
            "n": n,
            "engine": engine,
            **extra,
            "recall": 1.0 if found is None else recall(found, truth),
            **percentiles(samples),
        }
        out.append(row)
        shown = {k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}
        print(f"[{tag}] {shown}", flush=True)

    kind_rows = np.flatnonzero(data.kinds == list(KIND_SHARES).index(QUERY_KIND))
    samples, truth = timed(exact_search(data, kind_rows), data.queries, args.warmup)
    report("exact numpy (kind rows contiguous)", samples, None, truth)
    flt = Filter(kind=QUERY_KIND)
    # the narrow filter: effects carrying one of 5 labels (~0.06 % of rows)
    narrow_labels = [label_of(i) for i in (7, 77, 777, 1777, 2777)]
    narrow = Filter(kind="effect", label=narrow_labels)
    labels = np.array([int(i) % N_LABELS for i in range(n)])
    narrow_rows = np.flatnonzero(
        (data.kinds == list(KIND_SHARES).index("effect"))
        & np.isin(labels, [7, 77, 777, 1777, 2777])
    )
    _, narrow_truth = timed(exact_search(data, narrow_rows), data.queries, 0)

    if n <= args.exact_store_max:
        t0 = time.perf_counter()
        exact_store = ExactStore(dim)
        exact_store.upsert(records(data, 0, n))
        load_s = time.perf_counter() - t0
        samples, found = timed(
            lambda q: [h.id for h in exact_store.query(q, TOP_K, flt)], data.queries, args.warmup
        )
        report("ExactStore", samples, found, truth, load_s=load_s)
        del exact_store
        gc.collect()

    path = workdir / f"lance-{data.name}-{n}"
    shutil.rmtree(path, ignore_errors=True)
    store = LanceStore(
        path, dim, auto_index=False, index=LanceIndexConfig(lists_per_sqrt=args.lists_per_sqrt)
    )
    t0 = time.perf_counter()
    for start in range(0, n, 50_000):
        store.upsert(records(data, start, min(n, start + 50_000)))
    write_s = time.perf_counter() - t0
    print(f"[{tag}] lance upsert: {write_s:.1f} s", flush=True)
    t0 = time.perf_counter()
    store.build_index(force=True)
    build_s = time.perf_counter() - t0
    print(f"[{tag}] build_index (faiss IVF + scalar indexes): {build_s:.1f} s", flush=True)
    calibrated = store._search.calibrated if store.has_vector_index() else {}  # type: ignore[union-attr]
    print(f"[{tag}] calibrated nprobe per kind: {calibrated}", flush=True)
    for nprobe in [0, *args.nprobe]:  # 0: the calibrated value
        store.tune(nprobe=nprobe)
        samples, found = timed(
            lambda q: [h.id for h in store.query(q, TOP_K, flt)], data.queries, args.warmup
        )
        report(
            "LanceStore (faiss IVF-SQfp16)",
            samples,
            found,
            truth,
            nprobe=nprobe or f"calibrated ({calibrated.get(QUERY_KIND)})",
            lists=LanceIndexConfig(lists_per_sqrt=args.lists_per_sqrt).lists(len(kind_rows)),
            write_s=write_s,
            build_s=build_s,
        )
    samples, found = timed(
        lambda q: [h.id for h in store.query(q, TOP_K, narrow)], data.queries, args.warmup
    )
    report("LanceStore, narrow filter (exact path)", samples, found, narrow_truth)
    store.close()
    t0 = time.perf_counter()
    reopened = LanceStore(path, dim)
    reopened.query(data.queries[0], TOP_K, flt)
    print(f"[{tag}] reopen + load saved index + first query: {time.perf_counter() - t0:.1f} s")
    reopened.close()

    if args.lance_native:
        run_lance_native(args, data, path, truth, report)
    if not args.keep:
        shutil.rmtree(path, ignore_errors=True)
    return out


def run_lance_native(
    args: argparse.Namespace,
    data: Dataset,
    path: Path,
    truth: list[list[str]],
    report: Callable[..., None],
) -> None:
    """Lance's own IVF indexes on the same table, searched through lancedb (for comparison)."""
    import lancedb
    from lancedb.index import IvfPq, IvfRq, IvfSq

    table = lancedb.connect(str(path)).open_table("vectors")
    configs = {"IVF_RQ": IvfRq, "IVF_SQ": IvfSq, "IVF_PQ": IvfPq}
    partitions = max(1, data.vectors.shape[0] // 4096)
    for name in args.lance_native:
        t0 = time.perf_counter()
        table.create_index(
            "vector", config=configs[name](distance_type="dot", num_partitions=partitions)
        )
        build_s = time.perf_counter() - t0
        for nprobes in args.lance_nprobes:
            for refine in args.lance_refine:

                def search(
                    q: NDArray[np.float32], nprobes: int = nprobes, refine: int = refine
                ) -> list[str]:
                    result = (
                        table.search(q)
                        .distance_type("dot")
                        .nprobes(nprobes)
                        .refine_factor(refine)
                        .where(f"kind = '{QUERY_KIND}'", prefilter=True)
                        .limit(TOP_K)
                        .select(["id"])
                        .to_arrow()
                    )
                    return result.column("id").to_pylist()

                samples, found = timed(search, data.queries, args.warmup)
                report(
                    f"lance native {name}",
                    samples,
                    found,
                    truth,
                    partitions=partitions,
                    nprobes=nprobes,
                    refine_factor=refine,
                    build_s=build_s,
                )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument(
        "--data", nargs="+", default=["random", "clustered"], choices=["random", "clustered"]
    )
    parser.add_argument("--dim", type=int, default=1024)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--clusters", type=int, default=2000)
    parser.add_argument("--spread", type=float, default=1.0)
    parser.add_argument("--lists-per-sqrt", type=float, default=LanceIndexConfig.lists_per_sqrt)
    parser.add_argument("--nprobe", type=int, nargs="*", default=[8, 32, 128])
    parser.add_argument(
        "--exact-store-max", type=int, default=100_000, help="also time ExactStore up to this size"
    )
    parser.add_argument(
        "--lance-native", nargs="*", default=[], choices=["IVF_RQ", "IVF_SQ", "IVF_PQ"]
    )
    parser.add_argument("--lance-nprobes", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--lance-refine", type=int, nargs="+", default=[10])
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the Lance tables")
    parser.add_argument("--json", type=Path, default=None, help="write all rows here")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-store-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"cores: {os.cpu_count()}, load average: {os.getloadavg()}", flush=True)
    all_rows: list[dict[str, Any]] = []
    for size in args.sizes:
        for name in args.data:
            t0 = time.perf_counter()
            data = make_dataset(args, name, size)
            print(f"[{name} n={size:,}] generated in {time.perf_counter() - t0:.1f} s", flush=True)
            all_rows += run_size(args, data, workdir)
            del data
            gc.collect()
            if args.json:
                args.json.write_text(json.dumps(all_rows, indent=1))
    print(f"load average at the end: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
