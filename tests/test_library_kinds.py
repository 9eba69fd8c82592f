"""Ambience, effect or music: UCS, zero-shot on given embeddings, length/loop, overrides."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sfxmatch.errors import ConfigError, LimitError
from sfxmatch.library.kinds import (
    MAX_GLOB_CHARS,
    MAX_KIND_OVERRIDES,
    KindOverrides,
    PromptSet,
    ZeroShot,
    check_loop,
    check_overrides,
    classify_labels,
    compile_glob,
    decide_kind,
    embed_prompts,
    is_seamless_loop,
    kind_from_heuristics,
    kind_from_ucs,
    parse_kind,
    zero_shot_kinds,
    zero_shot_scores,
)
from sfxmatch.library.ucs import UcsCategory, lookup_cat_id
from sfxmatch.store.base import KINDS
from sfxmatch.testing.synth import noise_burst, tone

RATE = 16000


def _ucs(cat_id: str) -> UcsCategory:
    found = lookup_cat_id(cat_id)
    assert found is not None
    return found


# --------------------------------------------------------------------------- UCS


@pytest.mark.parametrize(
    ("cat_id", "duration", "kind"),
    [
        ("AMBForst", 3.0, "ambience"),
        ("AMBRoom", None, "ambience"),
        ("MUSCSong", 120.0, "music"),
        ("MUSCInst", 0.8, "effect"),  # one note
        ("MUSCStngr", 1.5, "music"),  # a stinger is music however short
        ("DOORWood", 2.0, "effect"),
        ("RAIN", 60.0, "ambience"),
        ("RAINMetl", 4.0, "effect"),  # drops on metal, not a bed
        ("WATRSurf", None, "ambience"),
        ("DSGNDron", 30.0, "ambience"),
        ("GUNPis", 90.0, "effect"),  # long, but a gun category
    ],
)
def test_kind_from_ucs(cat_id: str, duration: float | None, kind: str) -> None:
    found = kind_from_ucs(_ucs(cat_id), duration)
    assert found is not None and found[0] == kind
    assert cat_id in found[1]


def test_archived_ucs_rows_say_nothing() -> None:
    assert kind_from_ucs(_ucs("MIX")) is None
    loop_group = kind_from_ucs(_ucs("LPGRP"), 30.0)  # loop group: a walla bed
    assert loop_group is not None and loop_group[0] == "ambience"


# --------------------------------------------------------------------------- zero-shot


def _basis(dim: int = 8) -> dict[str, np.ndarray]:
    eye = np.eye(dim, dtype=np.float32)
    # Two prompts per kind, around the kind's axis.
    return {
        "ambience": np.stack([eye[0] + 0.2 * eye[3], eye[0] - 0.2 * eye[3]]),
        "effect": np.stack([eye[1] + 0.2 * eye[4], eye[1] - 0.2 * eye[4]]),
        "music": eye[2],
    }


def test_prompt_set_averages_and_normalises() -> None:
    prompts = PromptSet.from_vectors(_basis())  # type: ignore[arg-type]
    assert prompts.kinds == ("ambience", "effect", "music")
    np.testing.assert_allclose(prompts.vectors, np.eye(8)[:3], atol=1e-6)


def test_zero_shot_picks_by_cosine() -> None:
    prompts = PromptSet.from_vectors(_basis())  # type: ignore[arg-type]
    labels = np.zeros((3, 8), np.float32)
    labels[0, [0, 1]] = [3.0, 1.0]  # mostly ambience (not unit: normalised inside)
    labels[1, [1, 5]] = [1.0, 1.0]  # effect, cosine 0.707
    labels[2, [2, 0]] = [1.0, 0.9]  # music, a close second ambience
    scores = zero_shot_scores(labels, prompts)
    assert scores.shape == (3, 3)
    np.testing.assert_allclose(scores[1], [0.0, np.sqrt(0.5), 0.0], atol=1e-6)
    picks = zero_shot_kinds(labels, prompts)
    assert [p.kind for p in picks] == ["ambience", "effect", "music"]
    assert picks[2].margin == pytest.approx((1.0 - 0.9) / np.hypot(1.0, 0.9), abs=1e-6)
    assert dict(picks[0].scores)["ambience"] == pytest.approx(3 / np.sqrt(10), abs=1e-6)
    with pytest.raises(ConfigError):
        zero_shot_scores(np.ones((1, 5)), prompts)


class _KeywordEncoder:
    """A stand-in text tower: each of a few words owns an axis; counts its calls."""

    model_id = "keyword-test"
    dim = 6
    words = ("ambience", "room", "place", "effect", "impact", "music")

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def embed_text(self, texts: Sequence[str], *, space: str) -> np.ndarray:
        assert space == "audio"  # labels and prompts describe sounds
        self.calls.append(list(texts))
        out = np.full((len(texts), self.dim), 0.01, np.float32)
        for row, text in enumerate(texts):
            for axis, word in enumerate(self.words):
                out[row, axis] += text.lower().count(word)
        return out / np.linalg.norm(out, axis=1, keepdims=True)


def test_classify_labels_embeds_prompts_and_labels_once() -> None:
    encoder = _KeywordEncoder()
    prompts = {
        "ambience": ("the ambience of a place", "room tone"),
        "effect": ("a sound effect", "an impact"),
        "music": ("music",),
    }
    picks = classify_labels(
        encoder,  # type: ignore[arg-type]
        ["busy place ambience", "metal impact", "music for a wedding"],
        prompts,  # type: ignore[arg-type]
    )
    assert [p.kind for p in picks] == ["ambience", "effect", "music"]
    assert len(encoder.calls) == 2 and len(encoder.calls[0]) == 5
    prompt_set = embed_prompts(encoder, prompts)  # type: ignore[arg-type]
    assert classify_labels(encoder, [], prompt_set) == []  # type: ignore[arg-type]
    assert len(encoder.calls) == 3  # a given PromptSet is not embedded again


@pytest.mark.slow
def test_zero_shot_with_the_tiny_imagebind_text_tower() -> None:
    """The real Encoder contract: unit vectors in, a kind per label out."""
    from sfxmatch.embed.encoder import load_encoder

    encoder = load_encoder("imagebind-tiny")
    picks = classify_labels(encoder, ["rain on a window", "door slam", "a jazz song"])
    assert len(picks) == 3 and all(p.kind in KINDS and p.margin >= 0 for p in picks)
    assert all(len(p.scores) == 3 for p in picks)


# --------------------------------------------------------------------------- loops and length


def test_seamless_loop_detection() -> None:
    seconds = 6.0
    whole_periods = tone(100.0, seconds, RATE)  # 600 periods: the end flows into the start
    assert is_seamless_loop(whole_periods, RATE)
    faded = whole_periods * np.linspace(1.0, 0.0, whole_periods.shape[1], dtype=np.float32)
    assert not is_seamless_loop(faded, RATE)
    # Ends a quarter period short: the wrap jumps from the crest back to zero.
    jumpy = tone(100.0, seconds - 0.0025, RATE)
    check = check_loop(jumpy, RATE)
    assert check is not None and not check.seamless and check.jump_ratio > 5
    assert is_seamless_loop(noise_burst(seconds, RATE, channels=2), RATE)  # a noise bed
    assert check_loop(np.zeros((1, RATE * 6), np.float32), RATE) is None  # silence
    assert check_loop(tone(100.0, 0.1, RATE), RATE) is None  # too short to tell


def test_kind_from_heuristics() -> None:
    assert kind_from_heuristics(None) is None
    assert kind_from_heuristics(1.0, seamless_loop=True) == ("effect", "only 1.0 s long")
    assert kind_from_heuristics(8.0, seamless_loop=True)[0] == "ambience"  # type: ignore[index]
    assert kind_from_heuristics(8.0, loop_hint=True)[0] == "ambience"  # type: ignore[index]
    assert kind_from_heuristics(8.0)[0] == "effect"  # type: ignore[index]
    assert kind_from_heuristics(45.0)[0] == "ambience"  # type: ignore[index]


# --------------------------------------------------------------------------- overrides


def test_overrides_last_matching_rule_wins() -> None:
    overrides = KindOverrides.from_mapping(
        {
            "Beds/": "ambiance",
            "*_music*": "music",
            "Beds/stingers/*.wav": "sfx",
            "Ambiences": "ambience",
            "/mnt/fx/**/*.flac": "effect",
        }
    )
    assert overrides.match("Beds/forest/night.wav") == ("Beds/", "ambience")
    assert overrides.match("beds/forest/night.wav") == ("Beds/", "ambience")  # case ignored
    assert overrides.match("Beds/stingers/hit.wav") == ("Beds/stingers/*.wav", "effect")
    assert overrides.match("Beds/stingers/deeper/hit.wav") == ("Beds/", "ambience")
    assert overrides.match("x/Ambiences/y/z.wav") == ("Ambiences", "ambience")
    assert overrides.match("lobby_music_01.wav") == ("*_music*", "music")
    assert overrides.match("SFX/door.wav") is None
    assert overrides.match("a/b.flac", "/mnt/fx/a/b.flac") == ("/mnt/fx/**/*.flac", "effect")
    assert overrides.match("a/b.flac") is None
    with pytest.raises(ConfigError):
        KindOverrides.from_mapping({"x/": "noise"})
    assert parse_kind(" SFX ") == "effect"


def _backtracking_reference(pattern: str) -> re.Pattern[str]:
    """The obvious translation to a regular expression (exponential on bad patterns)."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out), re.IGNORECASE | re.DOTALL)


_component = st.text("aB*?", min_size=1, max_size=6)  # "**" inside one crosses folders too
_name = st.text("abAB", min_size=1, max_size=4)


@settings(max_examples=600, deadline=None)
@given(
    components=st.lists(_component, min_size=1, max_size=4),
    path=st.lists(_name, min_size=1, max_size=5),
    trailing=st.booleans(),
)
def test_globs_match_as_the_backtracking_reference_does(components, path, trailing) -> None:
    pattern = "/".join(components) + ("/" if trailing else "")
    meant = pattern + ("**" if trailing else "")  # "Beds/" means "Beds/**"
    reference = _backtracking_reference(meant)
    rel = "/".join(path)
    if "/" in pattern:
        expected = reference.fullmatch(rel) is not None
    else:
        expected = any(reference.fullmatch(part) for part in path)
    assert compile_glob(pattern).match(rel, None) == expected
    absolute = "/mnt/fx/" + rel  # a glob starting with "/" is matched against this
    expected = _backtracking_reference("/mnt/" + meant).fullmatch(absolute) is not None
    assert compile_glob("/mnt/" + pattern).match(rel, absolute) == expected


@pytest.mark.parametrize(
    ("glob", "rel", "matches"),
    [
        ("Music/**.wav", "Music/Drones/low.wav", True),  # "**" inside a name crosses folders
        ("Beds/**wind", "Beds/Ext/wind", True),
        ("x**/y", "xa/b/y", True),
        ("x**/y", "xy", True),
        ("**.wav", "a/b.wav", True),
        ("Beds/**", "Beds", False),
        ("Beds/**", "Beds/rain.wav", True),
        ("**/rain.wav", "rain.wav", True),  # "**/": no folder at all, too
        ("**/rain.wav", "a/b/rain.wav", True),
        ("Music/*.wav", "Music/Drones/low.wav", False),  # "*" stays inside one name
        ("music/?ow.WAV", "Music/low.wav", True),  # case ignored
    ],
)
def test_saved_globs_keep_their_meaning(glob: str, rel: str, matches: bool) -> None:
    assert (KindOverrides.from_mapping({glob: "music"}).match(rel) is not None) == matches


def test_a_pathological_glob_matches_in_linear_time() -> None:
    # Backtracking takes longer than the age of the universe on these; here they answer
    # at once (this test would hang, not fail, without the linear matcher).
    glob = "*a" * 100 + "*b"
    overrides = KindOverrides.from_mapping({glob: "music", "x/" + glob: "effect"})
    assert overrides.match("a" * 4000 + ".wav") is None
    assert overrides.match("x/" + "a" * 4000) is None
    assert overrides.match("deep/" + "a" * 200 + "b") == (glob, "music")


def test_overrides_are_checked_and_bounded() -> None:
    assert check_overrides([("Beds/", "ambiance")]) == (("Beds/", "ambience"),)
    with pytest.raises(LimitError, match=f"at most {MAX_KIND_OVERRIDES}"):
        check_overrides([("x", "music")] * (MAX_KIND_OVERRIDES + 1))
    with pytest.raises(LimitError, match=f"at most {MAX_GLOB_CHARS}"):
        check_overrides([("a" * (MAX_GLOB_CHARS + 1), "music")])
    with pytest.raises(ConfigError, match="empty"):
        check_overrides([("  ", "music")])
    with pytest.raises(ConfigError, match="unknown sound kind"):
        check_overrides([("x", "noise")])


# --------------------------------------------------------------------------- the decision


def _zs(kind: str, margin: float = 0.1) -> ZeroShot:
    scores = tuple((k, 0.5 if k == kind else 0.5 - margin) for k in KINDS)
    return ZeroShot(kind, margin, scores)  # type: ignore[arg-type]


def test_decision_precedence() -> None:
    overrides = KindOverrides.from_mapping({"Music/": "music"})
    d = decide_kind(
        relpath="Music/AMBForst_Woods_X_Y.wav", overrides=overrides, ucs=_ucs("AMBForst")
    )
    assert (d.kind, d.source) == ("music", "override")
    d = decide_kind(
        relpath="a.wav", overrides=overrides, ucs=_ucs("AMBForst"), zero_shot=_zs("effect")
    )
    assert (d.kind, d.source) == ("ambience", "ucs")
    d = decide_kind(zero_shot=_zs("ambience"), duration=0.7)
    assert (d.kind, d.source) == ("effect", "heuristic")
    d = decide_kind(zero_shot=_zs("music"), duration=12.0)
    assert (d.kind, d.source) == ("music", "zero_shot") and d.scores
    d = decide_kind(zero_shot=_zs("effect"), duration=90.0)
    assert (d.kind, d.source) == ("ambience", "heuristic") and "effect" in d.reason
    d = decide_kind(zero_shot=_zs("effect"), duration=8.0, seamless_loop=True)
    assert (d.kind, d.source) == ("ambience", "heuristic")
    d = decide_kind(zero_shot=_zs("music", margin=0.001), duration=30.0, min_margin=0.01)
    assert (d.kind, d.source) == ("ambience", "heuristic")  # a near-tie: length decides
    d = decide_kind(ucs=_ucs("MIX"), duration=5.0)
    assert (d.kind, d.source) == ("effect", "heuristic")
    d = decide_kind()
    assert (d.kind, d.source) == ("effect", "default")
