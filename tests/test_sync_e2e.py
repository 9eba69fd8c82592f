"""Effects land on the picture by their own event, to the sample: after ``suggest`` and
``render``, in the mix and in an independent render of the exported OTIO and FCP7 XML
(FFmpeg placing each clip by the timeline's times alone, ``tests/timeline_render.py``).

Two libraries, every kind forced to effect:

- ``generated``: room tone at -50 dBFS, then an event on a known sample, after a lead-in of
  0, one frame (at 25 and at 29.97), 0.37 s and 0.96 s. The event's first sample must sound
  within one sample of the onset frame's time.
- ``real``: real recordings of the test media whose onsets were marked by hand
  (``tests/data/onsets.tsv``, the clear ones). Where the file sits in the mix is measured by
  correlating the mix with the file (decoded by FFmpeg's command line); its hand-marked onset
  must sound within 5 ms of the onset frame's time.

At 23.976, 25 and 29.97 drop-frame. The tiny random model picks the sounds (whichever it
picks, the rule must hold), the same code path as the real models.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import timeline_render as tr
from sfxmatch import media
from sfxmatch.pipeline import Pipeline
from sfxmatch.suggestions import Edit, Placement, RenderRequest, SourceClip, SuggestOptions
from sfxmatch.testing import synth
from sfxmatch.timeline import write_timeline
from test_onset import read_marks
from test_suggest import settings_in
from tiny_models import TINY_MODELS

pytestmark = pytest.mark.real_media

RATE = 48000
LEADS = {"lead-0": 0.0, "lead-1f25": 1 / 25, "lead-1f2997": 1001 / 30000}
LEADS |= {"lead-370ms": 0.37, "lead-960ms": 0.96}
RATES = {
    "23.976": (Fraction(24000, 1001), "00:00:00:00"),
    "25": (Fraction(25), "00:00:00:00"),
    "29.97DF": (Fraction(30000, 1001), "00:00:00;00"),
}
REAL_TOLERANCE = 0.005  # seconds
GENERATED_TOLERANCE = 1  # samples


@dataclass
class SyncEnv:
    root: Path
    pipeline: Pipeline
    video: Path
    duration: float
    truth: dict[str, float]  # path -> onset of the event (seconds into the file)
    kind: dict[str, str]  # path -> "generated" or "real"


@pytest.fixture(scope="module")
def sync_env(
    tmp_path_factory: pytest.TempPathFactory,
    minetest_sounds: Path,
    tuxpaint_sounds: Path,
    ovos_sounds: Path,
) -> SyncEnv:
    root = tmp_path_factory.mktemp("sync-e2e")
    truth: dict[str, float] = {}
    kind: dict[str, str] = {}
    generated = root / "generated"
    generated.mkdir()
    for seed, (name, lead) in enumerate(LEADS.items()):
        for shape in ("knock", "burst"):
            sound = synth.sync_sound(lead, RATE, kind=shape, seed=seed, tail=0.8)  # type: ignore[arg-type]
            path = synth.make_audio_file(generated / f"{shape} {name}.wav", sound.samples, RATE)
            # One label for all: every interval of it has all ten as candidates.
            (generated / f"{shape} {name}.txt").write_text("a knock on a door\n")
            truth[str(path.path)] = sound.onset / RATE
            kind[str(path.path)] = "generated"
    real = root / "real"
    folders = {"minetest": minetest_sounds, "tuxpaint": tuxpaint_sounds, "ovos": ovos_sounds}
    for rel, mark, how in read_marks():
        if how != "clear":
            continue
        item, _, rest = rel.partition("/")
        target = real / rel.replace("/", "_")
        target.parent.mkdir(exist_ok=True)
        shutil.copy(folders[item] / rest, target)
        target.with_suffix(".txt").write_text("a sound\n")  # one label, as above
        truth[str(target)] = mark
        kind[str(target)] = "real"
    pipeline = Pipeline(settings_in(root), model=TINY_MODELS[0])
    for name, folder in (("generated", generated), ("real", real)):
        pipeline.library_add(folder, name, kind_overrides=[("*", "effect")])
    pipeline.library_index()
    video = synth.make_cut_video(root / "picture.mp4", shot_lengths=(60, 45, 60))
    return SyncEnv(root, pipeline, video.path, video.duration, truth, kind)


def first_loud_sample(signal: np.ndarray, lo: int, hi: int) -> int:
    """The first sample in [lo, hi) at half the loudest there: a generated event's first."""
    window = np.abs(signal[lo:hi])
    return lo + int(np.flatnonzero(window >= 0.5 * window.max())[0])


def file_start_in(
    signal: np.ndarray, sound: np.ndarray, near: int, event: int, played_from: int
) -> int:
    """Where sample 0 of ``sound`` sits in ``signal``, by normalised correlation with the
    sound from 0.1 s before its event (never before the first sample the clip plays) to
    0.3 s after, searching 20 ms either side of ``near`` (the expected sample 0)."""
    search = RATE // 50
    lo = max(event - RATE // 10, played_from + search, search)
    hi = min(event + 3 * RATE // 10, len(sound) - search)
    piece = sound[lo:hi].astype(np.float64)
    first = near + lo - search  # signal index matched with piece[0] at lag near - search
    padded = np.zeros(len(piece) + 2 * search)
    a, b = max(0, first), min(len(signal), first + len(padded))
    padded[a - first : b - first] = signal[a:b]
    size = 1 << int(np.ceil(np.log2(len(padded) + len(piece))))
    dots = np.fft.irfft(np.fft.rfft(padded, size) * np.conj(np.fft.rfft(piece, size)), size)
    dots = dots[: 2 * search + 1]
    energy = np.concatenate(([0.0], np.cumsum(padded**2)))
    norms = np.sqrt(energy[len(piece) : len(piece) + 2 * search + 1] - energy[: 2 * search + 1])
    return near - search + int(np.argmax(dots / (norms + 1e-12)))


def original(env: SyncEnv, path: str) -> str:
    """The library file a clip's file stands for: itself, or the sound its conform was made
    from (sfxmatch.conform names a conform ``<stem>.<suffix>.<key>.wav``). A conform keeps
    the original's sample 0, so the original's onset truth holds for it."""
    if path in env.kind or "conform" not in Path(path).parts:
        return path
    name = Path(path).name.rsplit(".", 2)[0]
    return next(k for k in env.kind if Path(k).name.lower() == name.lower())


def check_event(
    env: SyncEnv,
    signal: np.ndarray,
    path: str,
    record_start: float,
    source_start: float,
    target: float,
    where: str,
    sounds: dict[str, np.ndarray],
) -> float:
    """Seconds between where the file's event sounds in ``signal`` and ``target``."""
    onset = env.truth[original(env, path)]
    if env.kind[original(env, path)] == "generated":
        lo = round(record_start * RATE)
        found = first_loud_sample(signal, lo, lo + round(0.2 * RATE))
        error = found - target * RATE
        assert abs(error) <= GENERATED_TOLERANCE, (where, path, found, target * RATE)
        return error / RATE
    if path not in sounds:
        sounds[path] = tr.decode(path)
    near = round((record_start - source_start) * RATE)
    played_from = round(source_start * RATE)
    start = file_start_in(signal, sounds[path], near, round(onset * RATE), played_from)
    error = (start + onset * RATE) / RATE - target
    assert abs(error) <= REAL_TOLERANCE, (where, path, error)
    return error


@pytest.mark.parametrize("library", ["generated", "real"])
@pytest.mark.parametrize("rate", sorted(RATES))
def test_events_land_on_the_onset_frame_in_the_mix_and_the_timelines(
    sync_env: SyncEnv, tmp_path: Path, rate: str, library: str
) -> None:
    fps, timecode = RATES[rate]
    clip = SourceClip(str(sync_env.video), 0.0, sync_env.duration, 0.0, "picture")
    edit = Edit((clip,), fps, 320, 240, timecode, f"sync {rate}")
    # Every sound of the library is a candidate of every interval: each is checked.
    top_k = sum(1 for k in sync_env.kind.values() if k == library)
    s = sync_env.pipeline.suggest(edit, SuggestOptions(libraries=(library,), top_k=top_k))
    placed = [p for p in s.placements if p.kind == "effect"]
    assert len(placed) >= 3, "the tiny model places a few effects"
    # Every other candidate too, where the pipeline's rule put it (EffectSuggestion.spots:
    # what the Resolve script places when the user picks it), each on a track of its own.
    others = []
    for e in (e for sc in s.scenes for e in sc.effects):
        by_id = {c.sound_id: c for c in e.candidates}
        for spot in e.spots[1:]:
            c = by_id[spot.sound_id]
            others.append(
                Placement(
                    f"SFX {101 + len(others)}", "effect", c.sound_id, c.path, e.label,
                    spot.record_start, spot.duration, source_start=spot.source_start,
                    source_duration=c.duration, sync_point=spot.sync_point,
                )
            )  # fmt: skip
    s = replace(s, placements=s.placements + tuple(others))
    effects = [p for p in s.placements if p.kind == "effect"]
    onsets = [round(Fraction(e.start) * fps) / fps for sc in s.scenes for e in sc.effects]
    targets = []
    for p in effects:
        # The rule: the sync point on the onset frame, up to 2 frames of pre-roll before it.
        target = min(onsets, key=lambda t: abs(float(t) - p.event_time))
        assert p.event_time == pytest.approx(float(target), abs=1e-9)
        assert 0 <= p.event_time - p.record_start <= 2 / float(fps) + 1e-9
        targets.append(float(target))
    assert {sync_env.kind[original(sync_env, p.path)] for p in effects} == {library}
    # Every sound, placed or picked instead (every lead-in, every real recording).
    assert {original(sync_env, p.path) for p in effects} == {
        k for k, v in sync_env.kind.items() if v == library
    }

    stems = tmp_path / "stems"
    otio_path, xml_path, ppro_path = tmp_path / "cut.otio", tmp_path / "cut.xml", tmp_path / "p.xml"
    sync_env.pipeline.render(s, RenderRequest(stems_dir=str(stems), timeline=str(otio_path)))
    write_timeline(s, xml_path, "generic")
    write_timeline(s, ppro_path, "premiere")
    sounds: dict[str, np.ndarray] = {}
    errors = []
    for p, target in zip(effects, targets, strict=True):
        stem = media.load_audio(stems / f"{p.track}.wav").samples[0]
        errors.append(
            check_event(
                sync_env, stem, p.path, p.record_start, p.source_start, target, "mix", sounds
            )
        )
    for name, clips in (
        ("otio", tr.clips_from_otio(otio_path)),
        ("fcp7 xml", tr.clips_from_fcp_xml(xml_path)),
        ("premiere xml", tr.clips_from_fcp_xml(ppro_path)),
    ):
        assert len(clips) == len(effects), name
        rendered = tr.render_clips(clips, tmp_path / name)
        for c, signal in zip(clips, rendered, strict=True):
            # The clip's own placement: the one that starts where the file says it does.
            (p, target) = next(
                (p, t) for p, t in zip(effects, targets, strict=True)
                if p.path == c.path and abs(p.record_start - float(c.record)) < 1e-6
            )  # fmt: skip
            errors.append(
                check_event(
                    sync_env, signal, c.path, float(c.record), float(c.source), target, name,
                    sounds,
                )
            )  # fmt: skip
    worst = max(abs(e) for e in errors)
    names = sorted({Path(p.path).name for p in effects})
    print(f"{library} at {rate}: {len(effects)} effects, worst {worst * RATE:.2f} samples", names)
