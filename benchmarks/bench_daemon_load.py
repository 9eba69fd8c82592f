"""Load test of the daemon: 32 concurrent clients, mixed calls, loopback only, bounded.

Starts ``sfxmatch daemon run`` (tiny random-weights model, temporary data dir) on loopback TCP
in a child process, adds and indexes a small synthetic library, warms up, then has
``--clients`` threads (each its own channel) issue ``--calls`` calls each, drawn from a fixed
mix: health check, Version (daemon status), LibraryStatus, LibrarySearch and a small Suggest
(one 1 s clip). Suggest goes through the job queue, so RESOURCE_EXHAUSTED is the expected
backpressure; any other error fails the run. Reports throughput, p50/p99 latency per call
type and the daemon's resident memory before and after (growth must stay under 5 %).

    .venv/bin/python benchmarks/bench_daemon_load.py                 # 32 clients x 40 calls
    .venv/bin/python benchmarks/bench_daemon_load.py --json /tmp/load.json

Exits 1 when an unexpected error happened or memory grew by 5 % or more.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from fractions import Fraction
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "daemon"))

from sfxmatch.client import Client, DaemonError  # noqa: E402
from sfxmatch.service import paths  # noqa: E402
from sfxmatch.suggestions import Edit, SourceClip, SuggestOptions  # noqa: E402
from sfxmatch.testing import synth  # noqa: E402

MIX = (("health", 30), ("version", 20), ("status", 20), ("search", 25), ("suggest", 5))
EXPECTED = {"RESOURCE_EXHAUSTED"}


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def wait_for(predicate, timeout: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        pause.wait(0.05)
    return value


def one_call(client: Client, kind: str, edit: Edit) -> None:
    if kind == "health":
        if not client.health(timeout=30):
            raise DaemonError("UNAVAILABLE", "health check not SERVING")
    elif kind == "version":
        client.version()
    elif kind == "status":
        client.library_status("bench")
    elif kind == "search":
        client.library_search("door slam", top_k=5)
    elif kind == "suggest":
        client.suggest(edit, SuggestOptions(libraries=("bench",), top_k=2))


def run_phase(target: str, token: str, clients: int, calls: int, edit: Edit, seed: int):  # type: ignore[no-untyped-def]
    kinds = [k for k, w in MIX for _ in range(w)]
    latencies: dict[str, list[float]] = defaultdict(list)
    errors: dict[str, int] = defaultdict(int)
    lock = threading.Lock()
    start_line = threading.Barrier(clients)

    def worker(number: int) -> None:
        rng = random.Random(seed * 1000 + number)
        with Client(target, token, timeout=120) as client:
            start_line.wait()
            for _ in range(calls):
                kind = rng.choice(kinds)
                began = time.perf_counter()
                try:
                    one_call(client, kind, edit)
                    outcome = None
                except DaemonError as exc:
                    outcome = exc.code
                took = time.perf_counter() - began
                with lock:
                    if outcome is None:
                        latencies[kind].append(took)
                    else:
                        errors[f"{kind}:{outcome}"] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - began, latencies, errors


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--calls", type=int, default=40, help="calls per client")
    parser.add_argument("--max-queued", type=int, default=4, help="daemon job queue")
    parser.add_argument("--json", type=Path, help="write the numbers here too")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="sfxb-", dir="/tmp"))
    data = root / "data"
    sounds = root / "sounds"
    sounds.mkdir()
    for i in range(10):
        synth.make_tone_file(sounds / f"DOORWood_door slam {i}.wav", freq=200.0 + 30 * i,
                             duration=1.0, sample_rate=16000, channels=1, amplitude=0.5,
                             sample_format="s16")  # fmt: skip
    video = synth.make_cut_video(root / "clip.mp4", shot_lengths=(25, 25)).path
    edit = Edit((SourceClip(str(video), 0.0, 1.0, 0.0, "clip"),), Fraction(25))
    env = dict(os.environ, SFXMATCH_DATA_DIR=str(data), SFXMATCH_CACHE_DIR=str(root / "cache"),
               SFXMATCH_MODEL="imagebind-tiny")  # fmt: skip
    log = (root / "daemon.log").open("w")
    daemon = subprocess.Popen(
        [sys.executable, "-m", "sfxmatch", "daemon", "run", "--tcp", "127.0.0.1:0",
         "--max-queued", str(args.max_queued), "--load-model", "eager", "--log-level", "warning"],
        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO,
    )  # fmt: skip
    try:
        info_file = paths.info_path(data)
        info = wait_for(lambda: paths.read_info(info_file), 120, "daemon.json")
        token = paths.read_token(paths.token_path(data))
        target = info.addresses[0]
        with Client(target, token, timeout=300) as setup:
            wait_for(lambda: setup.health(timeout=5), 300, "model loaded")
            setup.library_add(sounds, "bench")
            setup.library_index(["bench"])
        # Warm-up: every call type, so lazily built things exist before the first reading.
        run_phase(target, token, args.clients, 4, edit, seed=1)
        before = rss_kib(daemon.pid)
        seconds, latencies, errors = run_phase(target, token, args.clients, args.calls, edit, 2)
        after = rss_kib(daemon.pid)
    finally:
        daemon.terminate()
        code = daemon.wait(timeout=120)
        log.close()
    total_ok = sum(len(v) for v in latencies.values())
    total = total_ok + sum(errors.values())
    unexpected = {k: n for k, n in errors.items() if k.split(":")[1] not in EXPECTED}
    growth = (after - before) / before
    report = {
        "clients": args.clients,
        "calls": total,
        "ok": total_ok,
        "seconds": round(seconds, 3),
        "calls_per_second": round(total / seconds, 1),
        "p50_ms": round(pct([x for v in latencies.values() for x in v], 0.50), 2),
        "p99_ms": round(pct([x for v in latencies.values() for x in v], 0.99), 2),
        "per_call": {
            k: {"n": len(v), "p50_ms": round(pct(v, 0.5), 2), "p99_ms": round(pct(v, 0.99), 2)}
            for k, v in sorted(latencies.items())
        },
        "errors": dict(errors),
        "unexpected_errors": unexpected,
        "rss_before_mib": round(before / 1024, 1),
        "rss_after_mib": round(after / 1024, 1),
        "rss_growth_percent": round(100 * growth, 2),
        "daemon_exit_code": code,
    }
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    shutil.rmtree(root, ignore_errors=True)
    return 1 if unexpected or growth >= 0.05 or code != 0 else 0


if __name__ == "__main__":
    sys.exit(main())
