"""An independent renderer of exported timelines: FFmpeg places each audio clip by the times
the timeline file states, and nothing of sfxmatch positions a sample.

- ``.otio``: read with OpenTimelineIO itself; a clip's record start is its place in its
  track, its in point its source range's start less its media's available range's start.
- FCP7 XML: parsed here with ElementTree from the ``xmeml`` alone: a clipitem's ``<start>``
  (frames of the sequence), ``<in>``/``<out>`` (frames of the media) or, where present,
  Premiere's ``<pproTicksIn>`` (254016000000 ticks a second), and its ``<file>``'s path URL.

:func:`render_clips` renders each clip, the clip alone at its place on the timeline at
48 kHz: ``atrim`` by samples at the file's own rate (which ``ffprobe`` reads), ``aresample``,
then ``adelay`` to the record start.
"""

from __future__ import annotations

import functools
import subprocess
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
import opentimelineio as otio

RATE = 48000
TICKS = 254016000000


@dataclass(frozen=True)
class TimelineClip:
    """One audio clip as a timeline file states it, in seconds."""

    path: str
    record: Fraction  # where it starts on the timeline
    source: Fraction  # where in the file it starts
    duration: Fraction


def _path(url: str) -> str:
    parsed = urlparse(url)
    return unquote(parsed.path) if parsed.scheme in ("file", "") else url


def clips_from_otio(path: Path) -> list[TimelineClip]:
    timeline = otio.adapters.read_from_file(str(path))
    out = []
    for track in timeline.audio_tracks():
        for clip in track.find_clips():
            ref = clip.media_reference
            record = clip.range_in_parent().start_time
            start = clip.source_range.start_time
            origin = ref.available_range.start_time if ref.available_range else None
            source = start - origin.rescaled_to(start.rate) if origin is not None else start
            out.append(
                TimelineClip(
                    _path(ref.target_url),
                    Fraction(record.value) / Fraction(record.rate),
                    Fraction(source.value) / Fraction(source.rate),
                    Fraction(clip.source_range.duration.value)
                    / Fraction(clip.source_range.duration.rate),
                )
            )
    return out


def _rate(element: ET.Element) -> Fraction:
    base = Fraction(int(element.findtext("./rate/timebase") or "0"))
    ntsc = (element.findtext("./rate/ntsc") or "FALSE").strip().upper() == "TRUE"
    return base * Fraction(1000, 1001) if ntsc else base


def clips_from_fcp_xml(path: Path) -> list[TimelineClip]:
    root = ET.parse(path).getroot()
    sequence = root.find(".//sequence")
    assert sequence is not None, "no sequence"
    fps = _rate(sequence)
    files: dict[str, str] = {}
    for f in root.iter("file"):
        url = f.findtext("pathurl")
        if url and f.get("id"):
            files[f.attrib["id"]] = _path(url)
    out = []
    for track in sequence.findall("./media/audio/track"):
        for item in track.findall("clipitem"):
            start, end = int(item.findtext("start") or -1), int(item.findtext("end") or -1)
            first, last = int(item.findtext("in") or 0), int(item.findtext("out") or 0)
            f = item.find("file")
            assert f is not None and start >= 0 and end > start
            url = f.findtext("pathurl")
            path = _path(url) if url else files[f.attrib["id"]]
            ticks = item.findtext("pproTicksIn")
            source = Fraction(int(ticks), TICKS) if ticks else Fraction(first) / fps
            out.append(
                TimelineClip(path, Fraction(start) / fps, source, Fraction(last - first) / fps)
            )
    return out


@functools.lru_cache(maxsize=256)
def native_rate(path: str) -> int:
    cmd = ["ffprobe", "-v", "error", "-select_streams", "a:0", "-show_entries"]
    cmd += ["stream=sample_rate", "-of", "default=noprint_wrappers=1:nokey=1", path]
    out = subprocess.run(cmd, capture_output=True, check=True, text=True).stdout
    return int(out.split()[0])


def render_clips(clips: list[TimelineClip], folder: Path) -> list[np.ndarray]:
    """Each clip alone, mono float32 at 48 kHz, from the start of the timeline."""
    folder.mkdir(parents=True, exist_ok=True)
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-y"]
    graph, maps = [], []
    for k, clip in enumerate(clips):
        rate = native_rate(clip.path)
        first = round(clip.source * rate)
        count = round(clip.duration * rate)
        delay = round(clip.record * RATE)
        cmd += ["-i", clip.path]
        graph.append(
            f"[{k}:a]atrim=start_sample={first}:end_sample={first + count},"
            f"asetpts=PTS-STARTPTS,aresample={RATE},adelay=delays={delay}S:all=1[c{k}]"
        )
        maps += ["-map", f"[c{k}]", "-ac", "1", "-f", "f32le", str(folder / f"{k}.f32")]
    subprocess.run([*cmd, "-filter_complex", ";".join(graph), *maps], check=True)
    return [np.fromfile(folder / f"{k}.f32", dtype="<f4") for k in range(len(clips))]


def decode(path: str | Path) -> np.ndarray:
    """Mono float32 at 48 kHz, as FFmpeg's command line decodes the file."""
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-ac", "1"]
    cmd += ["-ar", str(RATE), "-f", "f32le", "-"]
    return np.frombuffer(subprocess.run(cmd, capture_output=True, check=True).stdout, np.float32)
