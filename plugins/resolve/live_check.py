"""Live check of the sfxmatch Resolve script against a real DaVinci Resolve (Studio).

Run it with Resolve open on a project whose current timeline has at least one video clip:
from Workspace > Scripts (copy it next to "Suggest sounds.py"), or from a terminal with
Resolve's scripting environment set up (RESOLVE_SCRIPT_API / RESOLVE_SCRIPT_LIB / PYTHONPATH
as in Resolve's Developer/Scripting README).

It never edits your timeline: it duplicates the current timeline into
"sfxmatch live check <time>", works there and switches back at the end. The duplicate is
kept for you to look at (delete it when done), or removed when SFXMATCH_LIVE_CLEANUP=1.

What it checks, printing PASS/FAIL/INFO per line:
  1. the facts the script relies on: recordFrame is absolute, endFrame is exclusive, an
     overlapping append is dropped (and what AppendToTimeline answered), markers keep their
     custom data, DeleteClips removes clips;
  2. the script itself: a run with a canned client answer (two generated test tones; no
     daemon, model or library needed, only the installed client, which puts the picks on
     frames and tracks) places its clips at the expected frames and a second run replaces
     them.
     With the real UIManager the dialog appears: press "Place sounds" both times.
     SFXMATCH_LIVE_REAL_CLIENT=1 uses the installed sfxmatch client instead (slow).

Standard library only; Python 3.6+.
"""

import importlib.util
import json
import math
import os
import struct
import sys
import tempfile
import time
import wave

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "Suggest sounds.py")
PROBE_TRACK = "sfxmatch probe"


def load_script():
    spec = importlib.util.spec_from_file_location("sfxmatch_suggest_sounds", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_tone(path, seconds, frequency, rate=48000):
    """A quiet stereo sine tone as 16-bit WAV."""
    with wave.open(path, "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(rate)
        frames = bytearray()
        for n in range(int(seconds * rate)):
            value = int(3000 * math.sin(2 * math.pi * frequency * n / rate))
            frames += struct.pack("<hh", value, value)
        out.writeframes(bytes(frames))
    return path


def canned_answer(edit, tone_a, tone_b):
    """A Suggestions JSON (schema 1) for ``edit``: one ambience scene and one effect."""
    length = max((c["source_out"] - c["source_in"] + c["record_start"]) for c in edit["clips"])
    scene_end = min(4.0, length)
    effect_end = min(1.5, scene_end)

    def candidate(path, label, score, kind, duration):
        return {
            "sound_id": label,
            "label": label,
            "path": path,
            "score": score,
            "kind": kind,
            "duration": duration,
            "ucs_category": "",
        }

    ambience = [
        candidate(tone_a, "tone a", 0.8, "ambience", 10.0),
        candidate(tone_b, "tone b", 0.5, "ambience", 2.0),
    ]
    effect = {
        "label": "beep",
        "start": 0.5,
        "end": effect_end,
        "confidence": 0.7,
        "candidates": [candidate(tone_b, "tone b", 0.7, "effect", 2.0)],
        "scene_index": 0,
        "rule": "report",
        "trace": None,
    }

    def placement(track, kind, label, path, start, duration, total):
        return {
            "track": track,
            "kind": kind,
            "sound_id": label,
            "path": path,
            "label": label,
            "record_start": start,
            "duration": duration,
            "source_start": 0.0,
            "source_duration": total,
            "loop": False,
            "gain_db": 0.0,
            "pan": 0.0,
            "fade_in": 0.0,
            "fade_out": 0.0,
            "scene_index": 0,
            "score": 0.8,
            "automation": [],
            "alternatives": [],
        }

    def slot(key, kind, start, end, label, candidates, default, clips):
        return {
            "key": key,
            "kind": kind,
            "scene": 0,
            "start": start,
            "end": end,
            "label": label,
            "candidates": candidates,
            "default": default,
            "clips": clips,
        }

    def clip(track, kind, label, path, start, end):
        return {
            "track": track,
            "kind": kind,
            "path": path,
            "label": label,
            "sound_id": label,
            "record_start": start,
            "record_end": end,
            "duration": end - start,
            "source_start": 0.0,
            "score": 0.8,
            "loop_pass": 0,
        }

    return {
        "schema": 1,
        "edit": edit,
        "scenes": [
            {
                "index": 0,
                "start": 0.0,
                "end": scene_end,
                "ambience": ambience,
                "effects": [effect],
                "ambience_labels": [],
                "borrowed_from": None,
            }
        ],
        "placements": [
            placement("Ambience", "ambience", "tone a", tone_a, 0.0, scene_end, 10.0),
            placement("SFX 1", "effect", "tone b", tone_b, 0.5, effect_end - 0.5, 2.0),
        ],
        # The picker's rows with each candidate's clips, as the client sends them
        # (sfxmatch.timeline.choices); the alternative bed is one plain clip here.
        "slots": [
            slot(
                "a0",
                "ambience",
                0.0,
                scene_end,
                "ambience",
                ambience,
                [True, False],
                [
                    [clip("Ambience", "ambience", "tone a", tone_a, 0.0, scene_end)],
                    [clip("Ambience", "ambience", "tone b", tone_b, 0.0, min(2.0, scene_end))],
                ],
            ),
            slot(
                "e0_0",
                "effect",
                0.5,
                effect_end,
                "beep",
                effect["candidates"],
                [True],
                [
                    [clip("SFX 1", "effect", "tone b", tone_b, 0.5, effect_end)],
                ],
            ),
        ],
        "model_id": "live-check",
        "traces": [],
        "meaningless": True,
        "settings": [],
    }


class Report:
    def __init__(self):
        self.failures = 0

    def check(self, ok, text):
        print(("PASS  " if ok else "FAIL  ") + text)
        if not ok:
            self.failures += 1
        return ok

    def info(self, text):
        print("INFO  " + text)


def probe_api(script, project, timeline, tone, report):
    """The Resolve facts the script depends on, measured on a probe track."""
    pool = project.GetMediaPool()
    media = script.import_sounds(pool, [tone])[tone]
    if not report.check(media is not None, "ImportMedia imported a WAV into the 'sfxmatch' bin"):
        return
    report.info(
        "the WAV's FPS={!r} Frames={!r}".format(
            media.GetClipProperty("FPS"), media.GetClipProperty("Frames")
        )
    )
    index = script.ensure_tracks(timeline, [PROBE_TRACK])[PROBE_TRACK]
    start = timeline.GetStartFrame()
    report.info(
        "timeline rate {!r}, start frame {}, start timecode {}".format(
            timeline.GetSetting("timelineFrameRate"), start, timeline.GetStartTimecode()
        )
    )
    info = {
        "mediaPoolItem": media,
        "startFrame": 0,
        "endFrame": 24,
        "trackIndex": index,
        "recordFrame": start + 48,
        "mediaType": 2,
    }
    answer = pool.AppendToTimeline([info])
    items = timeline.GetItemListInTrack("audio", index) or []
    report.info(f"AppendToTimeline answered {answer!r}")
    report.check(
        [i.GetStart() for i in items] == [start + 48],
        f"recordFrame is absolute (asked {start + 48}, got {[i.GetStart() for i in items]})",
    )
    if items:
        report.check(
            items[0].GetEnd() - items[0].GetStart() == 24,
            f"endFrame is exclusive: 0..24 gives {items[0].GetEnd() - items[0].GetStart()} frames",
        )
    overlap = pool.AppendToTimeline([dict(info, recordFrame=start + 60)])
    after = timeline.GetItemListInTrack("audio", index) or []
    report.info(
        f"overlapping append answered {overlap!r} ({len(overlap or [])} item(s)); "
        f"the track now holds {len(after)} item(s)"
    )
    report.check(len(after) == len(items), "an overlapping append is dropped from the track")
    if items:
        item = items[0]
        marked = item.AddMarker(0, "Cyan", "sfxmatch", "probe", 1, "sfxmatch|probe|x")
        markers = item.GetMarkers() or {}
        data = [m.get("customData") for m in markers.values()]
        report.check(bool(marked) and "sfxmatch|probe|x" in data, "marker custom data kept")
        report.check(script.is_ours(item), "the script recognises its marker")
    report.check(
        bool(after) and bool(timeline.DeleteClips(after, False)), "DeleteClips answered True"
    )
    report.check(
        not (timeline.GetItemListInTrack("audio", index) or []), "the probe track is empty again"
    )


def check_script(script, resolve, project, timeline, tones, report, ui=None, dispatcher=None):
    """Two runs of the script's main() on the scratch timeline."""
    real = os.environ.get("SFXMATCH_LIVE_REAL_CLIENT") == "1"
    try:
        client = script.find_client(os.environ)
    except script.PluginError as exc:
        report.check(False, f"the sfxmatch client is found (it frames the picks): {exc}")
        return

    def runner(argv, on_line):
        if "resolve-clips" in argv:  # frames and tracks: the installed client's own rules
            tail = argv[argv.index("resolve-clips") :]
            return script.subprocess_runner(client + tail, on_line)
        with open(argv[argv.index("--edit") + 1], encoding="utf-8") as handle:
            edit = json.load(handle)
        on_line(json.dumps({"stage": "live check", "fraction": 1.0, "message": "canned"}))
        return 0, json.dumps(canned_answer(edit, tones[0], tones[1])), ""

    env = dict(os.environ)
    kwargs = {"resolve": resolve, "runner": None if real else runner, "env": env}
    if ui is not None:
        kwargs.update(ui=ui, dispatcher=dispatcher)
    first = script.main(**kwargs)
    report.info("first run: {}".format(first["message"]))
    if not report.check(first["status"] == "placed", "first run placed clips"):
        return
    report.check(not first["dropped"], "Resolve dropped nothing")
    rate, _ = script.timeline_rate(project, timeline)
    start = timeline.GetStartFrame()
    names = script.audio_tracks_by_name(timeline)
    for clip in first["clips"]:
        items = timeline.GetItemListInTrack("audio", names[clip["track"]]) or []
        spans = [(i.GetStart(), i.GetEnd()) for i in items if script.is_ours(i)]
        want = (clip["record_frame"], clip["record_frame"] + clip["frames"])
        report.check(want in spans, "{} '{}' at {}..{}".format(clip["track"], clip["label"], *want))
        if not real:
            seconds = float(clip["record_start"])
            expected = start + math.floor(seconds * rate.numerator / rate.denominator + 0.5)
            report.check(clip["record_frame"] == expected, "record frame = start + seconds*fps")
    second = script.main(**kwargs)
    report.info("second run: {}".format(second["message"]))
    report.check(
        second["status"] == "placed" and second["replaced"] == first["placed"],
        "a second run replaces the first run's {} clip(s)".format(first["placed"]),
    )
    ours = [item for _, item in script.our_items(timeline)]
    report.check(len(ours) == second["placed"], "only the second run's clips remain")


def main(resolve=None, ui=None, dispatcher=None):
    """Run every check; 0 when all passed. ``ui``/``dispatcher`` as for the script's main."""
    report = Report()
    script = load_script()
    if resolve is None:
        resolve, _ui, _dispatcher = script._host_objects()
    if resolve is None:
        print("FAIL  DaVinci Resolve is not reachable (is it running, with scripting on?)")
        return 1
    project = resolve.GetProjectManager().GetCurrentProject()
    original = project.GetCurrentTimeline() if project else None
    if original is None:
        print("FAIL  open a project and a timeline with video clips first")
        return 1
    report.info(
        "{} {}".format(
            resolve.GetProductName() if hasattr(resolve, "GetProductName") else "Resolve",
            resolve.GetVersionString() if hasattr(resolve, "GetVersionString") else "",
        )
    )
    folder = tempfile.mkdtemp(prefix="sfxmatch-live-")
    tones = [
        write_tone(os.path.join(folder, "tone_a.wav"), 10.0, 220.0),
        write_tone(os.path.join(folder, "tone_b.wav"), 2.0, 880.0),
    ]
    name = "sfxmatch live check {}".format(time.strftime("%Y-%m-%d %H.%M.%S"))
    scratch = original.DuplicateTimeline(name)
    if not report.check(bool(scratch), f"duplicated the current timeline as '{name}'"):
        return 1
    try:
        project.SetCurrentTimeline(scratch)
        probe_api(script, project, scratch, tones[0], report)
        check_script(script, resolve, project, scratch, tones, report, ui, dispatcher)
    finally:
        project.SetCurrentTimeline(original)
        if os.environ.get("SFXMATCH_LIVE_CLEANUP") == "1":
            project.GetMediaPool().DeleteTimelines([scratch])
            report.info("deleted the scratch timeline")
        else:
            report.info(f"kept the scratch timeline '{name}' for you to inspect")
    print(f"{report.failures} failure(s)")
    return 1 if report.failures else 0


if __name__ == "__main__":
    code = main()
    if "resolve" not in getattr(sys.modules.get("__main__"), "__dict__", {}):
        sys.exit(code)  # from a terminal; inside Resolve, exiting would be rude
