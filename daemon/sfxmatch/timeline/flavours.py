"""What each editor expects in an OTIO file: media URLs and the application's own metadata.

Facts used here (no editor runs on these machines, so they come from what the applications
write in their own exports, as documented by people who inspected them):

- DaVinci Resolve (``ImportTimelineFromFile``) wants OTIO shaped like its own export: bare
  filesystem paths in ``target_url``, source ranges in the media's timecode, the timeline's
  ``global_start_time`` at its start timecode, and a ``Resolve_OTIO`` metadata namespace
  (timeline ``"Resolve OTIO Meta Version": "1.0"``; tracks ``"Locked"`` and, on audio tracks,
  ``"Audio Type"``; audio clips a ``"Channels"`` list of ``"Source Channel ID"`` /
  ``"Source Track ID"``). Clip level is a ``"Resolve Effect"`` whose ``Resolve_OTIO`` names
  the effect ``"Fairlight Clip Volume and Fades"`` with a ``"volume"`` parameter in dB whose
  keyframes are frames from the clip's start on the timeline.
- Premiere Pro 25.6+ imports OTIO natively and writes a ``PremierePro_OTIO`` namespace:
  timeline ``MetadataVersion``; the top stack ``VideoFrameRate``, ``AudioFrameRate``,
  ``VideoResolution`` {width, height} and ``PixelAspectRatio`` {numerator, denominator};
  audio tracks ``AudioChannels`` {ChannelType "Mono"/"Stereo", NumberOfChannels}; clips
  ``AudioChannels`` {ChannelType, SecondaryAssignments [{SecondaryChannelIndex}]},
  ``LinkID``, ``OriginalChannelGroupIndex`` and ``SourceClipIndex``. Media are ``file://``
  URIs. Its FCP7 XML (``xmeml``) uses ``file://localhost/...`` path URLs, percent-encoded.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import PurePosixPath, PureWindowsPath
from typing import TYPE_CHECKING, Any, ClassVar, Literal
from urllib.parse import quote, unquote, urlparse

import opentimelineio as otio

from sfxmatch.errors import TimelineError
from sfxmatch.timecode import FrameRate, seconds_to_frames

if TYPE_CHECKING:
    from sfxmatch.suggestions import Edit, Placement

Flavour = Literal["generic", "resolve", "premiere"]

RESOLVE = "Resolve_OTIO"
PREMIERE = "PremierePro_OTIO"
RESOLVE_VOLUME_EFFECT = "Fairlight Clip Volume and Fades"
RESOLVE_VOLUME_RANGE_DB = (-100.0, 30.0)

_DRIVE = re.compile(r"^[A-Za-z]:[\\/]")
_UNC = re.compile(r"^(\\\\|//)[^\\/]+[\\/]")


def is_windows_path(path: str) -> bool:
    """``C:\\x``, ``C:/x`` or a UNC ``\\\\server\\share`` path."""
    return bool(_DRIVE.match(path) or (path.startswith("\\\\") and _UNC.match(path)))


def absolute_path(path: str) -> str:
    """A Windows path as given (backslashes kept); a POSIX one made absolute."""
    if is_windows_path(path):
        return path
    return os.path.abspath(path)


def basename(path: str) -> str:
    """The file name of a POSIX or Windows path."""
    if is_windows_path(path):
        return PureWindowsPath(path).name
    return os.path.basename(path)


def path_to_url(path: str, *, localhost: bool = False) -> str:
    """A ``file://`` URI for ``path``, percent-encoded (``file:///C:/a%20b.wav`` for a
    Windows path). ``localhost`` writes ``file://localhost/...`` as FCP7 XML does."""
    host = "localhost" if localhost else ""
    if is_windows_path(path):
        win = PureWindowsPath(path)
        if win.drive.startswith("\\\\") or win.drive.startswith("//"):
            # UNC: file://server/share/rest
            server_share = win.drive.lstrip("\\/").replace("\\", "/")
            rest = "/".join(win.parts[1:])
            return "file://" + quote(server_share + "/" + rest, safe="/")
        rest = "/".join(win.parts[1:])
        return f"file://{host}/{win.drive}/" + quote(rest, safe="/")
    posix = PurePosixPath(absolute_path(path)).as_posix()
    return f"file://{host}" + quote(posix, safe="/")


def url_to_path(url: str) -> str:
    """The filesystem path of a media URL: ``file://`` URIs are percent-decoded (any host;
    ``localhost`` dropped, another host kept as a UNC path); Windows drive paths keep their
    drive. Anything that is not a ``file:`` URL is returned unchanged (bare paths are not
    percent-decoded: ``%`` is a legal file-name character)."""
    if not url.lower().startswith("file:"):
        return url
    parsed = urlparse(url)
    path = unquote(parsed.path)
    host = parsed.netloc
    if re.match(r"^/[A-Za-z]:([\\/]|$)", path):
        return path[1:]
    if re.match(r"^[A-Za-z]:([\\/]|$)", host + path) and host:
        return host + path  # file://C:/x (a common malformed form)
    if host and host.lower() != "localhost":
        return f"//{host}{path}"
    return path


def media_url(path: str, flavour: str) -> str:
    """What goes in ``target_url`` for the flavour named ``flavour``."""
    return flavour_named(flavour).media_url(path)


def channel_type(channels: int) -> str:
    return "Mono" if channels == 1 else "Stereo"


# --------------------------------------------------------------------------- Resolve


def resolve_timeline_metadata() -> dict[str, Any]:
    return {"Resolve OTIO Meta Version": "1.0"}


def resolve_track_metadata(audio_channels: int | None) -> dict[str, Any]:
    meta: dict[str, Any] = {"Locked": False}
    if audio_channels is not None:
        meta["Audio Type"] = channel_type(audio_channels)
    return meta


def resolve_clip_metadata(channels: int) -> dict[str, Any]:
    return {
        "Channels": [
            {"Source Channel ID": c, "Source Track ID": 0} for c in range(max(1, channels))
        ]
    }


def resolve_volume_effect(gain_db: float, keyframes: dict[int, float]) -> dict[str, Any]:
    """The ``Resolve_OTIO`` payload of a clip-volume effect (dB; frames from clip start)."""
    lo, hi = RESOLVE_VOLUME_RANGE_DB

    def clamp(v: float) -> float:
        return float(min(hi, max(lo, v)))

    parameter = {
        "Parameter ID": "volume",
        "Parameter Value": clamp(gain_db),
        "Default Parameter Value": 0.0,
        "Variant Type": "Double",
        "minValue": lo,
        "maxValue": hi,
        "Key Frames": {
            str(frame): {"Value": clamp(db), "Variant Type": "Double"}
            for frame, db in sorted(keyframes.items())
        },
    }
    return {
        "Effect Name": RESOLVE_VOLUME_EFFECT,
        "Enabled": True,
        "Name": "Volume",
        "Type": 62,
        "Parameters": [parameter],
    }


# --------------------------------------------------------------------------- Premiere


def premiere_timeline_metadata() -> dict[str, Any]:
    return {"MetadataVersion": "1.0"}


def premiere_stack_metadata(
    fps: float, sample_rate: int, width: int, height: int
) -> dict[str, Any]:
    return {
        "AudioFrameRate": float(sample_rate),
        "PixelAspectRatio": {"denominator": 1.0, "numerator": 1.0},
        "VideoFrameRate": float(fps),
        "VideoResolution": {"height": int(height), "width": int(width)},
    }


def premiere_track_metadata(channels: int) -> dict[str, Any]:
    return {"AudioChannels": {"ChannelType": channel_type(channels), "NumberOfChannels": channels}}


def premiere_clip_metadata(link_id: int, channels: int | None) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    if channels is not None:
        meta["AudioChannels"] = {
            "ChannelType": channel_type(channels),
            "SecondaryAssignments": [{"SecondaryChannelIndex": c} for c in range(max(1, channels))],
        }
    meta["LinkID"] = str(link_id)
    meta["OriginalChannelGroupIndex"] = 0
    meta["SourceClipIndex"] = 0
    return meta


# --------------------------------------------------------------------------- the flavours

LinkId = Callable[[], int]
"""Hands out the next clip link id (Premiere's ``LinkID``), shared by a timeline's clips."""


class TimelineFlavour:
    """What one editor's importer expects of an OTIO timeline, as hooks the exporter calls
    while it builds the timeline (:func:`sfxmatch.timeline.export.to_otio`). This base is the
    generic flavour: file URIs, no editor metadata, in points to the sample. A flavour adds
    only what differs; the format (.otio or FCP7 .xml) is the file suffix's business."""

    name: ClassVar[str] = "generic"
    exact_audio_in: ClassVar[bool] = True
    """Audio in points at the file's own sample rate (else on the timeline's frames)."""

    def media_url(self, path: str) -> str:
        return path_to_url(path)

    def shape_timeline(
        self, timeline: otio.schema.Timeline, edit: Edit, fps: float, sample_rate: int
    ) -> None:
        """Metadata on the timeline and its top stack."""

    def shape_video_clip(self, clip: otio.schema.Clip, link: LinkId) -> None:
        """Metadata on one picture clip."""

    def shape_video_track(self, track: otio.schema.Track) -> None:
        """Metadata on the picture track."""

    def shape_audio_clip(
        self,
        clip: otio.schema.Clip,
        placement: Placement,
        *,
        cut_in: float,
        cut_length: float,
        rate: FrameRate,
        channels: int,
        link: LinkId,
    ) -> None:
        """Metadata and effects on one audio clip: the pass of ``placement`` that sits at
        ``cut_in`` record seconds for ``cut_length`` seconds."""

    def shape_audio_track(self, track: otio.schema.Track, channels: int) -> None:
        """Metadata on one audio track whose widest clip has ``channels``."""


class GenericFlavour(TimelineFlavour):
    """Any OTIO-aware tool: the base's behaviour."""


class ResolveFlavour(TimelineFlavour):
    """DaVinci Resolve's ``ImportTimelineFromFile``: shaped like its own export."""

    name = "resolve"
    exact_audio_in = False

    def media_url(self, path: str) -> str:
        return absolute_path(path)

    def shape_timeline(
        self, timeline: otio.schema.Timeline, edit: Edit, fps: float, sample_rate: int
    ) -> None:
        timeline.metadata[RESOLVE] = resolve_timeline_metadata()

    def shape_video_clip(self, clip: otio.schema.Clip, link: LinkId) -> None:
        clip.metadata[RESOLVE] = {}

    def shape_video_track(self, track: otio.schema.Track) -> None:
        track.metadata[RESOLVE] = resolve_track_metadata(None)

    def shape_audio_clip(
        self,
        clip: otio.schema.Clip,
        placement: Placement,
        *,
        cut_in: float,
        cut_length: float,
        rate: FrameRate,
        channels: int,
        link: LinkId,
    ) -> None:
        clip.metadata[RESOLVE] = resolve_clip_metadata(channels)
        into = cut_in - placement.record_start  # where this clip starts, in the placement
        keys = {
            seconds_to_frames(k.time, rate): k.gain_db
            for k in placement.automation
            if into - _KEY_EPS <= k.time <= into + cut_length + _KEY_EPS
        }
        if placement.gain_db != 0.0 or keys:
            # Resolve's volume keyframes count frames from the clip's own start.
            offset = seconds_to_frames(into, rate)
            keys = {f - offset: db for f, db in keys.items()}
            clip.effects.append(
                otio.schema.Effect(
                    effect_name="Resolve Effect",
                    metadata={RESOLVE: resolve_volume_effect(placement.gain_db, keys)},
                )
            )

    def shape_audio_track(self, track: otio.schema.Track, channels: int) -> None:
        track.metadata[RESOLVE] = resolve_track_metadata(channels)


class PremiereFlavour(TimelineFlavour):
    """Premiere Pro 25.6+'s native OTIO import (its FCP7 XML comes from the same timeline)."""

    name = "premiere"
    exact_audio_in = False

    def shape_timeline(
        self, timeline: otio.schema.Timeline, edit: Edit, fps: float, sample_rate: int
    ) -> None:
        timeline.metadata[PREMIERE] = premiere_timeline_metadata()
        timeline.tracks.metadata[PREMIERE] = premiere_stack_metadata(
            fps, sample_rate, edit.width, edit.height
        )

    def shape_video_clip(self, clip: otio.schema.Clip, link: LinkId) -> None:
        clip.metadata[PREMIERE] = premiere_clip_metadata(link(), None)

    def shape_audio_clip(
        self,
        clip: otio.schema.Clip,
        placement: Placement,
        *,
        cut_in: float,
        cut_length: float,
        rate: FrameRate,
        channels: int,
        link: LinkId,
    ) -> None:
        clip.metadata[PREMIERE] = premiere_clip_metadata(link(), channels)

    def shape_audio_track(self, track: otio.schema.Track, channels: int) -> None:
        track.metadata[PREMIERE] = premiere_track_metadata(channels)


_KEY_EPS = 1e-9  # seconds: a keyframe on a clip's edge belongs to it

REGISTRY: dict[str, TimelineFlavour] = {
    f.name: f for f in (GenericFlavour(), ResolveFlavour(), PremiereFlavour())
}
FLAVOURS: tuple[str, ...] = tuple(REGISTRY)


def flavour_named(name: str) -> TimelineFlavour:
    """The registered flavour called ``name``; TimelineError for any other."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise TimelineError(f"flavour must be one of {', '.join(FLAVOURS)}, not {name!r}") from None
