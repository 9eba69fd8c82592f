from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class JobState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_STATE_UNSPECIFIED: _ClassVar[JobState]
    JOB_STATE_QUEUED: _ClassVar[JobState]
    JOB_STATE_RUNNING: _ClassVar[JobState]
    JOB_STATE_SUCCEEDED: _ClassVar[JobState]
    JOB_STATE_FAILED: _ClassVar[JobState]
    JOB_STATE_CANCELLED: _ClassVar[JobState]
JOB_STATE_UNSPECIFIED: JobState
JOB_STATE_QUEUED: JobState
JOB_STATE_RUNNING: JobState
JOB_STATE_SUCCEEDED: JobState
JOB_STATE_FAILED: JobState
JOB_STATE_CANCELLED: JobState

class VersionRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class VersionReply(_message.Message):
    __slots__ = ("version", "api", "model", "model_id", "model_loaded", "model_error", "meaningless", "pid", "started_at", "jobs_running", "jobs_queued", "max_concurrent_jobs", "max_queued_jobs", "addresses")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    API_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_LOADED_FIELD_NUMBER: _ClassVar[int]
    MODEL_ERROR_FIELD_NUMBER: _ClassVar[int]
    MEANINGLESS_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    JOBS_RUNNING_FIELD_NUMBER: _ClassVar[int]
    JOBS_QUEUED_FIELD_NUMBER: _ClassVar[int]
    MAX_CONCURRENT_JOBS_FIELD_NUMBER: _ClassVar[int]
    MAX_QUEUED_JOBS_FIELD_NUMBER: _ClassVar[int]
    ADDRESSES_FIELD_NUMBER: _ClassVar[int]
    version: str
    api: str
    model: str
    model_id: str
    model_loaded: bool
    model_error: str
    meaningless: bool
    pid: int
    started_at: float
    jobs_running: int
    jobs_queued: int
    max_concurrent_jobs: int
    max_queued_jobs: int
    addresses: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, version: _Optional[str] = ..., api: _Optional[str] = ..., model: _Optional[str] = ..., model_id: _Optional[str] = ..., model_loaded: _Optional[bool] = ..., model_error: _Optional[str] = ..., meaningless: _Optional[bool] = ..., pid: _Optional[int] = ..., started_at: _Optional[float] = ..., jobs_running: _Optional[int] = ..., jobs_queued: _Optional[int] = ..., max_concurrent_jobs: _Optional[int] = ..., max_queued_jobs: _Optional[int] = ..., addresses: _Optional[_Iterable[str]] = ...) -> None: ...

class ShutdownRequest(_message.Message):
    __slots__ = ("grace_seconds",)
    GRACE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    grace_seconds: float
    def __init__(self, grace_seconds: _Optional[float] = ...) -> None: ...

class ShutdownReply(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Progress(_message.Message):
    __slots__ = ("stage", "fraction", "message")
    STAGE_FIELD_NUMBER: _ClassVar[int]
    FRACTION_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    stage: str
    fraction: float
    message: str
    def __init__(self, stage: _Optional[str] = ..., fraction: _Optional[float] = ..., message: _Optional[str] = ...) -> None: ...

class Job(_message.Message):
    __slots__ = ("id", "kind", "state", "progress", "created_at", "started_at", "finished_at", "error_code", "error_message", "description")
    ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    id: str
    kind: str
    state: JobState
    progress: Progress
    created_at: float
    started_at: float
    finished_at: float
    error_code: str
    error_message: str
    description: str
    def __init__(self, id: _Optional[str] = ..., kind: _Optional[str] = ..., state: _Optional[_Union[JobState, str]] = ..., progress: _Optional[_Union[Progress, _Mapping]] = ..., created_at: _Optional[float] = ..., started_at: _Optional[float] = ..., finished_at: _Optional[float] = ..., error_code: _Optional[str] = ..., error_message: _Optional[str] = ..., description: _Optional[str] = ...) -> None: ...

class GetJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class ListJobsRequest(_message.Message):
    __slots__ = ("active_only",)
    ACTIVE_ONLY_FIELD_NUMBER: _ClassVar[int]
    active_only: bool
    def __init__(self, active_only: _Optional[bool] = ...) -> None: ...

class ListJobsReply(_message.Message):
    __slots__ = ("jobs",)
    JOBS_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[Job]
    def __init__(self, jobs: _Optional[_Iterable[_Union[Job, _Mapping]]] = ...) -> None: ...

class CancelJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class KindOverride(_message.Message):
    __slots__ = ("glob", "kind")
    GLOB_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    glob: str
    kind: str
    def __init__(self, glob: _Optional[str] = ..., kind: _Optional[str] = ...) -> None: ...

class Library(_message.Message):
    __slots__ = ("name", "root", "catalogue", "kind_overrides", "added_at")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ROOT_FIELD_NUMBER: _ClassVar[int]
    CATALOGUE_FIELD_NUMBER: _ClassVar[int]
    KIND_OVERRIDES_FIELD_NUMBER: _ClassVar[int]
    ADDED_AT_FIELD_NUMBER: _ClassVar[int]
    name: str
    root: str
    catalogue: str
    kind_overrides: _containers.RepeatedCompositeFieldContainer[KindOverride]
    added_at: float
    def __init__(self, name: _Optional[str] = ..., root: _Optional[str] = ..., catalogue: _Optional[str] = ..., kind_overrides: _Optional[_Iterable[_Union[KindOverride, _Mapping]]] = ..., added_at: _Optional[float] = ...) -> None: ...

class LibraryAddRequest(_message.Message):
    __slots__ = ("path", "name", "catalogue", "kind_overrides")
    PATH_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CATALOGUE_FIELD_NUMBER: _ClassVar[int]
    KIND_OVERRIDES_FIELD_NUMBER: _ClassVar[int]
    path: str
    name: str
    catalogue: str
    kind_overrides: _containers.RepeatedCompositeFieldContainer[KindOverride]
    def __init__(self, path: _Optional[str] = ..., name: _Optional[str] = ..., catalogue: _Optional[str] = ..., kind_overrides: _Optional[_Iterable[_Union[KindOverride, _Mapping]]] = ...) -> None: ...

class LibraryAddReply(_message.Message):
    __slots__ = ("library",)
    LIBRARY_FIELD_NUMBER: _ClassVar[int]
    library: Library
    def __init__(self, library: _Optional[_Union[Library, _Mapping]] = ...) -> None: ...

class LibraryRemoveRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class LibraryRemoveReply(_message.Message):
    __slots__ = ("sounds_removed",)
    SOUNDS_REMOVED_FIELD_NUMBER: _ClassVar[int]
    sounds_removed: int
    def __init__(self, sounds_removed: _Optional[int] = ...) -> None: ...

class LibraryIndexRequest(_message.Message):
    __slots__ = ("names",)
    NAMES_FIELD_NUMBER: _ClassVar[int]
    names: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, names: _Optional[_Iterable[str]] = ...) -> None: ...

class FileProgress(_message.Message):
    __slots__ = ("library", "stage", "done", "total", "message")
    LIBRARY_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    library: str
    stage: str
    done: int
    total: int
    message: str
    def __init__(self, library: _Optional[str] = ..., stage: _Optional[str] = ..., done: _Optional[int] = ..., total: _Optional[int] = ..., message: _Optional[str] = ...) -> None: ...

class Fault(_message.Message):
    __slots__ = ("path", "kind", "reason")
    PATH_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    path: str
    kind: str
    reason: str
    def __init__(self, path: _Optional[str] = ..., kind: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class IndexReport(_message.Message):
    __slots__ = ("library", "scanned", "added", "changed", "moved", "deleted", "relabelled", "unchanged", "failed", "faults", "seconds", "cancelled", "indexed", "analysed")
    LIBRARY_FIELD_NUMBER: _ClassVar[int]
    SCANNED_FIELD_NUMBER: _ClassVar[int]
    ADDED_FIELD_NUMBER: _ClassVar[int]
    CHANGED_FIELD_NUMBER: _ClassVar[int]
    MOVED_FIELD_NUMBER: _ClassVar[int]
    DELETED_FIELD_NUMBER: _ClassVar[int]
    RELABELLED_FIELD_NUMBER: _ClassVar[int]
    UNCHANGED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    FAULTS_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    CANCELLED_FIELD_NUMBER: _ClassVar[int]
    INDEXED_FIELD_NUMBER: _ClassVar[int]
    ANALYSED_FIELD_NUMBER: _ClassVar[int]
    library: str
    scanned: int
    added: int
    changed: int
    moved: int
    deleted: int
    relabelled: int
    unchanged: int
    failed: int
    faults: _containers.RepeatedCompositeFieldContainer[Fault]
    seconds: float
    cancelled: bool
    indexed: int
    analysed: int
    def __init__(self, library: _Optional[str] = ..., scanned: _Optional[int] = ..., added: _Optional[int] = ..., changed: _Optional[int] = ..., moved: _Optional[int] = ..., deleted: _Optional[int] = ..., relabelled: _Optional[int] = ..., unchanged: _Optional[int] = ..., failed: _Optional[int] = ..., faults: _Optional[_Iterable[_Union[Fault, _Mapping]]] = ..., seconds: _Optional[float] = ..., cancelled: _Optional[bool] = ..., indexed: _Optional[int] = ..., analysed: _Optional[int] = ...) -> None: ...

class LibraryIndexResult(_message.Message):
    __slots__ = ("reports",)
    REPORTS_FIELD_NUMBER: _ClassVar[int]
    reports: _containers.RepeatedCompositeFieldContainer[IndexReport]
    def __init__(self, reports: _Optional[_Iterable[_Union[IndexReport, _Mapping]]] = ...) -> None: ...

class LibraryIndexEvent(_message.Message):
    __slots__ = ("job_id", "accepted", "progress", "file", "result")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    FILE_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    accepted: Job
    progress: Progress
    file: FileProgress
    result: LibraryIndexResult
    def __init__(self, job_id: _Optional[str] = ..., accepted: _Optional[_Union[Job, _Mapping]] = ..., progress: _Optional[_Union[Progress, _Mapping]] = ..., file: _Optional[_Union[FileProgress, _Mapping]] = ..., result: _Optional[_Union[LibraryIndexResult, _Mapping]] = ...) -> None: ...

class LibraryStatusRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class KindCount(_message.Message):
    __slots__ = ("kind", "sounds")
    KIND_FIELD_NUMBER: _ClassVar[int]
    SOUNDS_FIELD_NUMBER: _ClassVar[int]
    kind: str
    sounds: int
    def __init__(self, kind: _Optional[str] = ..., sounds: _Optional[int] = ...) -> None: ...

class SyncCount(_message.Message):
    __slots__ = ("source", "sounds")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    SOUNDS_FIELD_NUMBER: _ClassVar[int]
    source: str
    sounds: int
    def __init__(self, source: _Optional[str] = ..., sounds: _Optional[int] = ...) -> None: ...

class LibraryStatus(_message.Message):
    __slots__ = ("library", "sounds", "by_kind", "faults", "root_exists", "last_indexed_at", "last_run_json", "sync_sources")
    LIBRARY_FIELD_NUMBER: _ClassVar[int]
    SOUNDS_FIELD_NUMBER: _ClassVar[int]
    BY_KIND_FIELD_NUMBER: _ClassVar[int]
    FAULTS_FIELD_NUMBER: _ClassVar[int]
    ROOT_EXISTS_FIELD_NUMBER: _ClassVar[int]
    LAST_INDEXED_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_RUN_JSON_FIELD_NUMBER: _ClassVar[int]
    SYNC_SOURCES_FIELD_NUMBER: _ClassVar[int]
    library: Library
    sounds: int
    by_kind: _containers.RepeatedCompositeFieldContainer[KindCount]
    faults: _containers.RepeatedCompositeFieldContainer[Fault]
    root_exists: bool
    last_indexed_at: float
    last_run_json: str
    sync_sources: _containers.RepeatedCompositeFieldContainer[SyncCount]
    def __init__(self, library: _Optional[_Union[Library, _Mapping]] = ..., sounds: _Optional[int] = ..., by_kind: _Optional[_Iterable[_Union[KindCount, _Mapping]]] = ..., faults: _Optional[_Iterable[_Union[Fault, _Mapping]]] = ..., root_exists: _Optional[bool] = ..., last_indexed_at: _Optional[float] = ..., last_run_json: _Optional[str] = ..., sync_sources: _Optional[_Iterable[_Union[SyncCount, _Mapping]]] = ...) -> None: ...

class LibraryStatusReply(_message.Message):
    __slots__ = ("libraries",)
    LIBRARIES_FIELD_NUMBER: _ClassVar[int]
    libraries: _containers.RepeatedCompositeFieldContainer[LibraryStatus]
    def __init__(self, libraries: _Optional[_Iterable[_Union[LibraryStatus, _Mapping]]] = ...) -> None: ...

class LibrarySearchRequest(_message.Message):
    __slots__ = ("text", "kind", "libraries", "top_k")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    LIBRARIES_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    text: str
    kind: str
    libraries: _containers.RepeatedScalarFieldContainer[str]
    top_k: int
    def __init__(self, text: _Optional[str] = ..., kind: _Optional[str] = ..., libraries: _Optional[_Iterable[str]] = ..., top_k: _Optional[int] = ...) -> None: ...

class Candidate(_message.Message):
    __slots__ = ("sound_id", "label", "path", "score", "kind", "duration", "ucs_category", "sync_point", "sync_source", "peak")
    SOUND_ID_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    DURATION_FIELD_NUMBER: _ClassVar[int]
    UCS_CATEGORY_FIELD_NUMBER: _ClassVar[int]
    SYNC_POINT_FIELD_NUMBER: _ClassVar[int]
    SYNC_SOURCE_FIELD_NUMBER: _ClassVar[int]
    PEAK_FIELD_NUMBER: _ClassVar[int]
    sound_id: str
    label: str
    path: str
    score: float
    kind: str
    duration: float
    ucs_category: str
    sync_point: float
    sync_source: str
    peak: float
    def __init__(self, sound_id: _Optional[str] = ..., label: _Optional[str] = ..., path: _Optional[str] = ..., score: _Optional[float] = ..., kind: _Optional[str] = ..., duration: _Optional[float] = ..., ucs_category: _Optional[str] = ..., sync_point: _Optional[float] = ..., sync_source: _Optional[str] = ..., peak: _Optional[float] = ...) -> None: ...

class LibrarySearchReply(_message.Message):
    __slots__ = ("candidates",)
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    candidates: _containers.RepeatedCompositeFieldContainer[Candidate]
    def __init__(self, candidates: _Optional[_Iterable[_Union[Candidate, _Mapping]]] = ...) -> None: ...

class LibrarySoundSyncRequest(_message.Message):
    __slots__ = ("path",)
    PATH_FIELD_NUMBER: _ClassVar[int]
    path: str
    def __init__(self, path: _Optional[str] = ...) -> None: ...

class LibrarySetSyncRequest(_message.Message):
    __slots__ = ("path", "seconds")
    PATH_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    path: str
    seconds: float
    def __init__(self, path: _Optional[str] = ..., seconds: _Optional[float] = ...) -> None: ...

class SoundSync(_message.Message):
    __slots__ = ("path", "library", "sound_id", "duration", "sync_point", "source", "detail", "peak", "detected", "kind", "label")
    PATH_FIELD_NUMBER: _ClassVar[int]
    LIBRARY_FIELD_NUMBER: _ClassVar[int]
    SOUND_ID_FIELD_NUMBER: _ClassVar[int]
    DURATION_FIELD_NUMBER: _ClassVar[int]
    SYNC_POINT_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    PEAK_FIELD_NUMBER: _ClassVar[int]
    DETECTED_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    path: str
    library: str
    sound_id: str
    duration: float
    sync_point: float
    source: str
    detail: str
    peak: float
    detected: float
    kind: str
    label: str
    def __init__(self, path: _Optional[str] = ..., library: _Optional[str] = ..., sound_id: _Optional[str] = ..., duration: _Optional[float] = ..., sync_point: _Optional[float] = ..., source: _Optional[str] = ..., detail: _Optional[str] = ..., peak: _Optional[float] = ..., detected: _Optional[float] = ..., kind: _Optional[str] = ..., label: _Optional[str] = ...) -> None: ...

class Rational(_message.Message):
    __slots__ = ("numerator", "denominator")
    NUMERATOR_FIELD_NUMBER: _ClassVar[int]
    DENOMINATOR_FIELD_NUMBER: _ClassVar[int]
    numerator: int
    denominator: int
    def __init__(self, numerator: _Optional[int] = ..., denominator: _Optional[int] = ...) -> None: ...

class SourceClip(_message.Message):
    __slots__ = ("path", "source_in", "source_out", "record_start", "name")
    PATH_FIELD_NUMBER: _ClassVar[int]
    SOURCE_IN_FIELD_NUMBER: _ClassVar[int]
    SOURCE_OUT_FIELD_NUMBER: _ClassVar[int]
    RECORD_START_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    path: str
    source_in: float
    source_out: float
    record_start: float
    name: str
    def __init__(self, path: _Optional[str] = ..., source_in: _Optional[float] = ..., source_out: _Optional[float] = ..., record_start: _Optional[float] = ..., name: _Optional[str] = ...) -> None: ...

class Edit(_message.Message):
    __slots__ = ("clips", "fps", "width", "height", "start_timecode", "name")
    CLIPS_FIELD_NUMBER: _ClassVar[int]
    FPS_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    START_TIMECODE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    clips: _containers.RepeatedCompositeFieldContainer[SourceClip]
    fps: Rational
    width: int
    height: int
    start_timecode: str
    name: str
    def __init__(self, clips: _Optional[_Iterable[_Union[SourceClip, _Mapping]]] = ..., fps: _Optional[_Union[Rational, _Mapping]] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., start_timecode: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class SuggestOptions(_message.Message):
    __slots__ = ("libraries", "top_k", "ambience_mode", "vta_labels", "rerank_weight", "min_ambience_scene", "crossfade", "detector", "threshold", "min_scene_len", "segment", "temperature", "rule", "sync_t", "sync_d", "max_gap", "min_effect", "ring_out", "max_effects", "spatial", "scan", "coarse_step", "preroll_frames", "keep_original_formats")
    LIBRARIES_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    AMBIENCE_MODE_FIELD_NUMBER: _ClassVar[int]
    VTA_LABELS_FIELD_NUMBER: _ClassVar[int]
    RERANK_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    MIN_AMBIENCE_SCENE_FIELD_NUMBER: _ClassVar[int]
    CROSSFADE_FIELD_NUMBER: _ClassVar[int]
    DETECTOR_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    MIN_SCENE_LEN_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    SYNC_T_FIELD_NUMBER: _ClassVar[int]
    SYNC_D_FIELD_NUMBER: _ClassVar[int]
    MAX_GAP_FIELD_NUMBER: _ClassVar[int]
    MIN_EFFECT_FIELD_NUMBER: _ClassVar[int]
    RING_OUT_FIELD_NUMBER: _ClassVar[int]
    MAX_EFFECTS_FIELD_NUMBER: _ClassVar[int]
    SPATIAL_FIELD_NUMBER: _ClassVar[int]
    SCAN_FIELD_NUMBER: _ClassVar[int]
    COARSE_STEP_FIELD_NUMBER: _ClassVar[int]
    PREROLL_FRAMES_FIELD_NUMBER: _ClassVar[int]
    KEEP_ORIGINAL_FORMATS_FIELD_NUMBER: _ClassVar[int]
    libraries: _containers.RepeatedScalarFieldContainer[str]
    top_k: int
    ambience_mode: str
    vta_labels: int
    rerank_weight: float
    min_ambience_scene: float
    crossfade: float
    detector: str
    threshold: float
    min_scene_len: float
    segment: float
    temperature: float
    rule: str
    sync_t: float
    sync_d: float
    max_gap: float
    min_effect: float
    ring_out: bool
    max_effects: int
    spatial: bool
    scan: str
    coarse_step: int
    preroll_frames: int
    keep_original_formats: bool
    def __init__(self, libraries: _Optional[_Iterable[str]] = ..., top_k: _Optional[int] = ..., ambience_mode: _Optional[str] = ..., vta_labels: _Optional[int] = ..., rerank_weight: _Optional[float] = ..., min_ambience_scene: _Optional[float] = ..., crossfade: _Optional[float] = ..., detector: _Optional[str] = ..., threshold: _Optional[float] = ..., min_scene_len: _Optional[float] = ..., segment: _Optional[float] = ..., temperature: _Optional[float] = ..., rule: _Optional[str] = ..., sync_t: _Optional[float] = ..., sync_d: _Optional[float] = ..., max_gap: _Optional[float] = ..., min_effect: _Optional[float] = ..., ring_out: _Optional[bool] = ..., max_effects: _Optional[int] = ..., spatial: _Optional[bool] = ..., scan: _Optional[str] = ..., coarse_step: _Optional[int] = ..., preroll_frames: _Optional[int] = ..., keep_original_formats: _Optional[bool] = ...) -> None: ...

class SuggestRequest(_message.Message):
    __slots__ = ("video_path", "edit", "options")
    VIDEO_PATH_FIELD_NUMBER: _ClassVar[int]
    EDIT_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    video_path: str
    edit: Edit
    options: SuggestOptions
    def __init__(self, video_path: _Optional[str] = ..., edit: _Optional[_Union[Edit, _Mapping]] = ..., options: _Optional[_Union[SuggestOptions, _Mapping]] = ...) -> None: ...

class SuggestionsSummary(_message.Message):
    __slots__ = ("model_id", "meaningless", "scenes", "placements", "effects", "tracks", "duration")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    MEANINGLESS_FIELD_NUMBER: _ClassVar[int]
    SCENES_FIELD_NUMBER: _ClassVar[int]
    PLACEMENTS_FIELD_NUMBER: _ClassVar[int]
    EFFECTS_FIELD_NUMBER: _ClassVar[int]
    TRACKS_FIELD_NUMBER: _ClassVar[int]
    DURATION_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    meaningless: bool
    scenes: int
    placements: int
    effects: int
    tracks: _containers.RepeatedScalarFieldContainer[str]
    duration: float
    def __init__(self, model_id: _Optional[str] = ..., meaningless: _Optional[bool] = ..., scenes: _Optional[int] = ..., placements: _Optional[int] = ..., effects: _Optional[int] = ..., tracks: _Optional[_Iterable[str]] = ..., duration: _Optional[float] = ...) -> None: ...

class SuggestResult(_message.Message):
    __slots__ = ("suggestions_json", "summary")
    SUGGESTIONS_JSON_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    suggestions_json: str
    summary: SuggestionsSummary
    def __init__(self, suggestions_json: _Optional[str] = ..., summary: _Optional[_Union[SuggestionsSummary, _Mapping]] = ...) -> None: ...

class SuggestEvent(_message.Message):
    __slots__ = ("job_id", "accepted", "progress", "result")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    accepted: Job
    progress: Progress
    result: SuggestResult
    def __init__(self, job_id: _Optional[str] = ..., accepted: _Optional[_Union[Job, _Mapping]] = ..., progress: _Optional[_Union[Progress, _Mapping]] = ..., result: _Optional[_Union[SuggestResult, _Mapping]] = ...) -> None: ...

class RenderRequest(_message.Message):
    __slots__ = ("suggestions_json", "mix", "stems_dir", "mux", "timeline", "flavour", "plot", "target_lufs", "true_peak_dbtp", "sample_rate")
    SUGGESTIONS_JSON_FIELD_NUMBER: _ClassVar[int]
    MIX_FIELD_NUMBER: _ClassVar[int]
    STEMS_DIR_FIELD_NUMBER: _ClassVar[int]
    MUX_FIELD_NUMBER: _ClassVar[int]
    TIMELINE_FIELD_NUMBER: _ClassVar[int]
    FLAVOUR_FIELD_NUMBER: _ClassVar[int]
    PLOT_FIELD_NUMBER: _ClassVar[int]
    TARGET_LUFS_FIELD_NUMBER: _ClassVar[int]
    TRUE_PEAK_DBTP_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_RATE_FIELD_NUMBER: _ClassVar[int]
    suggestions_json: str
    mix: str
    stems_dir: str
    mux: str
    timeline: str
    flavour: str
    plot: str
    target_lufs: float
    true_peak_dbtp: float
    sample_rate: int
    def __init__(self, suggestions_json: _Optional[str] = ..., mix: _Optional[str] = ..., stems_dir: _Optional[str] = ..., mux: _Optional[str] = ..., timeline: _Optional[str] = ..., flavour: _Optional[str] = ..., plot: _Optional[str] = ..., target_lufs: _Optional[float] = ..., true_peak_dbtp: _Optional[float] = ..., sample_rate: _Optional[int] = ...) -> None: ...

class RenderedFile(_message.Message):
    __slots__ = ("what", "path")
    WHAT_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    what: str
    path: str
    def __init__(self, what: _Optional[str] = ..., path: _Optional[str] = ...) -> None: ...

class RenderResult(_message.Message):
    __slots__ = ("files", "loudness_lufs", "true_peak_dbtp", "gain_db", "loudness_note")
    FILES_FIELD_NUMBER: _ClassVar[int]
    LOUDNESS_LUFS_FIELD_NUMBER: _ClassVar[int]
    TRUE_PEAK_DBTP_FIELD_NUMBER: _ClassVar[int]
    GAIN_DB_FIELD_NUMBER: _ClassVar[int]
    LOUDNESS_NOTE_FIELD_NUMBER: _ClassVar[int]
    files: _containers.RepeatedCompositeFieldContainer[RenderedFile]
    loudness_lufs: float
    true_peak_dbtp: float
    gain_db: float
    loudness_note: str
    def __init__(self, files: _Optional[_Iterable[_Union[RenderedFile, _Mapping]]] = ..., loudness_lufs: _Optional[float] = ..., true_peak_dbtp: _Optional[float] = ..., gain_db: _Optional[float] = ..., loudness_note: _Optional[str] = ...) -> None: ...

class RenderEvent(_message.Message):
    __slots__ = ("job_id", "accepted", "progress", "result")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    accepted: Job
    progress: Progress
    result: RenderResult
    def __init__(self, job_id: _Optional[str] = ..., accepted: _Optional[_Union[Job, _Mapping]] = ..., progress: _Optional[_Union[Progress, _Mapping]] = ..., result: _Optional[_Union[RenderResult, _Mapping]] = ...) -> None: ...
