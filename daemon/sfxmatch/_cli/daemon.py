"""``sfxmatch daemon run|status|stop``, and ``install|uninstall|service-status`` from
``sfxmatch.user_service``. Which backend other commands run on: ``sfxmatch._cli.backend``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from sfxmatch.user_service import add_service_commands

EXIT_NOT_RUNNING = 3  # what LSB init scripts return from `status` for a stopped service


def add_daemon(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "daemon",
        help="run or control the background daemon",
        description="The daemon keeps the model loaded and serves the CLI and editor plugins "
        "over a Unix socket (or loopback TCP), authenticated by a token file.",
    )
    commands = parser.add_subparsers(title="daemon commands", metavar="ACTION", required=True)

    run = commands.add_parser("run", help="run the daemon in the foreground")
    run.add_argument("--socket", type=Path, help="Unix socket (default: <data dir>/daemon/...)")
    run.add_argument("--tcp", metavar="HOST:PORT", help="listen on loopback TCP (port 0: any)")
    run.add_argument(
        "--allow-remote", action="store_true", help="allow a non-loopback --tcp host (no TLS!)"
    )
    run.add_argument("--max-concurrent", type=int, default=1, help="GPU jobs at once (default 1)")
    run.add_argument("--max-queued", type=int, default=8, help="jobs waiting (default 8)")
    run.add_argument(
        "--load-model",
        choices=("eager", "lazy"),
        default="eager",
        help="load the model at start (default) or at the first call that needs it",
    )
    run.add_argument("--grace", type=float, default=30.0, help="seconds jobs get at shutdown")
    run.add_argument(
        "--exclude",
        action="append",
        default=[],
        type=Path,
        metavar="DIR",
        help="refuse client paths inside this folder (repeatable)",
    )
    run.add_argument("--log-level", default="info", choices=("debug", "info", "warning"))
    run.add_argument(
        "--model", default=None,
        help="the model (default: $SFXMATCH_MODEL, else pe-av-base with a GPU, pe-av-small "
        "without)",
    )  # fmt: skip
    run.add_argument(
        "--random-weights", action="store_true", help="DEVELOPMENT ONLY: meaningless results"
    )
    run.add_argument("--store", choices=("lance", "exact", "pinecone"), default="lance")
    run.set_defaults(handler=_run_daemon)

    status = commands.add_parser("status", help="is a daemon running, and what is it doing")
    status.add_argument("--json", action="store_true", help="print JSON")
    status.set_defaults(handler=_run_status)

    stop = commands.add_parser("stop", help="stop the running daemon gracefully")
    stop.add_argument("--grace", type=float, default=0.0, help="seconds jobs get (0: default)")
    stop.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for it")
    stop.set_defaults(handler=_run_stop)

    add_service_commands(commands)  # install, uninstall and the service's status


def _run_daemon(args: argparse.Namespace) -> int:
    import logging

    from sfxmatch.service.server import Daemon, DaemonConfig, setup_logging
    from sfxmatch.service.translate import check_grace

    setup_logging(getattr(logging, args.log_level.upper()))
    check_grace(args.grace)
    _raise_open_files_limit()
    config = DaemonConfig(
        socket=args.socket,
        tcp=args.tcp,
        allow_remote=args.allow_remote,
        max_concurrent=args.max_concurrent,
        max_queued=args.max_queued,
        load_model=args.load_model,
        grace=args.grace,
        excluded=tuple(args.exclude),
        model=args.model,
        weights="random" if args.random_weights else None,
        store_backend=args.store,
        freeze_heap=True,
    )
    import faulthandler

    # `kill -USR1 <pid>` dumps every thread's stack into the log: how to see a hung daemon.
    if hasattr(signal, "SIGUSR1"):
        faulthandler.register(signal.SIGUSR1, all_threads=True)
    daemon = Daemon(config).handle_signals().start()
    print(f"sfxmatch daemon listening on {', '.join(daemon.addresses)}", file=sys.stderr)
    _say_model_terms(args)
    daemon.serve_forever()
    _exit_past_lingering_threads(timeout=10.0)
    return 0


def _say_model_terms(args: argparse.Namespace) -> None:
    """The daemon's user must hear what the CLI's would: random weights, or a model whose
    licence forbids commercial work. A model name that does not resolve is the model's
    own error, said when it loads."""
    from sfxmatch._cli.models import warn_about_model
    from sfxmatch.config import Settings
    from sfxmatch.embed.encoder import resolve_model_name
    from sfxmatch.embed.registry import get_model
    from sfxmatch.errors import SfxmatchError

    try:
        model = resolve_model_name(args.model, Settings.from_env())
        random_only = get_model(model).random_only
    except SfxmatchError:
        return
    warn_about_model(model, meaningless=bool(args.random_weights) or random_only)


def _raise_open_files_limit() -> None:
    """Every connection costs a file descriptor: take the hard limit (up to 65536), so a
    flood of connections from other local programs runs out well after the daemon would
    close the idle ones."""
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 65536 if hard == resource.RLIM_INFINITY else min(hard, 65536)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def _exit_past_lingering_threads(timeout: float) -> None:
    """After a clean stop, wait for the other threads; a library thread that never ends
    (seen rarely under load) must not keep a stopped daemon alive: name it and exit."""
    import logging
    import os
    import threading

    deadline = time.monotonic() + timeout
    for thread in threading.enumerate():
        if thread is not threading.current_thread() and not thread.daemon:
            thread.join(max(0.0, deadline - time.monotonic()))
    left = [
        t.name
        for t in threading.enumerate()
        if t is not threading.current_thread() and not t.daemon and t.is_alive()
    ]
    if left:
        logging.getLogger("sfxmatch.daemon").warning(
            "threads still running after stop; exiting", extra={"threads": left}
        )
        faulthandler_dump()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


def faulthandler_dump() -> None:
    import faulthandler

    faulthandler.dump_traceback(all_threads=True)


def _run_status(args: argparse.Namespace) -> int:
    from sfxmatch.client import find_daemon

    client = find_daemon()
    if client is None:
        from sfxmatch.service import paths

        owner = paths.lock_owner()
        if owner is not None:  # holds the data folder, does not answer: starting or hung
            if args.json:
                pid = owner.daemon.pid if owner.daemon is not None else None
                print(json.dumps({"running": True, "answering": False, "pid": pid}))
            else:
                print(
                    f"an sfxmatch daemon ({owner.describe()}) holds {paths.daemon_dir()} but "
                    "does not answer (still starting, or hung: `kill -USR1 PID` logs its threads)"
                )
            return 1
        if args.json:
            print(json.dumps({"running": False}))
        else:
            print("no sfxmatch daemon is running")
        return EXIT_NOT_RUNNING
    with client:
        status = client.version()
        jobs = client.list_jobs(active_only=True)
    if args.json:
        data: dict[str, Any] = {"running": True, **dataclasses.asdict(status)}
        data["jobs"] = [dataclasses.asdict(j) for j in jobs]
        print(json.dumps(data, indent=2))
        return 0
    uptime = time.time() - status.started_at
    model = status.model_id or f"{status.model} (not loaded yet)"
    print(f"sfxmatch daemon {status.version} (pid {status.pid}), up {uptime:.0f} s")
    print(f"  listening on {', '.join(status.addresses)}")
    print(f"  model {model}" + ("  [RANDOM WEIGHTS]" if status.meaningless else ""))
    if status.model_error:
        print(f"  model error: {status.model_error}")
    print(
        f"  jobs: {status.jobs_running} running, {status.jobs_queued} queued "
        f"(max {status.max_concurrent_jobs} running, {status.max_queued_jobs} queued)"
    )
    for job in jobs:
        print(f"    {job.id}  {job.state:<9} {job.progress.fraction:5.0%}  {job.description}")
    return 0


def _run_stop(args: argparse.Namespace) -> int:
    """Stop our daemon: through its socket when it answers; else, only when it still holds
    its data folder's lock, by SIGTERM to the very process recorded there by the daemon
    itself (tagged as the daemon; pid, start time, host and PID namespace all checked; on
    Linux through a pidfd, so the pid cannot change hands between check and signal). A
    record left by a killed daemon never leads to a signal: its pid may be another
    program's by now; nor does a lock held by anything else (another ``daemon stop``)."""
    from sfxmatch.client import DaemonError, find_daemon
    from sfxmatch.errors import ConfigError
    from sfxmatch.service import paths

    target: tuple[int, int | None] | None = None
    client = find_daemon()
    if client is not None:
        with client:
            pid = client.version().pid
            target = (pid, paths.process_start_time(pid))
            try:
                client.shutdown(args.grace)
            except DaemonError as error:
                if error.code != "UNAVAILABLE":
                    raise
    else:
        owner = paths.lock_owner()
        if owner is None:
            stale = None
            if paths.info_path().exists():
                lock = paths.DataFolderLock(paths.lock_path())
                with contextlib.suppress(ConfigError), lock.acquire(wait=0.5):
                    stale = paths.remove_stale_records()
            note = f" (removed the record left by pid {stale.pid}, gone)" if stale else ""
            print(f"no sfxmatch daemon is running{note}")
            return 0
        daemon = owner.daemon
        if daemon is None:
            print(
                f"{paths.daemon_dir()} is locked by a process that is not a daemon (or one "
                "still starting); not signalling anything",
                file=sys.stderr,
            )
            return 1
        if not daemon.here:
            print(
                f"the sfxmatch daemon that holds {paths.daemon_dir()} is {daemon.describe()}; "
                "stop it there (no signal sent from here)",
                file=sys.stderr,
            )
            return 1
        # Ours (it holds the lock) but not answering.
        if not daemon.signal(signal.SIGTERM):
            print(
                f"an sfxmatch daemon holds {paths.daemon_dir()} but its record "
                f"({daemon.describe()}) names no running process; not signalling anything",
                file=sys.stderr,
            )
            return 1
        target = (daemon.pid, daemon.start_time)
    deadline = time.monotonic() + args.timeout
    pid, start_time = target
    pause = threading.Event()
    while paths.same_process(pid, start_time):
        if time.monotonic() > deadline:
            print(f"sfxmatch daemon (pid {pid}) is still stopping", file=sys.stderr)
            return 1
        pause.wait(0.1)  # polling another process's exit: there is nothing to wait on
    print(f"sfxmatch daemon (pid {pid}) stopped")
    return 0
