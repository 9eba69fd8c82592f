"""The typed values the pipeline hands on: what to place where, and why.

``Suggestions`` is the one result of ``Pipeline.suggest``: per scene the ranked ambience and
the synced effect intervals with their candidates, plus the flat list of ``Placement`` values
that the mixer renders and the timeline writer exports. Everything here is immutable and in
seconds of *record time* (0 = the first frame of the edit); frame and timecode conversions
live in :mod:`sfxmatch.timeline`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from fractions import Fraction
from types import UnionType
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

from sfxmatch.store.base import Kind

AMBIENCE_TRACK = "Ambience"
AMBIENCE_TRACK_B = "Ambience 2"  # beds alternate A/B so they can overlap at cuts
SFX_TRACK_PREFIX = "SFX "
LOOP_CROSSFADE = 1.0  # seconds: the default crossfade between the passes of a looped sound
LOOP_EPSILON = 0.5 / 48000
"""Seconds: times closer than this count as equal in the loop rule. Half a sample at the mix's
48 kHz, so that a slot longer than its file by less than the mixer can see gets one pass in
the timeline too, as in the mix."""
SyncRule = Literal["report", "threshold", "hysteresis"]
AmbienceMode = Literal["vta", "va"]


def sfx_track(number: int) -> str:
    """The name of the n-th effects track (1-based): "SFX 1", "SFX 2", ..."""
    if number < 1:
        raise ValueError(f"effects tracks are numbered from 1, not {number}")
    return f"{SFX_TRACK_PREFIX}{number}"


def ambience_track(number: int) -> str:
    """The name of the n-th ambience track (1-based): "Ambience", "Ambience 2", ..."""
    if number < 1:
        raise ValueError(f"ambience tracks are numbered from 1, not {number}")
    return AMBIENCE_TRACK if number == 1 else f"{AMBIENCE_TRACK} {number}"


TrackFamily = Literal["ambience", "sfx"]


def track_family(name: str) -> tuple[TrackFamily, int] | None:
    """``("ambience" | "sfx", number)`` for one of our track names, else None."""
    if name == AMBIENCE_TRACK:
        return "ambience", 1
    prefixes: tuple[tuple[TrackFamily, str], ...] = (
        ("ambience", AMBIENCE_TRACK + " "),
        ("sfx", SFX_TRACK_PREFIX),
    )
    for family, prefix in prefixes:
        tail = name[len(prefix) :]
        if name.startswith(prefix) and tail.isdigit() and int(tail) >= 1:
            return family, int(tail)
    return None


def family_track(family: TrackFamily, number: int) -> str:
    """The inverse of :func:`track_family`."""
    return ambience_track(number) if family == "ambience" else sfx_track(number)


def track_order(name: str) -> tuple[int, int, str]:
    """THE track order, a sort key: beds first (Ambience, Ambience 2, ...), then effects
    (SFX 1, SFX 2, ...), each by number, then any other track by name.

    Beds sit together at the top because they are one continuous layer checkerboarded over
    A/B tracks so they can crossfade at cuts: editors read (and stem, and mute) them as a
    group, above the effects, as stem layouts do (dialogue, music, effects, backgrounds
    each grouped). The mix's stems, the exported timelines and the Resolve script all sort
    by this key."""
    found = track_family(name)
    if found is None:
        return (2, 0, name)
    family, number = found
    return (0 if family == "ambience" else 1, number, name)


def ordered_tracks(names: Iterable[str]) -> tuple[str, ...]:
    """``names`` without repeats, in :func:`track_order`."""
    return tuple(sorted(set(names), key=track_order))


@dataclass(frozen=True, slots=True)
class SourceClip:
    """One picture clip of an editor's timeline: which part of which file sits where.

    ``source_in``/``source_out`` are seconds into the media file; ``record_start`` is seconds
    from the start of the edit. A whole video is one clip at record 0.
    """

    path: str
    source_in: float
    source_out: float
    record_start: float
    name: str = ""

    def __post_init__(self) -> None:
        for name in ("source_in", "source_out", "record_start"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite time >= 0, not {value!r}")
        if self.source_out <= self.source_in:
            raise ValueError(
                f"clip {self.name or self.path!r}: source_out {self.source_out} is not after "
                f"source_in {self.source_in}"
            )

    @property
    def duration(self) -> float:
        return self.source_out - self.source_in

    @property
    def record_end(self) -> float:
        return self.record_start + self.duration


@dataclass(frozen=True, slots=True)
class Edit:
    """The picture the suggestions are for: its clips, frame rate and size.

    ``drop_frame`` is the timeline's own drop-frame setting (Resolve's
    ``timelineDropFrameTimecode``, an FCP7 ``<displayformat>DF``, an EDL's ``FCM: DROP
    FRAME``): editors may write a drop-frame start timecode with colons, so a semicolon is
    not the only sign. Either sign makes the edit drop-frame, and its ``start_timecode`` is
    then written the drop-frame way (``;`` before the frames), which is how it travels."""

    clips: tuple[SourceClip, ...]
    fps: Fraction
    width: int = 0
    height: int = 0
    start_timecode: str = "00:00:00:00"
    name: str = ""
    drop_frame: bool = False
    sample_rate: int = 0  # the sequence's audio rate when the editor said it (0: unknown)

    def __post_init__(self) -> None:
        tc = self.start_timecode or "00:00:00:00"
        if ";" in tc:
            object.__setattr__(self, "drop_frame", True)
        elif self.drop_frame and len(tc) > 3 and tc[-3] in ":.":
            object.__setattr__(self, "start_timecode", tc[:-3] + ";" + tc[-2:])

    @property
    def duration(self) -> float:
        return max((c.record_end for c in self.clips), default=0.0)


@dataclass(frozen=True, slots=True)
class Candidate:
    """One library sound proposed for a slot, with its cosine score (higher is better)."""

    sound_id: str
    label: str
    path: str
    score: float
    kind: Kind
    duration: float
    ucs_category: str = ""
    sync_point: float = 0.0  # seconds into the file: where its own event is (sync points)
    sync_source: str = ""  # override, catalogue, file, sidecar, detector or start
    peak: float | None = None  # seconds into the file of its loudest sample, when known


@dataclass(frozen=True, slots=True)
class Trace:
    """A label's similarity over time: ``values[i]`` is the score of the segment at ``times[i]``."""

    label: str
    times: tuple[float, ...]
    values: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.times) != len(self.values):
            raise ValueError("a trace needs as many times as values")


@dataclass(frozen=True, slots=True)
class Keyframe:
    """Gain (dB) and pan (-1 left .. +1 right) at ``time`` seconds after the clip starts."""

    time: float
    gain_db: float
    pan: float


DEFAULT_PREROLL_FRAMES = 2
"""Whole frames of an effect kept before its sync point (``SuggestOptions.preroll_frames``)."""


@dataclass(frozen=True, slots=True)
class Spot:
    """Where one sound's clip sits when it is chosen for an effect interval, by the sync rule
    (:func:`sfxmatch.match.spot.spot_effect`): seconds of record time (on the frame grid) and
    of the file (to the sample)."""

    sound_id: str
    record_start: float
    duration: float
    source_start: float
    sync_point: float  # seconds into the file: lands at record_start + sync - source_start

    def __post_init__(self) -> None:
        for name in ("record_start", "duration", "source_start", "sync_point"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"spot {name} must be a time >= 0, not {value!r}")

    @property
    def event_time(self) -> float:
        """Record seconds where the sound's sync point sounds."""
        return self.record_start + self.sync_point - self.source_start


@dataclass(frozen=True, slots=True)
class EffectSuggestion:
    """A synced interval where ``label`` is strongly and stably on screen, and its sounds."""

    label: str
    start: float
    end: float
    confidence: float
    candidates: tuple[Candidate, ...]
    scene_index: int
    rule: SyncRule = "report"
    trace: Trace | None = None  # the label's similarity over the interval's scene
    automation: tuple[Keyframe, ...] = ()  # pan/gain following the emitter on screen
    # Where each candidate's clip goes if it is chosen (the sync rule, match.spot), in the
    # order of ``candidates``: what the Resolve script places when the user picks another.
    spots: tuple[Spot, ...] = ()


@dataclass(frozen=True, slots=True)
class SceneSuggestion:
    """One scene (record time) with its ranked ambience and its effect intervals."""

    index: int
    start: float
    end: float
    ambience: tuple[Candidate, ...]
    effects: tuple[EffectSuggestion, ...] = ()
    ambience_labels: tuple[tuple[str, float], ...] = ()  # VTA mode: the labels searched in
    borrowed_from: int | None = None  # a short scene keeps this neighbour's ambience


@dataclass(frozen=True, slots=True)
class Placement:
    """One sound placed on one track: what the mixer renders and the timeline exports.

    The clip plays ``path`` from ``source_start`` for ``duration`` seconds at ``record_start``.
    When ``loop`` is set and the file is shorter than the slot, it loops with equal-power
    crossfades of ``loop_crossfade`` seconds between passes; :func:`loop_passes` says where
    each pass sits, for the mixer, the timeline exporter and the clips the Resolve script is
    sent (:mod:`sfxmatch.timeline.choices`). ``automation`` keyframes, when present, override
    the constant ``gain_db``/``pan`` and are linearly interpolated.
    """

    track: str
    kind: Kind
    sound_id: str
    path: str
    label: str
    record_start: float
    duration: float
    source_start: float = 0.0
    source_duration: float = 0.0  # the whole file's length (the media's available range)
    loop: bool = False
    gain_db: float = 0.0
    pan: float = 0.0
    fade_in: float = 0.0
    fade_out: float = 0.0
    scene_index: int = -1
    score: float = 0.0
    automation: tuple[Keyframe, ...] = ()
    alternatives: tuple[Candidate, ...] = ()
    loop_crossfade: float = LOOP_CROSSFADE  # seconds between loop passes (see loop_passes)
    # Seconds into the file of the sound's own event (effects, placed by match.spot): it
    # sounds at record_start + sync_point - source_start. None for beds.
    sync_point: float | None = None

    def __post_init__(self) -> None:
        for name in (
            "record_start",
            "duration",
            "source_start",
            "source_duration",
            "loop_crossfade",
        ):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"placement {name} must be a finite time >= 0, not {value!r}")
        if self.duration <= 0:
            raise ValueError("a placement must last longer than zero seconds")
        if not -1.0 <= self.pan <= 1.0:
            raise ValueError(f"pan must be within -1..1, not {self.pan}")
        if (
            self.fade_in < 0
            or self.fade_out < 0
            or self.fade_in + self.fade_out > self.duration + 1e-9
        ):
            raise ValueError("fades must be >= 0 and fit inside the placement")

    @property
    def record_end(self) -> float:
        return self.record_start + self.duration

    @property
    def event_time(self) -> float | None:
        """Record seconds where the sound's sync point sounds (None for beds)."""
        if self.sync_point is None:
            return None
        return self.record_start + self.sync_point - self.source_start


# --- where the passes of a looped sound sit --------------------------------------------------

Number = TypeVar("Number", int, float)


def loop_schedule(
    offset: Number, length: Number, total: Number, crossfade: Number, *, eps: float = 0.0
) -> tuple[Number, tuple[tuple[Number, Number, Number], ...]]:
    """THE loop rule, in any one unit (the mixer calls it in samples, the exporter in seconds).

    A file of ``length`` fills a slot of ``total`` from ``offset`` into the file. Returns
    ``(crossfade, passes)``: the crossfade actually used and, per pass, ``(start, source,
    duration)``: where in the slot the pass starts sounding, where in the file it starts and
    how long it sounds (its crossfades included). The rule:

    - An offset at or past the end of the file starts at the top of the file.
    - If the first pass (``offset`` to the end of the file) covers the slot, or the file is
      empty, there is one pass of ``total``.
    - Otherwise the crossfade is clamped to half the first pass and half the file; the first
      pass plays to the end of the file, every later pass plays the file from its top and
      starts one crossfade *before* the previous pass ends (the two overlap by the crossfade,
      the earlier fading out while the later fades in), so pass k >= 1 starts at
      ``first + (k - 1) * length - k * crossfade``. The last pass is cut at the slot's end.

    With whole numbers (samples) the halving rounds down and everything stays whole.
    """
    if length <= eps:
        return _zero(crossfade), ((_zero(offset), offset, total),)
    if offset >= length - eps:
        offset = _zero(offset)
    first = length - offset
    if first >= total - eps:
        return _zero(crossfade), ((_zero(offset), offset, total),)
    c = max(_zero(crossfade), min(crossfade, _half(first), _half(length)))
    passes = [(_zero(offset), offset, first)]
    at = first - c
    while at + length < total - eps:
        passes.append((at, _zero(offset), length))
        at += length - c
    passes.append((at, _zero(offset), total - at))
    return c, tuple(passes)


def _half(value: Number) -> Number:
    return value // 2 if isinstance(value, int) else value / 2


def _zero(like: Number) -> Number:
    return like * 0


@dataclass(frozen=True, slots=True)
class LoopPass:
    """One pass through the file of a placement, in record seconds.

    The pass *sounds* from ``record_start`` to ``record_end``, fading in over its first
    ``crossfade_in`` seconds (over the previous pass's fade-out) and out over its last
    ``crossfade_out``. That is what the mixer renders.

    On a timeline, where one track cannot hold overlapping clips, the pass is the clip from
    ``cut_in`` to ``cut_out``: consecutive passes are butt-spliced at the *centre* of their
    crossfade, each clip starting ``crossfade_in / 2`` into its pass (``clip_source_start``).
    A dissolve of the crossfade's length centred on each cut then gives back the mix exactly:
    the outgoing clip has half a crossfade of file left after its cut (the pass runs to the
    end of the file) and the incoming one half a crossfade before it.
    """

    index: int
    record_start: float
    record_end: float
    source_start: float  # the file's time at record_start
    crossfade_in: float = 0.0  # shared with the previous pass (0 for the first)
    crossfade_out: float = 0.0  # shared with the next pass (0 for the last)

    @property
    def cut_in(self) -> float:
        return self.record_start + self.crossfade_in / 2

    @property
    def cut_out(self) -> float:
        return self.record_end - self.crossfade_out / 2

    @property
    def clip_source_start(self) -> float:
        """The file's time at ``cut_in``."""
        return self.source_start + self.crossfade_in / 2


def loop_passes(
    p: Placement, file_length: float | None = None, crossfade: float | None = None
) -> tuple[LoopPass, ...]:
    """Where each pass of ``p`` sits on the record timeline (one pass unless it loops).

    ``file_length`` defaults to ``p.source_duration`` (0: unknown, one pass) and ``crossfade``
    to ``p.loop_crossfade``. The rule is :func:`loop_schedule`'s, the mixer's own.
    """
    length = p.source_duration if file_length is None else file_length
    xfade = p.loop_crossfade if crossfade is None else crossfade
    if not p.loop or length <= 0:
        return (LoopPass(0, p.record_start, p.record_end, p.source_start),)
    c, schedule = loop_schedule(
        float(p.source_start), float(length), float(p.duration), float(xfade), eps=LOOP_EPSILON
    )
    last = len(schedule) - 1
    return tuple(
        LoopPass(
            index=i,
            record_start=p.record_start + start,
            record_end=p.record_end if i == last else p.record_start + start + duration,
            source_start=source,
            crossfade_in=c if i > 0 else 0.0,
            crossfade_out=c if i < last else 0.0,
        )
        for i, (start, source, duration) in enumerate(schedule)
    )


@dataclass(frozen=True, slots=True)
class Suggestions:
    """Everything ``Pipeline.suggest`` found for one edit; deterministic for the same inputs."""

    edit: Edit
    scenes: tuple[SceneSuggestion, ...]
    placements: tuple[Placement, ...]
    model_id: str
    traces: tuple[Trace, ...] = ()  # the strongest labels' similarity over the whole edit
    meaningless: bool = False  # made with random weights: for development only
    settings: tuple[tuple[str, str], ...] = field(default=())  # what produced them, for the record

    @property
    def tracks(self) -> tuple[str, ...]:
        """Track names in :func:`track_order`: Ambience, Ambience 2, then SFX 1..n."""
        return ordered_tracks(p.track for p in self.placements)


# --- JSON: how suggestions cross process boundaries (CLI --json, the Resolve script) ------

SCHEMA_VERSION = 1


def to_dict(suggestions: Suggestions) -> dict[str, Any]:
    """Plain JSON-ready data; ``from_dict`` gives back an equal ``Suggestions``."""
    data = _plain(suggestions)
    data["schema"] = SCHEMA_VERSION
    return data


def from_dict(data: Mapping[str, Any]) -> Suggestions:
    if data.get("schema", SCHEMA_VERSION) != SCHEMA_VERSION:
        raise ValueError(f"suggestions schema {data.get('schema')} is not {SCHEMA_VERSION}")
    return _build(Suggestions, data)


def edit_from_dict(data: Mapping[str, Any]) -> Edit:
    """An ``Edit`` from its JSON form (what the Resolve script sends)."""
    return _build(Edit, data)


def _plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, Fraction):
        return f"{value.numerator}/{value.denominator}"
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def _build(cls: type, data: Any) -> Any:
    hints = get_type_hints(cls)
    kwargs = {}
    for f in fields(cls):
        if f.name in data:
            kwargs[f.name] = _convert(hints[f.name], data[f.name])
    return cls(**kwargs)


def _convert(hint: Any, value: Any) -> Any:
    origin = get_origin(hint)
    if origin in (Union, UnionType):
        members = [a for a in get_args(hint) if a is not type(None)]
        return None if value is None else _convert(members[0], value)
    if origin is tuple:
        parts = get_args(hint)
        if len(parts) == 2 and parts[1] is Ellipsis:
            return tuple(_convert(parts[0], v) for v in value)
        return tuple(_convert(a, v) for a, v in zip(parts, value, strict=True))
    if hint is Fraction:
        return Fraction(value)
    if isinstance(hint, type) and is_dataclass(hint):
        return _build(hint, value)
    if hint is float:
        return float(value)
    return value


# --- what a caller asks for --------------------------------------------------------------


ScanMode = Literal["auto", "full", "coarse"]


@dataclass(frozen=True, slots=True)
class SuggestOptions:
    """How ``Pipeline.suggest`` works; every field has the default a user gets."""

    libraries: tuple[str, ...] = ()  # () = every registered library
    top_k: int = 5  # candidates kept per slot (the first is placed)
    ambience_mode: AmbienceMode = "vta"  # labels first, then audio inside the top labels
    vta_labels: int = 3  # how many ambience labels VTA searches inside
    rerank_weight: float = 0.3  # Soundify: how much the scene's effects pull the ambience
    min_ambience_scene: float = 3.0  # shorter scenes keep their neighbour's bed (seconds)
    crossfade: float = 1.0  # between beds at scene cuts (seconds)
    detector: str = "content"
    threshold: float | None = None  # the detector's default when None
    min_scene_len: float = 0.6
    segment: float = 0.1  # seconds per effect segment (the model's frames per segment each)
    temperature: float | None = None  # softmax over effect labels: cosine / temperature;
    # None: the model's own (the inverse of its learned video-text logit scale)
    rule: SyncRule = "report"
    sync_t: float = 0.1
    sync_d: float = 0.5
    max_gap: float = 0.2  # merge intervals of one label closer than this (seconds)
    min_effect: float = 0.3  # drop intervals shorter than this (seconds)
    ring_out: bool = True  # let an effect play past its interval (up to its own length)
    # Whole frames of an effect kept before its sync point (the attack's breath); earlier
    # lead-in is trimmed through the clip's source in-point (match.spot).
    preroll_frames: int = DEFAULT_PREROLL_FRAMES
    max_effects: int = 64  # strongest intervals kept over the whole edit
    spatial: bool = True  # pan and gain follow the emitter on screen
    # Coarse-to-fine: embed every coarse_step-th segment, then only the segments between two
    # where scores move or a cut lies ("auto": where the model runs on a CPU). 3 segments is
    # min_effect: every interval AutoSync keeps then holds a coarse segment.
    scan: ScanMode = "auto"
    coarse_step: int = 3
    # Sounds editors cannot import (Ogg, Opus, FLAC...) are conformed into BWF WAV for the
    # timelines and the Resolve script (sfxmatch.conform); True keeps the originals.
    keep_original_formats: bool = False

    def __post_init__(self) -> None:
        if self.top_k < 1:
            raise ValueError(f"top_k must be at least 1, not {self.top_k}")
        if self.ambience_mode not in ("vta", "va"):
            raise ValueError(f"ambience_mode must be 'vta' or 'va', not {self.ambience_mode!r}")
        if self.scan not in ("auto", "full", "coarse"):
            raise ValueError(f"scan must be auto, full or coarse, not {self.scan!r}")
        if not 1 <= self.coarse_step <= 100:
            raise ValueError(f"coarse_step must be 1 to 100 segments, not {self.coarse_step}")
        if not 0 <= self.preroll_frames <= 100:
            raise ValueError(f"preroll_frames must be 0 to 100 frames, not {self.preroll_frames}")
        if self.rule not in ("report", "threshold", "hysteresis"):
            raise ValueError(f"rule must be report, threshold or hysteresis, not {self.rule!r}")
        if not (self.segment > 0 and (self.temperature is None or self.temperature > 0)):
            raise ValueError("segment and temperature must be greater than 0")
        for name in ("min_ambience_scene", "crossfade", "min_scene_len", "max_gap", "min_effect"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be 0 or more seconds")


TimelineFlavour = Literal["generic", "resolve", "premiere"]


@dataclass(frozen=True, slots=True)
class RenderRequest:
    """Which files ``Pipeline.render`` writes (None: not that one)."""

    mix: str | None = None  # stereo WAV of everything
    stems_dir: str | None = None  # one WAV per track
    mux: str | None = None  # the video with the mix as its audio
    timeline: str | None = None  # .otio or FCP7 .xml
    flavour: TimelineFlavour = "generic"
    plot: str | None = None  # PNG of the similarity traces, intervals and cuts
    target_lufs: float = -23.0
    true_peak_dbtp: float = -1.0
    sample_rate: int = 48_000


@dataclass(frozen=True, slots=True)
class RenderResult:
    """What ``render`` wrote, and the mix's measured loudness.

    The numbers are finite or None (never nan or infinite, which JSON cannot hold): None
    when no mix was made, and for a loudness or peak that cannot be measured (an empty or
    silent mix), ``loudness_note`` then says why. It also says when a mix shorter than
    400 ms was measured as a single block, and when the peak ceiling bound the gain.
    """

    files: tuple[tuple[str, str], ...]  # (what, path): ("mix", "/x/mix.wav"), ("stem", ...)
    loudness_lufs: float | None = None
    true_peak_dbtp: float | None = None
    gain_db: float | None = None
    loudness_note: str = ""

    def __post_init__(self) -> None:
        for name in ("loudness_lufs", "true_peak_dbtp", "gain_db"):
            value = getattr(self, name)
            if value is not None and not math.isfinite(value):
                object.__setattr__(self, name, None)
