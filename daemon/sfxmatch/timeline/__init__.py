"""Timelines in and out: timecode maths, OTIO / FCP7 XML export per editor, edit import.

- :mod:`~sfxmatch.timecode`: seconds ↔ frames ↔ SMPTE timecode (DF and NDF).
- :mod:`~sfxmatch.timeline.export`: ``to_otio`` / ``write_timeline`` (``.otio`` and FCP7
  ``.xml``), shaped by a flavour object (:mod:`~sfxmatch.timeline.flavours`: generic,
  resolve, premiere, registered by name).
- :mod:`~sfxmatch.timeline.importer`: ``read_edit`` from an editor's ``.otio`` / ``.xml``.
"""

from sfxmatch.timecode import (
    FrameRate,
    frames_to_seconds,
    frames_to_timecode,
    parse_rate,
    seconds_to_frames,
    seconds_to_timecode,
    timecode_to_frames,
    timecode_to_seconds,
)
from sfxmatch.timeline.export import NAMESPACE, timeline_to_string, to_otio, write_timeline
from sfxmatch.timeline.flavours import (
    FLAVOURS,
    Flavour,
    TimelineFlavour,
    flavour_named,
    path_to_url,
    url_to_path,
)
from sfxmatch.timeline.importer import ReadResult, read_edit, read_edit_with_notes, read_timeline

__all__ = [
    "FLAVOURS",
    "NAMESPACE",
    "Flavour",
    "FrameRate",
    "ReadResult",
    "TimelineFlavour",
    "flavour_named",
    "frames_to_seconds",
    "frames_to_timecode",
    "parse_rate",
    "path_to_url",
    "read_edit",
    "read_edit_with_notes",
    "read_timeline",
    "seconds_to_frames",
    "seconds_to_timecode",
    "timecode_to_frames",
    "timecode_to_seconds",
    "timeline_to_string",
    "to_otio",
    "url_to_path",
    "write_timeline",
]
