"""Run the daemon as a per-user background service: systemd, launchd or Task Scheduler.

Three layers, each usable alone:

* rendering, pure functions from an executable path to file text:
  :func:`render_systemd_unit`, :func:`render_launchd_plist`, :func:`render_task_xml`;
* actions: :func:`install_service`, :func:`uninstall_service`, :func:`service_status`. They
  write the definition only when its text changed, then ask the platform's service manager
  to (re)load it. Re-running either is safe. ``dry_run=True`` lists what would happen and
  changes nothing; ``root=DIR`` treats DIR as the home directory and calls no service
  manager (unless a ``runner`` is passed), so tests can write into a temporary folder;
* the command line: :func:`add_service_commands` adds ``install``, ``uninstall`` and
  ``service-status`` to an argparse subparsers object (``sfxmatch daemon ...``).

Where each platform keeps things:

==========  ===================================================  =============================
platform    service definition                                   logs
==========  ===================================================  =============================
Linux       ``~/.config/systemd/user/sfxmatch.service``          the journal
                                                                 (``journalctl --user -u
                                                                 sfxmatch``)
macOS       ``~/Library/LaunchAgents/org.sfxmatch.daemon.plist``  ``~/Library/Logs/sfxmatch/``
Windows     task ``\\sfxmatch`` (its XML is kept in               ``%LOCALAPPDATA%\\sfxmatch\\
            ``%LOCALAPPDATA%\\sfxmatch\\service\\``)                Logs\\daemon.log``
==========  ===================================================  =============================

Task Scheduler neither captures a program's output nor reliably restarts a program that
exits with an error (its RestartOnFailure covers a task that fails to start), so on Windows
the task runs :func:`supervise` under ``pythonw.exe`` (no console window): it appends the
daemon's output to the log file, restarts it after a failure like systemd's
``Restart=on-failure``, and records the daemon's process id so uninstalling can stop it.
"""

from __future__ import annotations

import argparse
import os
import plistlib
import shutil
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal, Protocol
from xml.sax.saxutils import escape as xml_escape

from sfxmatch.config import environment
from sfxmatch.errors import SfxmatchError
from sfxmatch.files import atomic_write

Platform = Literal["linux", "macos", "windows"]
PLATFORMS: tuple[Platform, ...] = ("linux", "macos", "windows")

SYSTEMD_UNIT = "sfxmatch.service"
LAUNCHD_LABEL = "org.sfxmatch.daemon"
TASK_NAME = "sfxmatch"
DAEMON_ARGS: tuple[str, ...] = ("daemon", "run")
TASK_NAMESPACE = "http://schemas.microsoft.com/windows/2004/02/mit/task"

RESTART_DELAY_S = 5  # systemd RestartSec, launchd ThrottleInterval, supervise() delay
RESTART_BURST = 5  # failures within RESTART_WINDOW_S before giving up (a broken install)
RESTART_WINDOW_S = 300
MAX_LOG_BYTES = 10 * 1024 * 1024  # supervise() keeps one older log beside the current one


class ServiceError(SfxmatchError):
    """The service could not be installed, removed or queried (says what to do by hand)."""


@dataclass(frozen=True)
class CommandResult:
    """What a service-manager command returned."""

    returncode: int
    stdout: str = ""
    stderr: str = ""


Runner = Callable[[Sequence[str]], CommandResult]
"""Runs one command (argv) and returns its result; tests pass a recorder."""


def run_command(argv: Sequence[str]) -> CommandResult:
    """The real runner: run ``argv``, capture its output as text, never raise on failure."""
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, check=False, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as error:
        return CommandResult(127, "", str(error))
    return CommandResult(done.returncode, done.stdout, done.stderr)


@dataclass(frozen=True)
class ServiceLayout:
    """Where one platform's service definition and logs live, and what the service runs."""

    platform: Platform
    definition: Path  # systemd unit, launchd plist, or the task's XML
    log_dir: Path | None  # None: the journal
    executable: str  # the sfxmatch console script of the environment
    home: Path

    @property
    def pid_file(self) -> Path | None:
        """Windows only: where supervise() records the daemon's process id."""
        if self.platform != "windows" or self.log_dir is None:
            return None
        return self.log_dir.parent / "daemon.pid"


@dataclass(frozen=True)
class ServiceResult:
    """What install_service / uninstall_service did (or, in a dry run, would do)."""

    platform: Platform
    definition: Path
    actions: tuple[str, ...]
    changed: bool  # the definition file was written or removed
    dry_run: bool
    content: str | None = None  # the rendered definition (install only)


@dataclass(frozen=True)
class ServiceStatus:
    """Whether the service is installed, and whether it runs (None: could not ask)."""

    platform: Platform
    definition: Path
    installed: bool
    running: bool | None
    detail: str

    def describe(self) -> str:
        """One line for people."""
        state = {True: "running", False: "not running", None: "state unknown"}[self.running]
        if not self.installed:
            return f"not installed ({self.definition} does not exist)"
        return f"installed at {self.definition}; {state}" + (
            f" ({self.detail})" if self.detail else ""
        )


# --- platforms and paths ------------------------------------------------------------------


def detect_platform(name: str | None = None) -> Platform:
    """``sys.platform`` (or ``name``) as one of ``PLATFORMS``."""
    name = sys.platform if name is None else name
    if name in PLATFORMS:
        return name
    if name.startswith(("win", "cygwin", "msys")):
        return "windows"
    if name == "darwin":
        return "macos"
    if name.startswith("linux"):
        return "linux"
    raise ServiceError(f"no background service support for platform {name!r}")


def default_executable(platform: Platform | None = None) -> str:
    """The ``sfxmatch`` program of the environment this Python runs in."""
    platform = platform or detect_platform()
    scripts = Path(sys.executable).parent  # bin/ of a venv, Scripts\\ on Windows
    name = "sfxmatch.exe" if platform == "windows" else "sfxmatch"
    candidate = scripts / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which("sfxmatch")
    return found or str(candidate)


def service_layout(
    platform: Platform | None = None,
    *,
    home: Path | None = None,
    env: Mapping[str, str] | None = None,
    executable: str | None = None,
) -> ServiceLayout:
    """Where ``platform``'s files go for the user whose home is ``home``."""
    platform = platform or detect_platform()
    env = environment() if env is None else env
    home = Path.home() if home is None else home
    executable = executable or default_executable(platform)
    if platform == "linux":
        config = Path(env["XDG_CONFIG_HOME"]) if env.get("XDG_CONFIG_HOME") else home / ".config"
        return ServiceLayout(
            platform, config / "systemd" / "user" / SYSTEMD_UNIT, None, executable, home
        )
    if platform == "macos":
        return ServiceLayout(
            platform,
            home / "Library" / "LaunchAgents" / f"{LAUNCHD_LABEL}.plist",
            home / "Library" / "Logs" / "sfxmatch",
            executable,
            home,
        )
    local = Path(env["LOCALAPPDATA"]) if env.get("LOCALAPPDATA") else home / "AppData" / "Local"
    base = local / "sfxmatch"
    return ServiceLayout(
        platform, base / "service" / "sfxmatch-task.xml", base / "Logs", executable, home
    )


# --- rendering ----------------------------------------------------------------------------


def systemd_quote(word: str) -> str:
    """One ExecStart word: specifiers (%) and variables ($) escaped, quoted when needed."""
    word = word.replace("%", "%%").replace("$", "$$")
    if word and not any(c in word for c in " \t\"'\\;"):
        return word
    return '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_systemd_unit(executable: str, *, args: Sequence[str] = DAEMON_ARGS) -> str:
    """A systemd user unit that runs ``executable args`` and restarts it after a failure."""
    command = " ".join(systemd_quote(word) for word in (executable, *args))
    return f"""\
[Unit]
Description=sfxmatch daemon (sound suggestions for video, local gRPC)
# Give up after {RESTART_BURST} failures in {RESTART_WINDOW_S} s: a broken install, not a hiccup.
StartLimitIntervalSec={RESTART_WINDOW_S}
StartLimitBurst={RESTART_BURST}

[Service]
Type=simple
ExecStart={command}
Restart=on-failure
RestartSec={RESTART_DELAY_S}
TimeoutStopSec=30
Environment=PYTHONUNBUFFERED=1
# Output goes to the journal: journalctl --user -u {SYSTEMD_UNIT.removesuffix(".service")}
StandardOutput=journal
StandardError=journal
SyslogIdentifier=sfxmatch

[Install]
WantedBy=default.target
"""


def render_launchd_plist(
    executable: str,
    *,
    log_dir: Path,
    args: Sequence[str] = DAEMON_ARGS,
    label: str = LAUNCHD_LABEL,
) -> bytes:
    """A launchd agent: started at login, restarted when it exits with an error."""
    # launchd's PATH is /usr/bin:/bin:/usr/sbin:/sbin; Homebrew's ffmpeg lives elsewhere.
    folders = [str(Path(executable).parent), "/opt/homebrew/bin", "/usr/local/bin"]
    path = ":".join([*folders, "/usr/bin", "/bin", "/usr/sbin", "/sbin"])
    document = {
        "Label": label,
        "ProgramArguments": [executable, *args],
        "RunAtLoad": True,
        "KeepAlive": {"SuccessfulExit": False},
        "ThrottleInterval": RESTART_DELAY_S,
        "ProcessType": "Interactive",  # model inference: do not throttle like a background job
        "StandardOutPath": str(log_dir / "daemon.out.log"),
        "StandardErrorPath": str(log_dir / "daemon.err.log"),
        "EnvironmentVariables": {"PATH": path, "PYTHONUNBUFFERED": "1"},
    }
    return plistlib.dumps(document, fmt=plistlib.FMT_XML, sort_keys=False)


def windows_command_line(argv: Sequence[str]) -> str:
    """``argv`` quoted the way Windows programs (MSVC runtime) split a command line."""
    return subprocess.list2cmdline(list(argv))


def supervise_argv(layout: ServiceLayout, args: Sequence[str] = DAEMON_ARGS) -> list[str]:
    """The Windows task's command: pythonw running supervise() around the daemon."""
    assert layout.log_dir is not None and layout.pid_file is not None
    scripts = _windows_parent(layout.executable)
    pythonw = f"{scripts}\\pythonw.exe" if scripts else "pythonw.exe"
    return [
        pythonw,
        "-m",
        "sfxmatch.user_service",
        "supervise",
        "--log",
        str(layout.log_dir / "daemon.log"),
        "--pid-file",
        str(layout.pid_file),
        "--",
        layout.executable,
        *args,
    ]


def _windows_parent(executable: str) -> str:
    cut = max(executable.rfind("\\"), executable.rfind("/"))
    return executable[:cut] if cut > 0 else ""


def render_task_xml(
    argv: Sequence[str],
    *,
    user_id: str | None,
    working_directory: str | None = None,
    description: str = "sfxmatch daemon: sound suggestions for video (local gRPC)",
) -> str:
    """Task Scheduler XML: start at the user's logon, never time out, retry a failed start."""
    command, *arguments = argv
    user = f"\n      <UserId>{xml_escape(user_id)}</UserId>" if user_id else ""
    workdir = (
        f"\n      <WorkingDirectory>{xml_escape(working_directory)}</WorkingDirectory>"
        if working_directory
        else ""
    )
    return f"""\
<?xml version="1.0" encoding="UTF-16"?>
<Task version="1.2" xmlns="{TASK_NAMESPACE}">
  <RegistrationInfo>
    <Description>{xml_escape(description)}</Description>
    <URI>\\{TASK_NAME}</URI>
  </RegistrationInfo>
  <Triggers>
    <LogonTrigger>
      <Enabled>true</Enabled>{user}
    </LogonTrigger>
  </Triggers>
  <Principals>
    <Principal id="Author">{user}
      <LogonType>InteractiveToken</LogonType>
      <RunLevel>LeastPrivilege</RunLevel>
    </Principal>
  </Principals>
  <Settings>
    <MultipleInstancesPolicy>IgnoreNew</MultipleInstancesPolicy>
    <DisallowStartIfOnBatteries>false</DisallowStartIfOnBatteries>
    <StopIfGoingOnBatteries>false</StopIfGoingOnBatteries>
    <AllowHardTerminate>true</AllowHardTerminate>
    <StartWhenAvailable>true</StartWhenAvailable>
    <RunOnlyIfNetworkAvailable>false</RunOnlyIfNetworkAvailable>
    <IdleSettings>
      <StopOnIdleEnd>false</StopOnIdleEnd>
      <RestartOnIdle>false</RestartOnIdle>
    </IdleSettings>
    <AllowStartOnDemand>true</AllowStartOnDemand>
    <Enabled>true</Enabled>
    <Hidden>false</Hidden>
    <RunOnlyIfIdle>false</RunOnlyIfIdle>
    <ExecutionTimeLimit>PT0S</ExecutionTimeLimit>
    <Priority>7</Priority>
    <RestartOnFailure>
      <Interval>PT1M</Interval>
      <Count>10</Count>
    </RestartOnFailure>
  </Settings>
  <Actions Context="Author">
    <Exec>
      <Command>{xml_escape(command)}</Command>
      <Arguments>{xml_escape(windows_command_line(arguments))}</Arguments>{workdir}
    </Exec>
  </Actions>
</Task>
"""


def render_definition(layout: ServiceLayout, env: Mapping[str, str] | None = None) -> bytes:
    """The bytes of ``layout``'s service definition file."""
    env = environment() if env is None else env
    if layout.platform == "linux":
        return render_systemd_unit(layout.executable).encode()
    if layout.platform == "macos":
        assert layout.log_dir is not None
        return render_launchd_plist(layout.executable, log_dir=layout.log_dir)
    domain, user = env.get("USERDOMAIN", ""), env.get("USERNAME", "")
    user_id = f"{domain}\\{user}" if domain and user else (user or None)
    text = render_task_xml(
        supervise_argv(layout), user_id=user_id, working_directory=str(layout.log_dir)
    )
    # schtasks /XML reads UTF-16 with a byte-order mark, matching the declaration.
    return text.replace("\n", "\r\n").encode("utf-16")


# --- actions ------------------------------------------------------------------------------


class _Out(Protocol):
    def write(self, text: str, /) -> object: ...


@dataclass
class _Context:
    layout: ServiceLayout
    env: Mapping[str, str]
    dry_run: bool
    runner: Runner | None  # None: record commands, never run them
    actions: list[str]

    def note(self, text: str) -> None:
        self.actions.append(("would " if self.dry_run else "") + text)

    def call(self, argv: Sequence[str], *, check: bool = True) -> CommandResult | None:
        line = " ".join(argv)
        if self.dry_run or self.runner is None:
            self.actions.append(
                f"{'would run' if self.dry_run else 'skipped (no service manager here)'}: {line}"
            )
            return None
        result = self.runner(argv)
        self.actions.append(f"ran: {line} (exit {result.returncode})")
        if check and result.returncode != 0:
            message = (result.stderr or result.stdout).strip().splitlines()
            raise ServiceError(
                f"`{line}` failed with exit code {result.returncode}"
                + (f": {message[-1]}" if message else "")
            )
        return result


def _manager_tool(platform: Platform) -> str:
    return {"linux": "systemctl", "macos": "launchctl", "windows": "schtasks"}[platform]


def _context(
    platform: Platform | None,
    executable: str | None,
    root: Path | None,
    env: Mapping[str, str] | None,
    dry_run: bool,
    runner: Runner | None,
) -> _Context:
    platform = platform or detect_platform()
    env = dict(environment() if env is None else env)
    if root is not None:
        root = Path(root)
        # A stand-in home: per-user folders that live outside HOME are placed inside it.
        for name in ("XDG_CONFIG_HOME", "LOCALAPPDATA", "APPDATA"):
            env.pop(name, None)
    layout = service_layout(platform, home=root, env=env, executable=executable)
    if runner is None and root is None and platform == detect_platform():
        runner = run_command if shutil.which(_manager_tool(platform)) else None
    return _Context(layout, env, dry_run, runner, [])


def _uid() -> int:
    getuid = getattr(os, "getuid", None)
    return getuid() if getuid is not None else 0


def install_service(
    *,
    platform: Platform | None = None,
    executable: str | None = None,
    root: Path | None = None,
    env: Mapping[str, str] | None = None,
    dry_run: bool = False,
    start: bool = True,
    runner: Runner | None = None,
) -> ServiceResult:
    """Write the service definition and (re)load it; safe to run again.

    ``root``: a directory standing in for the home directory; no service manager is called
    unless ``runner`` is given. Raises ServiceError when the service manager refuses; the
    definition file is in place by then, and the message says so.
    """
    ctx = _context(platform, executable, root, env, dry_run, runner)
    layout = ctx.layout
    content = render_definition(layout, ctx.env)
    old = layout.definition.read_bytes() if layout.definition.is_file() else None
    changed = old != content
    if layout.log_dir is not None and not layout.log_dir.is_dir():
        ctx.note(f"create {layout.log_dir}")
        if not dry_run:
            layout.log_dir.mkdir(parents=True, exist_ok=True)
    if changed:
        ctx.note(f"{'update' if old is not None else 'write'} {layout.definition}")
        if not dry_run:
            with atomic_write(layout.definition) as tmp:
                tmp.write_bytes(content)
    else:
        ctx.actions.append(f"unchanged: {layout.definition}")
    try:
        _load(ctx, changed, start)
    except ServiceError as error:
        raise ServiceError(
            f"{layout.definition} is written, but the service manager refused: {error}"
        ) from error
    text = content.decode("utf-16") if layout.platform == "windows" else content.decode()
    return ServiceResult(
        layout.platform, layout.definition, tuple(ctx.actions), changed, dry_run, text
    )


def _load(ctx: _Context, changed: bool, start: bool) -> None:
    layout = ctx.layout
    if layout.platform == "linux":
        ctx.call(["systemctl", "--user", "daemon-reload"])
        ctx.call(["systemctl", "--user", "enable", SYSTEMD_UNIT])
        if start:
            # A changed unit restarts a running daemon; otherwise start is a no-op when running.
            verb = "restart" if changed else "start"
            ctx.call(["systemctl", "--user", verb, SYSTEMD_UNIT])
    elif layout.platform == "macos":
        domain = f"gui/{_uid()}"
        target = f"{domain}/{LAUNCHD_LABEL}"
        loaded = ctx.call(["launchctl", "print", target], check=False)
        is_loaded = loaded is not None and loaded.returncode == 0
        if is_loaded and (changed or not start):
            ctx.call(["launchctl", "bootout", target], check=False)
            is_loaded = False
        ctx.call(["launchctl", "enable", target])
        if start and not is_loaded:
            ctx.call(["launchctl", "bootstrap", domain, str(layout.definition)])
    else:
        ctx.call(["schtasks", "/Create", "/TN", TASK_NAME, "/XML", str(layout.definition), "/F"])
        if start:
            if changed:
                _stop_windows(ctx)
            ctx.call(["schtasks", "/Run", "/TN", TASK_NAME])


def _stop_windows(ctx: _Context) -> None:
    ctx.call(["schtasks", "/End", "/TN", TASK_NAME], check=False)
    pid_file = ctx.layout.pid_file
    pid = _read_pid(pid_file) if pid_file is not None else None
    if pid is not None:
        # Ending the task stops supervise(), not the daemon it started.
        ctx.call(["taskkill", "/PID", str(pid), "/T", "/F"], check=False)


def _read_pid(pid_file: Path) -> int | None:
    try:
        return int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None


def uninstall_service(
    *,
    platform: Platform | None = None,
    root: Path | None = None,
    env: Mapping[str, str] | None = None,
    dry_run: bool = False,
    runner: Runner | None = None,
) -> ServiceResult:
    """Stop the service and remove its definition; does nothing when it is not installed."""
    ctx = _context(platform, "sfxmatch", root, env, dry_run, runner)
    layout = ctx.layout
    present = layout.definition.exists()
    if layout.platform == "linux":
        if present:
            ctx.call(["systemctl", "--user", "disable", "--now", SYSTEMD_UNIT], check=False)
    elif layout.platform == "macos":
        ctx.call(["launchctl", "bootout", f"gui/{_uid()}/{LAUNCHD_LABEL}"], check=False)
    else:
        _stop_windows(ctx)
        ctx.call(["schtasks", "/Delete", "/TN", TASK_NAME, "/F"], check=False)
    if present:
        ctx.note(f"remove {layout.definition}")
        if not dry_run:
            layout.definition.unlink(missing_ok=True)
        if layout.platform == "linux":
            ctx.call(["systemctl", "--user", "daemon-reload"], check=False)
            ctx.call(["systemctl", "--user", "reset-failed", SYSTEMD_UNIT], check=False)
    else:
        ctx.actions.append(f"not installed: {layout.definition}")
    if layout.log_dir is not None and layout.log_dir.is_dir():
        ctx.actions.append(f"kept logs in {layout.log_dir}")
    return ServiceResult(layout.platform, layout.definition, tuple(ctx.actions), present, dry_run)


def service_status(
    *,
    platform: Platform | None = None,
    root: Path | None = None,
    env: Mapping[str, str] | None = None,
    runner: Runner | None = None,
) -> ServiceStatus:
    """Whether the service is installed and running (running is None when unknowable)."""
    ctx = _context(platform, "sfxmatch", root, env, False, runner)
    layout = ctx.layout
    installed = layout.definition.is_file()
    if ctx.runner is None:
        return ServiceStatus(
            layout.platform, layout.definition, installed, None, "no service manager to ask"
        )
    running: bool | None
    if layout.platform == "linux":
        result = ctx.runner(["systemctl", "--user", "is-active", SYSTEMD_UNIT])
        state = result.stdout.strip() or result.stderr.strip()
        running = state == "active"
        if result.returncode != 0 and state not in {"inactive", "failed", "activating"}:
            running = None  # no user manager (e.g. no login session)
        detail = state
    elif layout.platform == "macos":
        result = ctx.runner(["launchctl", "print", f"gui/{_uid()}/{LAUNCHD_LABEL}"])
        running = result.returncode == 0 and "state = running" in result.stdout
        detail = "loaded" if result.returncode == 0 else "not loaded"
    else:
        result = ctx.runner(["schtasks", "/Query", "/TN", TASK_NAME, "/FO", "CSV", "/NH"])
        fields = [f.strip('"') for f in result.stdout.strip().split('","')]
        detail = fields[-1] if result.returncode == 0 and fields else "not registered"
        running = detail == "Running"
    return ServiceStatus(layout.platform, layout.definition, installed, running, detail)


# --- supervise (the Windows task's process) -----------------------------------------------


class _Process(Protocol):
    pid: int

    def wait(self) -> int: ...


Spawn = Callable[[Sequence[str], IO[bytes]], _Process]


def _spawn(argv: Sequence[str], log: IO[bytes]) -> _Process:
    flags = getattr(subprocess, "CREATE_NO_WINDOW", 0)
    return subprocess.Popen(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        creationflags=flags,
    )


def supervise(
    argv: Sequence[str],
    *,
    log_file: Path,
    pid_file: Path | None = None,
    restart_delay: float = RESTART_DELAY_S,
    burst: int = RESTART_BURST,
    window: float = RESTART_WINDOW_S,
    max_log_bytes: int = MAX_LOG_BYTES,
    spawn: Spawn = _spawn,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """Run ``argv`` with output appended to ``log_file``; restart it when it fails.

    Returns 0 when the program exits cleanly, or its last exit code after ``burst`` failures
    within ``window`` seconds (the same rule as the systemd unit's StartLimit).
    """
    log_file.parent.mkdir(parents=True, exist_ok=True)
    failures: deque[float] = deque()
    while True:
        _rotate(log_file, max_log_bytes)
        with open(log_file, "ab") as log:
            log.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} start: {argv[0]}\n".encode())
            log.flush()
            process = spawn(argv, log)
            if pid_file is not None:
                pid_file.write_text(f"{process.pid}\n")
            code = process.wait()
            log.write(f"--- exit code {code}\n".encode())
        if pid_file is not None:
            pid_file.unlink(missing_ok=True)
        if code == 0:
            return 0
        now = clock()
        failures.append(now)
        while failures and now - failures[0] > window:
            failures.popleft()
        if len(failures) >= burst:
            with open(log_file, "ab") as log:
                log.write(f"--- {burst} failures in {window:g} s: giving up\n".encode())
            return code
        sleep(restart_delay)


def _rotate(log_file: Path, max_bytes: int) -> None:
    try:
        if log_file.stat().st_size > max_bytes:
            os.replace(log_file, log_file.with_name(log_file.name + ".1"))
    except OSError:
        pass


# --- command line -------------------------------------------------------------------------


def _common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--platform",
        choices=PLATFORMS,
        help="act for this platform instead of this machine's (with --dry-run or --root)",
    )
    parser.add_argument(
        "--root",
        type=Path,
        metavar="DIR",
        help="treat DIR as the home directory and call no service manager (for testing)",
    )


def add_service_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``install``, ``uninstall`` and ``service-status`` to ``subparsers``."""
    install = subparsers.add_parser(
        "install",
        help="run the daemon as a background service at login",
        description="Install the daemon as a per-user background service (systemd user unit, "
        "launchd agent or Task Scheduler task) and start it. Safe to run again.",
    )
    _common_arguments(install)
    install.add_argument("--dry-run", action="store_true", help="print the actions only")
    install.add_argument(
        "--executable",
        metavar="PATH",
        help="the sfxmatch program the service runs (default: this environment's)",
    )
    install.add_argument(
        "--no-start", action="store_true", help="install and enable, but do not start now"
    )
    install.add_argument("--print", action="store_true", help="also print the service definition")
    install.set_defaults(handler=_run_install)

    uninstall = subparsers.add_parser(
        "uninstall",
        help="stop and remove the background service",
        description="Stop the background service and remove its definition (logs are kept).",
    )
    _common_arguments(uninstall)
    uninstall.add_argument("--dry-run", action="store_true", help="print the actions only")
    uninstall.set_defaults(handler=_run_uninstall)

    status = subparsers.add_parser(
        "service-status",
        help="is the background service installed and running?",
        description="Say whether the background service is installed and running. Exit code "
        "0: running; 3: installed but not running (or unknown); 4: not installed.",
    )
    _common_arguments(status)
    status.add_argument("--json", action="store_true", help="print JSON")
    status.set_defaults(handler=_run_status)


def _print_result(result: ServiceResult, out: _Out) -> None:
    for action in result.actions:
        out.write(f"{action}\n")


def _run_install(args: argparse.Namespace) -> int:
    result = install_service(
        platform=args.platform,
        executable=args.executable,
        root=args.root,
        dry_run=args.dry_run,
        start=not args.no_start,
    )
    _print_result(result, sys.stdout)
    if args.print and result.content is not None:
        sys.stdout.write(result.content)
    return 0


def _run_uninstall(args: argparse.Namespace) -> int:
    _print_result(
        uninstall_service(platform=args.platform, root=args.root, dry_run=args.dry_run),
        sys.stdout,
    )
    return 0


def _run_status(args: argparse.Namespace) -> int:
    status = service_status(platform=args.platform, root=args.root)
    if args.json:
        import json

        document = {
            "platform": status.platform,
            "definition": str(status.definition),
            "installed": status.installed,
            "running": status.running,
            "detail": status.detail,
        }
        print(json.dumps(document, indent=2))
    else:
        print(status.describe())
    if not status.installed:
        return 4
    return 0 if status.running else 3


def _add_supervise(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("supervise", help="run a command, log it, restart it")
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--pid-file", type=Path)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    parser.set_defaults(handler=_run_supervise)


def _run_supervise(args: argparse.Namespace) -> int:
    command = list(args.command)
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        raise ServiceError("supervise needs a command after --")
    return supervise(command, log_file=args.log, pid_file=args.pid_file)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m sfxmatch.user_service``: the commands without the rest of the CLI."""
    parser = argparse.ArgumentParser(prog="python -m sfxmatch.user_service")
    subparsers = parser.add_subparsers(metavar="COMMAND", required=True)
    add_service_commands(subparsers)
    _add_supervise(subparsers)
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args))
    except SfxmatchError as error:
        print(f"sfxmatch: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
