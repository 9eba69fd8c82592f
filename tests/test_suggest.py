"""``Pipeline.suggest`` on synthetic video with the tiny random-weights model: scenes, borrowed
beds, VTA/VA, edits in record time, determinism, cancel and bad input.

The indexed library is built once per session (:func:`shared_env`) and reused by the other
suggest test modules, which import the helpers from here.
"""

from __future__ import annotations

import itertools
import shutil
import threading
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from sfxmatch.config import Settings
from sfxmatch.errors import MediaError, NotFoundError, PreconditionError
from sfxmatch.pipeline import Cancelled, Pipeline, Progress
from sfxmatch.store.base import Filter
from sfxmatch.suggest import edit_for_video
from sfxmatch.suggestions import (
    AMBIENCE_TRACK,
    AMBIENCE_TRACK_B,
    Edit,
    RenderRequest,
    SourceClip,
    Suggestions,
    SuggestOptions,
    to_dict,
)
from sfxmatch.testing import synth
from tiny_models import TINY_MODELS

RATE = 48_000
# Sound names of the "intl" library: labels in German and Japanese, by name and by sidecar.
GERMAN_NAME = "Türklingel im Treppenhaus"
JAPANESE_NAME = "犬の鳴き声"
JAPANESE_SIDECAR = "風鈴の音"


# --------------------------------------------------------------------------- shared setup


@dataclass
class SuggestEnv:
    """One indexed data folder: ``ovos`` (real effects), ``beds`` (ambience by override),
    ``intl`` (German/Japanese labels) and synthetic videos."""

    root: Path
    settings: Settings
    pipeline: Pipeline
    short_scene_video: synth.CutVideoTruth  # shots 80/18/80 frames at 25 fps
    ntsc_video: synth.CutVideoTruth  # 29.97 fps, shots 45/30

    def env(self) -> dict[str, str]:
        """Environment variables that point the CLI at this data folder."""
        return {
            "SFXMATCH_DATA_DIR": str(self.settings.data_dir),
            "SFXMATCH_CACHE_DIR": str(self.settings.cache_dir),
        }

    def fresh_pipeline(self, cache: str) -> Pipeline:
        """The same index with an empty embedding cache: everything is computed again."""
        settings = Settings(cache_dir=self.root / cache, data_dir=self.settings.data_dir)
        return Pipeline(settings, model=self.pipeline.model)


_SHARED: dict[str, SuggestEnv] = {}


def settings_in(folder: Path) -> Settings:
    return Settings(cache_dir=folder / "cache", data_dir=folder / "data")


def make_beds(folder: Path, scene_wav: Path) -> Path:
    """A real outdoor recording and two noise beds (kinds forced to ambience on add)."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(scene_wav, folder / "street ambience.wav")
    rain = synth.noise_burst(6.0, RATE, amplitude=0.3, seed=1, channels=2)
    synth.make_audio_file(folder / "rain on a roof.wav", rain, RATE)
    hum = synth.tone(60.0, 6.0, RATE, 0.2, channels=2) + synth.noise_burst(
        6.0, RATE, amplitude=0.05, seed=2, channels=2
    )
    synth.make_audio_file(folder / "room tone hum.wav", hum, RATE)
    return folder


def make_intl(folder: Path) -> Path:
    """Effects labelled in German (file name), Japanese (file name) and Japanese (sidecar)."""
    folder.mkdir(parents=True, exist_ok=True)
    synth.make_audio_file(folder / f"{GERMAN_NAME}.wav", synth.tone(880.0, 1.5, RATE, 0.4), RATE)
    synth.make_audio_file(
        folder / f"{JAPANESE_NAME}.wav", synth.noise_burst(1.2, RATE, seed=3), RATE
    )
    synth.make_audio_file(folder / "chime.wav", synth.tone(1320.0, 1.0, RATE, 0.3), RATE)
    (folder / "chime.txt").write_text(JAPANESE_SIDECAR + "\n", encoding="utf-8")
    return folder


def shared_env(
    factory: pytest.TempPathFactory, ovos: Path, scene_wav: Path, model: str
) -> SuggestEnv:
    """Built once per test session and model, whichever module asks first."""
    if model not in _SHARED:
        root = factory.mktemp(f"suggest-env-{model}")
        settings = settings_in(root)
        pipeline = Pipeline(settings, model=model)
        pipeline.library_add(ovos, "ovos")
        beds = make_beds(root / "beds", scene_wav)
        pipeline.library_add(beds, "beds", kind_overrides=[("*", "ambience")])
        pipeline.library_add(make_intl(root / "intl"), "intl")
        pipeline.library_index()
        _SHARED[model] = SuggestEnv(
            root=root,
            settings=settings,
            pipeline=pipeline,
            short_scene_video=synth.make_cut_video(
                root / "short_scene.mp4", shot_lengths=(80, 18, 80)
            ),
            ntsc_video=synth.make_cut_video(
                root / "ntsc.mp4", fps=Fraction(30000, 1001), shot_lengths=(45, 30)
            ),
        )
    return _SHARED[model]


def on_grid(seconds: float, fps: Fraction) -> bool:
    frames = seconds * float(fps)
    return abs(frames - round(frames)) < 1e-6


def check_record_time(s: Suggestions) -> None:
    """Everything inside the edit; scenes tile each clip; effects inside their scene."""
    end = s.edit.duration
    for scene in s.scenes:
        assert 0 <= scene.start < scene.end <= end + 1e-6
        for e in scene.effects:
            assert scene.start - 1e-6 <= e.start < e.end <= scene.end + 1e-6
            assert e.scene_index == scene.index
    for p in s.placements:
        assert p.record_start >= 0 and p.record_end <= end + 1e-6, p
        assert on_grid(p.record_start, s.edit.fps) and on_grid(p.duration, s.edit.fps), p
    for clip in s.edit.clips:
        inside = [sc for sc in s.scenes if clip.record_start - 1e-6 <= sc.start < clip.record_end]
        assert inside, f"no scene in clip {clip}"
        assert inside[0].start == pytest.approx(clip.record_start, abs=1e-6)
        assert inside[-1].end == pytest.approx(clip.record_end, abs=1e-6)
        for a, b in itertools.pairwise(inside):
            assert a.end == pytest.approx(b.start, abs=1e-6)


def black_video(path: Path, frames: int, *, fps: int = 25, value: int = 0) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        for i in range(frames):
            image = np.full((120, 160, 3), value, np.uint8)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module", params=TINY_MODELS)
def env(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    ovos_sounds: Path,
    acoustic_scene_wav: Path,
) -> SuggestEnv:
    return shared_env(tmp_path_factory, ovos_sounds, acoustic_scene_wav, request.param)


@pytest.fixture(scope="module")
def short_result(env: SuggestEnv) -> Suggestions:
    return env.pipeline.suggest(env.short_scene_video.path)


# --------------------------------------------------------------------------- the tests


def test_library_is_indexed_with_every_kind(env: SuggestEnv) -> None:
    status = {s.library.name: s for s in env.pipeline.library_status()}
    assert status["ovos"].by_kind.get("effect", 0) >= 5
    assert status["beds"].by_kind == {"ambience": 3}
    assert status["intl"].sounds == 3


def test_scenes_follow_the_cuts_and_placements_sit_on_frames(
    env: SuggestEnv, short_result: Suggestions
) -> None:
    truth = env.short_scene_video
    starts = [sc.start for sc in short_result.scenes]
    assert starts == pytest.approx([0.0, *truth.cut_times], abs=1 / 25 + 1e-6)
    assert short_result.scenes[-1].end == pytest.approx(truth.duration, abs=1e-6)
    assert short_result.meaningless and "random" in short_result.model_id
    check_record_time(short_result)
    kinds = {p.kind for p in short_result.placements}
    assert kinds == {"ambience", "effect"}
    for scene in short_result.scenes:
        assert scene.ambience, "every scene gets a bed"
        assert all(c.kind == "ambience" for c in scene.ambience)
        assert [c.score for c in scene.ambience] == sorted(
            (c.score for c in scene.ambience), reverse=True
        )


def test_short_scene_keeps_its_neighbours_bed(short_result: Suggestions) -> None:
    first, short, last = short_result.scenes
    assert short.end - short.start < 1.0
    assert first.borrowed_from is None and last.borrowed_from is None
    assert short.borrowed_from == first.index
    assert short.ambience == first.ambience
    # The bed runs on through the short scene: nothing starts at its cut, the first bed plays
    # through it, and a next bed (if the last scene chose another) fades in centred on the
    # next cut, as at every cut.
    beds = [p for p in short_result.placements if p.kind == "ambience"]
    half = SuggestOptions().crossfade / 2
    frame = 1 / float(short_result.edit.fps)
    assert beds[0].record_start == 0.0 and beds[0].record_end >= short.end - 1e-6
    for p in beds[1:]:  # no crossfade centred on the short scene's own cut
        assert p.record_start >= short.end - half - frame - 1e-6
    assert {p.track for p in beds} <= {AMBIENCE_TRACK, AMBIENCE_TRACK_B}


def test_same_inputs_give_equal_suggestions(env: SuggestEnv, short_result: Suggestions) -> None:
    second = env.pipeline.suggest(env.short_scene_video.path)
    assert to_dict(second) == to_dict(short_result)
    assert second == short_result


def _same_data(a: object, b: object, path: str = "") -> None:
    """Equal, floats to 1e-9 relative."""
    if isinstance(a, dict) and isinstance(b, dict):
        assert a.keys() == b.keys(), path
        for key in a:
            _same_data(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, list) and isinstance(b, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _same_data(x, y, f"{path}[{i}]")
    elif isinstance(a, float):
        assert b == pytest.approx(a, rel=1e-9, abs=1e-12), path
    else:
        assert a == b, path


def test_recomputed_embeddings_give_the_same_suggestions(
    env: SuggestEnv, short_result: Suggestions
) -> None:
    # A second pipeline with an empty embedding cache computes every vector again. Label
    # vectors then come from another batch than at index time, which moves CPU float sums
    # in the last bits (~1e-14 on confidences): equal up to that, identical in every choice.
    with env.fresh_pipeline("cache-determinism") as again:
        second = again.suggest(env.short_scene_video.path)
    _same_data(to_dict(second), to_dict(short_result))
    assert [p.sound_id for p in second.placements] == [p.sound_id for p in short_result.placements]


def test_vta_and_va_both_find_beds(env: SuggestEnv, short_result: Suggestions) -> None:
    assert all(sc.ambience_labels for sc in short_result.scenes), "VTA names its labels"
    edit = _sub_edit(env.short_scene_video, 0.0, 2.0)
    va = env.pipeline.suggest(edit, SuggestOptions(ambience_mode="va"))
    assert len(va.scenes) == 1
    assert va.scenes[0].ambience and va.scenes[0].ambience_labels == ()
    assert va.settings and ("ambience_mode", "va") in va.settings
    assert any(p.kind == "ambience" for p in va.placements)


def _sub_edit(video: synth.CutVideoTruth, source_in: float, source_out: float) -> Edit:
    clip = SourceClip(str(video.path), source_in, source_out, 0.0, "part")
    return Edit(clips=(clip,), fps=video.fps, width=video.size[0], height=video.size[1])


def test_edit_of_two_clips_of_one_video_is_in_record_time(env: SuggestEnv) -> None:
    video = env.short_scene_video
    # The last shot's second half first, then the first shot's first 1.5 s.
    a = SourceClip(str(video.path), 5.5, 7.0, 0.0, "a")
    b = SourceClip(str(video.path), 0.2, 1.7, 1.5, "b")
    edit = Edit(clips=(b, a), fps=Fraction(25), name="two clips")
    s = env.pipeline.suggest(edit)
    assert s.edit.duration == pytest.approx(3.0)
    check_record_time(s)
    assert 1.5 in [pytest.approx(sc.start, abs=1e-6) for sc in s.scenes], "cut at the join"
    assert s.scenes[0].start == 0.0 and s.scenes[-1].end == pytest.approx(3.0)
    assert [t for tr in s.traces for t in tr.times] and all(
        0 <= t < 3.0 for tr in s.traces for t in tr.times
    )


def test_a_clip_late_in_its_file_is_decoded_from_near_its_start(
    env: SuggestEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An editor's clip may start an hour into its file: decoding must not start at 0.
    from sfxmatch import media

    video = env.short_scene_video
    first_times: list[float] = []
    real_iter = media.iter_frames

    def recording(*args, **kwargs):
        frames = real_iter(*args, **kwargs)
        first = next(frames)
        first_times.append(first.time)
        yield first
        yield from frames

    monkeypatch.setattr(media, "iter_frames", recording)
    s = env.pipeline.suggest(_sub_edit(video, 5.5, 7.0))
    # The analysis pass's first frame is the clip's first (the first at or after 5.5 s); the
    # frames decoded again to locate effects on screen start near those effects, never at 0.
    assert 5.5 <= first_times[0] < 5.5 + 1 / float(video.fps)
    assert all(t >= 5.0 for t in first_times)
    assert s.scenes[0].start == 0.0 and s.scenes[-1].end == pytest.approx(1.5)


def test_edit_of_two_videos_with_a_gap(env: SuggestEnv) -> None:
    one = SourceClip(str(env.short_scene_video.path), 1.0, 2.5, 0.0, "cuts")
    two = SourceClip(str(env.ntsc_video.path), 0.5, 2.0, 2.0, "ntsc")  # 0.5 s of black between
    edit = Edit(clips=(one, two), fps=Fraction(25))
    s = env.pipeline.suggest(edit)
    check_record_time(s)
    # Clip two lasts 37.5 frames at 25 fps: nothing may reach past the last whole frame.
    assert max(p.record_end for p in s.placements) <= s.edit.duration
    assert not [sc for sc in s.scenes if 1.5 + 1e-6 < sc.start < 2.0 - 1e-6], "none in the gap"
    # No effect's event lands in the gap; an effect on clip two's first frame keeps its
    # pre-roll (at most preroll_frames) over the black before it.
    effects = [p for p in s.placements if p.kind == "effect"]
    assert not [p for p in effects if 1.5 < p.event_time < 2.0 - 1e-9]
    preroll = SuggestOptions().preroll_frames / 25
    assert not [p for p in effects if 1.5 < p.record_start < 2.0 - preroll - 1e-9]
    assert any(sc.start == pytest.approx(2.0) for sc in s.scenes)


def test_cancel_from_progress_raises_and_writes_nothing(env: SuggestEnv, tmp_path: Path) -> None:
    cancel = threading.Event()
    seen: list[str] = []

    def progress(p: Progress) -> None:
        seen.append(p.stage)
        if p.stage == "analyse":
            cancel.set()

    with pytest.raises(Cancelled):
        env.pipeline.suggest(env.short_scene_video.path, progress=progress, cancel=cancel)
    assert "analyse" in seen and "done" not in seen


def test_cancel_during_render_leaves_no_files(
    env: SuggestEnv, short_result: Suggestions, tmp_path: Path
) -> None:
    cancel = threading.Event()

    def progress(p: Progress) -> None:
        cancel.set()

    request = RenderRequest(
        mix=str(tmp_path / "mix.wav"),
        stems_dir=str(tmp_path / "stems"),
        timeline=str(tmp_path / "t.otio"),
    )
    with pytest.raises(Cancelled):
        env.pipeline.render(short_result, request, progress=progress, cancel=cancel)
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]


def test_stage_timings_are_recorded(env: SuggestEnv) -> None:
    edit = _sub_edit(env.ntsc_video, 0.0, 1.0)
    suggester = env.pipeline.suggester(SuggestOptions())
    result = suggester.run(edit)
    assert result.scenes
    assert {"decode", "scenes", "embed", "score", "sync", "search", "place"} <= set(
        suggester.timings
    )
    assert all(v >= 0 for v in suggester.timings.values())
    assert "timings" not in dict(result.settings), "timings stay out of the value"


# --------------------------------------------------------------------------- bad input


def test_video_shorter_than_one_segment(env: SuggestEnv, tmp_path: Path) -> None:
    path = black_video(tmp_path / "two_frames.mp4", 2, value=90)
    s = env.pipeline.suggest(path)
    assert len(s.scenes) == 1 and s.scenes[0].end == pytest.approx(0.08)
    assert not s.scenes[0].effects, "no whole segment: no effects"
    assert s.scenes[0].ambience, "the bed is still chosen"
    assert [p.kind for p in s.placements] == ["ambience"]
    assert s.placements[0].duration == pytest.approx(0.08)


def test_black_static_video_is_one_scene(env: SuggestEnv, tmp_path: Path) -> None:
    path = black_video(tmp_path / "black.mp4", 60)
    s = env.pipeline.suggest(path)
    assert [(sc.start, sc.end) for sc in s.scenes] == [(0.0, pytest.approx(2.4))]
    assert s.scenes[0].ambience
    check_record_time(s)


@pytest.mark.parametrize(
    ("name", "make", "expected"),
    [
        ("missing.mp4", None, "no such file"),
        ("garbage.mp4", lambda p: p.write_bytes(b"not a video at all"), "not a media file"),
        ("tone.wav", lambda p: synth.make_tone_file(p), "no video stream"),
        ("empty.mp4", lambda p: p.write_bytes(b""), ""),
    ],
)
def test_unusable_files_give_a_media_error(
    env: SuggestEnv, tmp_path: Path, name: str, make: object, expected: str
) -> None:
    path = tmp_path / name
    if callable(make):
        make(path)
    with pytest.raises(MediaError) as info:
        env.pipeline.suggest(path)
    message = str(info.value)
    assert name in message and expected in message and "\n" not in message


@pytest.mark.parametrize("model", TINY_MODELS)
def test_no_library_is_a_precondition_error(tmp_path: Path, cut_video: tuple, model: str) -> None:
    message = "no sound library yet: `sfxmatch library add"
    with (
        Pipeline(settings_in(tmp_path), model=model) as pipeline,
        pytest.raises(PreconditionError, match=message),
    ):
        pipeline.suggest(cut_video[0])


@pytest.mark.parametrize("model", TINY_MODELS)
def test_library_not_indexed_or_unknown_is_a_typed_error(
    tmp_path: Path, cut_video: tuple, acoustic_scene_wav: Path, model: str
) -> None:
    with Pipeline(settings_in(tmp_path), model=model) as pipeline:
        pipeline.library_add(make_beds(tmp_path / "beds", acoustic_scene_wav), "beds")
        with pytest.raises(PreconditionError, match="no indexed sounds: run `sfxmatch library"):
            pipeline.suggest(cut_video[0])
        with pytest.raises(NotFoundError, match="no library named 'nope'"):
            pipeline.suggest(cut_video[0], SuggestOptions(libraries=("nope",)))


def test_library_without_ambience_still_suggests_effects(env: SuggestEnv) -> None:
    edit = _sub_edit(env.short_scene_video, 0.0, 2.5)
    s = env.pipeline.suggest(edit, SuggestOptions(libraries=("ovos",)))
    assert s.scenes and all(sc.ambience == () for sc in s.scenes)
    assert s.placements and {p.kind for p in s.placements} == {"effect"}
    assert not [p for p in s.placements if p.track.startswith(AMBIENCE_TRACK)]


def test_labels_in_other_languages_index_and_suggest(env: SuggestEnv) -> None:
    # File-name labels are lower-cased (casefold keeps ü); the sidecar's text is kept as is.
    expected = {GERMAN_NAME.lower(), JAPANESE_NAME, JAPANESE_SIDECAR}
    labels = env.pipeline.store.labels(Filter(modality="text", library="intl"))
    assert set(labels) == expected
    found = env.pipeline.library_search(JAPANESE_SIDECAR, library="intl", top_k=3)
    assert {c.label for c in found} == expected
    edit = _sub_edit(env.short_scene_video, 0.0, 2.0)
    s = env.pipeline.suggest(edit, SuggestOptions(libraries=("intl",)))
    placed = {p.label for p in s.placements}
    assert placed and placed <= expected
    assert to_dict(s)["placements"][0]["label"] in placed


def test_edit_for_video_uses_the_files_own_rate(env: SuggestEnv) -> None:
    edit = edit_for_video(env.ntsc_video.path)
    assert edit.fps == Fraction(30000, 1001)
    assert edit.clips[0].duration == pytest.approx(env.ntsc_video.duration, abs=1e-3)
