"""Protobuf messages to the facade's types and back, request checks, and error codes.

No pipeline logic lives here: values are converted, checked for what a remote caller could
get wrong (paths, numbers, sizes), and exceptions are given a gRPC status code whose message
names the file and the problem.

Every string, collection and number a client sends has a bound (``BOUNDS``, also in the
README); a request past one is refused with INVALID_ARGUMENT naming the field and the bound.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Iterable, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import grpc

from sfxmatch._generated.sfxmatch.v1 import sfxmatch_pb2 as pb
from sfxmatch.backend import SoundSync
from sfxmatch.errors import (
    STORAGE_FULL_ERRNOS,
    AccessDeniedError,
    BusyError,
    Cancelled,
    ConfigError,
    InternalError,
    MediaError,
    MissingFileError,
    NotFoundError,
    PreconditionError,
    ResourceExhaustedError,
    SfxmatchError,
    StorageFullError,
    UnsupportedError,
    from_wire,
    wire_name,
)
from sfxmatch.files import inside, real_paths
from sfxmatch.library.kinds import MAX_GLOB_CHARS, MAX_KIND_OVERRIDES
from sfxmatch.library.registry import MAX_LIBRARIES
from sfxmatch.service.jobs import Job, JobState
from sfxmatch.store.base import KINDS, Kind
from sfxmatch.suggestions import (
    Candidate,
    Edit,
    RenderRequest,
    RenderResult,
    SourceClip,
    Suggestions,
    SuggestOptions,
    from_dict,
    to_dict,
)

MAX_PATH = 4096  # characters of a path
MAX_TEXT = 1000  # characters of a name, search text, option string
MAX_JOB_ID = 200  # characters of a job id
MAX_NAMES = 64  # library names in one request
MAX_CLIPS = 10_000  # clips of an edit
MAX_TOP_K = 1000
MAX_FPS = 1000
MAX_FRAME_SIZE = 16_384  # pixels of an edit's width or height
MAX_SECONDS = 4 * 3600.0  # any time a client gives, and an edit's length (a mix of 4 h at
# 48 kHz is 5.5 GB of samples in memory)
MAX_MIX_SAMPLES = int(MAX_SECONDS * 48_000)  # an edit's length times the mix's sample rate
MAX_MESSAGE = 64 * 1024 * 1024  # bytes of a request message (gRPC refuses longer ones), so
# of Render's suggestions_json too
MAX_GRACE = 3600.0  # seconds a Shutdown may give running jobs
FLAVOURS = ("generic", "resolve", "premiere")
# Suggest options that are numbers: their accepted ranges (inclusive).
OPTION_RANGES: dict[str, tuple[float, float]] = {
    "top_k": (1, MAX_TOP_K),
    "vta_labels": (0, MAX_TOP_K),
    "max_effects": (0, MAX_TOP_K),
    "rerank_weight": (0.0, 10.0),
    "min_ambience_scene": (0.0, MAX_SECONDS),
    "crossfade": (0.0, 60.0),
    "threshold": (0.0, 1000.0),
    "min_scene_len": (0.0, MAX_SECONDS),
    "segment": (0.02, 60.0),
    "temperature": (1e-4, 100.0),
    "sync_t": (-1.0, 1.0),
    "sync_d": (0.0, 100.0),
    "max_gap": (0.0, MAX_SECONDS),
    "min_effect": (0.0, MAX_SECONDS),
    "coarse_step": (1, 100),
    "preroll_frames": (0, 100),
}


def invalid(message: str) -> ConfigError:
    """A request the service refuses before the pipeline sees it (INVALID_ARGUMENT)."""
    return ConfigError(message)


# --- errors -> status codes -----------------------------------------------------------

# The one class -> status table, looked up along the error's class hierarchy (the nearest
# class listed wins). The first class listed for a status is that status's category: a
# client that receives a class name it does not know raises the category instead.
STATUS: dict[type[SfxmatchError], grpc.StatusCode] = {
    ConfigError: grpc.StatusCode.INVALID_ARGUMENT,
    NotFoundError: grpc.StatusCode.NOT_FOUND,
    AccessDeniedError: grpc.StatusCode.PERMISSION_DENIED,
    PreconditionError: grpc.StatusCode.FAILED_PRECONDITION,
    BusyError: grpc.StatusCode.ABORTED,
    ResourceExhaustedError: grpc.StatusCode.RESOURCE_EXHAUSTED,
    Cancelled: grpc.StatusCode.CANCELLED,
    UnsupportedError: grpc.StatusCode.UNIMPLEMENTED,
    InternalError: grpc.StatusCode.INTERNAL,
    # more specific classes, after the categories
    MissingFileError: grpc.StatusCode.NOT_FOUND,  # a MediaError too: listed before it
    MediaError: grpc.StatusCode.INVALID_ARGUMENT,  # a file that exists but cannot be used
    SfxmatchError: grpc.StatusCode.FAILED_PRECONDITION,  # ModelError, StoreError...
}
ERROR_KEY = "sfxmatch-error-bin"
"""Trailing metadata of a failed call: JSON naming the error's class and its fields."""


def as_sfxmatch_error(exc: BaseException) -> SfxmatchError:
    """``exc`` as one of sfxmatch's classes. Anything else is unexpected here (a bare
    ValueError, KeyError... from deep inside, or a file the daemon itself needed): its text
    may carry internal paths and says nothing a user can act on, so it becomes a class of
    the taxonomy with a message in words; the daemon's log has the original."""
    if isinstance(exc, SfxmatchError):
        return exc
    if isinstance(exc, OSError) and exc.errno in STORAGE_FULL_ERRNOS:
        return StorageFullError("a file")
    if isinstance(exc, FileNotFoundError):
        return NotFoundError("a file the daemon needed is missing; its log names it")
    if isinstance(exc, PermissionError):
        return AccessDeniedError("the daemon may not use a file it needed; its log names it")
    if isinstance(exc, MemoryError):
        return ResourceExhaustedError("out of memory")
    return InternalError(
        f"internal error in the daemon ({type(exc).__name__}); its log has the details"
    )


def status_for(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    """The gRPC status code and one-line message for an exception, by class (``STATUS``),
    never by message text."""
    error = as_sfxmatch_error(exc)
    message = str(error) or type(error).__name__
    for cls in type(error).__mro__:
        if cls in STATUS:
            return STATUS[cls], message
    raise AssertionError("SfxmatchError is in STATUS")  # pragma: no cover


def category_for(code: grpc.StatusCode) -> type[SfxmatchError] | None:
    """The category class of a status (the first class listed for it), or None."""
    return next((cls for cls, status in STATUS.items() if status is code), None)


def error_metadata(exc: BaseException, code: grpc.StatusCode) -> tuple[tuple[str, bytes], ...]:
    """The trailing metadata that names ``exc``'s class to the client, when ``code`` is the
    status that class maps to (a job cancelled by its deadline is DEADLINE_EXCEEDED, whatever
    the pipeline raised when it stopped)."""
    error = as_sfxmatch_error(exc)
    name = wire_name(error)
    if name is None or status_for(error)[0] is not code:
        return ()
    document = {"class": name, "fields": error.wire_fields()}
    return ((ERROR_KEY, json.dumps(document, ensure_ascii=False).encode()),)


def error_from_status(
    code: grpc.StatusCode, message: str, metadata: Iterable[tuple[str, Any]] | None
) -> SfxmatchError | None:
    """The error a daemon sent: its named class with the message as it came, else the
    category of its status; None for a status without one (the caller's transport errors)."""
    for key, value in metadata or ():
        if key != ERROR_KEY:
            continue
        try:
            document = json.loads(bytes(value).decode())
            error = from_wire(str(document["class"]), message, dict(document.get("fields", {})))
        except (ValueError, KeyError, TypeError, AttributeError):
            error = None  # a daemon of another version: fall back to the status
        if error is not None:
            return error
    category = category_for(code)
    return category(message) if category is not None else None


def classify(exc: BaseException) -> tuple[str, str]:
    """``status_for`` as names, for the job table."""
    code, message = status_for(exc)
    return code.name, message


# --- paths ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class PathPolicy:
    """What a client may name: absolute, existing, readable paths outside excluded folders."""

    excluded: tuple[str, ...] = ()  # real paths

    @classmethod
    def from_folders(cls, folders: Iterable[str | os.PathLike[str]]) -> PathPolicy:
        return cls(real_paths(folders))

    def _basic(self, text: str, what: str) -> Path:
        if not text:
            raise invalid(f"{what}: no path given")
        if "\x00" in text or len(text) > MAX_PATH:
            raise invalid(f"{what}: not a usable path ({len(text)} characters)")
        if not os.path.isabs(text):
            raise invalid(f"{text}: {what} must be an absolute path")
        try:
            resolved = Path(os.path.realpath(text))
        except (OSError, ValueError) as exc:
            raise invalid(f"{text}: {what} cannot be resolved ({exc})") from None
        folder = inside(resolved, self.excluded)
        if folder is not None:
            raise AccessDeniedError(f"{text}: {what} is inside the excluded folder {folder}")
        return resolved

    def existing(self, text: str, what: str, *, folder: bool = False) -> str:
        """Resolve an input path; NOT_FOUND, PERMISSION_DENIED or INVALID_ARGUMENT if unusable."""
        resolved = self._basic(text, what)
        try:
            info = resolved.stat()
        except FileNotFoundError:
            # as the pipeline says it, so a daemon and a local run fail alike
            raise MissingFileError(text, "no such folder" if folder else "no such file") from None
        except OSError as exc:
            raise invalid(f"{text}: {what} cannot be read ({exc.strerror or exc})") from None
        is_dir = os.path.isdir(resolved)
        if folder and not is_dir:
            raise invalid(f"{text}: {what} is not a folder")
        if not folder and is_dir:
            raise invalid(f"{text}: {what} is a folder, not a file")
        mode = os.R_OK | (os.X_OK if folder else 0)
        if not os.access(resolved, mode) or info is None:
            raise AccessDeniedError(f"{text}: {what} is not readable by the daemon")
        return str(resolved)

    def output(self, text: str, what: str, *, folder: bool = False) -> str:
        """Resolve an output path: its nearest existing folder must be writable (the
        pipeline makes missing folders)."""
        resolved = self._basic(text, what)
        if resolved.is_dir() and not folder:
            raise invalid(f"{text}: {what} is a folder, not a file")
        existing = resolved if folder and resolved.is_dir() else resolved.parent
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        if not existing.is_dir():
            raise invalid(f"{text}: {what}: {existing} is not a folder")
        if not os.access(existing, os.W_OK | os.X_OK):
            raise AccessDeniedError(f"{text}: {what}: {existing} is not writable")
        return str(resolved)


# --- numbers and text -----------------------------------------------------------------


def _finite(value: float, what: str) -> float:
    if not math.isfinite(value):
        raise invalid(f"{what} must be a finite number, not {value!r}")
    return value


def check_text(text: str, what: str, *, required: bool = True, limit: int = MAX_TEXT) -> str:
    if required and not text.strip():
        raise invalid(f"{what} is empty")
    if len(text) > limit:
        raise invalid(f"{what} is longer than {limit} characters")
    return text


def check_range(value: float, what: str, low: float, high: float) -> float:
    """A finite number within ``low..high`` (INVALID_ARGUMENT otherwise)."""
    _finite(value, what)
    if not low <= value <= high:
        raise invalid(f"{what} must be within {low:g}..{high:g}, not {value:g}")
    return value


def check_grace(seconds: float) -> float:
    """A grace period for running jobs at shutdown (the CLI's, the config's, Shutdown's):
    0..MAX_GRACE seconds; ConfigError (INVALID_ARGUMENT) otherwise, nan and infinity too."""
    if not 0 <= seconds <= MAX_GRACE:  # also refuses nan
        raise ConfigError(f"grace must be within 0..{MAX_GRACE:g} seconds, not {seconds:g}")
    return seconds


def check_kind(kind: str) -> Kind | None:
    if not kind:
        return None
    for known in KINDS:
        if kind == known:
            return known
    raise invalid(f"kind must be one of {', '.join(KINDS)}, not {kind[:40]!r}")


def check_top_k(top_k: int, default: int = 10) -> int:
    if top_k == 0:
        return default
    if not 1 <= top_k <= MAX_TOP_K:
        raise invalid(f"top_k must be within 1..{MAX_TOP_K}, not {top_k}")
    return top_k


# --- library --------------------------------------------------------------------------


def library_msg(library: Any) -> pb.Library:
    return pb.Library(
        name=library.name,
        root=library.root,
        catalogue=library.catalogue or "",
        kind_overrides=[pb.KindOverride(glob=g, kind=k) for g, k in library.kind_overrides],
        added_at=library.added_at,
    )


def _fault_path(path: Any) -> str:
    return os.fsencode(path).decode("utf-8", "replace") if path is not None else ""


def report_msg(report: Any) -> pb.IndexReport:
    return pb.IndexReport(
        library=report.library,
        scanned=report.scanned,
        added=report.added,
        changed=report.changed,
        moved=report.moved,
        deleted=report.deleted,
        relabelled=report.relabelled,
        unchanged=report.unchanged,
        failed=report.failed,
        faults=[
            pb.Fault(path=_fault_path(f.path), kind=str(f.kind), reason=f.reason)
            for f in report.faults
        ],
        seconds=report.seconds,
        cancelled=report.cancelled,
        indexed=report.indexed,
        analysed=getattr(report, "analysed", 0),
    )


def status_msg(status: Any) -> pb.LibraryStatus:
    last = status.last_run
    return pb.LibraryStatus(
        library=library_msg(status.library),
        sounds=status.sounds,
        by_kind=[pb.KindCount(kind=k, sounds=n) for k, n in sorted(status.by_kind.items())],
        faults=[pb.Fault(path=f.path, kind=f.kind, reason=f.reason) for f in status.faults],
        root_exists=status.root_exists,
        last_indexed_at=last.finished if last else 0.0,
        last_run_json=json.dumps(last.summary, default=str) if last else "",
        sync_sources=[
            pb.SyncCount(source=k, sounds=n)
            for k, n in sorted(getattr(status, "sync_sources", {}).items())
        ],
    )


def candidate_msg(c: Candidate) -> pb.Candidate:
    return pb.Candidate(
        sound_id=c.sound_id,
        label=c.label,
        path=c.path,
        score=c.score,
        kind=c.kind,
        duration=c.duration,
        ucs_category=c.ucs_category,
        sync_point=c.sync_point,
        sync_source=c.sync_source,
        peak=c.peak,
    )


def sound_sync_msg(found: SoundSync) -> pb.SoundSync:
    """A sound of the index and its sync point (``backend.SoundSync``)."""
    return pb.SoundSync(
        path=found.path,
        library=found.library,
        sound_id=found.sound_id,
        kind=found.kind,
        label=found.label,
        duration=found.duration,
        sync_point=found.point.time,
        source=found.point.source,
        detail=found.point.detail,
        peak=found.point.peak,
        detected=found.detected,
    )


def check_sync_seconds(seconds: float) -> float:
    """A sync point a client sends: finite, 0 or more, within the longest edit time."""
    _finite(seconds, "sync point")
    return check_range(seconds, "sync point", 0.0, MAX_SECONDS)


def file_progress_msg(p: Any) -> pb.FileProgress:
    return pb.FileProgress(
        library=p.library, stage=p.stage, done=p.done, total=p.total, message=p.message
    )


def job_msg(job: Job) -> pb.Job:
    states = {
        JobState.QUEUED: pb.JOB_STATE_QUEUED,
        JobState.RUNNING: pb.JOB_STATE_RUNNING,
        JobState.SUCCEEDED: pb.JOB_STATE_SUCCEEDED,
        JobState.FAILED: pb.JOB_STATE_FAILED,
        JobState.CANCELLED: pb.JOB_STATE_CANCELLED,
    }
    p = job.progress
    return pb.Job(
        id=job.id,
        kind=job.kind,
        state=states[job.state],
        progress=pb.Progress(stage=p.stage, fraction=p.fraction, message=p.message),
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        error_code=job.error_code,
        error_message=job.error_message,
        description=job.description,
    )


# --- suggest --------------------------------------------------------------------------


def edit_from_msg(msg: pb.Edit, policy: PathPolicy) -> Edit:
    if not msg.clips:
        raise invalid("the edit has no clips")
    if len(msg.clips) > MAX_CLIPS:
        raise invalid(f"the edit has {len(msg.clips)} clips; at most {MAX_CLIPS}")
    fps = fps_from_msg(msg.fps)
    if msg.width < 0 or msg.height < 0:
        raise invalid(f"frame size {msg.width}x{msg.height} is negative")
    if max(msg.width, msg.height) > MAX_FRAME_SIZE:
        raise invalid(f"frame size {msg.width}x{msg.height}: at most {MAX_FRAME_SIZE} a side")
    clips = []
    for number, c in enumerate(msg.clips, 1):
        what = f"clip {number} ({c.name[:80] or 'unnamed'})"
        for name in ("source_in", "source_out", "record_start"):
            value = _finite(getattr(c, name), f"{what}: {name}")
            if value < 0:
                raise invalid(f"{what}: {name} must be 0 or more seconds, not {value}")
            if value > MAX_SECONDS:
                raise invalid(f"{what}: {name} {value:g} s is past {MAX_SECONDS:g} s")
        path = policy.existing(c.path, f"{what} media")
        try:
            clips.append(
                SourceClip(
                    path=path,
                    source_in=c.source_in,
                    source_out=c.source_out,
                    record_start=c.record_start,
                    name=check_text(c.name, f"{what} name", required=False),
                )
            )
        except ValueError as exc:
            raise invalid(f"{c.path}: {exc}") from None
    timecode = msg.start_timecode or "00:00:00:00"
    if len(timecode) > 16 or not all(ch.isdigit() or ch in ":;." for ch in timecode):
        raise invalid(f"start timecode {timecode[:20]!r} is not HH:MM:SS:FF")
    edit = Edit(
        clips=tuple(clips),
        fps=fps,
        width=msg.width,
        height=msg.height,
        start_timecode=timecode,
        name=check_text(msg.name, "edit name", required=False),
    )
    if edit.duration > MAX_SECONDS:
        raise invalid(f"the edit lasts {edit.duration:g} s; at most {MAX_SECONDS:g} s")
    return edit


def fps_from_msg(msg: pb.Rational) -> Fraction:
    if msg.numerator <= 0 or msg.denominator <= 0:
        raise invalid(f"frame rate {msg.numerator}/{msg.denominator} must be positive")
    fps = Fraction(msg.numerator, msg.denominator)
    if not 1 <= fps <= MAX_FPS:
        raise invalid(f"frame rate {float(fps):g} is outside 1..{MAX_FPS} fps")
    return fps


def fps_msg(fps: Fraction) -> pb.Rational:
    return pb.Rational(numerator=fps.numerator, denominator=fps.denominator)


def options_from_msg(msg: pb.SuggestOptions) -> SuggestOptions:
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(SuggestOptions):
        if f.name == "libraries":
            kwargs["libraries"] = tuple(names(msg.libraries, "library name"))
            continue
        if not msg.HasField(f.name):
            continue
        value = getattr(msg, f.name)
        if isinstance(value, float):
            _finite(value, f.name)
        if isinstance(value, str):
            check_text(value, f.name)
        if f.name in OPTION_RANGES and not isinstance(value, bool):
            check_range(value, f.name, *OPTION_RANGES[f.name])
        kwargs[f.name] = value
    try:
        return SuggestOptions(**kwargs)
    except (ValueError, TypeError) as exc:
        raise invalid(f"suggest options: {exc}") from None


def options_msg(options: SuggestOptions) -> pb.SuggestOptions:
    """Every field set (the client sends what its caller chose)."""
    msg = pb.SuggestOptions(libraries=list(options.libraries))
    for f in dataclasses.fields(SuggestOptions):
        value = getattr(options, f.name)
        if f.name != "libraries" and value is not None:
            setattr(msg, f.name, value)
    return msg


def edit_msg(edit: Edit) -> pb.Edit:
    return pb.Edit(
        clips=[
            pb.SourceClip(
                path=c.path,
                source_in=c.source_in,
                source_out=c.source_out,
                record_start=c.record_start,
                name=c.name,
            )
            for c in edit.clips
        ],
        fps=fps_msg(Fraction(edit.fps)),
        width=edit.width,
        height=edit.height,
        start_timecode=edit.start_timecode,
        name=edit.name,
    )


def suggest_result_msg(s: Suggestions) -> pb.SuggestResult:
    return pb.SuggestResult(
        suggestions_json=json.dumps(to_dict(s), ensure_ascii=False),
        summary=pb.SuggestionsSummary(
            model_id=s.model_id,
            meaningless=s.meaningless,
            scenes=len(s.scenes),
            placements=len(s.placements),
            effects=sum(len(scene.effects) for scene in s.scenes),
            tracks=list(s.tracks),
            duration=s.edit.duration,
        ),
    )


def suggestions_from_json(text: str, policy: PathPolicy) -> Suggestions:
    if not text:
        raise invalid("suggestions_json is empty")
    try:
        data = json.loads(text)
    except RecursionError:  # the reader's own bound on nesting (Python's recursion limit)
        raise invalid("suggestions_json nests too deeply to be suggestions") from None
    except ValueError as exc:
        raise invalid(f"suggestions_json is not JSON ({exc})") from None
    try:
        suggestions = from_dict(data)
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as exc:
        raise invalid(f"suggestions_json is not valid suggestions ({exc})"[:300]) from None
    if not math.isfinite(suggestions.edit.duration) or suggestions.edit.duration > MAX_SECONDS:
        raise invalid(f"the edit lasts {suggestions.edit.duration:g} s; at most {MAX_SECONDS:g} s")
    for clip in suggestions.edit.clips:
        policy.existing(clip.path, "edit media")
    for placement in suggestions.placements:
        policy.existing(placement.path, f"sound of placement {placement.label[:80]!r}")
    return suggestions


def render_request_from_msg(msg: pb.RenderRequest, policy: PathPolicy) -> RenderRequest:
    flavour = msg.flavour or "generic"
    if flavour not in FLAVOURS:
        raise invalid(f"flavour must be one of {', '.join(FLAVOURS)}, not {flavour[:40]!r}")
    outputs = {
        "mix": policy.output(msg.mix, "mix") if msg.mix else None,
        "stems_dir": policy.output(msg.stems_dir, "stems folder", folder=True)
        if msg.stems_dir
        else None,
        "mux": policy.output(msg.mux, "muxed video") if msg.mux else None,
        "timeline": policy.output(msg.timeline, "timeline") if msg.timeline else None,
        "plot": policy.output(msg.plot, "plot") if msg.plot else None,
    }
    if not any(outputs.values()):
        raise invalid("nothing to render: name at least one of mix, stems_dir, mux, timeline, plot")
    extra: dict[str, Any] = {}
    for name in ("target_lufs", "true_peak_dbtp"):
        if msg.HasField(name):
            extra[name] = _finite(getattr(msg, name), name)
    if "target_lufs" in extra:
        check_range(extra["target_lufs"], "target_lufs", -70.0, 0.0)
    if "true_peak_dbtp" in extra:
        check_range(extra["true_peak_dbtp"], "true_peak_dbtp", -30.0, 0.0)
    if msg.HasField("sample_rate"):
        if not 8000 <= msg.sample_rate <= 384_000:
            raise invalid(f"sample_rate {msg.sample_rate} is outside 8000..384000")
        extra["sample_rate"] = msg.sample_rate
    return RenderRequest(flavour=flavour, **outputs, **extra)  # type: ignore[arg-type]


def check_render_size(suggestions: Suggestions, request: RenderRequest) -> None:
    """A mix is held in memory: its length times its sample rate is bounded."""
    samples = suggestions.edit.duration * request.sample_rate
    if (request.mix or request.stems_dir or request.mux) and samples > MAX_MIX_SAMPLES:
        raise invalid(
            f"a {suggestions.edit.duration:g} s mix at {request.sample_rate} Hz is too long: "
            f"at most {MAX_MIX_SAMPLES / 48_000:g} s at 48 kHz"
        )


def render_result_msg(result: RenderResult) -> pb.RenderResult:
    msg = pb.RenderResult(
        files=[pb.RenderedFile(what=w, path=p) for w, p in result.files],
        loudness_note=result.loudness_note,
    )
    for name in ("loudness_lufs", "true_peak_dbtp", "gain_db"):
        value = getattr(result, name)
        if value is not None and math.isfinite(value):
            setattr(msg, name, value)
    return msg


def render_request_msg(suggestions_json: str, request: RenderRequest) -> pb.RenderRequest:
    msg = pb.RenderRequest(
        suggestions_json=suggestions_json,
        mix=request.mix or "",
        stems_dir=request.stems_dir or "",
        mux=request.mux or "",
        timeline=request.timeline or "",
        flavour=request.flavour,
        plot=request.plot or "",
        target_lufs=request.target_lufs,
        true_peak_dbtp=request.true_peak_dbtp,
        sample_rate=request.sample_rate,
    )
    return msg


def names(values: Sequence[str], what: str) -> list[str]:
    if len(values) > MAX_NAMES:
        raise invalid(f"{len(values)} of {what}s: at most {MAX_NAMES}")
    return [check_text(v, what) for v in values]


def check_job_id(job_id: str) -> str:
    return check_text(job_id, "job id", limit=MAX_JOB_ID)


# What a client may send, for the README's table (field: bound).
BOUNDS: dict[str, str] = {
    "paths (library, catalogue, video, clip media, outputs)": f"{MAX_PATH} characters, absolute",
    "names, search text, option strings": f"{MAX_TEXT} characters",
    "job id": f"{MAX_JOB_ID} characters",
    "library names in one request": f"{MAX_NAMES}",
    "kind overrides of a library": f"{MAX_KIND_OVERRIDES}, each glob {MAX_GLOB_CHARS} characters",
    "libraries registered": f"{MAX_LIBRARIES}",
    "clips of an edit": f"{MAX_CLIPS}",
    "an edit's length, any time in it": f"{MAX_SECONDS:g} s",
    "frame rate; frame size": f"1..{MAX_FPS} fps; {MAX_FRAME_SIZE} px a side",
    "top_k, vta_labels, max_effects": f"1..{MAX_TOP_K} (0..{MAX_TOP_K})",
    "suggestions_json (Render)": "a request message's bound; nesting as deep as Python's "
    "JSON reader goes (about 1000)",
    "mix length times sample rate": f"{MAX_SECONDS:g} s at 48 kHz",
    "Shutdown grace_seconds": f"0..{MAX_GRACE:g}",
    "numbers of Suggest options and Render": "finite, in the ranges of OPTION_RANGES (segment "
    f"{OPTION_RANGES['segment'][0]:g}..{OPTION_RANGES['segment'][1]:g} s), target_lufs -70..0",
    "a request message": f"{MAX_MESSAGE // 2**20} MiB (gRPC: RESOURCE_EXHAUSTED); a health "
    "request without the token 1 KiB",
    "a sync point (LibrarySetSync)": f"0..{MAX_SECONDS:g} s, and before the end of the sound",
}
