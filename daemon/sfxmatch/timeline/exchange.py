"""The timelines free DaVinci Resolve exports (File > Export > Timeline), read as an ``Edit``.

Free Resolve 19.1+ has no script dialogs and free 21.1 runs no scripts from its menu at all;
what every Resolve can do is export its timeline and import one. ``sfxmatch suggest --edit``
reads these exports (OTIO and FCP7 XML go through :mod:`sfxmatch.timeline.importer`):

- **FCPXML 1.x** (1.8 to 1.11; ``.fcpxml``): the sequence's ``format`` gives the rate
  (``frameDuration``) and size, ``tcStart``/``tcFormat`` its start timecode and drop-frame;
  each clip of the spine (``asset-clip``, or a ``clip`` holding a ``video``/``asset-clip``)
  gives its asset's file (``src`` on the asset, or on its ``media-rep`` from 1.9 on), its
  place (``offset`` less ``tcStart``) and its in point (``start`` less the asset's own
  ``start``, its timecode origin). Gaps and connected clips (other lanes) only pass time.
  (OTIO's FCPXML adapter does not read ``media-rep``, so Resolve's 1.9+ exports lose their
  media there.)
- **CMX 3600 EDL** (``.edl``): each video event's source in/out and record in (``FCM: DROP
  FRAME`` makes it drop-frame), its file from ``* SOURCE FILE:`` when that names one, else
  ``* FROM CLIP NAME:`` looked up beside the EDL. An EDL states no frame rate: drop-frame
  means 29.97; otherwise the rate given (``--edit-fps``), else the first clip's own. The
  timeline starts at the hour of its first record in (Resolve's timelines start at
  01:00:00:00). (OTIO's CMX adapter drops the first event's record in, which is what places
  the cut.)

Write the suggestions back with ``-o OUT.otio --flavour resolve`` and import that with File >
Import > Timeline (plugins/resolve/README.md).
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from fractions import Fraction
from pathlib import Path

from sfxmatch.errors import MediaError
from sfxmatch.suggestions import Edit, SourceClip
from sfxmatch.timecode import (
    FrameRate,
    frames_to_timecode,
    parse_rate,
    timecode_to_frames,
)
from sfxmatch.timeline import flavours as fl

__all__ = ["read_edl", "read_fcpxml"]


def _time(text: str | None) -> Fraction:
    """An FCPXML time: ``3600/1s``, ``1001/30000s``, ``10s`` or ``0s``."""
    if not text:
        return Fraction(0)
    value = text.strip().removesuffix("s")
    return Fraction(value)


def _rate(frame_duration: Fraction) -> Fraction:
    fps = 1 / frame_duration
    for base in (24, 30, 48, 60, 120):
        if abs(fps - Fraction(base * 1000, 1001)) < Fraction(1, 1000):
            return Fraction(base * 1000, 1001)
    return fps


def read_fcpxml(path: str | os.PathLike[str]) -> Edit:
    """The picture edit of an FCPXML 1.x file (see the module notes). MediaError names the
    file when it is not one."""
    p = Path(path)
    try:
        root = ET.parse(p).getroot()
    except (OSError, ET.ParseError) as exc:
        raise MediaError(p, f"is not a readable FCPXML file ({exc})") from None
    if root.tag != "fcpxml":
        raise MediaError(p, "is not FCPXML (no <fcpxml> root)")
    formats = {f.get("id"): f for f in root.iter("format")}
    assets = {}
    for asset in root.iter("asset"):
        rep = asset.find("media-rep")
        src = asset.get("src") or (rep.get("src") if rep is not None else None)
        assets[asset.get("id")] = (src, _time(asset.get("start")))
    sequence = next(root.iter("sequence"), None)
    if sequence is None:
        raise MediaError(p, "holds no sequence")
    fmt = formats.get(sequence.get("format"))
    if fmt is None or not fmt.get("frameDuration"):
        raise MediaError(p, "its sequence has no format with a frame duration")
    fps = _rate(_time(fmt.get("frameDuration")))
    drop = sequence.get("tcFormat") == "DF" and FrameRate(fps).is_ntsc
    rate = FrameRate(fps, drop)
    tc_start = _time(sequence.get("tcStart"))
    start_frame = round(tc_start * fps)
    project = next(root.iter("project"), None)
    name = project.get("name", "") if project is not None else ""
    spine = sequence.find("spine")
    clips: list[SourceClip] = []
    for item in list(spine) if spine is not None else []:
        if item.get("enabled", "1") == "0":
            continue
        ref_item = item
        if item.tag == "clip":  # a clip wrapping its media
            inner = item.find("video")
            inner = inner if inner is not None else item.find("asset-clip")
            if inner is None:
                continue
            ref_item = inner
        elif item.tag != "asset-clip":
            continue  # gaps, titles, generators
        src, asset_start = assets.get(ref_item.get("ref"), (None, Fraction(0)))
        if not src:
            continue
        offset = _time(item.get("offset"))
        start = _time(item.get("start")) if item.get("start") else asset_start
        if ref_item is not item and ref_item.get("start"):
            start = _time(ref_item.get("start"))
        duration = _time(item.get("duration"))
        if duration <= 0:
            continue
        media = fl.url_to_path(src)
        source_in = max(Fraction(0), start - asset_start)
        clips.append(
            SourceClip(
                path=media,
                source_in=float(source_in),
                source_out=float(source_in + duration),
                record_start=float(max(Fraction(0), offset - tc_start)),
                name=item.get("name") or fl.basename(media),
            )
        )
    if not clips:
        raise MediaError(p, "holds no video clip with a media file")
    return Edit(
        clips=tuple(clips),
        fps=fps,
        width=int(fmt.get("width", 0) or 0),
        height=int(fmt.get("height", 0) or 0),
        start_timecode=frames_to_timecode(start_frame, rate),
        name=name,
        drop_frame=drop,
    )


_EVENT = re.compile(
    r"^\s*(\d{1,6})\s+(\S+)\s+(\S+)\s+(\S+)(?:\s+\d+)?\s+"
    r"(\d\d[:;.]\d\d[:;.]\d\d[:;.]\d\d)\s+(\d\d[:;.]\d\d[:;.]\d\d[:;.]\d\d)\s+"
    r"(\d\d[:;.]\d\d[:;.]\d\d[:;.]\d\d)\s+(\d\d[:;.]\d\d[:;.]\d\d[:;.]\d\d)\s*$"
)


def read_edl(path: str | os.PathLike[str], fps: Fraction | str | None = None) -> Edit:
    """The picture edit of a CMX 3600 EDL (see the module notes for its rate and media).
    MediaError names the file when it is not one, or when a clip's file cannot be found."""
    p = Path(path)
    try:
        lines = p.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        raise MediaError(p, f"cannot be read ({exc.strerror or exc})") from None
    title, drop = "", False
    events: list[dict[str, str]] = []
    for line in lines:
        head = line.strip()
        if head.upper().startswith("TITLE:"):
            title = head.split(":", 1)[1].strip()
        elif head.upper().startswith("FCM:"):
            drop = "DROP" in head.upper() and "NON" not in head.upper()
        elif match := _EVENT.match(line):
            kind, transition = match.group(3).upper(), match.group(4).upper()
            events.append(
                {
                    "video": "V" if kind.startswith("V") else "",
                    "cut": transition,
                    "src_in": match.group(5),
                    "src_out": match.group(6),
                    "rec_in": match.group(7),
                    "rec_out": match.group(8),
                }
            )
        elif events and head.startswith("*"):
            note = head.lstrip("* ")
            for key, field in (("FROM CLIP NAME:", "clip"), ("SOURCE FILE:", "file")):
                if note.upper().startswith(key):
                    events[-1][field] = note[len(key) :].strip()
    events = [e for e in events if e["video"]]
    if not events:
        raise MediaError(p, "holds no video events (is it a CMX 3600 EDL?)")
    media = [_edl_media(p, e) for e in events]
    rate_fps = _edl_rate(p, fps, drop, media[0])
    rate = FrameRate(rate_fps, drop)
    first = min(
        timecode_to_frames(e["rec_in"].replace(";", ":"), FrameRate(rate_fps)) for e in events
    )
    hour = rate.nominal * 3600
    start_frame = timecode_to_frames(
        frames_to_timecode(first - first % hour, FrameRate(rate_fps)), rate
    )
    from sfxmatch.timeline.export import media_facts

    clips = []
    for e, file in zip(events, media, strict=True):
        origin = Fraction(media_facts(file).origin)  # source timecodes are the media's own
        src_in, src_out, rec_in = (
            timecode_to_frames(e[k].replace(";", ":") if not drop else _df(e[k]), rate)
            for k in ("src_in", "src_out", "rec_in")
        )
        if src_out <= src_in:
            continue
        source_in = max(Fraction(0), Fraction(src_in) / rate_fps - origin)
        clips.append(
            SourceClip(
                path=file,
                source_in=float(source_in),
                source_out=float(source_in + Fraction(src_out - src_in) / rate_fps),
                record_start=float(Fraction(max(0, rec_in - start_frame)) / rate_fps),
                name=e.get("clip") or fl.basename(file),
            )
        )
    return Edit(
        clips=tuple(clips),
        fps=rate_fps,
        start_timecode=frames_to_timecode(start_frame, rate),
        name=title,
        drop_frame=drop,
    )


def _df(tc: str) -> str:
    return tc[:-3].replace(";", ":").replace(".", ":") + ";" + tc[-2:]


def _edl_media(p: Path, event: dict[str, str]) -> str:
    named = event.get("file")
    if named and os.path.isabs(named) and os.path.exists(named):
        return named
    for candidate in (named, event.get("clip")):
        if candidate and (p.parent / os.path.basename(candidate)).is_file():
            return str(p.parent / os.path.basename(candidate))
    what = event.get("clip") or named or "an event"
    raise MediaError(
        p, f"the file of {what!r} is not beside the EDL (an EDL names clips, not their folders)"
    )


def _edl_rate(p: Path, fps: Fraction | str | None, drop: bool, first_media: str) -> Fraction:
    if fps is not None:
        return parse_rate(str(fps)).fps if not isinstance(fps, Fraction) else fps
    if drop:
        return Fraction(30000, 1001)
    from sfxmatch.media import probe

    try:
        video = probe(first_media).video
    except MediaError:
        video = None
    if video is None or not video.fps:
        raise MediaError(p, "an EDL states no frame rate: give it (--edit-fps)")
    return Fraction(video.fps)
