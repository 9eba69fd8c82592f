"""A stand-in for DaVinci Resolve's scripting API, for testing the Resolve script here.

Written from the Developer/Scripting README's signatures and from what users measured on real
Resolve (DESIGN.md, "Facts that shape the build"):

- ``AppendToTimeline``'s ``recordFrame`` is an absolute timeline frame (``GetStartFrame()``
  is e.g. 86400 for 01:00:00:00 at 24 fps), ``startFrame`` is inclusive and ``endFrame``
  exclusive (measured on Studio 21.0.4.5), and it acts on the *current* timeline.
- An append that would overlap a clip already on its track is silently dropped: Resolve either
  returns an item that never reaches the track (``overlap_mode="phantom"``) or leaves it out of
  the returned list (``overlap_mode="omit"``). Only re-reading the track tells the truth.
- Failures answer ``None``/``False``/``[]``, never an exception. ``DeleteClips`` only works on
  the current timeline (measured).
- Frame rates are strings such as ``"24"``, ``"23.976"`` and ``"29.97 DF"``.

The UI part models Fusion's ``UIManager``/``UIDispatcher`` enough for a dialog: element
constructors taking a property dict and children, ``AddWindow``, ``GetItems``, ``On.<ID>``
handlers, ``Show``/``Hide``, ``RunLoop``/``ExitLoop``. A test scripts the user: ``on_dialog``
gets each window entering ``RunLoop`` and returns the ID of the button to press.
"""

from __future__ import annotations

import itertools
import math
import os
from fractions import Fraction
from typing import Any

CLIP_COLORS = {
    "Orange",
    "Apricot",
    "Yellow",
    "Lime",
    "Olive",
    "Green",
    "Teal",
    "Navy",
    "Blue",
    "Purple",
    "Violet",
    "Pink",
    "Tan",
    "Beige",
    "Brown",
    "Chocolate",
}
MARKER_COLORS = {
    "Blue",
    "Cyan",
    "Green",
    "Yellow",
    "Red",
    "Pink",
    "Purple",
    "Fuchsia",
    "Rose",
    "Lavender",
    "Sky",
    "Mint",
    "Lemon",
    "Sand",
    "Cocoa",
    "Cream",
}
AUDIO_SUBTYPES = {"mono", "stereo", "5.1", "5.1film", "7.1", "7.1film", "adaptive1"}

_ids = itertools.count(1)


def rate_of(text: str) -> tuple[Fraction, bool]:
    """The exact rate and drop-frame flag of a Resolve frame-rate string."""
    value = text.strip().upper()
    drop = value.endswith(" DF")
    value = value.removesuffix(" DF").removesuffix(" NDF")
    exact = {
        "23.976": Fraction(24000, 1001),
        "29.97": Fraction(30000, 1001),
        "47.952": Fraction(48000, 1001),
        "59.94": Fraction(60000, 1001),
    }
    return exact.get(value, Fraction(value)), drop


def timecode_frames(timecode: str, rate_text: str) -> int:
    """Frame number of a timecode, counting drop-frame timecode the SMPTE way."""
    rate, drop = rate_of(rate_text)
    nominal = round(rate)
    hours, minutes, seconds, frames = (int(p) for p in timecode.replace(";", ":").split(":"))
    total_minutes = 60 * hours + minutes
    count = (total_minutes * 60 + seconds) * nominal + frames
    if drop:
        dropped_per_minute = 2 * (nominal // 30)
        count -= dropped_per_minute * (total_minutes - total_minutes // 10)
    return count


IMPORTABLE_AUDIO = {
    ".wav",
    ".bwf",
    ".aif",
    ".aiff",
    ".aifc",
    ".mp3",
    ".aac",
    ".m4a",
    ".caf",
    ".ac3",
}
"""The audio formats Resolve's manual lists for import (WAV/BWF, AIFF, MP3, AAC, CAF, AC3):
no Ogg Vorbis, Opus or FLAC."""
IMPORTABLE_VIDEO = {".mov", ".mp4", ".mxf", ".avi", ".mkv", ".m4v", ".dng", ".braw", ".r3d"}


def importable(path: str) -> bool:
    """Whether Resolve imports a file of this kind (by its suffix, as its media pool does)."""
    suffix = os.path.splitext(path)[1].lower()
    return suffix in IMPORTABLE_AUDIO or suffix in IMPORTABLE_VIDEO


def url_to_path(url: str) -> str:
    from urllib.parse import unquote, urlparse

    return unquote(urlparse(url).path)


def frames_of(seconds: float, rate_text: str) -> int:
    rate, _ = rate_of(rate_text)
    return math.floor(Fraction(seconds) * rate + Fraction(1, 2))


class MediaPoolItem:
    def __init__(self, path: str, fps: str, frames: int, kind: str = "Audio") -> None:
        self.path = path
        self.fps = fps
        self.frames = frames
        self.kind = kind  # "Audio" (sound file) or "Video" (picture with audio)
        self.media_id = f"media-{next(_ids)}"
        self.metadata: dict[str, str] = {}

    def GetName(self) -> str:
        return os.path.basename(self.path)

    def GetMediaId(self) -> str:
        return self.media_id

    def GetClipProperty(self, key: str | None = None) -> Any:
        props = {
            "File Path": self.path,
            "FPS": self.fps,
            "Frames": str(self.frames),
            "Clip Name": self.GetName(),
            "Type": self.kind,
            "Start TC": "00:00:00:00",
        }
        return props if key is None else props.get(key, "")

    def GetMetadata(self, key: str | None = None) -> Any:
        return dict(self.metadata) if key is None else self.metadata.get(key, "")

    def SetMetadata(self, key: str, value: str) -> bool:
        self.metadata[key] = value
        return True


class Folder:
    def __init__(self, name: str) -> None:
        self.name = name
        self.clips: list[MediaPoolItem] = []
        self.subfolders: list[Folder] = []

    def GetName(self) -> str:
        return self.name

    def GetClipList(self) -> list[MediaPoolItem]:
        return list(self.clips)

    def GetSubFolderList(self) -> list[Folder]:
        return list(self.subfolders)


class TimelineItem:
    def __init__(
        self,
        media: MediaPoolItem | None,
        start: int,
        end: int,
        left: int = 0,
        name: str = "",
        enabled: bool = True,
        timeline_rate: str = "",
        source_start_api: bool = True,
    ) -> None:
        self.media = media
        self.start = start
        self.end = end
        self.left = left  # the first frame of the media it plays, at the media's own rate
        self.timeline_rate = timeline_rate
        self.source_start_api = source_start_api  # Resolve 19.0.2+
        self.name = name or (media.GetName() if media else "Title")
        self.enabled = enabled
        self.color = ""
        self.markers: dict[float, dict[str, Any]] = {}
        self.unique_id = f"item-{next(_ids)}"

    def GetName(self) -> str:
        return self.name

    def GetStart(self) -> int:
        return self.start

    def GetEnd(self) -> int:
        return self.end

    def GetDuration(self) -> int:
        return self.end - self.start

    def _media_rate(self) -> Fraction:
        if self.media is None or not self.media.fps:
            return rate_of(self.timeline_rate or "24")[0]
        return rate_of(self.media.fps)[0]

    def GetLeftOffset(self) -> int:
        """Where the item starts in its media, counted in TIMELINE frames (measured: 50p media
        on a 25p timeline, audio items on 29.97 timelines), not the media's own frames."""
        if not self.timeline_rate:
            return self.left
        seconds = Fraction(self.left) / self._media_rate()
        return math.floor(seconds * rate_of(self.timeline_rate)[0] + Fraction(1, 2))

    @property
    def GetSourceStartFrame(self) -> Any:
        """The first frame of the media the item plays, at the media's rate (19.0.2+; older
        builds have no such method: ``getattr`` finds nothing)."""
        if not self.source_start_api:
            raise AttributeError("GetSourceStartFrame")
        return lambda: self.left

    @property
    def GetSourceStartTime(self) -> Any:
        """The same in seconds of the media (19.0.2+)."""
        if not self.source_start_api:
            raise AttributeError("GetSourceStartTime")
        return lambda: float(Fraction(self.left) / self._media_rate())

    def GetRightOffset(self) -> int:
        total = self.media.frames if self.media else self.end - self.start
        return max(0, total - self.left - (self.end - self.start))

    def GetMediaPoolItem(self) -> MediaPoolItem | None:
        return self.media

    def GetClipEnabled(self) -> bool:
        return self.enabled

    def SetClipEnabled(self, enabled: bool) -> bool:
        self.enabled = bool(enabled)
        return True

    def GetUniqueId(self) -> str:
        return self.unique_id

    def SetClipColor(self, color: str) -> bool:
        if color not in CLIP_COLORS:
            return False
        self.color = color
        return True

    def GetClipColor(self) -> str:
        return self.color

    def ClearClipColor(self) -> bool:
        self.color = ""
        return True

    def AddMarker(
        self, frame: float, color: str, name: str, note: str, duration: int, custom_data: str = ""
    ) -> bool:
        """Frames count from the clip's first frame; one marker per frame."""
        if color not in MARKER_COLORS or not 0 <= frame < self.end - self.start:
            return False
        if float(frame) in self.markers or duration < 1:
            return False
        self.markers[float(frame)] = {
            "color": color,
            "duration": duration,
            "note": note,
            "name": name,
            "customData": custom_data,
        }
        return True

    def GetMarkers(self) -> dict[float, dict[str, Any]]:
        return {frame: dict(marker) for frame, marker in self.markers.items()}

    def DeleteMarkerByCustomData(self, custom_data: str) -> bool:
        hits = [f for f, m in self.markers.items() if m["customData"] == custom_data]
        for frame in hits:
            del self.markers[frame]
        return bool(hits)


class Track:
    def __init__(self, name: str, subtype: str = "") -> None:
        self.name = name
        self.subtype = subtype
        self.items: list[TimelineItem] = []
        self.enabled = True


class Timeline:
    def __init__(self, project: Project, name: str, start_timecode: str) -> None:
        self.project = project
        self.name = name
        self.start_timecode = start_timecode
        rate_text = project.frame_rate
        if project._drop() and not rate_text.endswith(" DF"):
            rate_text = rate_text.removesuffix(" NDF") + " DF"  # the DF setting, colons or not
        self.start_frame = timecode_frames(start_timecode, rate_text)
        self.tracks: dict[str, list[Track]] = {
            "video": [Track("Video 1")],
            "audio": [Track("Audio 1", "stereo")],
            "subtitle": [],
        }
        self.unique_id = f"timeline-{next(_ids)}"

    # -- what tests use to build a user's edit --
    def add_clip(
        self,
        kind: str,
        track: int,
        media: MediaPoolItem | None,
        record: int,
        frames: int,
        left: int = 0,
        enabled: bool = True,
        name: str = "",
    ) -> TimelineItem:
        while len(self.tracks[kind]) < track:
            number = len(self.tracks[kind]) + 1
            self.tracks[kind].append(
                Track(f"{kind.title()} {number}", "stereo" if kind == "audio" else "")
            )
        item = TimelineItem(media, record, record + frames, left, name, enabled, *self._item_api())
        self.tracks[kind][track - 1].items.append(item)
        return item

    def audio_track(self, name: str) -> list[TimelineItem]:
        for track in self.tracks["audio"]:
            if track.name == name:
                return sorted(track.items, key=lambda i: i.start)
        raise KeyError(name)

    def audio_track_names(self) -> list[str]:
        return [t.name for t in self.tracks["audio"]]

    def _item_api(self) -> tuple[str, bool]:
        rate = self.project.frame_rate.removesuffix(" DF").removesuffix(" NDF")
        return rate, self.project.source_start_api

    def _is_current(self) -> bool:
        return self.project.current is self

    # -- the API --
    def GetName(self) -> str:
        return self.name

    def GetUniqueId(self) -> str:
        return self.unique_id

    def GetStartFrame(self) -> int:
        return self.start_frame

    def GetEndFrame(self) -> int:
        ends = [i.end for ts in self.tracks.values() for t in ts for i in t.items]
        return max(ends, default=self.start_frame)

    def GetStartTimecode(self) -> str:
        return self.start_timecode

    def GetSetting(self, name: str = "") -> Any:
        return self.project.GetSetting(name)

    def GetTrackCount(self, kind: str) -> int:
        return len(self.tracks.get(kind, []))

    def _track(self, kind: str, index: Any) -> Track | None:
        tracks = self.tracks.get(kind, [])
        if isinstance(index, bool) or not isinstance(index, int) or not 1 <= index <= len(tracks):
            return None
        return tracks[index - 1]

    def GetItemListInTrack(self, kind: str, index: int) -> list[TimelineItem] | None:
        track = self._track(kind, index)
        return None if track is None else sorted(track.items, key=lambda i: i.start)

    def GetTrackName(self, kind: str, index: int) -> str:
        track = self._track(kind, index)
        return "" if track is None else track.name

    def SetTrackName(self, kind: str, index: int, name: str) -> bool:
        track = self._track(kind, index)
        if track is None or not name:
            return False
        track.name = name
        return True

    def GetTrackSubType(self, kind: str, index: int) -> str:
        track = self._track(kind, index)
        return "" if track is None else track.subtype

    def AddTrack(self, kind: str, subtype: str = "") -> bool:
        if kind not in self.tracks:
            return False
        if kind == "audio" and subtype not in AUDIO_SUBTYPES:
            return False
        number = len(self.tracks[kind]) + 1
        self.tracks[kind].append(Track(f"{kind.title()} {number}", subtype))
        return True

    def GetIsTrackEnabled(self, kind: str, index: int) -> bool:
        track = self._track(kind, index)
        return bool(track and track.enabled and self._is_current())

    def SetTrackEnable(self, kind: str, index: int, enabled: bool) -> bool:
        track = self._track(kind, index)
        if track is None:
            return False
        track.enabled = bool(enabled)
        return True

    def DuplicateTimeline(self, name: str = "") -> Timeline | None:
        if not name or any(t.name == name for t in self.project.timelines):
            return None
        copy = Timeline(self.project, name, self.start_timecode)
        for kind, tracks in self.tracks.items():
            copy.tracks[kind] = []
            for track in tracks:
                twin = Track(track.name, track.subtype)
                twin.enabled = track.enabled
                for i in track.items:
                    item = TimelineItem(
                        i.media, i.start, i.end, i.left, i.name, i.enabled, *self._item_api()
                    )
                    item.color, item.markers = i.color, {f: dict(m) for f, m in i.markers.items()}
                    twin.items.append(item)
                copy.tracks[kind].append(twin)
        self.project.timelines.append(copy)
        return copy

    def DeleteClips(self, items: list[TimelineItem], ripple: bool = False) -> bool:
        if not self._is_current() or not items or ripple:
            return False  # ripple is not modelled; the script must never ask for it
        if self.project.page != "edit":
            return False  # measured: DeleteClips does nothing unless the Edit page shows
        found = 0
        for tracks in self.tracks.values():
            for track in tracks:
                keep = [i for i in track.items if all(i is not x for x in items)]
                found += len(track.items) - len(keep)
                track.items = keep
        return found > 0


class MediaPool:
    def __init__(self, project: Project) -> None:
        self.project = project
        self.root = Folder("Master")
        self.current = self.root
        self.append_calls: list[list[dict[str, Any]]] = []
        self.imported_timelines: list[tuple[str, dict[str, Any]]] = []
        self.imported_media: list[str] = []  # media of imported timeline files

    def GetRootFolder(self) -> Folder:
        return self.root

    def AddSubFolder(self, folder: Folder, name: str) -> Folder | None:
        if not isinstance(folder, Folder) or not name:
            return None
        sub = Folder(name)
        folder.subfolders.append(sub)
        return sub

    def GetCurrentFolder(self) -> Folder:
        return self.current

    def SetCurrentFolder(self, folder: Folder) -> bool:
        if not isinstance(folder, Folder):
            return False
        self.current = folder
        return True

    def ImportMedia(self, paths: list[str]) -> list[MediaPoolItem]:
        """Known sounds become clips of the current folder; unknown paths are skipped."""
        made = []
        for path in paths:
            seconds = self.project.sounds.get(path)
            if seconds is None and os.path.isfile(path) and importable(path):
                from sfxmatch.media import probe  # a real file the test made: its length

                seconds = probe(path).duration
            if seconds is None or not importable(path):
                continue  # Resolve skips what it cannot import (its answer lacks them)
            fps = self.project.sound_fps.get(path) or self.project.frame_rate.removesuffix(
                " DF"
            ).removesuffix(" NDF")
            item = MediaPoolItem(path, fps, frames_of(seconds, fps))
            self.current.clips.append(item)
            made.append(item)
        return made

    def DeleteClips(self, clips: list[MediaPoolItem]) -> bool:
        return False  # the script has no business deleting media pool clips

    def DeleteTimelines(self, timelines: list[Timeline]) -> bool:
        doomed = [t for t in self.project.timelines if any(t is x for x in timelines)]
        if not doomed or any(t is self.project.current for t in doomed):
            return False
        self.project.timelines = [t for t in self.project.timelines if t not in doomed]
        return True

    def AppendToTimeline(self, infos: Any) -> list[TimelineItem]:
        self.append_calls.append([dict(i) for i in infos] if isinstance(infos, list) else [])
        timeline = self.project.current
        result = []
        if timeline is None or not isinstance(infos, list):
            return result
        for info in infos:
            item = self._append_one(timeline, info)
            if item is not None:
                result.append(item)
        return result

    def _append_one(self, timeline: Timeline, info: Any) -> TimelineItem | None:
        if not isinstance(info, dict):
            return None
        media = info.get("mediaPoolItem")
        start, end = info.get("startFrame"), info.get("endFrame")
        if not isinstance(media, MediaPoolItem):
            return None
        if any(isinstance(v, bool) or not isinstance(v, int) for v in (start, end)):
            return None
        media_type = info.get("mediaType", 2 if media.kind == "Audio" else None)
        kind = "audio" if media_type == 2 else "video"
        if kind == "video" and media.kind == "Audio":
            return None
        track = timeline._track(kind, info.get("trackIndex", 1))
        if track is None:
            return None
        end = min(end, media.frames)
        if start < 0 or end <= start:
            return None
        record = info.get("recordFrame")
        if record is None:
            record = max((i.end for i in track.items), default=timeline.start_frame)
        if isinstance(record, bool) or not isinstance(record, int):
            return None
        length = end - start + (1 if self.project.end_inclusive else 0)
        item_rate = rate_of(media.fps)[0] if media.fps else None
        timeline_rate = rate_of(timeline._item_api()[0])[0]
        if item_rate is not None and item_rate != timeline_rate:
            # Media at another rate than the timeline: its length on the timeline is FLOORED
            # (measured: loop passes of a 25 fps item on a 29.97 timeline a frame short).
            length = math.floor(Fraction(length) * timeline_rate / item_rate)
            if length < 1:
                return None
        item = TimelineItem(media, record, record + length, start, "", True, *timeline._item_api())
        if any(item.start < i.end and i.start < item.end for i in track.items):
            return item if self.project.overlap_mode == "phantom" else None
        track.items.append(item)
        return item

    def ImportTimelineFromFile(self, path: str, options: dict[str, Any] | None = None) -> Any:
        """A timeline file whose clips all point at media Resolve can import (existing files,
        or sounds the test declared, in formats of its import list) becomes a new timeline;
        anything else answers None, as Resolve does when media is missing."""
        options = dict(options or {})
        self.imported_timelines.append((path, options))
        if not os.path.isfile(path):
            return None
        if path.lower().endswith(".otio"):
            import opentimelineio as otio

            try:
                read = otio.adapters.read_from_file(path)
            except Exception:  # what Resolve cannot read it does not import
                return None
            for clip in read.find_clips():
                ref = clip.media_reference
                url = getattr(ref, "target_url", "") or ""
                media = url_to_path(url) if url.startswith("file:") else url
                known = media in self.project.known_media() or os.path.isfile(media)
                if not known or not importable(media):
                    return None
                self.imported_media.append(media)
        name = options.get("timelineName") or os.path.basename(path)
        timeline = Timeline(self.project, name, self.project.current.start_timecode)
        self.project.timelines.append(timeline)
        return timeline


class Project:
    def __init__(
        self,
        frame_rate: str = "24",
        start_timecode: str = "01:00:00:00",
        width: int = 1920,
        height: int = 1080,
        name: str = "Project",
        overlap_mode: str = "phantom",
        drop_frame: bool | None = None,
    ) -> None:
        self.frame_rate = frame_rate
        self.width = width
        self.height = height
        self.name = name
        self.overlap_mode = overlap_mode
        self.end_inclusive = False  # how older builds were reported to read endFrame
        self.sounds: dict[str, float] = {}  # importable sound files: path -> seconds
        self.sound_fps: dict[str, str] = {}  # a pool item's own rate, where not the project's
        self.source_start_api = True  # GetSourceStartFrame/Time (Resolve 19.0.2+)
        self.page = "edit"  # the page showing: resolve.OpenPage / GetCurrentPage
        self.version = [20, 0, 0, 0, ""]  # resolve.GetVersion()
        self.drop_frame = drop_frame  # the DF setting; None: from " DF" in the rate
        self.media_pool = MediaPool(self)
        self.current: Timeline | None = Timeline(self, "Timeline 1", start_timecode)
        self.timelines = [self.current]

    @property
    def timeline(self) -> Timeline:
        assert self.current is not None
        return self.current

    def GetName(self) -> str:
        return self.name

    def GetMediaPool(self) -> MediaPool:
        return self.media_pool

    def GetCurrentTimeline(self) -> Timeline | None:
        return self.current

    def SetCurrentTimeline(self, timeline: Timeline) -> bool:
        if timeline not in self.timelines:
            return False
        self.current = timeline
        return True

    def GetTimelineCount(self) -> int:
        return len(self.timelines)

    def GetTimelineByIndex(self, index: int) -> Timeline | None:
        return self.timelines[index - 1] if 1 <= index <= len(self.timelines) else None

    def known_media(self) -> set[str]:
        """Paths Resolve can find: declared sounds and the media of clips in its timelines."""
        found = set(self.sounds)
        for timeline in self.timelines:
            for tracks in timeline.tracks.values():
                found.update(i.media.path for t in tracks for i in t.items if i.media)
        return found

    def _drop(self) -> bool:
        return self.frame_rate.endswith(" DF") if self.drop_frame is None else self.drop_frame

    def GetSetting(self, name: str = "") -> Any:
        settings = {
            "timelineFrameRate": self.frame_rate,
            "timelineResolutionWidth": str(self.width),
            "timelineResolutionHeight": str(self.height),
            "timelineDropFrameTimecode": "1" if self._drop() else "0",
        }
        return settings if not name else settings.get(name, "")


class ProjectManager:
    def __init__(self, project: Project | None) -> None:
        self.project = project

    def GetCurrentProject(self) -> Project | None:
        return self.project


class Fusion:
    def __init__(self, ui: UIManager | None) -> None:
        self.UIManager = ui


class Resolve:
    def __init__(self, project: Project | None, ui: UIManager | None = None) -> None:
        self.manager = ProjectManager(project)
        self.fusion = Fusion(ui)

    def GetProjectManager(self) -> ProjectManager:
        return self.manager

    def Fusion(self) -> Fusion:
        return self.fusion

    def GetProductName(self) -> str:
        return "DaVinci Resolve Studio"

    def _project(self) -> Project | None:
        return self.manager.project

    def GetVersion(self) -> list[Any]:
        project = self._project()
        return list(project.version) if project else [20, 0, 0, 0, ""]

    def GetVersionString(self) -> str:
        version = self.GetVersion()
        text = ".".join(str(v) for v in version[:4])
        return f"{text} {version[4]}".strip()

    PAGES = ("media", "cut", "edit", "fusion", "color", "fairlight", "deliver")

    def OpenPage(self, name: str) -> bool:
        project = self._project()
        if name not in self.PAGES or project is None:
            return False
        project.page = name
        return True

    def GetCurrentPage(self) -> str:
        project = self._project()
        return project.page if project else "media"


# --- UIManager / UIDispatcher ------------------------------------------------------------


class Element:
    """One widget: its properties read and written as attributes, the writes recorded."""

    def __init__(self, kind: str, props: dict[str, Any], children: list[Element]) -> None:
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "props", dict(props))
        object.__setattr__(self, "children", list(children))
        object.__setattr__(self, "history", [])

    def __getattr__(self, name: str) -> Any:
        props = object.__getattribute__(self, "props")
        if name in props:
            return props[name]
        if name == "Checked":
            return False
        raise AttributeError(name)

    def __setattr__(self, name: str, value: Any) -> None:
        self.props[name] = value
        self.history.append((name, value))

    def walk(self) -> list[Element]:
        found = [self]
        for child in self.children:
            found.extend(child.walk())
        return found


class _Handlers:
    def __init__(self) -> None:
        self.Clicked = None
        self.Close = None
        self.Toggled = None


class _On:
    def __init__(self) -> None:
        object.__setattr__(self, "handlers", {})

    def __getattr__(self, name: str) -> _Handlers:
        return self.handlers.setdefault(name, _Handlers())

    def __getitem__(self, name: str) -> _Handlers:
        return getattr(self, name)


def _split(args: tuple[Any, ...]) -> tuple[dict[str, Any], list[Element]]:
    props: dict[str, Any] = {}
    children: list[Element] = []
    for arg in args:
        if isinstance(arg, dict):
            props.update(arg)
        elif isinstance(arg, Element):
            children.append(arg)
        elif isinstance(arg, list | tuple):
            for child in arg:
                if not isinstance(child, Element):
                    raise TypeError(f"not a UI element: {child!r}")
                children.append(child)
        else:
            raise TypeError(f"unexpected UI argument {arg!r}")
    return props, children


class Window:
    def __init__(self, props: dict[str, Any], root: Element) -> None:
        self.props = props
        self.id = props.get("ID", "")
        self.title = props.get("WindowTitle", "")
        self.root = root
        self.On = _On()
        self.visible = False
        self.ever_shown = False

    def GetItems(self) -> dict[str, Element]:
        return {e.props["ID"]: e for e in self.root.walk() if "ID" in e.props}

    def Show(self) -> bool:
        self.visible = self.ever_shown = True
        return True

    def Hide(self) -> bool:
        self.visible = False
        return True

    # -- what a scripted user does --
    def checkboxes(self) -> list[Element]:
        return [e for e in self.root.walk() if e.kind == "CheckBox"]

    def texts(self) -> list[str]:
        return [str(e.props.get("Text", "")) for e in self.root.walk()]

    def click(self, element_id: str) -> None:
        items = self.GetItems()
        element = items[element_id]
        if element.kind == "CheckBox":
            element.Checked = not element.Checked
        handler = self.On[element_id].Clicked
        if handler is not None:
            handler({"who": element_id, "what": "Clicked"})

    def close(self) -> None:
        handler = self.On[self.id].Close
        if handler is not None:
            handler({"who": self.id, "what": "Close"})


class UIManager:
    """``fu.UIManager``. ``on_dialog(window) -> button ID`` plays the user at each RunLoop."""

    def __init__(self, on_dialog: Any = None) -> None:
        self.on_dialog = on_dialog
        self.windows: list[Window] = []

    def _element(self, kind: str) -> Any:
        def make(*args: Any) -> Element:
            props, children = _split(args)
            return Element(kind, props, children)

        return make

    def __getattr__(self, kind: str) -> Any:
        widgets = {
            "VGroup",
            "HGroup",
            "Label",
            "CheckBox",
            "Button",
            "Tree",
            "LineEdit",
            "TextEdit",
            "ComboBox",
            "Slider",
            "SpinBox",
            "Stack",
        }
        if kind in widgets:
            return self._element(kind)
        raise AttributeError(kind)

    def VGap(self, size: int = 0, weight: float = 1.0) -> Element:
        return Element("VGap", {"Size": size, "Weight": weight}, [])

    def HGap(self, size: int = 0, weight: float = 1.0) -> Element:
        return Element("HGap", {"Size": size, "Weight": weight}, [])


class UIDispatcher:
    """``bmd.UIDispatcher(ui)``."""

    def __init__(self, ui: UIManager) -> None:
        if not isinstance(ui, UIManager):
            raise TypeError("UIDispatcher needs the UIManager")
        self.ui = ui
        self.running = False
        self.exited = False

    def AddWindow(self, props: dict[str, Any], *content: Any) -> Window:
        _, children = _split(content)
        root = children[0] if len(children) == 1 else Element("VGroup", {}, children)
        window = Window(dict(props), root)
        self.ui.windows.append(window)
        return window

    def RunLoop(self) -> None:
        shown = [w for w in self.ui.windows if w.visible]
        if not shown:
            raise AssertionError("RunLoop with no window shown would wait forever")
        window = shown[-1]
        self.running, self.exited = True, False
        if self.ui.on_dialog is not None:
            button = self.ui.on_dialog(window)
        else:
            buttons = [e.props["ID"] for e in window.root.walk() if e.kind == "Button"]
            button = "OK" if "OK" in buttons else buttons[0]
        if button == "__close__":
            window.close()
        else:
            window.click(button)
        self.running = False
        if not self.exited:
            raise AssertionError(f"pressing {button!r} did not end the dialog's loop")

    def ExitLoop(self) -> None:
        if not self.running:
            raise AssertionError("ExitLoop outside RunLoop")
        self.exited = True
