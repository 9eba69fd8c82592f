"""An editor's timeline (OTIO, or FCP7 XML as Premiere exports it) → an ``Edit``.

Reads one video track (the first, or the one chosen by index or name): each enabled clip
becomes a ``SourceClip`` with its media path, source in/out (seconds into the file, measured
from the media's own start timecode, i.e. ``available_range.start_time``) and record start
(seconds from the start of the timeline). Gaps only advance time; disabled clips are
skipped; transitions are ignored and listed in ``ReadResult.notes``. Media URLs are decoded
(``file://`` URIs percent-decoded; Windows drive paths keep their drive).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import opentimelineio as otio

from sfxmatch.errors import MediaError, MissingFileError
from sfxmatch.suggestions import Edit, SourceClip
from sfxmatch.timecode import FrameRate, frames_to_timecode, rate_from_float
from sfxmatch.timeline import flavours as fl

__all__ = ["ReadResult", "read_edit", "read_edit_with_notes", "read_timeline"]


@dataclass(frozen=True)
class ReadResult:
    edit: Edit
    notes: tuple[str, ...]


def read_timeline(path: str | Path) -> otio.schema.Timeline:
    """Load an ``.otio`` or FCP7 ``.xml`` file as an OTIO timeline (the first one in it).
    Raises ``MediaError`` naming the file when it is missing or not a timeline."""
    p = Path(path)
    if not p.is_file():
        raise (MediaError if p.exists() else MissingFileError)(p, "no such timeline file")
    suffix = p.suffix.lower()
    adapter = {".otio": "otio_json", ".xml": "fcp_xml"}.get(suffix)
    if adapter is None:
        raise MediaError(p, f"timeline files are .otio or FCP7 .xml, not {suffix or 'no suffix'}")
    try:
        text = p.read_text(encoding="utf-8")
        result = otio.adapters.read_from_string(text, adapter_name=adapter)
    except (OSError, UnicodeError) as exc:
        raise MediaError(p, f"cannot be read ({exc})") from None
    except Exception as exc:  # the adapters raise many kinds on malformed input
        kind = "OTIO" if adapter == "otio_json" else "FCP7 XML"
        raise MediaError(
            p, f"is not a readable {kind} timeline ({type(exc).__name__}: {exc})"
        ) from None
    if isinstance(result, otio.schema.SerializableCollection):
        timelines = list(result.find_children(descended_from_type=otio.schema.Timeline))
        if not timelines:
            raise MediaError(p, "holds no timeline (no sequence)")
        result = timelines[0]
    if not isinstance(result, otio.schema.Timeline):
        raise MediaError(p, f"holds a {type(result).__name__}, not a timeline")
    return result


def read_edit(path: str | Path, *, track: int | str | None = None) -> Edit:
    """The picture edit of a timeline file: see the module docstring."""
    return read_edit_with_notes(path, track=track).edit


def read_edit_with_notes(path: str | Path, *, track: int | str | None = None) -> ReadResult:
    """Like :func:`read_edit`, with notes on what was skipped (transitions, disabled clips)."""
    p = Path(path)
    timeline = read_timeline(p)
    videos = list(timeline.video_tracks())
    if not videos:
        raise ValueError(f"{p}: the timeline has no video track")
    chosen = _choose(videos, track, p)
    rate = _timeline_rate(timeline, chosen)
    notes: list[str] = []
    clips: list[SourceClip] = []
    for index, item in enumerate(chosen):
        if isinstance(item, otio.schema.Transition):
            notes.append(f"transition {item.name or index!r} ignored (cuts only)")
            continue
        if not isinstance(item, otio.schema.Clip):
            continue
        name = item.name or ""
        if not item.enabled or _fcp_disabled(item):
            notes.append(f"disabled clip {name!r} skipped")
            continue
        clip = _source_clip(item, chosen.range_of_child_at_index(index), p)
        if clip is not None:
            clips.append(clip)
        else:
            notes.append(f"clip {name!r} has no media file and was skipped")
    fps = rate.fps
    start_tc = _start_timecode(timeline, rate)
    meta = timeline.metadata.get("sfxmatch", {})
    width = int(meta.get("width", 0) or 0)
    height = int(meta.get("height", 0) or 0)
    ppro = timeline.tracks.metadata.get(fl.PREMIERE, {})
    res = ppro.get("VideoResolution") if hasattr(ppro, "get") else None
    if res and not width:
        width, height = int(res.get("width", 0)), int(res.get("height", 0))
    sample_rate = int(meta.get("sample_rate", 0) or 0)
    if not sample_rate and hasattr(ppro, "get") and ppro.get("AudioFrameRate"):
        sample_rate = round(float(ppro["AudioFrameRate"]))
    edit = Edit(
        clips=tuple(clips),
        fps=fps,
        width=width,
        height=height,
        start_timecode=start_tc,
        name=timeline.name or "",
        drop_frame=rate.drop_frame,
        sample_rate=sample_rate,
    )
    return ReadResult(edit, tuple(notes))


def _fcp_disabled(item: otio.schema.Clip) -> bool:
    """FCP7 ``<enabled>FALSE</enabled>``, which the fcp_xml adapter keeps as metadata."""
    fcp = item.metadata.get("fcp_xml", {})
    value = fcp.get("enabled") if hasattr(fcp, "get") else None
    return isinstance(value, str) and value.strip().upper() == "FALSE"


def _choose(videos: list[otio.schema.Track], track: int | str | None, p: Path) -> otio.schema.Track:
    if track is None:
        return videos[0]
    if isinstance(track, int):
        if not 0 <= track < len(videos):
            raise ValueError(f"{p}: no video track {track} (it has {len(videos)})")
        return videos[track]
    for t in videos:
        if t.name == track:
            return t
    names = ", ".join(repr(t.name) for t in videos)
    raise ValueError(f"{p}: no video track named {track!r} (there are {names})")


def _timeline_rate(timeline: otio.schema.Timeline, track: otio.schema.Track) -> FrameRate:
    meta = timeline.metadata.get("sfxmatch", {})
    if "fps" in meta:
        return FrameRate(Fraction(str(meta["fps"])), bool(meta.get("drop_frame", False)))
    if timeline.global_start_time is not None:
        value = timeline.global_start_time.rate
    else:
        clips = list(track.find_clips())
        value = clips[0].source_range.duration.rate if clips and clips[0].source_range else 24.0
    fps = rate_from_float(float(value))
    return FrameRate(fps, _drop_frame_flag(timeline, fps))


def _drop_frame_flag(timeline: otio.schema.Timeline, fps: Fraction) -> bool:
    fcp = timeline.metadata.get("fcp_xml", {})
    tc = fcp.get("timecode") if hasattr(fcp, "get") else None
    if tc is not None and hasattr(tc, "get") and tc.get("displayformat") == "DF":
        return FrameRate(fps).is_ntsc
    return False


def _start_timecode(timeline: otio.schema.Timeline, rate: FrameRate) -> str:
    meta = timeline.metadata.get("sfxmatch", {})
    if meta.get("start_timecode"):
        return str(meta["start_timecode"])
    start = timeline.global_start_time
    frames = round(start.value_rescaled_to(float(rate.fps))) if start is not None else 0
    try:
        return frames_to_timecode(max(0, frames), rate)
    except ValueError:
        return frames_to_timecode(max(0, frames), FrameRate(rate.fps))


def _source_clip(
    clip: otio.schema.Clip, record: otio.opentime.TimeRange, p: Path
) -> SourceClip | None:
    ref = clip.media_reference
    if not isinstance(ref, otio.schema.ExternalReference) or not ref.target_url:
        return None
    path = fl.url_to_path(ref.target_url)
    source = clip.source_range or clip.trimmed_range()
    origin = ref.available_range.start_time.to_seconds() if ref.available_range else 0.0
    source_in = source.start_time.to_seconds() - origin
    if source_in < 0:
        if source_in < -1e-6:
            raise ValueError(
                f"{p}: clip {clip.name!r} starts {-source_in:.3f} s before its media's start"
            )
        source_in = 0.0
    duration = source.duration.to_seconds()
    if duration <= 0:
        return None
    return SourceClip(
        path=path,
        source_in=source_in,
        source_out=source_in + duration,
        record_start=max(0.0, record.start_time.to_seconds()),
        name=clip.name or fl.basename(path),
    )
