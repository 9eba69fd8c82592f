"""AutoSync's three rules on a fixed synthetic corpus: how well do the intervals line up?

Accuracy, not speed (the sync itself takes milliseconds). The corpus is
``sfxmatch.match.tuning.synthetic_corpus``: raw cosine scores for 32 labels at 0.1 s
segments, 60 s per file, 12 known events (0.8-4 s) on 6 labels, one sound at a time, AR(1)
noise of the given standard deviation (in cosine units), turned into probabilities with the
default softmax temperature (0.01). Seeds are fixed, so the table is reproducible.

For each rule at its default ``SyncParams`` (t = 0.1, d = 0.5, max_gap = 0.2 s,
min_duration = 0.3 s; hysteresis t_high = 0.2, t_low = 0.1) it prints event-based F1,
precision and recall (sed_eval's definition: 0.2 s onset collar, offset collar
max(0.2 s, 50 % of the event)) and the mean and median absolute onset and offset errors of
the matched pairs.

    .venv/bin/python benchmarks/bench_autosync.py
    .venv/bin/python benchmarks/bench_autosync.py --files 10 --noise 0.002 0.01
"""

from __future__ import annotations

import argparse
import statistics
import time

from sfxmatch.match.autosync import SYNC_RULES, SyncParams, sync_labels
from sfxmatch.match.events import evaluate_files, events_from_intervals, matched_pairs
from sfxmatch.match.tuning import synthetic_corpus


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--files", type=int, default=8, help="files per noise level")
    parser.add_argument(
        "--noise", type=float, nargs="+", default=[0.002, 0.004, 0.006, 0.008, 0.010]
    )
    args = parser.parse_args()

    params = SyncParams()
    print(f"{args.files} files x 60 s per noise level, 32 labels, SyncParams() = {params}\n")
    print(
        "| noise (cos sd) | rule | F1 | precision | recall | onset err mean / median (s) "
        "| offset err mean / median (s) | events ref / sys |"
    )
    print("|---|---|---|---|---|---|---|---|")
    elapsed = dict.fromkeys(SYNC_RULES, 0.0)
    for level, noise in enumerate(args.noise):
        traces, annotations = synthetic_corpus(args.files, seed=1000 + level, noise=noise)
        probs = {name: s.probabilities(None) for name, s in traces.items()}
        for rule in SYNC_RULES:
            start = time.perf_counter()
            estimated = {
                name: events_from_intervals(
                    sync_labels(s.times, probs[name], s.labels, rule, params)  # type: ignore[arg-type]
                )
                for name, s in traces.items()
            }
            elapsed[rule] += time.perf_counter() - start
            metrics = evaluate_files(annotations, estimated)
            pairs = [
                p for name in traces for p in matched_pairs(annotations[name], estimated[name])
            ]
            onsets = [abs(r.onset - e.onset) for r, e in pairs]
            offsets = [abs(r.offset - e.offset) for r, e in pairs]
            print(
                f"| {noise:.3f} | {rule} | {metrics.f1:.3f} | {metrics.precision:.3f} "
                f"| {metrics.recall:.3f} | {_mean_median(onsets)} | {_mean_median(offsets)} "
                f"| {metrics.overall.n_ref} / {metrics.overall.n_sys} |"
            )
    minutes = len(args.noise) * args.files * 32  # label-minutes synced per rule
    print()
    for rule, seconds in elapsed.items():
        print(f"{rule}: {1000 * seconds / minutes:.2f} ms per label-minute of 0.1 s segments")


def _mean_median(values: list[float]) -> str:
    if not values:
        return "- / -"
    return f"{statistics.fmean(values):.3f} / {statistics.median(values):.3f}"


if __name__ == "__main__":
    main()
