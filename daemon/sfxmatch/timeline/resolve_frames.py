"""The Resolve script's appends, in frames: which clips the user's ticks stand for, where each
lands on the timeline, which part of its media pool item it plays, and on which audio track.

The script knows these inputs only inside Resolve, after it has imported the sounds: the
timeline's rate and start frame, each pool item's rate and length as Resolve reports them,
and the spans other people's clips take on the audio tracks. It sends them to
``sfxmatch resolve-clips`` (:func:`answer`, JSON in and out) and appends what comes back, so
the framing and track rules live here once:

- record times snap to the nearest timeline frame (:func:`sfxmatch.timecode.seconds_to_frames`)
  and the source in point follows the snap, so the sound itself stays put (within half a
  frame), as in the timeline export;
- Resolve *floors* a clip's length when its item runs at another rate than the timeline
  (:func:`sfxmatch.framing.whole_media_frames`), so lengths are counted in the item's own
  frames, and passes of a loop stay butted: each starts where Resolve really ends the last;
- a source range never runs past the item's last frame;
- a clip keeps its preferred track where that is free, else takes the first free track of its
  family (Ambience, Ambience 2, ... / SFX 1, SFX 2, ...), a new one if need be; top-ranked
  picks choose first. Tracks are listed in :func:`sfxmatch.suggestions.track_order`.

Frames count every picture frame whether or not the timecode is drop-frame (DF only skips
timecode *labels*), so the timeline's DF setting changes no number here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Any

from sfxmatch.errors import TimelineError
from sfxmatch.framing import whole_media_frames
from sfxmatch.suggestions import family_track, ordered_tracks, track_family
from sfxmatch.timecode import FrameRate, frames_to_seconds, parse_rate, seconds_to_frames
from sfxmatch.timeline.choices import ChoiceClip, default_track

SCHEMA_VERSION = 1

Span = tuple[int, int]  # [start, end) in absolute timeline frames


@dataclass(frozen=True, slots=True)
class PoolItem:
    """A media pool item as Resolve reports it: its frame rate and its length in its own
    frames (0 when Resolve does not say)."""

    fps: Fraction
    frames: int = 0


@dataclass(frozen=True, slots=True)
class Pick:
    """One clip of a ticked candidate; ``order`` (candidate rank, place among the picks) says
    which pick chooses its track first."""

    clip: ChoiceClip
    order: tuple[int, int]


@dataclass(frozen=True, slots=True)
class Append:
    """One ``AppendToTimeline`` call: ``record_frame`` is absolute (the timeline's start frame
    included), ``frames`` the timeline frames Resolve will make of the item's source range
    ``[source_start_frame, source_end_frame)``, counted at the item's own rate."""

    pick: Pick
    track: str
    record_frame: int
    frames: int
    source_start_frame: int
    source_end_frame: int

    def to_json(self) -> dict[str, Any]:
        return {
            **self.pick.clip.to_json(),
            "track": self.track,
            "record_frame": self.record_frame,
            "frames": self.frames,
            "source_start_frame": self.source_start_frame,
            "source_end_frame": self.source_end_frame,
        }


@dataclass(frozen=True, slots=True)
class Refusal:
    """A picked clip that cannot be appended, and why (in words for the user)."""

    pick: Pick
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {**self.pick.clip.to_json(), "reason": self.reason}


@dataclass(frozen=True, slots=True)
class Plan:
    """What the script appends, in the order it appends them (of two overlapping clips on a
    track Resolve keeps the first), what it cannot, and the tracks used, in track order."""

    appends: tuple[Append, ...]
    refused: tuple[Refusal, ...]
    tracks: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA_VERSION,
            "appends": [a.to_json() for a in self.appends],
            "refused": [r.to_json() for r in self.refused],
            "tracks": list(self.tracks),
        }


def chosen(
    clips: Mapping[tuple[str, int], Sequence[ChoiceClip]], picks: Iterable[tuple[str, int]]
) -> list[Pick]:
    """The clips of every picked (slot key, candidate rank), best ranks first: when two picks
    want one track, the better-ranked one keeps it."""
    ordered = sorted(picks, key=lambda pick: (pick[1], pick[0]))
    return [
        Pick(clip, (rank, place))
        for place, (key, rank) in enumerate(ordered)
        for clip in clips[(key, rank)]
    ]


def source_frames_for(frames: int, fps: Fraction, item_fps: Fraction) -> tuple[int, int]:
    """(source frames at the item's rate, timeline frames Resolve makes of them): the fewest
    source frames that cover ``frames`` timeline frames. Resolve floors the length of a clip
    whose item runs at another rate, so the answer can be a frame longer than asked where the
    item's frames are longer; the next clip of a chain then starts where this one ends."""
    if item_fps == fps:
        return frames, frames
    source = math.ceil(Fraction(frames) * item_fps / fps)
    return source, timeline_frames(source, fps, item_fps)


def timeline_frames(source: int, fps: Fraction, item_fps: Fraction) -> int:
    """Timeline frames Resolve makes of ``source`` frames of an item at ``item_fps``."""
    if item_fps == fps:
        return source
    return whole_media_frames(Fraction(source) / item_fps, fps)


def frame_clips(
    picks: Sequence[Pick],
    rate: FrameRate | Fraction,
    start_frame: int,
    media: Mapping[str, PoolItem | None],
) -> tuple[list[Append], list[Refusal]]:
    """Every pick on frames (its preferred track for now), in the order of ``picks``, and the
    picks that cannot be placed. ``media`` maps paths to pool items (None: not imported)."""
    fps = FrameRate.of(rate).fps
    ready: list[tuple[int, Append]] = []
    refused: list[tuple[int, Refusal]] = []
    ends: dict[tuple[str, float], int] = {}  # (path, seconds where a clip ends) -> real end
    order = sorted(range(len(picks)), key=lambda k: picks[k].clip.record_start)
    for position in order:
        pick = picks[position]
        clip = pick.clip
        item = media.get(clip.path)
        if item is None:
            refused.append((position, Refusal(pick, "Resolve could not import the file")))
            continue
        record = ends.get((clip.path, clip.record_start), seconds_to_frames(clip.record_start, fps))
        # Loop passes butt: the end is the next pass's very start, not start + duration.
        frames = seconds_to_frames(clip.record_end, fps) - record
        if frames <= 0:
            refused.append((position, Refusal(pick, "shorter than one frame")))
            continue
        shift = frames_to_seconds(record, fps) - clip.record_start
        source_start = max(0, seconds_to_frames(clip.source_start + shift, item.fps))
        source_frames, frames = source_frames_for(frames, fps, item.fps)
        if item.frames and source_start + source_frames > item.frames:
            source_frames = max(0, item.frames - source_start)
            frames = timeline_frames(source_frames, fps, item.fps)
            if frames <= 0:
                reason = "the source range lies past the file's end"
                refused.append((position, Refusal(pick, reason)))
                continue
        ends[(clip.path, clip.record_end)] = record + frames
        append = Append(
            pick,
            clip.track or default_track(clip.kind),
            start_frame + record,
            frames,
            source_start,
            source_start + source_frames,
        )
        ready.append((position, append))
    return [a for _, a in sorted(ready, key=_first)], [r for _, r in sorted(refused, key=_first)]


def _first(pair: tuple[int, Any]) -> int:
    return pair[0]


def assign_tracks(
    appends: Sequence[Append], occupied: Mapping[str, Iterable[Span]]
) -> list[Append]:
    """``appends`` (same order), each on a track where it overlaps nothing: its preferred one
    when free, else the first free one of its family, numbering on past the existing ones.
    ``occupied`` maps track names to the spans other clips already take."""
    taken = {name: list(spans) for name, spans in occupied.items()}

    def free(name: str, start: int, end: int) -> bool:
        return all(end <= s or e <= start for s, e in taken.get(name, ()))

    placed: dict[int, Append] = {}
    order = sorted(
        range(len(appends)), key=lambda k: (appends[k].pick.order, appends[k].record_frame)
    )
    for k in order:
        append = appends[k]
        family = track_family(append.track) or (
            ("ambience", 1) if append.pick.clip.kind == "ambience" else ("sfx", 1)
        )
        start, end = append.record_frame, append.record_frame + append.frames
        name, number = family_track(*family), 1
        while not free(name, start, end):
            name = family_track(family[0], number)
            number += 1
        taken.setdefault(name, []).append((start, end))
        placed[k] = replace(append, track=name)
    return [placed[k] for k in range(len(appends))]


def plan(
    picks: Sequence[Pick],
    rate: FrameRate | Fraction,
    start_frame: int,
    media: Mapping[str, PoolItem | None],
    occupied: Mapping[str, Iterable[Span]],
) -> Plan:
    """The whole answer: framing, then tracks around ``occupied``."""
    ready, refused = frame_clips(picks, rate, start_frame, media)
    appends = assign_tracks(ready, occupied)
    return Plan(tuple(appends), tuple(refused), ordered_tracks(a.track for a in appends))


# --------------------------------------------------------------------------- JSON


def pool_item(fps: object, frames: object, timeline: Fraction) -> PoolItem:
    """A pool item from Resolve's own property strings (``"FPS"``, ``"Frames"``); a rate it
    does not state readably is taken as the timeline's, an unreadable length as unknown."""
    try:
        item_fps = parse_rate(str(fps)).fps
    except ValueError:
        item_fps = timeline
    try:
        count = max(0, int(float(str(frames))))
    except (TypeError, ValueError, OverflowError):
        count = 0
    return PoolItem(item_fps, count)


def answer(request: Mapping[str, Any]) -> dict[str, Any]:
    """``resolve-clips``: a request from the Resolve script -> :class:`Plan` JSON.

    Request keys: ``slots`` (as ``suggest --json`` sent them) and ``picks`` (``[key, rank]``
    pairs the user ticked); ``fps`` (``"30000/1001"`` or Resolve's ``"29.97 DF"``) and
    ``drop_frame``; ``start_frame`` (``GetStartFrame()``); ``media``: path -> ``{"fps",
    "frames"}`` as the pool item's clip properties say, or null where Resolve did not import
    it; ``occupied``: audio track name -> ``[[start, end], ...]`` of other clips."""
    try:
        if request.get("schema", SCHEMA_VERSION) != SCHEMA_VERSION:
            raise TimelineError(
                f"resolve-clips reads schema {SCHEMA_VERSION}, not {request.get('schema')}"
            )
        parsed = parse_rate(str(request["fps"]))
        rate = FrameRate(parsed.fps, bool(request.get("drop_frame")) or parsed.drop_frame)
        by_key = {str(slot["key"]): slot for slot in request["slots"]}
        picks = [(str(key), int(rank)) for key, rank in request["picks"]]
        clips = {
            (key, rank): [ChoiceClip.from_json(c) for c in by_key[key]["clips"][rank]]
            for key, rank in picks
        }
        media = {
            str(path): None if item is None else pool_item(item["fps"], item["frames"], rate.fps)
            for path, item in request["media"].items()
        }
        occupied = {
            str(name): [(int(s), int(e)) for s, e in spans]
            for name, spans in request.get("occupied", {}).items()
        }
        start_frame = int(request["start_frame"])
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        if isinstance(exc, TimelineError):
            raise
        raise TimelineError(f"not a resolve-clips request: {exc!r}") from None
    return plan(chosen(clips, picks), rate, start_frame, media, occupied).to_json()
