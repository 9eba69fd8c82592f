"""Every timeline flavour, byte for byte, against files written before the flavours became
objects (``tests/data/golden_timelines``): the refactor changed no output.

To write the files again after a *deliberate* change of output:
``SFXMATCH_WRITE_GOLDEN=1 pytest tests/test_timeline_golden.py`` (then review the diff).
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import pytest
from sfxmatch.suggestions import (
    Candidate,
    Edit,
    EffectSuggestion,
    Keyframe,
    Placement,
    SceneSuggestion,
    SourceClip,
    Suggestions,
)
from sfxmatch.timeline import write_timeline

GOLDEN = Path(__file__).parent / "data" / "golden_timelines"

RAIN = Candidate("amb-1", "rain on roof", "/lib/amb/rain roof.wav", 0.91, "ambience", 30.0)
WIND = Candidate("amb-2", "wind", "/lib/amb/wind#1.wav", 0.85, "ambience", 2.6)
DOOR = Candidate("fx-1", "door slam", "/lib/fx/door slam.wav", 0.7, "effect", 1.5, "DOOR", 0.21)
KNOCK = Candidate("fx-2", "knock", "C:\\lib\\fx\\knock ü.wav", 0.5, "effect", 0.4)

RATES = {
    "25": (Fraction(25), "10:00:00:00"),
    "2997df": (Fraction(30000, 1001), "01:00:00;00"),
    "23976": (Fraction(24000, 1001), "01:00:00:00"),
}


def golden_suggestions(fps: Fraction, start_tc: str) -> Suggestions:
    """Loops with crossfades, layered beds, spotted effects on two tracks, automation,
    fades, a Windows path and a name with characters URLs escape."""
    edit = Edit(
        clips=(
            SourceClip("/media/day 1/A001.mov", 2.0, 6.0, 0.0, "A001"),
            SourceClip("/media/day 1/A002 ü.mov", 10.5, 14.0, 4.0, "A002"),
        ),
        fps=fps,
        width=1920,
        height=1080,
        start_timecode=start_tc,
        name="Golden Edit",
        sample_rate=48000,
    )
    placements = (
        Placement(
            "Ambience", "ambience", "amb-1", RAIN.path, RAIN.label, 0.0, 4.5,
            source_start=1.0, source_duration=30.0, gain_db=-12.0, fade_in=0.5,
            fade_out=0.5, scene_index=0, score=0.91, alternatives=(WIND,),
            automation=(Keyframe(0.0, -12.0, 0.0), Keyframe(2.0, -6.0, 0.3)),
        ),
        Placement(
            "Ambience 2", "ambience", "amb-2", WIND.path, WIND.label, 3.5, 4.0,
            source_duration=2.6, loop=True, fade_in=0.5, scene_index=1, score=0.85,
        ),
        Placement(
            "SFX 1", "effect", "fx-1", DOOR.path, DOOR.label, 1.24, 0.92,
            source_start=0.13, source_duration=1.5, pan=-0.5, scene_index=0, score=0.7,
            sync_point=0.21,
        ),
        Placement(
            "SFX 2", "effect", "fx-2", KNOCK.path, KNOCK.label, 1.6, 0.4,
            source_duration=0.4, scene_index=0, score=0.5, gain_db=-3.0,
        ),
        Placement(
            "SFX 1", "effect", "fx-2", KNOCK.path, KNOCK.label, 5.0, 0.4,
            source_duration=0.4, scene_index=1, score=0.5, fade_out=0.1,
        ),
    )  # fmt: skip
    scenes = (
        SceneSuggestion(
            0, 0.0, 4.0, (RAIN, WIND),
            effects=(EffectSuggestion("door slam", 1.32, 2.1, 0.8, (DOOR, KNOCK), 0),),
        ),
        SceneSuggestion(1, 4.0, 7.5, (WIND, RAIN), ambience_labels=(("wind", 0.4),)),
    )  # fmt: skip
    return Suggestions(edit, scenes, placements, "test-model")


CASES = [
    (rate, flavour, suffix)
    for rate in sorted(RATES)
    for flavour in ("generic", "resolve", "premiere")
    for suffix in (".otio", ".xml")
]


@pytest.mark.parametrize(("rate", "flavour", "suffix"), CASES)
def test_every_flavour_writes_what_it_wrote_before(
    tmp_path: Path, rate: str, flavour: str, suffix: str
) -> None:
    fps, tc = RATES[rate]
    name = f"{rate}-{flavour}{suffix}"
    written = write_timeline(golden_suggestions(fps, tc), tmp_path / name, flavour)
    text = written.read_bytes()
    golden = GOLDEN / name
    if os.environ.get("SFXMATCH_WRITE_GOLDEN") == "1":
        GOLDEN.mkdir(parents=True, exist_ok=True)
        golden.write_bytes(text)
    assert text == golden.read_bytes(), f"{name} differs from its golden file"
