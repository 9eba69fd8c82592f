"""The daemon under attack: authenticated work while unauthenticated programs stall and flood.

Starts ``sfxmatch daemon run`` (tiny random-weights model, temporary data dir) on its Unix
socket and loopback TCP, adds and indexes a small synthetic library, then runs ``--runs``
rounds of two phases of ``--seconds`` each, the same authenticated load in both:

- ``--clients`` threads (each its own channel) making cheap calls (Version, ListJobs,
  LibraryStatus) at ``--rate`` calls a second each, and ``--suggesters`` threads running a
  small Suggest (one 1 s clip) back to back; RESOURCE_EXHAUSTED is expected backpressure for
  Suggest, any other error counts as unexpected;
- a health prober asking the standard health check on both transports every 100 ms;

phase "baseline" alone, phase "attack" while an attacker process (asyncio, no token) keeps
``--stall-connections`` connections each with up to 32 calls that send headers and never
a message (Version, LibraryIndex, Suggest and the token-free health check, reopened as the
daemon ends them), floods calls with a wrong token from ``--flooders`` tasks, and holds
``--idle-connections`` raw connections that never speak HTTP/2.

Reports per phase (median over runs): cheap-call p50/p99, Suggest p50, the health check's
worst and p99 answer time, call counts and errors; the attack/baseline ratio of the
cheap-call p99; the daemon's RSS, threads and open files before, at the attack's peak and
after (once the attacker is gone). Goals: cheap-call p99 under 100 ms and every health check
answered under 1 s while under attack.

    .venv/bin/python benchmarks/bench_daemon_attack.py
    .venv/bin/python benchmarks/bench_daemon_attack.py --runs 5 --json /tmp/attack.json

Exits 1 when a goal is missed, an unexpected error happened or the daemon did not exit 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from fractions import Fraction
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "daemon"))

import grpc  # noqa: E402
from sfxmatch.client import Client, DaemonError  # noqa: E402
from sfxmatch.service import paths  # noqa: E402
from sfxmatch.suggestions import Edit, SourceClip, SuggestOptions  # noqa: E402
from sfxmatch.testing import synth  # noqa: E402

CHEAP = ("version", "jobs", "status")
GOAL_P99_MS = 100.0
GOAL_HEALTH_S = 1.0


# --- the attacker (a process of its own) ------------------------------------------------


async def _stall_forever(call: Any) -> None:
    with contextlib.suppress(grpc.RpcError, asyncio.CancelledError):
        await call


async def _never() -> Any:
    await asyncio.Event().wait()
    yield b""  # pragma: no cover


async def _staller(target: str, per_connection: int, counts: dict[str, int]) -> None:
    """One connection holding ``per_connection`` calls that never send their message;
    each call the daemon ends is opened again."""
    methods = (
        "/sfxmatch.v1.Sfxmatch/Version",
        "/sfxmatch.v1.Sfxmatch/LibraryIndex",
        "/sfxmatch.v1.Sfxmatch/Suggest",
        "/grpc.health.v1.Health/Check",
    )
    options = (("grpc.use_local_subchannel_pool", 1),)
    async with grpc.aio.insecure_channel(target, options=options) as channel:

        async def one(number: int) -> None:
            method = channel.stream_unary(methods[number % len(methods)])
            while True:
                counts["stalled"] += 1
                await _stall_forever(method(_never()))
                await asyncio.sleep(0.01)

        await asyncio.gather(*(one(i) for i in range(per_connection)))


async def _flooder(target: str, counts: dict[str, int]) -> None:
    """Calls with a wrong token, as fast as they are answered."""
    metadata = (("authorization", "Bearer " + "f" * 64),)
    options = (("grpc.use_local_subchannel_pool", 1),)
    async with grpc.aio.insecure_channel(target, options=options) as channel:
        version = channel.unary_unary("/sfxmatch.v1.Sfxmatch/Version")
        status = channel.unary_unary("/sfxmatch.v1.Sfxmatch/LibraryStatus")
        while True:
            for method in (version, status):
                with contextlib.suppress(grpc.RpcError):
                    await method(b"", metadata=metadata, timeout=5)
                counts["flooded"] += 1


async def _idle(host: str, port: int, unix: str, count: int, counts: dict[str, int]) -> None:
    """Raw connections that never speak; reopened when the daemon closes them."""

    async def one(number: int) -> None:
        while True:
            try:
                if number % 2:
                    _reader, writer = await asyncio.open_connection(host, port)
                else:
                    _reader, writer = await asyncio.open_unix_connection(unix)
                counts["idle"] += 1
                await _reader.read()  # until the daemon hangs up
                writer.close()
            except OSError:
                await asyncio.sleep(0.1)

    await asyncio.gather(*(one(i) for i in range(count)))


async def _attack(args: argparse.Namespace) -> None:
    tcp, unix = args.attack
    host, _, port = tcp.rpartition(":")
    counts: dict[str, int] = defaultdict(int)
    tasks = []
    for i in range(args.stall_connections):
        target = unix if i % 2 else tcp
        tasks.append(_staller(target, 32, counts))
    for i in range(args.flooders):
        tasks.append(_flooder(unix if i % 2 else tcp, counts))
    unix_path = unix.removeprefix("unix://")
    tasks.append(_idle(host, int(port), unix_path, args.idle_connections, counts))

    async def report() -> None:
        while True:
            await asyncio.sleep(1.0)
            print(json.dumps(dict(counts)), flush=True)

    await asyncio.gather(report(), *tasks)


# --- measuring ----------------------------------------------------------------------------


def proc_numbers(pid: int) -> dict[str, float]:
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    fields = dict(line.split(":", 1) for line in status if ":" in line)
    return {
        "rss_mib": round(int(fields["VmRSS"].split()[0]) / 1024, 1),
        "threads": int(fields["Threads"]),
        "open_files": len(os.listdir(f"/proc/{pid}/fd")),
    }


def _sample(pid: int, peak: dict[str, float], stop: threading.Event) -> None:
    while not stop.wait(0.5):
        for key, value in proc_numbers(pid).items():
            peak[key] = max(peak[key], value)


def _settle(pid: int, files: float) -> None:
    """Wait until the daemon has closed the attacker's connections."""
    wait_for(lambda: proc_numbers(pid)["open_files"] <= files, 60, "connections closed")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def wait_for(predicate, timeout: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        pause.wait(0.05)
    return value


def run_phase(
    args: argparse.Namespace, targets: list[str], token: str, edit: Edit, seed: int
) -> dict[str, Any]:
    stop = threading.Event()
    lock = threading.Lock()
    latencies: dict[str, list[float]] = defaultdict(list)
    errors: dict[str, int] = defaultdict(int)

    def record(kind: str, began: float, error: str | None) -> None:
        with lock:
            if error is None:
                latencies[kind].append(time.perf_counter() - began)
            else:
                errors[f"{kind}:{error}"] += 1

    def cheap(number: int) -> None:
        rng = random.Random(seed * 100 + number)
        target = targets[number % len(targets)]
        pause = threading.Event()
        with Client(target, token, timeout=10) as client:
            next_at = time.perf_counter() + rng.random() / args.rate
            while not stop.is_set():
                pause.wait(max(0.0, next_at - time.perf_counter()))
                next_at += 1.0 / args.rate
                kind = rng.choice(CHEAP)
                began = time.perf_counter()
                try:
                    if kind == "version":
                        client.version()
                    elif kind == "jobs":
                        client.list_jobs(active_only=True)
                    else:
                        client.library_status("bench")
                    record(kind, began, None)
                except DaemonError as exc:
                    record(kind, began, exc.code)

    def suggester(number: int) -> None:
        with Client(targets[number % len(targets)], token, timeout=120) as client:
            while not stop.is_set():
                began = time.perf_counter()
                try:
                    client.suggest(edit, SuggestOptions(libraries=("bench",), top_k=2))
                    record("suggest", began, None)
                except DaemonError as exc:
                    record("suggest", began, exc.code)
                    if exc.code == "RESOURCE_EXHAUSTED":
                        stop.wait(0.2)

    def prober(target: str) -> None:
        with Client(target, token) as client:
            pause = threading.Event()
            while not stop.is_set():
                began = time.perf_counter()
                ok = client.health(timeout=5.0)
                record("health", began, None if ok else "NOT_ANSWERED")
                pause.wait(0.1)

    threads = [threading.Thread(target=cheap, args=(i,)) for i in range(args.clients)]
    threads += [threading.Thread(target=suggester, args=(i,)) for i in range(args.suggesters)]
    threads += [threading.Thread(target=prober, args=(t,)) for t in targets]
    for t in threads:
        t.start()
    stop.wait(args.seconds)
    stop.set()
    for t in threads:
        t.join()
    every_cheap = [x for k in CHEAP for x in latencies[k]]
    health = latencies["health"]
    return {
        "cheap_calls": len(every_cheap),
        "cheap_p50_ms": round(1000 * pct(every_cheap, 0.50), 2),
        "cheap_p99_ms": round(1000 * pct(every_cheap, 0.99), 2),
        "suggests": len(latencies["suggest"]),
        "suggest_p50_ms": round(1000 * pct(latencies["suggest"], 0.50), 1),
        "health_checks": len(health),
        "health_p99_ms": round(1000 * pct(health, 0.99), 2),
        "health_max_ms": round(1000 * max(health, default=float("nan")), 2),
        "errors": dict(errors),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0, help="per phase")
    parser.add_argument("--clients", type=int, default=8, help="authenticated cheap callers")
    parser.add_argument("--rate", type=float, default=10.0, help="cheap calls/s per client")
    parser.add_argument("--suggesters", type=int, default=2)
    parser.add_argument("--stall-connections", type=int, default=16, help="x 32 calls each")
    parser.add_argument("--flooders", type=int, default=8)
    parser.add_argument("--idle-connections", type=int, default=256)
    parser.add_argument("--json", type=Path, help="write the numbers here too")
    parser.add_argument("--attack", nargs=2, metavar=("TCP", "UNIX"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.attack:
        asyncio.run(_attack(args))
        return 0

    root = Path(tempfile.mkdtemp(prefix="sfxa-", dir="/tmp"))
    data, sounds = root / "data", root / "sounds"
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
         "--socket", str(root / "d.sock"), "--max-queued", "4", "--load-model", "eager",
         "--log-level", "warning"],
        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO,
    )  # fmt: skip
    rounds: list[dict[str, Any]] = []
    numbers: dict[str, Any] = {}
    attacker: subprocess.Popen[str] | None = None
    try:
        info = wait_for(lambda: paths.read_info(paths.info_path(data)), 120, "daemon.json")
        token = paths.read_token(paths.token_path(data))
        targets = sorted(info.addresses, key=lambda a: not a.startswith("unix:"))
        unix, tcp = targets[0], targets[1]
        with Client(unix, token, timeout=300) as setup:
            wait_for(lambda: setup.health(timeout=5), 300, "model loaded")
            setup.library_add(sounds, "bench")
            setup.library_index(["bench"])
            setup.suggest(edit, SuggestOptions(libraries=("bench",), top_k=2))  # warm-up
        numbers["before"] = proc_numbers(daemon.pid)
        peak = dict(numbers["before"])
        for number in range(args.runs):
            baseline = run_phase(args, targets, token, edit, seed=2 * number)
            attacker = subprocess.Popen(
                [sys.executable, __file__, "--attack", tcp, unix,
                 "--stall-connections", str(args.stall_connections),
                 "--flooders", str(args.flooders),
                 "--idle-connections", str(args.idle_connections)],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=REPO,
            )  # fmt: skip
            assert attacker.stdout is not None
            attacker.stdout.readline()  # its first report: the attack is on
            sampler_stop = threading.Event()
            sampler = threading.Thread(target=_sample, args=(daemon.pid, peak, sampler_stop))
            sampler.start()
            attack = run_phase(args, targets, token, edit, seed=2 * number + 1)
            sampler_stop.set()
            sampler.join()
            attacker.terminate()
            tail, _ = attacker.communicate(timeout=30)
            last = [line for line in tail.splitlines() if line.startswith("{")]
            attack["attacker"] = json.loads(last[-1]) if last else {}
            attacker = None
            # The daemon once this round's attacker has gone (its connections closed).
            _settle(daemon.pid, numbers["before"]["open_files"] + 8)
            attack["daemon_after"] = proc_numbers(daemon.pid)
            rounds.append({"baseline": baseline, "attack": attack})
            print(json.dumps(rounds[-1]), file=sys.stderr)
        numbers["attack_peak"] = peak
        # After the attack: the connections it held are closed, nothing is left behind.
        numbers["after"] = proc_numbers(daemon.pid)
        with Client(unix, token, timeout=10) as check:
            numbers["answers_after"] = bool(check.health()) and check.version().pid == daemon.pid
    finally:
        if attacker is not None:
            attacker.kill()
        daemon.terminate()
        code = daemon.wait(timeout=120)
        log.close()

    def median(phase: str, key: str) -> float:
        return round(statistics.median(r[phase][key] for r in rounds), 2)

    summary: dict[str, Any] = {"runs": args.runs, "seconds_per_phase": args.seconds}
    for phase in ("baseline", "attack"):
        summary[phase] = {
            key: median(phase, key)
            for key in ("cheap_calls", "cheap_p50_ms", "cheap_p99_ms", "suggests",
                        "suggest_p50_ms", "health_checks", "health_p99_ms", "health_max_ms")
        }  # fmt: skip
    summary["attack"]["health_max_ms_any_run"] = max(r["attack"]["health_max_ms"] for r in rounds)
    summary["cheap_p99_ratio_attack_to_baseline"] = round(
        summary["attack"]["cheap_p99_ms"] / summary["baseline"]["cheap_p99_ms"], 2
    )
    unexpected = {
        key: n
        for r in rounds
        for phase in r.values()
        for key, n in phase["errors"].items()
        if not key.endswith(":RESOURCE_EXHAUSTED")
    }
    summary["unexpected_errors"] = unexpected
    summary["attacker_last_round"] = rounds[-1]["attack"]["attacker"]
    summary["daemon_after_each_round"] = [r["attack"]["daemon_after"] for r in rounds]
    summary["daemon"] = numbers
    summary["daemon_exit_code"] = code
    summary["goals"] = {
        "cheap_p99_under_100ms_under_attack": summary["attack"]["cheap_p99_ms"] < GOAL_P99_MS,
        "health_always_under_1s_under_attack": summary["attack"]["health_max_ms_any_run"]
        < 1000 * GOAL_HEALTH_S,
    }
    summary["rounds"] = rounds
    print(json.dumps({k: v for k, v in summary.items() if k != "rounds"}, indent=2))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))
    shutil.rmtree(root, ignore_errors=True)
    failed = not all(summary["goals"].values()) or unexpected or code != 0
    failed = failed or not numbers.get("answers_after")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
