"""sfxmatch for DaVinci Resolve: suggest ambience and sound effects for the current timeline.

Install this one file where Resolve lists scripts (Workspace > Scripts), for example
``.../Fusion/Scripts/Edit/`` of Resolve's support folder; see README.md beside it.

It runs inside Resolve's own Python (any version from 3.6) and uses the standard library
only. The heavy lifting happens in the sfxmatch client, started as a subprocess:

    <client> suggest --edit EDIT.json --json --progress jsonl [--library NAME]
    <client> resolve-clips CLIPS.json

With Resolve's UIManager (Studio, or free Resolve before 19.1) the user picks the sounds in a
dialog and the script places them on audio tracks "Ambience" (layers: "Ambience 2", ...) and
"SFX 1".."SFX n": after importing the sounds it sends the picks with what only Resolve knows
(each sound's frame rate and length, the spans the user's own clips take) to
``resolve-clips``, which answers every append in frames, on its track; this script does no
framing or track arithmetic of its own. Without a UIManager it asks the client for a
Resolve-shaped OTIO file instead and tells the user to import it with File > Import >
Timeline.

Clips placed by this script carry a clip marker whose custom data starts with "sfxmatch"
(and the clip colour Teal, as a visual cue only); a later run deletes exactly those clips
before placing new ones, and never touches any other clip.
"""

import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
from fractions import Fraction

OURS = "sfxmatch"  # custom data prefix of the marker that marks a clip as ours
OUR_CLIP_COLOR = "Teal"
OUR_MARKER_COLOR = "Cyan"
BIN_NAME = "sfxmatch"
SCHEMA_VERSION = 1
CLIENT_ENV = "SFXMATCH_CLIENT"
MINIMUM_VERSION = (18, 0)  # AppendToTimeline's recordFrame/mediaType; see README.md

_NTSC_BASES = (24, 30, 48, 60, 96, 120)


class PluginError(Exception):
    """A problem the user can act on; its text is shown as is."""


# --- frame rates and frames ------------------------------------------------------------


def parse_frame_rate(value):
    """Resolve's frame-rate strings ("24", "23.976", "29.97 DF", "59.94 NDF") -> (Fraction, df).

    Rounded NTSC rates are taken as their exact n*1000/1001 values, since 29.97 drifts
    against 30000/1001 by a frame every ~9 hours of timeline and more for long starts.
    """
    if value is None:
        raise PluginError("Resolve reported no frame rate")
    text = str(value).strip().upper()
    drop = False
    for suffix, is_drop in ((" NDF", False), ("NDF", False), (" DF", True), ("DF", True)):
        if text.endswith(suffix):
            text = text[: -len(suffix)].strip()
            drop = is_drop
            break
    try:
        number = float(text)
    except ValueError:
        raise PluginError(f"cannot read the frame rate {value!r}") from None
    if not number > 0 or math.isinf(number):
        raise PluginError(f"cannot use the frame rate {value!r}")
    for base in _NTSC_BASES:
        ntsc = Fraction(base * 1000, 1001)
        if abs(number - float(ntsc)) < 0.006:
            return ntsc, drop
    if abs(number - round(number)) < 1e-6:
        return Fraction(round(number)), drop
    return Fraction(text).limit_denominator(1001), drop


def fraction_text(rate):
    return f"{rate.numerator}/{rate.denominator}"


def to_seconds(frames, rate):
    return float(frames) * rate.denominator / rate.numerator


# --- finding the client ------------------------------------------------------------------


def client_config_path(platform=None, env=None, home=None):
    platform = platform or sys.platform
    env = os.environ if env is None else env
    home = home or env.get("HOME") or env.get("USERPROFILE") or os.path.expanduser("~")
    if platform.startswith("win"):
        base = env.get("APPDATA") or os.path.join(home, "AppData", "Roaming")
        return os.path.join(base, "sfxmatch", "client.json")
    if platform == "darwin":
        return os.path.join(home, "Library", "Application Support", "sfxmatch", "client.json")
    base = env.get("XDG_CONFIG_HOME") or os.path.join(home, ".config")
    return os.path.join(base, "sfxmatch", "client.json")


def _which(name, env):
    path = env.get("PATH", os.defpath)
    exts = [""]
    if sys.platform.startswith("win"):
        exts += env.get("PATHEXT", ".EXE;.BAT;.CMD").lower().split(";")
    for folder in path.split(os.pathsep):
        for ext in exts:
            candidate = os.path.join(folder, name + ext)
            if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
                return candidate
    return None


def find_client(env=None, platform=None, home=None):
    """The command that starts the sfxmatch client, as a list; PluginError when none."""
    env = os.environ if env is None else env
    explicit = env.get(CLIENT_ENV, "").strip()
    if explicit:
        if os.path.isfile(explicit) or _which(explicit, env):
            return [explicit]
        raise PluginError(
            f"{CLIENT_ENV} is set to {explicit!r}, but no such program exists. Point it at "
            "the sfxmatch client, or unset it."
        )
    config = client_config_path(platform, env, home)
    if os.path.isfile(config):
        try:
            with open(config, encoding="utf-8") as handle:
                data = json.load(handle)
            executable = data["executable"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise PluginError(
                f"cannot read the sfxmatch client location from {config} ({exc}). Run the "
                "sfxmatch installer again."
            ) from None
        command = [executable] if isinstance(executable, str) else [str(a) for a in executable]
        if command and (os.path.isfile(command[0]) or _which(command[0], env)):
            return command
        raise PluginError(
            "{} names the sfxmatch client {!r}, which does not exist. Run the sfxmatch "
            "installer again.".format(config, command[0] if command else "")
        )
    found = _which("sfxmatch", env)
    if found:
        return [found]
    raise PluginError(
        f"The sfxmatch client was not found. Install sfxmatch (its installer writes "
        f"{config}), or set {CLIENT_ENV} to the full path of the 'sfxmatch' program."
    )


# --- running the client ------------------------------------------------------------------


def subprocess_runner(argv, on_stderr_line):
    """Run ``argv``; feed each stderr line to ``on_stderr_line`` as it comes.

    Returns (exit code, stdout text, stderr text). Any runner with this shape can stand in.
    """
    flags = 0x08000000 if sys.platform.startswith("win") else 0  # CREATE_NO_WINDOW
    process = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        universal_newlines=True,
        encoding="utf-8",
        errors="replace",
        creationflags=flags,
    )
    chunks = []
    reader = threading.Thread(target=lambda: chunks.append(process.stdout.read()))
    reader.daemon = True
    reader.start()
    lines = []
    for line in process.stderr:
        lines.append(line)
        on_stderr_line(line.rstrip("\r\n"))
    code = process.wait()
    reader.join()
    return code, "".join(chunks), "".join(lines)


def _progress_from(line):
    """A progress dict from a stderr line, or None when it is a plain message."""
    text = line.strip()
    if not text.startswith("{"):
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if isinstance(data, dict) and "stage" in data:
        return data
    return None


def _failure_message(stderr_text, code):
    for line in reversed(stderr_text.splitlines()):
        if not line.strip():
            continue
        progress = _progress_from(line)
        if progress is not None:
            return str(progress.get("message") or progress.get("stage"))
        return line.strip()
    return f"the sfxmatch client stopped with exit code {code}"


def run_client(runner, argv, report):
    """Run the client through ``runner``; ``report(fraction, text)`` sees its progress."""

    def on_line(line):
        progress = _progress_from(line)
        if progress is None:
            if line.strip():
                report(None, line.strip())
            return
        try:
            fraction = float(progress.get("fraction", 0.0))
        except (TypeError, ValueError):
            fraction = None
        text = progress.get("message") or progress.get("stage") or ""
        report(fraction, "{}: {}".format(progress.get("stage"), text) if text else "")

    try:
        code, out, err = runner(argv, on_line)
    except OSError as exc:
        raise PluginError(f"cannot start the sfxmatch client {argv[0]!r}: {exc}") from None
    if code != 0:
        raise PluginError("sfxmatch failed: " + _failure_message(err or "", code))
    return out


# --- the Resolve it runs in ----------------------------------------------------------------


def resolve_version(resolve):
    """(major, minor, patch) of the running Resolve, or None when it does not say."""
    version = _call(resolve, "GetVersion")
    if isinstance(version, dict):  # some builds answer {1: major, 2: minor, ...}
        version = [version[k] for k in sorted(version)]
    if not isinstance(version, (list, tuple)) or not version:
        text = str(_call(resolve, "GetVersionString") or "")
        version = text.split()[0].split(".") if text.strip() else []
    numbers = []
    for part in list(version)[:3]:
        try:
            numbers.append(int(part))
        except (TypeError, ValueError):
            break
    if not numbers:
        return None
    return tuple(numbers + [0] * (3 - len(numbers)))


def check_version(resolve):
    """PluginError on a Resolve older than MINIMUM_VERSION, saying which one runs."""
    version = resolve_version(resolve)
    if version is not None and version[:2] < MINIMUM_VERSION:
        raise PluginError(
            "sfxmatch needs DaVinci Resolve {}.{} or later; this is Resolve {}. Update "
            "Resolve, or use sfxmatch's free-Resolve path (File > Import > Timeline, "
            "README.md).".format(*MINIMUM_VERSION, ".".join(str(v) for v in version))
        )
    return version


# --- reading the timeline ----------------------------------------------------------------


def _call(obj, name, *args):
    """obj.name(*args), or None when Resolve lacks the method."""
    method = getattr(obj, name, None)
    if method is None:
        return None
    return method(*args)


def _setting(project, timeline, name):
    value = _call(timeline, "GetSetting", name)
    if value in (None, ""):
        value = _call(project, "GetSetting", name)
    return value


def _as_int(value, default=0):
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return default


def timeline_rate(project, timeline):
    rate, drop = parse_frame_rate(_setting(project, timeline, "timelineFrameRate"))
    if str(_setting(project, timeline, "timelineDropFrameTimecode") or "") == "1":
        drop = True
    return rate, drop


def source_position(item, media_rate, rate):
    """Seconds into its media where a timeline item starts.

    ``GetSourceStartTime`` (seconds) or ``GetSourceStartFrame`` (frames at the media's own
    rate) where Resolve has them (19.0.2+). Older builds only have ``GetLeftOffset()``, which
    Resolve counts in frames of the TIMELINE's rate, whatever the media's rate (measured: 50p
    media on a 25p timeline, audio items on 29.97 timelines); read at the media's rate it
    would be off by their ratio."""
    seconds = _call(item, "GetSourceStartTime")
    if isinstance(seconds, (int, float)) and not isinstance(seconds, bool) and seconds >= 0:
        return float(seconds)
    frame = _call(item, "GetSourceStartFrame")
    if isinstance(frame, (int, float)) and not isinstance(frame, bool) and frame >= 0:
        return to_seconds(frame, media_rate)
    return to_seconds(item.GetLeftOffset() or 0, rate)


def start_timecode(timeline, drop):
    """The timeline's start timecode, written the drop-frame way (";" before the frames) when
    the timeline's drop-frame setting is on: Resolve may report a DF start with colons, and
    read as non-drop it would place everything 108 frames (3.6 s) off per hour."""
    tc = str(timeline.GetStartTimecode() or "00:00:00:00")
    if drop and ";" not in tc and len(tc) > 3 and tc[-3] in ":.":
        tc = tc[:-3] + ";" + tc[-2:]
    return tc


def read_edit(project, timeline):
    """The Edit JSON for the timeline, and what was skipped and why (a list of strings)."""
    rate, drop = timeline_rate(project, timeline)
    start = timeline.GetStartFrame()
    clips = []
    skipped = []
    tracks = timeline.GetTrackCount("video") or 0
    for index in range(1, tracks + 1):
        if _call(timeline, "GetIsTrackEnabled", "video", index) is False:
            skipped.append(f"video track {index} is disabled")
            continue
        for item in timeline.GetItemListInTrack("video", index) or []:
            name = item.GetName() or ""
            if _call(item, "GetClipEnabled") is False:
                skipped.append(f"{name} (V{index}): disabled")
                continue
            media = item.GetMediaPoolItem()
            path = media.GetClipProperty("File Path") if media else ""
            if not path:
                skipped.append(f"{name} (V{index}): no media file")
                continue
            try:
                media_rate, _ = parse_frame_rate(media.GetClipProperty("FPS"))
            except PluginError:
                media_rate = rate
            record_start = item.GetStart()
            record_end = item.GetEnd()
            if record_end <= record_start:
                skipped.append(f"{name} (V{index}): empty")
                continue
            source_in = source_position(item, media_rate, rate)
            clips.append(
                {
                    "path": path,
                    "source_in": source_in,
                    "source_out": source_in + to_seconds(record_end - record_start, rate),
                    "record_start": to_seconds(max(0, record_start - start), rate),
                    "name": name,
                }
            )
    clips.sort(key=lambda c: (c["record_start"], c["path"]))
    edit = {
        "clips": clips,
        "fps": fraction_text(rate),
        "width": _as_int(_setting(project, timeline, "timelineResolutionWidth")),
        "height": _as_int(_setting(project, timeline, "timelineResolutionHeight")),
        "start_timecode": start_timecode(timeline, drop),
        "drop_frame": bool(drop),
        "name": timeline.GetName() or "",
    }
    return edit, skipped


# --- what the user can choose --------------------------------------------------------------


def read_answer(out, what):
    """The client's JSON answer, checked for the schema this script reads."""
    try:
        data = json.loads(out)
    except ValueError:
        raise PluginError("sfxmatch answered something that is not JSON") from None
    if not isinstance(data, dict):
        raise PluginError("sfxmatch answered something that is not a JSON object")
    if data.get("schema", SCHEMA_VERSION) != SCHEMA_VERSION:
        raise PluginError(
            "this script reads {} schema {}, the client sent {}; update the script".format(
                what, SCHEMA_VERSION, data.get("schema")
            )
        )
    return data


def build_slots(data):
    """The picker's rows as the client sends them (``slots``): per scene its ambience and
    each effect interval, with the candidates, which are ticked at first, and per candidate
    the clips to append (sfxmatch.timeline.choices: the pipeline's placements, its loop
    passes, the sync rule's spots). This script computes none of them."""
    slots = data.get("slots")
    if slots is None:
        raise PluginError(
            "the sfxmatch client sent no choices (slots); update sfxmatch to match this script"
        )
    return [dict(slot) for slot in slots if slot.get("candidates")]


def picked_paths(slots, picks):
    """The sound files of every picked (slot key, rank), to import before placing."""
    by_key = {slot["key"]: slot for slot in slots}
    return sorted({c["path"] for key, rank in picks for c in by_key[key]["clips"][rank]})


# --- tracks ---------------------------------------------------------------------------------


def audio_tracks_by_name(timeline):
    names = {}
    for index in range(1, (timeline.GetTrackCount("audio") or 0) + 1):
        name = _call(timeline, "GetTrackName", "audio", index) or ""
        names.setdefault(name, index)
    return names


def ensure_tracks(timeline, wanted):
    """Track name -> audio track index, creating the missing ones (stereo) in ``wanted``'s
    order (the client lists them in sfxmatch's track order)."""
    existing = audio_tracks_by_name(timeline)
    result = {}
    for name in wanted:
        if name in existing:
            result[name] = existing[name]
            continue
        if not timeline.AddTrack("audio", "stereo"):
            raise PluginError(f"Resolve did not add the audio track {name!r}")
        index = timeline.GetTrackCount("audio")
        if not timeline.SetTrackName("audio", index, name):
            raise PluginError(f"Resolve did not name audio track {index} {name!r}")
        result[name] = existing[name] = index
    return result


# --- ours -----------------------------------------------------------------------------------


def is_ours(item):
    markers = _call(item, "GetMarkers") or {}
    for marker in markers.values():
        if str((marker or {}).get("customData") or "").startswith(OURS):
            return True
    return False


def mark_ours(item, clip):
    """Mark a placed item as ours: a clip marker with custom data "sfxmatch|kind|sound id"."""
    _call(item, "SetClipColor", OUR_CLIP_COLOR)
    note = "{} ({:.2f})".format(clip["label"], float(clip.get("score") or 0.0))
    data = "{}|{}|{}".format(OURS, clip["kind"], clip["sound_id"])
    for frame in range(0, max(1, min(clip["frames"], 8))):
        if item.AddMarker(frame, OUR_MARKER_COLOR, OURS, note, 1, data):
            return True
    return False


def our_items(timeline):
    found = []
    for index in range(1, (timeline.GetTrackCount("audio") or 0) + 1):
        for item in timeline.GetItemListInTrack("audio", index) or []:
            if is_ours(item):
                found.append((index, item))
    return found


# --- placing --------------------------------------------------------------------------------


def _media_path(item):
    media = item.GetMediaPoolItem()
    return (media.GetClipProperty("File Path") or "") if media else ""


def _same_path(a, b):
    return os.path.normcase(os.path.normpath(a)) == os.path.normcase(os.path.normpath(b))


def sound_bin(media_pool):
    root = media_pool.GetRootFolder()
    for folder in root.GetSubFolderList() or []:
        if folder.GetName() == BIN_NAME:
            return folder
    folder = media_pool.AddSubFolder(root, BIN_NAME)
    if not folder:
        raise PluginError(f"Resolve did not create the media pool bin {BIN_NAME!r}")
    return folder


def import_sounds(media_pool, paths):
    """Path -> MediaPoolItem in the "sfxmatch" bin (reusing earlier imports); missing paths
    are left out."""
    folder = sound_bin(media_pool)
    items = {}
    for clip in folder.GetClipList() or []:
        path = clip.GetClipProperty("File Path")
        if path:
            items[os.path.normcase(os.path.normpath(path))] = clip
    wanted = []
    for path in paths:
        if os.path.normcase(os.path.normpath(path)) not in items and path not in wanted:
            wanted.append(path)
    if wanted:
        previous = media_pool.GetCurrentFolder()
        media_pool.SetCurrentFolder(folder)
        try:
            for clip in media_pool.ImportMedia(wanted) or []:
                path = clip.GetClipProperty("File Path")
                if path:
                    items[os.path.normcase(os.path.normpath(path))] = clip
        finally:
            if previous:
                media_pool.SetCurrentFolder(previous)
    return {p: items.get(os.path.normcase(os.path.normpath(p))) for p in paths}


def _describe(clip):
    seconds = clip.get("record_start", 0.0)
    return "{} '{}' at {:.2f}s".format(clip.get("track", "?"), clip.get("label", ""), seconds)


def clips_request(timeline, slots, picks, rate, drop, media):
    """What ``sfxmatch resolve-clips`` needs to frame the picks: the timeline as Resolve
    reports it, each imported sound's rate and length, and the spans that clips other than
    ours take on the audio tracks (by name)."""
    occupied = {}
    for name, index in audio_tracks_by_name(timeline).items():
        items = timeline.GetItemListInTrack("audio", index) or []
        occupied[name] = [[i.GetStart(), i.GetEnd()] for i in items if not is_ours(i)]
    return {
        "schema": SCHEMA_VERSION,
        "slots": slots,
        "picks": [[key, rank] for key, rank in picks],
        "fps": fraction_text(rate),
        "drop_frame": bool(drop),
        "start_frame": timeline.GetStartFrame(),
        "media": {
            path: None
            if item is None
            else {"fps": item.GetClipProperty("FPS"), "frames": item.GetClipProperty("Frames")}
            for path, item in media.items()
        },
        "occupied": occupied,
    }


def place(project, timeline, slots, picks, rate, drop, ask_client):
    """Replace our earlier clips by the picked ones; returns the summary dict.

    ``ask_client(request)`` answers with the appends in frames and their tracks (the client's
    ``resolve-clips``). It is asked before the earlier clips go, so that a failure leaves the
    timeline as it was."""
    media_pool = project.GetMediaPool()
    media = import_sounds(media_pool, picked_paths(slots, picks))
    answer = ask_client(clips_request(timeline, slots, picks, rate, drop, media))
    ready, problems, order = answer["appends"], answer["refused"], answer["tracks"]

    old = [item for _, item in our_items(timeline)]
    if old and (not timeline.DeleteClips(old, False) or our_items(timeline)):
        raise PluginError(
            "Resolve did not remove the earlier sfxmatch clips; nothing was "
            "placed (is the Edit page showing, or the timeline or a track locked?)"
        )
    indices = ensure_tracks(timeline, order)
    before = set()
    for index in set(indices.values()):
        for item in timeline.GetItemListInTrack("audio", index) or []:
            before.add((index, _item_key(item)))

    # endFrame is exclusive on current Resolve (measured on 21.0); should a build treat it as
    # inclusive, every clip would be a frame long and butting clips (ambience loop passes)
    # would overlap and be dropped. The first clip that lands tells which, and is redone.
    end_adjust = None
    warnings = []
    for clip in ready:
        index = indices[clip["track"]]
        info = {
            "mediaPoolItem": media[clip["path"]],
            "startFrame": clip["source_start_frame"],
            "endFrame": clip["source_end_frame"] - (end_adjust or 0),
            "trackIndex": index,
            "recordFrame": clip["record_frame"],
            "mediaType": 2,
        }
        media_pool.AppendToTimeline([info])  # its answer is not trusted: the track is re-read
        if end_adjust is not None:
            continue
        landed = [
            i
            for i in timeline.GetItemListInTrack("audio", index) or []
            if (index, _item_key(i)) not in before
            and i.GetStart() == clip["record_frame"]
            and _same_path(_media_path(i), clip["path"])
        ]
        if not landed:
            continue
        end_adjust = landed[0].GetEnd() - landed[0].GetStart() - clip["frames"]
        if end_adjust != 1:
            end_adjust = 0
        elif timeline.DeleteClips(landed[:1], False):
            warnings.append("this Resolve reads endFrame as inclusive; clips were shortened")
            media_pool.AppendToTimeline([dict(info, endFrame=info["endFrame"] - 1)])

    # Re-read the tracks: only what is there now counts. New items are those not there before.
    fresh = {}
    for index in set(indices.values()):
        items = timeline.GetItemListInTrack("audio", index) or []
        fresh[index] = [i for i in items if (index, _item_key(i)) not in before]
    placed = []
    dropped = [dict(c, reason=c["reason"]) for c in problems]
    unmatched = []
    for clip in sorted(ready, key=lambda c: (c["record_frame"], c["track"])):
        item = _take(fresh[indices[clip["track"]]], clip, exact=True)
        if item is None:
            unmatched.append(clip)
            continue
        if item.GetEnd() != clip["record_frame"] + clip["frames"]:
            warnings.append(
                "{}: ends at frame {} instead of {}".format(
                    _describe(clip), item.GetEnd(), clip["record_frame"] + clip["frames"]
                )
            )
        if not mark_ours(item, clip):
            warnings.append(
                f"{_describe(clip)}: could not be marked, a later run will not replace it"
            )
        placed.append(clip)
    for clip in unmatched:
        item = _take(fresh[indices[clip["track"]]], clip, exact=False)
        if item is None:
            dropped.append(dict(clip, reason="Resolve did not put it on the track"))
            continue
        mark_ours(item, clip)  # ours all the same, so that the next run removes it
        where = f"Resolve put it at frame {item.GetStart()}, not {clip['record_frame']}"
        dropped.append(dict(clip, reason=where))
    return {
        "placed": len(placed),
        "dropped": [_public(c) for c in dropped],
        "replaced": len(old),
        "warnings": warnings,
        "tracks": [name for name in order if name in {c["track"] for c in placed}],
        "clips": [_public(c) for c in placed],
    }


def _item_key(item):
    unique = _call(item, "GetUniqueId")
    return unique or (item.GetStart(), item.GetEnd(), _media_path(item))


def _take(items, clip, exact):
    """Remove and return the new item that holds ``clip`` (at its start frame when exact)."""
    for position, item in enumerate(items):
        if exact and item.GetStart() != clip["record_frame"]:
            continue
        if _same_path(_media_path(item), clip["path"]) and not is_ours(item):
            return items.pop(position)
    return None


def _public(clip):
    keys = (
        "track",
        "kind",
        "label",
        "path",
        "record_start",
        "duration",
        "record_frame",
        "frames",
        "source_start_frame",
        "source_end_frame",
        "reason",
    )
    return {k: clip[k] for k in keys if k in clip}


# --- the dialog -----------------------------------------------------------------------------


def _timecode(seconds):
    seconds = max(0.0, float(seconds))
    minutes, rest = divmod(seconds, 60.0)
    return f"{int(minutes):d}:{rest:05.2f}"


def checkbox_id(slot, rank):
    return "c_{}_{}".format(slot["key"], rank)


def pick_dialog(ui, dispatcher, slots, title):
    """Show the candidates with check boxes; the picked (slot key, rank) list, or None."""
    rows = []
    for slot in slots:
        if slot["kind"] == "ambience":
            heading = "Scene {}  {}-{}  ambience".format(
                slot["scene"] + 1, _timecode(slot["start"]), _timecode(slot["end"])
            )
        else:
            heading = "    effect '{}'  {}-{}".format(
                slot["label"], _timecode(slot["start"]), _timecode(slot["end"])
            )
        boxes = [ui.Label({"Text": heading, "MinimumSize": [260, 0], "Weight": 0})]
        for rank, candidate in enumerate(slot["candidates"]):
            boxes.append(
                ui.CheckBox(
                    {
                        "ID": checkbox_id(slot, rank),
                        "Text": "{} ({:.2f})".format(
                            candidate.get("label", ""), float(candidate.get("score", 0.0))
                        ),
                        "ToolTip": candidate.get("path", ""),
                        "Checked": bool(slot["default"][rank]),
                    }
                )
            )
        rows.append(ui.HGroup({"Weight": 0}, boxes))
    buttons = ui.HGroup(
        {"Weight": 0},
        [
            ui.Label(
                {
                    "Text": "Checked sounds are placed; the first of each row is the best match.",
                    "Weight": 1,
                }
            ),
            ui.Button({"ID": "Cancel", "Text": "Cancel"}),
            ui.Button({"ID": "OK", "Text": "Place sounds"}),
        ],
    )
    window = dispatcher.AddWindow(
        {"ID": "sfxmatchPick", "WindowTitle": title, "Geometry": [100, 100, 1100, 700]},
        ui.VGroup([*rows, ui.VGap(0, 1), buttons]),
    )
    answer = {"ok": False}

    def ok(_event):
        answer["ok"] = True
        dispatcher.ExitLoop()

    def cancel(_event):
        dispatcher.ExitLoop()

    window.On.OK.Clicked = ok
    window.On.Cancel.Clicked = cancel
    window.On.sfxmatchPick.Close = cancel
    window.Show()
    dispatcher.RunLoop()
    items = window.GetItems()
    picks = []
    if answer["ok"]:
        for slot in slots:
            for rank in range(len(slot["candidates"])):
                if items[checkbox_id(slot, rank)].Checked:
                    picks.append((slot["key"], rank))
    window.Hide()
    return picks if answer["ok"] else None


class ProgressWindow:
    """A small window with one label; falls back to printing."""

    def __init__(self, ui, dispatcher, log):
        self.log = log
        self.window = None
        if ui is not None:
            self.window = dispatcher.AddWindow(
                {
                    "ID": "sfxmatchProgress",
                    "WindowTitle": "sfxmatch",
                    "Geometry": [200, 200, 460, 90],
                },
                ui.VGroup([ui.Label({"ID": "Status", "Text": "Starting sfxmatch..."})]),
            )
            self.window.Show()

    def __call__(self, fraction, text):
        line = text if fraction is None else f"{100 * fraction:3.0f}%  {text}"
        self.log(line)
        if self.window is not None:
            self.window.GetItems()["Status"].Text = line

    def close(self):
        if self.window is not None:
            self.window.Hide()
            self.window = None


def message_box(ui, dispatcher, title, text):
    window = dispatcher.AddWindow(
        {"ID": "sfxmatchMessage", "WindowTitle": title, "Geometry": [250, 250, 520, 200]},
        ui.VGroup(
            [
                ui.Label({"ID": "Message", "Text": text, "WordWrap": True}),
                ui.HGroup({"Weight": 0}, [ui.Button({"ID": "Close", "Text": "Close"})]),
            ]
        ),
    )

    def close(_event):
        dispatcher.ExitLoop()

    window.On.Close.Clicked = close
    window.On.sfxmatchMessage.Close = close
    window.Show()
    dispatcher.RunLoop()
    window.Hide()


# --- the whole run --------------------------------------------------------------------------


def _host_objects(resolve=None):
    """resolve, UIManager and UIDispatcher factory from Resolve's script environment."""
    main_globals = getattr(sys.modules.get("__main__"), "__dict__", {})
    resolve = resolve or main_globals.get("resolve") or globals().get("resolve")
    bmd = main_globals.get("bmd") or globals().get("bmd")
    fusion = main_globals.get("fu") or globals().get("fu")
    if resolve is None or bmd is None:
        try:
            import DaVinciResolveScript as script_module

            bmd = bmd or script_module
            resolve = resolve or script_module.scriptapp("Resolve")
        except ImportError:
            pass
    if fusion is None and resolve is not None:
        fusion = _call(resolve, "Fusion")
    ui = getattr(fusion, "UIManager", None) if fusion is not None else None
    dispatcher = getattr(bmd, "UIDispatcher", None) if bmd is not None else None
    return resolve, ui, dispatcher


def _slug(text):
    keep = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in text)
    return keep.strip("_")[:60] or "timeline"


def _summary(status, message, **extra):
    result = {
        "status": status,
        "message": message,
        "placed": 0,
        "dropped": [],
        "replaced": 0,
        "warnings": [],
        "skipped": [],
    }
    result.update(extra)
    return result


def main(
    resolve=None,
    runner=None,
    ui=None,
    dispatcher=None,
    library=None,
    env=None,
    work_dir=None,
    log=print,
    import_timeline=False,
):
    """Suggest sounds for the current timeline and place the picked ones.

    ``resolve``: Resolve's scripting object (found in the script environment when None).
    ``runner``: ``runner(argv, on_stderr_line) -> (exit code, stdout, stderr)``; runs the
    client (a subprocess when None). ``ui``: the UIManager (``fu.UIManager``), ``False`` for
    none; ``dispatcher``: a ``UIDispatcher`` factory taking ``ui`` (``bmd.UIDispatcher``).
    ``library``: passed to the client as ``--library``. ``import_timeline``: in the fallback
    without a UIManager, also import the OTIO with ``MediaPool.ImportTimelineFromFile``.

    Returns a summary dict: status ("placed", "otio", "cancelled", "error"), message, placed
    (count), dropped (list of clips with a reason), replaced (count of earlier clips removed),
    warnings, skipped (timeline items not sent), and more per status.
    """
    env = os.environ if env is None else env
    if resolve is None or ui is None or dispatcher is None:
        host_resolve, host_ui, host_dispatcher = _host_objects(resolve)
        resolve = resolve or host_resolve
        ui = host_ui if ui is None else ui
        dispatcher = dispatcher or host_dispatcher
    ui = ui or None
    if ui is not None and dispatcher is None:
        ui = None
    disp = dispatcher(ui) if ui is not None else None
    runner = runner or subprocess_runner
    progress = None
    try:
        if resolve is None:
            raise PluginError("DaVinci Resolve is not reachable from this script")
        check_version(resolve)
        project = resolve.GetProjectManager().GetCurrentProject()
        if not project:
            raise PluginError("Open a project in DaVinci Resolve first")
        timeline = project.GetCurrentTimeline()
        if not timeline:
            raise PluginError("Open a timeline first: sfxmatch suggests sounds for it")
        edit, skipped = read_edit(project, timeline)
        if not edit["clips"]:
            raise PluginError("The timeline has no enabled video clips with media files")
        client = find_client(env)
        folder = work_dir or os.path.join(tempfile.gettempdir(), "sfxmatch-resolve")
        os.makedirs(folder, exist_ok=True)
        stem = "{}-{}".format(_slug(edit["name"]), time.strftime("%Y%m%d-%H%M%S"))
        edit_path = os.path.join(folder, stem + ".edit.json")
        with open(edit_path, "w", encoding="utf-8") as handle:
            json.dump(edit, handle, indent=1)
        extra = ["--library", library] if library else []

        if ui is None:
            return _otio_fallback(
                project,
                client,
                edit_path,
                os.path.join(folder, stem + ".otio"),
                extra,
                runner,
                log,
                skipped,
                import_timeline,
            )

        progress = ProgressWindow(ui, disp, log)
        argv = [*client, "suggest", "--edit", edit_path, "--json", "--progress", "jsonl", *extra]
        data = read_answer(run_client(runner, argv, progress), "suggestions")
        progress.close()
        slots = build_slots(data)
        if not slots:
            summary = _summary(
                "placed", "sfxmatch found nothing to suggest for this timeline", skipped=skipped
            )
            message_box(ui, disp, "sfxmatch", summary["message"])
            return summary
        picks = pick_dialog(ui, disp, slots, "sfxmatch: sounds for " + edit["name"])
        if picks is None:
            log("sfxmatch: cancelled, the timeline is unchanged")
            return _summary("cancelled", "Cancelled; the timeline is unchanged", skipped=skipped)
        rate, drop = timeline_rate(project, timeline)

        def ask_client(request):
            request_path = os.path.join(folder, stem + ".clips.json")
            with open(request_path, "w", encoding="utf-8") as handle:
                json.dump(request, handle)
            argv = [*client, "resolve-clips", request_path]
            return read_answer(run_client(runner, argv, lambda f, text: log(text)), "clips")

        # DeleteClips (of our earlier clips) does nothing unless the Edit page shows.
        _call(resolve, "OpenPage", "edit")
        result = place(project, timeline, slots, picks, rate, drop, ask_client)
        message = "Placed {} clip(s) on {}; replaced {} earlier one(s).".format(
            result["placed"], ", ".join(result["tracks"]) or "no track", result["replaced"]
        )
        if result["dropped"]:
            message += " Resolve dropped {}: {}".format(
                len(result["dropped"]),
                "; ".join("{} ({})".format(_describe(c), c["reason"]) for c in result["dropped"]),
            )
        log("sfxmatch: " + message)
        for warning in result["warnings"]:
            log("sfxmatch: warning: " + warning)
        summary = _summary("placed", message, skipped=skipped, **result)
        message_box(ui, disp, "sfxmatch", message)
        return summary
    except PluginError as exc:
        if progress is not None:
            progress.close()
        log("sfxmatch: " + str(exc))
        if ui is not None:
            message_box(ui, disp, "sfxmatch", str(exc))
        return _summary("error", str(exc))


def _otio_fallback(
    project, client, edit_path, otio_path, extra, runner, log, skipped, import_timeline
):
    argv = [
        *client,
        "suggest",
        "--edit",
        edit_path,
        "-o",
        otio_path,
        "--flavour",
        "resolve",
        *extra,
    ]
    log("sfxmatch: this Resolve has no script dialogs (UIManager); writing an OTIO timeline")
    run_client(
        runner,
        argv,
        lambda fraction, text: log(text if fraction is None else f"{100 * fraction:3.0f}%  {text}"),
    )
    if not os.path.isfile(otio_path):
        raise PluginError("sfxmatch finished but wrote no timeline at " + otio_path)
    message = (
        f"Suggestions written to {otio_path}. Import them with File > Import > Timeline, "
        "then copy the Ambience and SFX tracks into your edit."
    )
    imported = None
    media_pool = project.GetMediaPool()
    if import_timeline and getattr(media_pool, "ImportTimelineFromFile", None) is not None:
        imported = media_pool.ImportTimelineFromFile(
            otio_path, {"timelineName": os.path.splitext(os.path.basename(otio_path))[0]}
        )
        if imported:
            name = imported.GetName()
            message = f"Imported the suggestions as the timeline '{name}' (from {otio_path})."
        else:
            message = (
                f"Resolve did not import {otio_path}; import it with File > Import > Timeline."
            )
    log("sfxmatch: " + message)
    return _summary("otio", message, otio=otio_path, skipped=skipped, imported=bool(imported))


if __name__ == "__main__":
    main()
