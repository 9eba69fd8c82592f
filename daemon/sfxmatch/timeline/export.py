"""Suggestions → an OTIO timeline (and ``.otio`` / FCP7 ``.xml`` files) for editors.

Layout: one video track ("Video 1") with the edit's picture clips, then the audio tracks
in ``Suggestions.tracks`` order ("Ambience", "SFX 1", "SFX 2", ...). Between clips are
gaps. Scene starts and effect intervals are markers on the top stack.

Time: the timeline runs at the edit's frame rate and ``global_start_time`` is its start
timecode. **Every record position and duration is a whole number of frames**: a placement
starts on the frame nearest its ``record_start`` and ends on the frame nearest its end
(half a frame at most either way, never shorter than one frame). The source in point is
chosen so the *sound itself* stays where the pipeline put it: it is the frame nearest to
``source_start + (snapped_start - record_start)``, so a click inside the sound lands within
half a frame of its intended record time. Clip positions and lengths are never written
off the frame grid (Resolve, Premiere and FCP7 XML all lay clips on one). The source in
point of an effect (the sync rule, :mod:`sfxmatch.match.spot`, puts its sync point on a
frame by trimming its lead-in through the in point) is exact where the format can say it:
the generic ``.otio`` states it in samples at the file's own rate, and FCP7 XML adds
Premiere's ``pproTicksIn``/``pproTicksOut`` (254016000000 ticks a second) beside the frames
of ``<in>``/``<out>``; the Resolve and Premiere flavours of ``.otio``, shaped for importers
that read frames, keep the nearest frame. Loop passes of beds stay on frames. The exact
seconds ride along in each clip's ``sfxmatch`` metadata (``source_in``). What a file says
is exact: a renderer that follows its times reproduces them to the sample
(``tests/test_timeline_render_check.py``, ``tests/test_sync_e2e.py``).

A looping placement longer than its file becomes one clip per pass through the file, where
:func:`sfxmatch.suggestions.loop_passes` puts it, the rule the mixer renders by: pass k
starts sounding one crossfade before pass k - 1 ends, so with a file of L seconds and a
crossfade of X, pass k >= 1 starts at ``first + (k - 1) * L - k * X`` and passes never
drift against the mix. One track cannot hold overlapping clips, so consecutive passes are
butt-spliced at the *centre* of their crossfade (each pass trimmed by half a crossfade at
either seam; the file has exactly that half crossfade of media beyond each cut), and every
seam carries an ``SMPTE_Dissolve`` transition over the mix's crossfade: an editor that reads
transitions plays the crossfade, one that drops them hears a cut in the middle of it, where
the two passes are equally loud. Each clip starts and ends within half a frame of the
crossfade centres and plays the file within half a frame of where the mix does; in
``.otio`` each dissolve starts and ends within a frame of where the mixer starts and ends
the passes (shortened where frame rounding leaves less media than the crossfade needs).
FCP7 XML only knows dissolves centred on the cut, so there both sides take the shorter one.
Overlapping placements on one track raise ``ValueError``: the pipeline assigns tracks.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import Any

import opentimelineio as otio

from sfxmatch.errors import TimelineError
from sfxmatch.files import write_text_atomic
from sfxmatch.suggestions import Candidate, Edit, LoopPass, Placement, Suggestions, loop_passes
from sfxmatch.timecode import (
    FrameRate,
    media_frames,
    seconds_to_frames,
    timecode_to_frames,
)
from sfxmatch.timeline import flavours as fl

NAMESPACE = "sfxmatch"
VIDEO_TRACK = "Video 1"
DEFAULT_SAMPLE_RATE = 48000
DEFAULT_CHANNELS = 2
_EPS = 1e-9


# --------------------------------------------------------------------------- media facts


@dataclass(frozen=True)
class _MediaFacts:
    exists: bool
    duration: float | None = None
    fps: Fraction | None = None
    sample_rate: int | None = None
    channels: int | None = None
    origin: float = 0.0  # seconds of the media's start timecode (0 without one)


@lru_cache(maxsize=512)
def _facts(path: str, mtime: float) -> _MediaFacts:
    from sfxmatch.errors import MediaError
    from sfxmatch.media import probe

    try:
        info = probe(path)
    except MediaError:
        return _MediaFacts(exists=True)
    audio = info.audio[0] if info.audio else None
    fps = info.video.fps if info.video else None
    return _MediaFacts(
        exists=True,
        duration=info.duration,
        fps=fps,
        sample_rate=audio.sample_rate if audio else None,
        channels=audio.channels if audio else None,
        origin=_media_origin(path, fps, audio.sample_rate if audio else None),
    )


def _media_origin(path: str, fps: Fraction | None, sample_rate: int | None) -> float:
    """Seconds of the media's own start timecode: a ``timecode`` tag (QuickTime, MXF) or a
    Broadcast WAV ``time_reference`` (samples since midnight). 0 when there is none."""
    import av

    from sfxmatch.timecode import timecode_to_seconds

    try:
        with av.open(path) as container:
            tags: list[dict[str, str]] = [dict(container.metadata)]
            tags += [dict(s.metadata) for s in container.streams]
    except Exception:  # any unreadable tag block means "no timecode"
        return 0.0
    for t in tags:
        tc = t.get("timecode")
        if tc and fps:
            with contextlib.suppress(ValueError):
                return timecode_to_seconds(tc, FrameRate(fps, ";" in tc))
    for t in tags:
        ref = t.get("time_reference")
        if ref and sample_rate:
            with contextlib.suppress(ValueError):
                return int(ref) / sample_rate
    return 0.0


def media_facts(path: str) -> _MediaFacts:
    """What the exporter knows about a file (cached per path and modification time)."""
    try:
        mtime = os.stat(path).st_mtime
    except OSError:
        return _MediaFacts(exists=False)
    return _facts(os.path.abspath(path), mtime)


# --------------------------------------------------------------------------- layout


@dataclass(frozen=True)
class FrameSpan:
    """One clip laid on the frame grid: record start, length and source in, in frames."""

    start: int
    duration: int
    source_start: int

    @property
    def end(self) -> int:
        return self.start + self.duration


def snap(record_start: float, duration: float, source_start: float, rate: FrameRate) -> FrameSpan:
    """Lay a span of seconds on the frame grid (see the module docstring for the rule)."""
    start = seconds_to_frames(record_start, rate)
    end = seconds_to_frames(record_start + duration, rate)
    return _snapped(start, end, record_start, source_start, rate)


def _snapped(
    start: int, end: int, record_start: float, source_start: float, rate: FrameRate
) -> FrameSpan:
    """The span from frame ``start`` to ``end`` whose source in keeps the sound in place."""
    shift = Fraction(start) / rate.fps - Fraction(record_start)
    source = max(0, seconds_to_frames(Fraction(source_start) + shift, rate))
    return FrameSpan(start, max(1, end - start), source)


def exact_source_in(
    span: FrameSpan, record_start: float, source_start: float, rate: FrameRate
) -> Fraction:
    """Seconds into the file at the first frame of ``span``, not rounded to a frame: the
    sound stays exactly where the pipeline put it (``source_start`` at ``record_start``),
    whatever the snap of the clip's start to the grid moved."""
    shift = Fraction(span.start) / rate.fps - Fraction(record_start)
    return max(Fraction(0), Fraction(source_start) + shift)


def pass_spans(p: Placement, passes: tuple[LoopPass, ...], rate: FrameRate) -> list[FrameSpan]:
    """One frame span per pass, butting: pass k runs from the frame nearest its cut in to the
    frame where pass k + 1 starts (the last one to the frame nearest the placement's end).
    A pass shorter than half a frame still gets its frame: the next one starts a frame later
    (its in point following, so the sound stays in place)."""
    starts: list[int] = []
    for ps in passes:
        at = seconds_to_frames(ps.cut_in, rate)
        starts.append(at if not starts else max(at, starts[-1] + 1))
    ends = [*starts[1:], seconds_to_frames(p.record_end, rate)]
    return [
        _snapped(a, b, ps.cut_in, ps.clip_source_start, rate)
        for ps, a, b in zip(passes, starts, ends, strict=True)
    ]


def inside_media(
    span: FrameSpan, file_frames: int | None, *, slide: bool = False
) -> FrameSpan | None:
    """``span`` cut so that its source range lies inside a file of ``file_frames`` whole
    frames (None: unknown, left as it is); None when the file has nothing at its in point.

    ``slide``: a clip whose in point was rounded to its nearest frame may end a frame past
    the file's last whole one; its in point moves back to fit instead (the sound then plays
    up to a frame early rather than a frame short). Loop passes are cut instead: their place
    in the file is the loop rule's."""
    if file_frames is None or span.source_start + span.duration <= file_frames:
        return span
    if slide and span.duration <= file_frames:
        return FrameSpan(span.start, span.duration, file_frames - span.duration)
    if slide:
        return FrameSpan(span.start, file_frames, 0) if file_frames > 0 else None
    if span.source_start >= file_frames:
        return None
    return FrameSpan(span.start, file_frames - span.source_start, span.source_start)


def _exact_in_samples(
    exact: Fraction, frames: int, rate: FrameRate, media: float, sample_rate: int
) -> int:
    """An exact in point (an effect's, spotted by its sync point: written to the sample at
    the file's own rate) as whole samples, moved earlier where the clip's ``frames`` would
    otherwise end past the file's last whole sample. Only rounding puts it there (the sync
    rule keeps the clip inside the file in exact seconds), so it moves a sample or two."""
    at = round(exact * sample_rate)
    if media <= 0:
        return at
    need = math.ceil(Fraction(frames) / rate.fps * sample_rate)
    return max(0, min(at, media_frames(media, sample_rate) - need))


def _seam(
    before: FrameSpan | None,
    after: FrameSpan | None,
    ps: LoopPass,
    rate: FrameRate,
    file_frames: int | None,
) -> otio.schema.Transition | None:
    """The dissolve at the cut into pass ``ps``: from the frame nearest where the mix's
    crossfade starts to the one nearest where it ends, shortened where the file has less
    media either side of the cut (its whole frames, ``file_frames``); None when a side would
    be under a frame or the two clips do not butt (one was cut at the end of the media)."""
    if before is None or after is None or before.end != after.start:
        return None
    cut = after.start
    before_cut = min(
        cut - seconds_to_frames(ps.record_start, rate),
        after.source_start,  # the incoming clip's media before its in point
        before.duration,
    )
    after_cut = min(
        seconds_to_frames(ps.record_start + ps.crossfade_in, rate) - cut,
        after.duration,
    )
    if file_frames is not None:  # the outgoing clip's media after its out point
        after_cut = min(after_cut, file_frames - (before.source_start + before.duration))
    if before_cut < 1 or after_cut < 1:
        return None
    transition = otio.schema.Transition(
        name="Cross Fade",
        transition_type=otio.schema.TransitionTypes.SMPTE_Dissolve,
        in_offset=_rt(before_cut, rate),
        out_offset=_rt(after_cut, rate),
    )
    transition.metadata[NAMESPACE] = {"loop_crossfade": ps.crossfade_in, "pass": ps.index}
    return transition


def _rt(value: int | float, rate: FrameRate) -> otio.opentime.RationalTime:
    return otio.opentime.RationalTime(float(value), float(rate.fps))


def _range(start: int | float, duration: int | float, rate: float) -> otio.opentime.TimeRange:
    return otio.opentime.TimeRange(
        otio.opentime.RationalTime(float(start), rate),
        otio.opentime.RationalTime(float(duration), rate),
    )


def _candidate(c: Candidate) -> dict[str, Any]:
    return {
        "sound_id": c.sound_id,
        "label": c.label,
        "path": c.path,
        "score": float(c.score),
        "kind": c.kind,
        "duration": float(c.duration),
        "ucs_category": c.ucs_category,
    }


def sample_rate_of(edit: Edit) -> int:
    """The sequence's audio sample rate: the edit's, else 48 kHz."""
    return edit.sample_rate or DEFAULT_SAMPLE_RATE


def _start_rate(edit: Edit) -> tuple[FrameRate, int]:
    tc = edit.start_timecode or "00:00:00:00"
    rate = FrameRate(Fraction(edit.fps), edit.drop_frame or ";" in tc)
    return rate, timecode_to_frames(tc, rate)


# --------------------------------------------------------------------------- building


def to_otio(
    suggestions: Suggestions, flavour: str = "generic", *, loop_crossfade: float | None = None
) -> otio.schema.Timeline:
    """The suggestions as an OTIO timeline shaped for ``flavour`` (generic, resolve,
    premiere). Raises ``ValueError`` for an unknown flavour or overlapping placements.

    ``loop_crossfade`` (seconds), when given, replaces every placement's own, as the same
    argument of :func:`sfxmatch.mix.render_stems` does."""
    shape = fl.flavour_named(flavour)
    if loop_crossfade is not None and not (math.isfinite(loop_crossfade) and loop_crossfade >= 0):
        # As the mixer refuses it: a timeline that quietly differs from the mix is worse.
        raise TimelineError(f"loop_crossfade must be >= 0 seconds, not {loop_crossfade!r}")
    edit = suggestions.edit
    rate, start_frame = _start_rate(edit)
    fps = float(rate.fps)
    name = edit.name or "sfxmatch"
    timeline = otio.schema.Timeline(name=name)
    timeline.global_start_time = _rt(start_frame, rate)
    timeline.tracks.name = name
    timeline.metadata[NAMESPACE] = {
        "start_timecode": edit.start_timecode,
        "fps": f"{rate.fps.numerator}/{rate.fps.denominator}",
        "drop_frame": rate.drop_frame,
        "model_id": suggestions.model_id,
        "meaningless": suggestions.meaningless,
        "settings": {k: v for k, v in suggestions.settings},
        "width": edit.width,
        "height": edit.height,
        "sample_rate": sample_rate_of(edit),
    }
    link = _LinkIds()
    timeline.tracks.append(_video_track(edit, rate, shape, link))
    # The sequence's audio rate: the edit's own when it came from an editor that said it,
    # else 48 kHz, the rate of picture (never a library file's: an 8 kHz effect is resampled
    # by the editor, the sequence stays at 48 kHz).
    sample_rate = sample_rate_of(edit)
    for track_name in suggestions.tracks:
        placed = [p for p in suggestions.placements if p.track == track_name]
        track, _rates = _audio_track(track_name, placed, rate, shape, link, loop_crossfade)
        timeline.tracks.append(track)
    for marker in _markers(suggestions, rate):
        timeline.tracks.markers.append(marker)
    shape.shape_timeline(timeline, edit, fps, sample_rate)
    return timeline


class _LinkIds:
    def __init__(self) -> None:
        self.next = 0

    def __call__(self) -> int:
        self.next += 1
        return self.next


def _check_overlaps(track: str, spans: list[tuple[float, float, str]]) -> None:
    ordered = sorted(spans)
    for (a_start, a_end, a_name), (b_start, _b_end, b_name) in itertools.pairwise(ordered):
        if b_start < a_end - _EPS:
            raise TimelineError(
                f"placements overlap on track {track!r}: {a_name!r} ({a_start:.3f}-{a_end:.3f} s)"
                f" and {b_name!r} (from {b_start:.3f} s); give each its own track"
            )


_Item = tuple[FrameSpan, otio.schema.Clip, otio.schema.Transition | None]


def _fill(track: otio.schema.Track, items: list[_Item], rate: FrameRate) -> None:
    """Lay clips (each with the transition into it, if any) on ``track`` in record order."""
    cursor = 0
    for span, clip, transition in sorted(items, key=lambda it: it[0].start):
        if span.start < cursor:
            raise TimelineError(
                f"clips on track {track.name!r} collide at frame {span.start} after snapping "
                f"to the {rate} frame grid (each is at least one frame long)"
            )
        if span.start > cursor:
            track.append(
                otio.schema.Gap(source_range=_range(0, span.start - cursor, float(rate.fps)))
            )
        elif transition is not None and len(track) and isinstance(track[-1], otio.schema.Clip):
            track.append(transition)
        track.append(clip)
        cursor = span.end


def _video_track(
    edit: Edit, rate: FrameRate, shape: fl.TimelineFlavour, link: _LinkIds
) -> otio.schema.Track:
    fps = float(rate.fps)
    track = otio.schema.Track(name=VIDEO_TRACK, kind=otio.schema.TrackKind.Video)
    _check_overlaps(
        VIDEO_TRACK, [(c.record_start, c.record_end, c.name or c.path) for c in edit.clips]
    )
    items = []
    for clip in edit.clips:
        facts = media_facts(clip.path)
        origin = seconds_to_frames(facts.origin, rate)
        span = snap(clip.record_start, clip.duration, clip.source_in, rate)
        if facts.duration:  # the picture's whole frames (a whole video: never a frame past it)
            length = media_frames(facts.duration, rate)
            span = inside_media(span, length) or span
            length = max(length, span.source_start + span.duration)
        else:
            length = span.source_start + span.duration
        ref = otio.schema.ExternalReference(
            target_url=shape.media_url(clip.path),
            available_range=_range(origin, length, fps),
        )
        ref.name = fl.basename(clip.path)
        item = otio.schema.Clip(
            name=clip.name or fl.basename(clip.path),
            media_reference=ref,
            source_range=_range(origin + span.source_start, span.duration, fps),
        )
        item.metadata[NAMESPACE] = {
            "path": clip.path,
            "source_in": clip.source_in,
            "source_out": clip.source_out,
            "record_start": clip.record_start,
        }
        shape.shape_video_clip(item, link)
        items.append((span, item, None))
    _fill(track, items, rate)
    shape.shape_video_track(track)
    return track


def _audio_track(
    name: str,
    placements: list[Placement],
    rate: FrameRate,
    shape: fl.TimelineFlavour,
    link: _LinkIds,
    loop_crossfade: float | None = None,
) -> tuple[otio.schema.Track, list[int]]:
    fps = float(rate.fps)
    track = otio.schema.Track(name=name, kind=otio.schema.TrackKind.Audio)
    _check_overlaps(name, [(p.record_start, p.record_end, p.label or p.path) for p in placements])
    items: list[_Item] = []
    channels_seen: list[int] = []
    rates: list[int] = []
    for p in placements:
        facts = media_facts(p.path)
        file_length = p.source_duration or (facts.duration or 0.0)
        sample_rate = facts.sample_rate or DEFAULT_SAMPLE_RATE
        channels = facts.channels or DEFAULT_CHANNELS
        channels_seen.append(channels)
        rates.append(sample_rate)
        passes = loop_passes(p, file_length, loop_crossfade)
        # What the file has (the probe's length when it can be read; the index's otherwise),
        # in whole frames and whole samples: every range handed over lies inside it.
        known = facts.duration if facts.duration else file_length
        media = min(file_length, known) if file_length > 0 else known
        file_frames = media_frames(media, rate) if media > 0 else None
        spans = [
            inside_media(span, file_frames, slide=not p.loop)
            for span in pass_spans(p, passes, rate)
        ]
        seams = [None] + [
            _seam(spans[i - 1], spans[i], passes[i], rate, file_frames)
            for i in range(1, len(passes))
        ]
        origin = seconds_to_frames(facts.origin, rate)
        for index, (ps, span, seam) in enumerate(zip(passes, spans, seams, strict=True)):
            if span is None:  # nothing of the file left at this pass's in point
                continue
            cut_in, cut_length = ps.cut_in, ps.cut_out - ps.cut_in
            following = seams[index + 1] if index + 1 < len(seams) else None
            used = span.source_start + span.duration
            used += int(following.out_offset.value) if following is not None else 0
            if shape.exact_audio_in:
                whole = (
                    media_frames(media, sample_rate)
                    if media > 0
                    else math.ceil(used / rate.fps * sample_rate - _EPS)
                )
                available = _range(round(origin / rate.fps * sample_rate), whole, sample_rate)
            else:
                available = _range(origin, used if file_frames is None else file_frames, fps)
            ref = otio.schema.ExternalReference(
                target_url=shape.media_url(p.path), available_range=available
            )
            ref.name = fl.basename(p.path)
            ref.metadata[NAMESPACE] = {"sample_rate": sample_rate, "channels": channels}
            exact = exact_source_in(span, cut_in, ps.clip_source_start, rate)
            if shape.exact_audio_in and not p.loop:
                # The in point to the sample, at the file's own rate (the clip's place and
                # length stay whole frames): the sync point lands on its frame exactly.
                # (Loop passes stay on frames, as beds always have: their dissolves need
                # the media either side of each cut counted in frames.)
                in_samples = round(origin / rate.fps * sample_rate) + _exact_in_samples(
                    exact, span.duration, rate, media, sample_rate
                )
                source_range = otio.opentime.TimeRange(
                    otio.opentime.RationalTime(float(in_samples), float(sample_rate)),
                    _rt(span.duration, rate),
                )
            else:
                source_range = _range(origin + span.source_start, span.duration, fps)
            clip = otio.schema.Clip(
                name=p.label or fl.basename(p.path),
                media_reference=ref,
                source_range=source_range,
            )
            clip.metadata[NAMESPACE] = _placement_metadata(p, ps, len(passes))
            clip.metadata[NAMESPACE]["source_in"] = float(exact)  # seconds, not snapped
            clip.metadata[NAMESPACE]["source_in_frame"] = origin + span.source_start
            shape.shape_audio_clip(
                clip,
                p,
                cut_in=cut_in,
                cut_length=cut_length,
                rate=rate,
                channels=channels,
                link=link,
            )
            items.append((span, clip, seam))
    _fill(track, items, rate)
    track_channels = max(channels_seen, default=DEFAULT_CHANNELS)
    shape.shape_audio_track(track, track_channels)
    return track, rates


def _placement_metadata(p: Placement, ps: LoopPass, n_passes: int) -> dict[str, Any]:
    return {
        "kind": p.kind,
        "sound_id": p.sound_id,
        "label": p.label,
        "path": p.path,
        "score": float(p.score),
        "scene_index": p.scene_index,
        "gain_db": float(p.gain_db),
        "pan": float(p.pan),
        "fade_in": float(p.fade_in),
        "fade_out": float(p.fade_out),
        "loop": p.loop,
        "pass": ps.index,
        "passes": n_passes,
        # The exact (sub-frame) seconds of this clip; the timing fields are frame-snapped.
        "record_start": ps.cut_in,
        "duration": ps.cut_out - ps.cut_in,
        "source_start": ps.clip_source_start,
        "source_duration": p.source_duration,
        # Where the pass sounds in the mix, crossfades included (loop_passes).
        "pass_record_start": ps.record_start,
        "pass_record_end": ps.record_end,
        "pass_source_start": ps.source_start,
        "loop_crossfade": max(ps.crossfade_in, ps.crossfade_out),
        "placement": {
            "record_start": p.record_start,
            "duration": p.duration,
            "source_start": p.source_start,
            "loop_crossfade": p.loop_crossfade,
            "sync_point": p.sync_point,
        },
        "automation": [{"time": k.time, "gain_db": k.gain_db, "pan": k.pan} for k in p.automation],
        "alternatives": [_candidate(c) for c in p.alternatives],
    }


def _markers(suggestions: Suggestions, rate: FrameRate) -> Iterable[otio.schema.Marker]:
    fps = float(rate.fps)
    for scene in suggestions.scenes:
        start = seconds_to_frames(scene.start, rate)
        marker = otio.schema.Marker(
            name=f"Scene {scene.index + 1}",
            marked_range=_range(start, 0, fps),
            color=otio.schema.MarkerColor.CYAN,
        )
        marker.metadata[NAMESPACE] = {
            "type": "scene",
            "scene_index": scene.index,
            "start": scene.start,
            "end": scene.end,
            "ambience": [_candidate(c) for c in scene.ambience],
            "ambience_labels": [[label, float(s)] for label, s in scene.ambience_labels],
            "borrowed_from": scene.borrowed_from,
        }
        yield marker
        for effect in scene.effects:
            a = seconds_to_frames(effect.start, rate)
            b = max(a + 1, seconds_to_frames(effect.end, rate))
            marker = otio.schema.Marker(
                name=effect.label,
                marked_range=_range(a, b - a, fps),
                color=otio.schema.MarkerColor.ORANGE,
            )
            marker.metadata[NAMESPACE] = {
                "type": "effect",
                "label": effect.label,
                "scene_index": effect.scene_index,
                "start": effect.start,
                "end": effect.end,
                "confidence": float(effect.confidence),
                "rule": effect.rule,
                "candidates": [_candidate(c) for c in effect.candidates],
            }
            yield marker


# --------------------------------------------------------------------------- files


def for_fcp_xml(timeline: otio.schema.Timeline) -> otio.schema.Timeline:
    """A copy ready for the ``fcp_xml`` adapter: ``file://localhost`` percent-encoded path
    URLs, every available range at the timeline rate (FCP7 ``<file>`` rates are video
    timebases) and audio cross fades for the transitions between loop passes."""
    out = copy.deepcopy(timeline)
    rate = out.global_start_time.rate
    stated = out.metadata.get(NAMESPACE, {}).get("fps")
    fps = Fraction(str(stated)) if stated else Fraction(rate).limit_denominator(1001)
    for track in out.audio_tracks():
        for item in list(track):
            if isinstance(item, otio.schema.Transition):
                _fcp_transition(track, item)
    for clip in out.find_clips():
        ref = clip.media_reference
        if isinstance(ref, otio.schema.ExternalReference):
            path = fl.url_to_path(ref.target_url)
            ref.target_url = fl.path_to_url(path, localhost=True)
            info = ref.metadata.get(NAMESPACE, {})
            ar = ref.available_range
            if ar is not None and ar.start_time.rate != rate:
                # The file's whole frames (media_frames): FCP7 <file><duration> never claims
                # a frame the file does not have in full.
                ref.available_range = otio.opentime.TimeRange(
                    ar.start_time.rescaled_to(rate).round(),
                    otio.opentime.RationalTime(
                        media_frames(Fraction(ar.duration.to_seconds()), fps), rate
                    ),
                )
            _frame_source_range(clip, rate)
            _clamp_to_media(clip)
            if "channels" in info:  # an audio clip: say which channels Premiere should take
                channels = int(info["channels"])
                ref.metadata["fcp_xml"] = {
                    "media": {
                        "audio": {
                            "samplecharacteristics": {
                                "depth": 16,
                                "samplerate": int(info["sample_rate"]),
                            },
                            "channelcount": channels,
                        }
                    }
                }
                clip.metadata["fcp_xml"] = {
                    "sourcetrack": {"mediatype": "audio", "trackindex": 1},
                    **_ppro_ticks(clip, fps),
                }
    return out


PPRO_TICKS_PER_SECOND = 254_016_000_000
"""Premiere Pro's time unit: a whole number of ticks for every frame rate and sample rate."""


def _frame_source_range(clip: otio.schema.Clip, rate: float) -> None:
    """A source range at a sample rate (the generic flavour's exact in points) laid on the
    timeline's frames: FCP7 ``<in>``/``<out>`` count frames (the exact in point rides along
    as Premiere's ``pproTicksIn``)."""
    sr = clip.source_range
    if sr is None or sr.start_time.rate == rate:
        return
    frame = clip.metadata.get(NAMESPACE, {}).get("source_in_frame")  # the frame rule's
    start = otio.opentime.RationalTime(float(frame), rate) if frame is not None else None
    clip.source_range = otio.opentime.TimeRange(
        start or sr.start_time.rescaled_to(rate).round(), sr.duration.rescaled_to(rate).round()
    )


def _clamp_to_media(clip: otio.schema.Clip) -> None:
    """A frame-laid source range kept inside the media's (floored) available range: laying
    an exact in point on its nearest frame may reach a frame past the file's last whole one.
    The in point moves back to fit (the exact one rides along as ``pproTicksIn``); what still
    does not fit is cut off the clip's end and left as a gap, so nothing after it moves."""
    sr, ar = clip.source_range, clip.media_reference.available_range
    if sr is None or ar is None or sr.start_time.rate != ar.start_time.rate:
        return
    rate = sr.start_time.rate
    start, length = round(sr.start_time.value), round(sr.duration.value)
    first, end = round(ar.start_time.value), round(ar.start_time.value + ar.duration.value)
    if start + length <= end:
        return
    start = max(first, end - length)
    kept = max(1, min(length, end - start))
    clip.source_range = otio.opentime.TimeRange(
        otio.opentime.RationalTime(float(start), rate),
        otio.opentime.RationalTime(float(kept), rate),
    )
    if kept < length and isinstance(clip.parent(), otio.schema.Track):
        track = clip.parent()
        track.insert(
            track.index(clip) + 1,
            otio.schema.Gap(source_range=_range(0, length - kept, rate)),
        )


def _ppro_ticks(clip: otio.schema.Clip, fps: Fraction) -> dict[str, int]:
    """``pproTicksIn``/``pproTicksOut``: Premiere's own sub-frame source in and out points
    (ticks since the start of the media), from the clip's exact in point. FCP7 itself reads
    the frames of ``<in>``/``<out>`` (within half a frame)."""
    info = clip.metadata.get(NAMESPACE, {})
    if "source_in" not in info or clip.source_range is None:
        return {}
    start = round(Fraction(float(info["source_in"])) * PPRO_TICKS_PER_SECOND)
    length = Fraction(round(clip.source_range.duration.value)) / fps
    return {"pproTicksIn": start, "pproTicksOut": start + round(length * PPRO_TICKS_PER_SECOND)}


_FCP_AUDIO_CROSSFADE = {
    "name": "Cross Fade (+3dB)",
    "effectid": "KGAudioTransCrossFade3dB",
    "effecttype": "transition",
    "mediatype": "audio",
}


def _fcp_transition(track: otio.schema.Track, item: otio.schema.Transition) -> None:
    """FCP7 XML knows dissolves centred on the cut (an uneven one would move the cut on
    reading): both sides become the shorter one. And the adapter would write a video "Cross
    Dissolve"; an audio track wants FCP7's equal-power audio cross fade (the mixer's curve)."""
    half = min(item.in_offset, item.out_offset)
    if half.value < 1:
        track.remove(item)
        return
    item.in_offset = item.out_offset = half
    item.metadata["fcp_xml"] = {"effect": dict(_FCP_AUDIO_CROSSFADE)}


def _xml_string(timeline: otio.schema.Timeline) -> str:
    import xml.etree.ElementTree as ET

    text = otio.adapters.write_to_string(for_fcp_xml(timeline), adapter_name="fcp_xml")
    root = ET.fromstring(text)
    meta = timeline.metadata.get(NAMESPACE, {})
    for seq in root.iter("sequence"):
        _sequence_settings(seq, timeline, meta)
    if bool(meta.get("drop_frame", False)):
        # The adapter writes every timecode non-drop unless told otherwise through metadata
        # that it would also copy into the XML; fix the sequence's start timecode here.
        from sfxmatch.timecode import frames_to_timecode

        rate = FrameRate(Fraction(meta["fps"]), True)
        for seq in root.iter("sequence"):
            tc = seq.find("./timecode")
            if tc is None or tc.find("./frame") is None:
                continue
            frame = int(tc.findtext("./frame") or 0)
            tc.find("./string").text = frames_to_timecode(frame, rate)  # type: ignore[union-attr]
            tc.find("./displayformat").text = "DF"  # type: ignore[union-attr]
    ET.indent(root, space="    ")
    body = ET.tostring(root, encoding="unicode")
    return '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE xmeml>\n' + body + "\n"


SEQUENCE_AUDIO_DEPTH = 24
"""Bits per sample of the sequence's audio, as Premiere's sequences of picture are."""


def _sub(parent: Any, tag: str, text: str | None = None, *, first: bool = False) -> Any:
    import xml.etree.ElementTree as ET

    element = ET.Element(tag)
    element.text = text
    if first:
        parent.insert(0, element)
    else:
        parent.append(element)
    return element


def _sequence_settings(seq: Any, timeline: otio.schema.Timeline, meta: Any) -> None:
    """What Premiere reads a sequence's settings from (its own exports write them; the
    adapter leaves ``<format/>`` empty): the video format's frame size, rate and square
    pixels, the audio format's 48 kHz (or the edit's rate) at 24 bits, and per track its
    name (``MZ.TrackName``, as Premiere writes it), ``<enabled>`` and ``<locked>``."""
    import copy as _copy

    media = seq.find("./media")
    if media is None:
        return
    video, audio = media.find("./video"), media.find("./audio")
    if video is not None:
        fmt = video.find("./format")
        if fmt is None:
            fmt = _sub(video, "format", first=True)
        for child in list(fmt):
            fmt.remove(child)
        chars = _sub(fmt, "samplecharacteristics")
        rate = seq.find("./rate")
        if rate is not None:
            chars.append(_copy.deepcopy(rate))
        width, height = int(meta.get("width", 0) or 0), int(meta.get("height", 0) or 0)
        if width and height:
            _sub(chars, "width", str(width))
            _sub(chars, "height", str(height))
        _sub(chars, "anamorphic", "FALSE")
        _sub(chars, "pixelaspectratio", "square")
        _sub(chars, "fielddominance", "none")
    if audio is not None:
        fmt = audio.find("./format")
        if fmt is None:
            fmt = _sub(audio, "format", first=True)
        chars = fmt.find("./samplecharacteristics")
        if chars is None:
            chars = _sub(fmt, "samplecharacteristics")
        for child in list(chars):
            chars.remove(child)
        _sub(chars, "depth", str(SEQUENCE_AUDIO_DEPTH))
        sample_rate = int(meta.get("sample_rate", 0) or DEFAULT_SAMPLE_RATE)
        _sub(chars, "samplerate", str(sample_rate))
    kinds = ((video, list(timeline.video_tracks())), (audio, list(timeline.audio_tracks())))
    for section, tracks in kinds:
        if section is None:
            continue
        for element, track in zip(section.findall("./track"), tracks, strict=False):
            if track.name:
                element.set("MZ.TrackName", track.name)
            for tag, value in (("enabled", track.enabled), ("locked", False)):
                if element.find(f"./{tag}") is None:
                    _sub(element, tag, "TRUE" if value else "FALSE")


def timeline_to_string(timeline: otio.schema.Timeline, suffix: str) -> str:
    """Serialise for a file suffix: ``.otio`` (otio_json) or ``.xml`` (FCP7 xmeml)."""
    suffix = suffix.lower()
    if suffix == ".otio":
        return otio.adapters.write_to_string(timeline, adapter_name="otio_json")
    if suffix == ".xml":
        return _xml_string(timeline)
    raise TimelineError(f"timeline files are .otio or .xml (FCP7), not {suffix or 'no suffix'!r}")


def write_timeline(
    suggestions: Suggestions,
    path: str | Path,
    flavour: str = "generic",
    *,
    loop_crossfade: float | None = None,
) -> Path:
    """Write the suggestions' timeline to ``path`` atomically (a temporary file beside it,
    then a rename); the suffix picks the format. Returns the path."""
    target = Path(path)
    timeline = to_otio(suggestions, flavour, loop_crossfade=loop_crossfade)
    text = timeline_to_string(timeline, target.suffix)
    write_text_atomic(target, text)
    return target
