"""Coarse-to-fine in the pipeline: the effect intervals of a full scan, for a fraction of it.

Both tiny models, on real footage (vtest's first 30 s, people walking past a fixed camera)
and on a synthetic video with cuts. Random weights make traces that jump more than a real
model's would: the scan then refines more, which the fraction measured here shows.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sfxmatch.pipeline import Pipeline
from sfxmatch.suggest import edit_for_video
from sfxmatch.suggestions import Edit, SourceClip, Suggestions, SuggestOptions
from test_suggest import SuggestEnv, shared_env
from tiny_models import TINY_MODELS

SEGMENT = 0.1


@pytest.fixture(scope="module", params=TINY_MODELS)
def env(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    ovos_sounds: Path,
    acoustic_scene_wav: Path,
) -> SuggestEnv:
    return shared_env(tmp_path_factory, ovos_sounds, acoustic_scene_wav, request.param)


def run(pipeline: Pipeline, edit: Edit, scan: str) -> tuple[Suggestions, tuple[int, int]]:
    suggester = pipeline.suggester(SuggestOptions(scan=scan, spatial=False))
    return suggester.run(edit), suggester.scan_counts


def intervals(s: Suggestions) -> list[tuple[str, float, float]]:
    return sorted((e.label, e.start, e.end) for sc in s.scenes for e in sc.effects)


def assert_within_a_segment(full: Suggestions, coarse: Suggestions) -> None:
    want, got = intervals(full), intervals(coarse)
    assert [label for label, *_ in got] == [label for label, *_ in want]
    for (_, a0, a1), (_, b0, b1) in zip(want, got, strict=True):
        assert abs(a0 - b0) <= SEGMENT + 1e-6 and abs(a1 - b1) <= SEGMENT + 1e-6


@pytest.mark.real_media
def test_real_footage_coarse_finds_the_full_scans_intervals(env: SuggestEnv, vtest_avi: Path):
    clip = SourceClip(str(vtest_avi), 0.0, 30.0, 0.0, "vtest")
    edit = Edit(clips=(clip,), fps=edit_for_video(vtest_avi).fps)
    full, full_counts = run(env.pipeline, edit, "full")
    coarse, coarse_counts = run(env.pipeline, edit, "coarse")
    assert full_counts == (300, 300)
    assert coarse_counts[1] == 300 and coarse_counts[0] < 300
    assert intervals(full), "random weights still find effects here"
    assert_within_a_segment(full, coarse)
    print(f"{env.pipeline.model}: coarse embedded {coarse_counts[0]} of 300 segments")


def test_cuts_coarse_finds_the_full_scans_intervals(env: SuggestEnv) -> None:
    edit = edit_for_video(env.short_scene_video.path)
    full, _ = run(env.pipeline, edit, "full")
    coarse, counts = run(env.pipeline, edit, "coarse")
    assert [(s.start, s.end) for s in coarse.scenes] == [(s.start, s.end) for s in full.scenes]
    assert_within_a_segment(full, coarse)
    assert counts[0] < counts[1]


def test_auto_is_coarse_on_a_cpu(env: SuggestEnv) -> None:
    edit = edit_for_video(env.short_scene_video.path)
    _, auto = run(env.pipeline, edit, "auto")
    _, coarse = run(env.pipeline, edit, "coarse")
    assert env.pipeline.encoder.placement.device == "cpu"
    assert auto == coarse
