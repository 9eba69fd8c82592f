"""Is a sound an ambience bed, an effect or music? Decided offline, with the reason kept.

Evidence, strongest first (:func:`decide_kind`):

1. a user override for the file or a folder above it (glob -> kind, from configuration);
2. its UCS category: AMBIENCE is ambience, MUSICAL is music, bed-like categories (rain,
   wind, flowing water, walla, HVAC, drones, vehicle interiors...) are ambience when long,
   everything else is an effect;
3. very short sounds (under 2 s) are effects: no bed or piece of music is that short;
4. zero-shot classification of the label with the encoder's text tower against prompt
   sets ("the ambience of a place", "a sound effect", "music"), by cosine; an "effect" that
   is a seamless loop or a minute long is an ambience all the same;
5. length and loops alone: seamless loops (end flows into start, no fades) and files of
   20 s or more are ambience, the rest effects.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from sfxmatch.errors import ConfigError, LimitError
from sfxmatch.library.ucs import UcsCategory
from sfxmatch.store.base import Kind

if TYPE_CHECKING:
    from sfxmatch.embed.encoder import Encoder

KindSource = Literal["override", "ucs", "zero_shot", "heuristic", "default"]

SHORT_SECONDS = 2.0  # shorter: an effect, whatever the label says
BED_SECONDS = 10.0  # bed-like UCS categories this long or longer are ambience
LONG_SECONDS = 20.0  # with no other evidence, this long or longer is ambience
VERY_LONG_SECONDS = 60.0  # overrides a zero-shot "effect"
MIN_LOOP_SECONDS = 5.0  # a seamless loop shorter than this is a looping effect (an engine...)


@dataclass(frozen=True)
class KindDecision:
    kind: Kind
    source: KindSource
    reason: str
    scores: tuple[tuple[Kind, float], ...] = ()  # zero-shot cosines, when they were used


# --------------------------------------------------------------------------- UCS

# Categories that hold beds when the file is long enough (by CatID, or a whole category).
_BED_CAT_ID_LIST = """
    WIND WINDInt WINDVege WINDTurb WTHR STORM HAIL WATRFlow WATRFoun WATRLap WATRSurf WATRTurb
    WATRFall WATRWave WATRUndwtr CRWDWalla CRWDQuiet CRWDConv CRWDLoop CRWDChld LPGRP MACHHvac
    MACHFan ELECBuzz DSGNDron FIREBurn FIRECrkl VEHInt TRNInt AEROInt"""
_BED_CAT_IDS = frozenset(_BED_CAT_ID_LIST.split())
_BED_CATEGORIES = frozenset({"RAIN"})
_ALWAYS_MUSIC = frozenset({"MUSCSong", "MUSCLoop", "MUSCStngr", "MUSCChor", "MUSCPrfm"})


def kind_from_ucs(ucs: UcsCategory, duration: float | None = None) -> tuple[Kind, str] | None:
    """(kind, reason) from a UCS category; None for ARCHIVED rows (mixes, tests, WIP...)."""
    name = f"UCS {ucs.cat_id} ({ucs.category}/{ucs.subcategory})"
    if ucs.category == "AMBIENCE":
        return "ambience", name
    if ucs.category == "MUSICAL":
        if duration is not None and duration < SHORT_SECONDS and ucs.cat_id not in _ALWAYS_MUSIC:
            return "effect", f"{name}, a single {duration:.1f} s note or hit"
        return "music", name
    if ucs.cat_id in _BED_CAT_IDS or ucs.category in _BED_CATEGORIES:
        if duration is None or duration >= BED_SECONDS:
            return "ambience", f"{name}, a bed-like category" + (
                f" and {duration:.0f} s long" if duration is not None else ""
            )
        return "effect", f"{name}, only {duration:.1f} s long"
    if ucs.category == "ARCHIVED" and ucs.cat_id != "LPGRP":
        return None
    return "effect", name


# --------------------------------------------------------------------------- zero-shot

DEFAULT_PROMPTS: Mapping[Kind, tuple[str, ...]] = {
    "ambience": (
        "the ambience of a place",
        "background ambience",
        "the ambient sound of an environment",
        "room tone",
        "a quiet outdoor atmosphere",
    ),
    "effect": (
        "a sound effect",
        "the short sound of an action",
        "an object making a sound",
        "a foley sound",
        "an impact",
    ),
    "music": (
        "music",
        "a piece of music",
        "a song",
        "a melody played on an instrument",
        "a music track",
    ),
}


@dataclass(frozen=True)
class PromptSet:
    """One unit vector per kind: the renormalised mean of its prompts' text vectors."""

    kinds: tuple[Kind, ...]
    vectors: np.ndarray  # (len(kinds), dim) float32, unit rows

    @classmethod
    def from_vectors(cls, vectors_by_kind: Mapping[Kind, np.ndarray]) -> PromptSet:
        """From prompt vectors per kind, each (n_prompts, dim) or (dim,)."""
        kinds = tuple(vectors_by_kind)
        rows = [np.atleast_2d(np.asarray(vectors_by_kind[k], np.float64)) for k in kinds]
        means = np.stack([_unit(r).mean(axis=0) for r in rows])
        return cls(kinds, _unit(means).astype(np.float32))


@dataclass(frozen=True)
class ZeroShot:
    kind: Kind
    margin: float  # best cosine minus second best
    scores: tuple[tuple[Kind, float], ...]


def _unit(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


def embed_prompts(
    encoder: Encoder, prompts: Mapping[Kind, Sequence[str]] = DEFAULT_PROMPTS
) -> PromptSet:
    """Embed every prompt once (one batch) and average per kind."""
    kinds = [k for k in prompts if prompts[k]]
    texts = [t for k in kinds for t in prompts[k]]
    vectors = np.asarray(encoder.embed_text(texts, space="audio"), dtype=np.float64)
    out: dict[Kind, np.ndarray] = {}
    start = 0
    for kind in kinds:
        out[kind] = vectors[start : start + len(prompts[kind])]
        start += len(prompts[kind])
    return PromptSet.from_vectors(out)


def zero_shot_scores(label_vectors: np.ndarray, prompts: PromptSet) -> np.ndarray:
    """Cosine of every label (N, dim) with every kind: (N, len(prompts.kinds)). Pure."""
    labels = _unit(np.atleast_2d(np.asarray(label_vectors, np.float64)))
    if labels.shape[1] != prompts.vectors.shape[1]:
        raise ConfigError(
            f"label vectors have {labels.shape[1]} dimensions, prompts {prompts.vectors.shape[1]}"
        )
    return (labels @ prompts.vectors.T.astype(np.float64)).astype(np.float32)


def zero_shot_kinds(label_vectors: np.ndarray, prompts: PromptSet) -> list[ZeroShot]:
    """The best kind of each label by cosine, with its margin over the runner-up. Pure."""
    scores = zero_shot_scores(label_vectors, prompts)
    out = []
    for row in scores:
        order = np.argsort(-row, kind="stable")
        margin = float(row[order[0]] - row[order[1]]) if len(order) > 1 else float("inf")
        pairs = tuple((prompts.kinds[i], float(row[i])) for i in range(len(row)))
        out.append(ZeroShot(prompts.kinds[order[0]], margin, pairs))
    return out


def classify_labels(
    encoder: Encoder,
    labels: Sequence[str],
    prompts: Mapping[Kind, Sequence[str]] | PromptSet = DEFAULT_PROMPTS,
) -> list[ZeroShot]:
    """Embed ``labels`` with the encoder's text tower and classify them zero-shot."""
    prompt_set = prompts if isinstance(prompts, PromptSet) else embed_prompts(encoder, prompts)
    if not labels:
        return []
    return zero_shot_kinds(encoder.embed_text(list(labels), space="audio"), prompt_set)


# --------------------------------------------------------------------------- loops


@dataclass(frozen=True)
class LoopCheck:
    """How well a sound's end flows into its start."""

    seamless: bool
    level_ratio: float  # quieter / louder of the first and last 50 ms (1 = same level)
    edge_level: float  # quieter edge / whole-file RMS (small = a fade in or out)
    jump_ratio: float  # step across the wrap / the 95th percentile step near the edges


def check_loop(samples: np.ndarray, sample_rate: int, *, window: float = 0.05) -> LoopCheck | None:
    """Compare the end of a sound with its start. None for silence or under 4 windows. Pure."""
    x = np.asarray(samples, np.float64)
    x = x.mean(axis=0) if x.ndim == 2 else x
    w = max(8, round(window * sample_rate))
    if x.shape[0] < 4 * w:
        return None
    overall = float(np.sqrt(np.mean(x**2)))
    if overall < 1e-5:
        return None
    head, tail = x[:w], x[-w:]
    r_head, r_tail = float(np.sqrt(np.mean(head**2))), float(np.sqrt(np.mean(tail**2)))
    level_ratio = min(r_head, r_tail) / max(r_head, r_tail, 1e-12)
    edge_level = min(r_head, r_tail) / overall
    steps = np.abs(np.diff(np.concatenate([tail, head])))
    typical = float(np.percentile(np.concatenate([steps[: w - 1], steps[w:]]), 95)) + 1e-9
    jump_ratio = abs(float(x[0] - x[-1])) / typical
    seamless = level_ratio >= 0.5 and edge_level >= 0.3 and jump_ratio <= 1.5
    return LoopCheck(seamless, level_ratio, edge_level, jump_ratio)


def is_seamless_loop(samples: np.ndarray, sample_rate: int) -> bool:
    check = check_loop(samples, sample_rate)
    return check is not None and check.seamless


def kind_from_heuristics(
    duration: float | None, *, seamless_loop: bool | None = None, loop_hint: bool = False
) -> tuple[Kind, str] | None:
    """(kind, reason) from length and loop evidence; None when there is none."""
    if duration is None:
        return ("ambience", "marked as a loop") if seamless_loop or loop_hint else None
    if duration < SHORT_SECONDS:
        return "effect", f"only {duration:.1f} s long"
    if (seamless_loop or loop_hint) and duration >= MIN_LOOP_SECONDS:
        how = "a seamless loop" if seamless_loop else "marked as a loop"
        return "ambience", f"{how}, {duration:.0f} s long"
    if duration >= LONG_SECONDS:
        return "ambience", f"{duration:.0f} s long"
    return "effect", f"{duration:.1f} s long, no loop"


# --------------------------------------------------------------------------- overrides

_KIND_ALIASES: dict[str, Kind] = {
    "ambience": "ambience", "ambiance": "ambience", "amb": "ambience", "bed": "ambience",
    "effect": "effect", "effects": "effect", "sfx": "effect", "fx": "effect",
    "music": "music", "mus": "music",
}  # fmt: skip


def parse_kind(value: str) -> Kind:
    """A kind from a user's spelling (``ambiance``, ``sfx``...); ConfigError otherwise."""
    kind = _KIND_ALIASES.get(value.strip().lower())
    if kind is None:
        raise ConfigError(f"unknown sound kind {value[:40]!r}: use ambience, effect or music")
    return kind


MAX_GLOB_CHARS = 256  # a kind-override glob this long at most
MAX_KIND_OVERRIDES = 100  # kind overrides per library at most


def _fold(ch: str) -> str:
    """One character, case ignored (as a case-insensitive regular expression compares)."""
    low = ch.lower()
    return low if len(low) == 1 else ch


class Glob:
    """A compiled kind-override glob; matching takes time linear in the path's length,
    whatever the glob.

    ``*`` is any run of characters but ``/``, ``?`` one character but ``/``, ``**`` any run
    of characters, ``/`` included, and ``**/`` any number of whole folders (none too):
    ``Music/**.wav`` matches ``Music/Drones/low.wav``, ``Beds/**`` everything inside Beds,
    ``**/x.wav`` an ``x.wav`` anywhere. Case is ignored.

    The glob is an automaton (a state before each of its parts; a star loops on its state)
    run over the path one character at a time, the set of states it is in held as the bits
    of one integer: no backtracking, so a pattern such as ``*a*a*a...*b`` cannot take
    exponential time on a long name (Python's ``re`` would, holding the interpreter while
    it does). The step from a set of states on a character is cached (a few thousand at
    most), so a glob run over many paths costs a dictionary look-up a character.
    """

    _MAX_CACHED = 4096  # sets of states whose steps are kept

    def __init__(self, pattern: str, scope: Literal["name", "relative", "absolute"], glob: str):
        self.pattern = pattern
        self.scope = scope
        consume: dict[str, int] = {}  # character -> states that step over it
        any_but_slash = loop_any = loop_but_slash = eps1 = eps3 = 0
        state, i = 0, 0
        while i < len(glob):
            bit = 1 << state
            if glob.startswith("**/", i):
                # (?:.*/)? : from an entry state, either on past it all, or into a loop on
                # anything, then a "/" (a loop must not lead past the "/" unread).
                eps1 |= bit | (bit << 1)
                eps3 |= bit
                loop_any |= bit << 1
                consume["/"] = consume.get("/", 0) | (bit << 2)
                state, i = state + 3, i + 3
                continue
            if glob.startswith("**", i):
                loop_any |= bit
                eps1 |= bit
                i += 2
            elif glob[i] == "*":
                loop_but_slash |= bit
                eps1 |= bit
                i += 1
            elif glob[i] == "?":
                any_but_slash |= bit
                i += 1
            else:
                ch = _fold(glob[i])
                consume[ch] = consume.get(ch, 0) | bit
                i += 1
            state += 1
        self._consume = consume
        self._any_but_slash = any_but_slash
        self._loop_any = loop_any
        self._loop_but_slash = loop_but_slash
        self._eps1 = eps1
        self._eps3 = eps3
        self._accept = 1 << state
        self._start = self._closure(1)
        self._steps: dict[int, dict[str, int]] = {}

    def __repr__(self) -> str:
        return f"Glob({self.pattern!r})"

    def _closure(self, states: int) -> int:
        """``states`` and every state reachable from them without reading a character."""
        while True:
            more = states | ((states & self._eps1) << 1) | ((states & self._eps3) << 3)
            if more == states:
                return states
            states = more

    def _step(self, states: int, ch: str) -> int:
        moved = states & self._consume.get(ch, 0)
        loops = states & self._loop_any
        if ch != "/":
            moved |= states & self._any_but_slash
            loops |= states & self._loop_but_slash
        return self._closure((moved << 1) | loops)

    def fullmatch(self, text: str) -> bool:
        """Whether the glob matches the whole of ``text``."""
        states = self._start
        steps = self._steps
        for ch in text:
            row = steps.get(states)
            if row is None:
                row = {}
                if len(steps) < self._MAX_CACHED:
                    steps[states] = row
            following = row.get(ch)
            if following is None:
                following = row[ch] = self._step(states, _fold(ch))
            if not following:
                return False
            states = following
        return bool(states & self._accept)

    def match(self, rel: str, absolute: str | None) -> bool:
        """Against a file's path relative to its library root and its absolute path (both
        with ``/``): a glob without ``/`` against each name in the relative path, one with
        ``/`` against the relative path, one starting with ``/`` against the absolute one."""
        if self.scope == "name":
            return any(self.fullmatch(part) for part in rel.split("/"))
        if self.scope == "absolute":
            return absolute is not None and self.fullmatch(absolute)
        return self.fullmatch(rel)


@functools.lru_cache(maxsize=1024)
def compile_glob(pattern: str) -> Glob:
    """Check and compile a kind-override glob (ConfigError/LimitError naming the problem).

    A pattern with no ``/`` matches a file or folder name anywhere; one with ``/`` matches
    the path relative to the library root (``Beds/`` means ``Beds/**``), or the absolute
    path when it starts with ``/``. See :class:`Glob` for the wildcards."""
    if len(pattern) > MAX_GLOB_CHARS:
        raise LimitError(
            f"kind-override glob of {len(pattern)} characters: at most {MAX_GLOB_CHARS} characters"
        )
    glob = pattern.replace("\\", "/").strip()
    if not glob:
        raise ConfigError("a kind-override glob is empty")
    if any(ord(ch) < 32 for ch in glob):
        raise ConfigError(f"kind-override glob {pattern[:60]!r} holds control characters")
    if glob.endswith("/"):
        glob += "**"
    if "/" not in glob:
        return Glob(pattern, "name", glob)
    return Glob(pattern, "absolute" if glob.startswith("/") else "relative", glob)


def check_overrides(rules: Sequence[tuple[str, str]]) -> tuple[tuple[str, Kind], ...]:
    """Kind overrides as given by a user: at most ``MAX_KIND_OVERRIDES``, each glob valid,
    each kind known. Returns them with kinds spelled canonically."""
    if len(rules) > MAX_KIND_OVERRIDES:
        raise LimitError(
            f"{len(rules)} kind overrides: a library takes at most {MAX_KIND_OVERRIDES}"
        )
    checked = []
    for glob, kind in rules:
        compile_glob(str(glob))
        checked.append((str(glob), parse_kind(str(kind))))
    return tuple(checked)


@dataclass(frozen=True)
class KindOverrides:
    """User overrides: glob -> kind, the last matching rule wins (like .gitignore).

    See :func:`compile_glob` for what a glob matches: ``Ambiences``, ``*_loop.wav``,
    ``Beds/**``, ``Music/*.wav``, ``/mnt/fx/**/*.flac``.
    """

    rules: tuple[tuple[str, Kind], ...] = ()

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, str]) -> KindOverrides:
        rules = tuple((str(glob), parse_kind(kind)) for glob, kind in mapping.items())
        for glob, _kind in rules:
            compile_glob(glob)
        return cls(rules)

    def match(
        self, relpath: str, path: str | os.PathLike[str] | None = None
    ) -> tuple[str, Kind] | None:
        """(pattern, kind) of the last rule matching the file, or None."""
        rel = os.fsencode(relpath).decode("utf-8", "replace").replace("\\", "/").strip("/")
        absolute = (
            os.fsencode(os.fspath(path)).decode("utf-8", "replace").replace("\\", "/")
            if path is not None
            else None
        )
        found = None
        for pattern, kind in self.rules:
            if compile_glob(pattern).match(rel, absolute):
                found = (pattern, kind)
        return found


# --------------------------------------------------------------------------- the decision


def decide_kind(
    *,
    relpath: str | None = None,
    path: str | os.PathLike[str] | None = None,
    overrides: KindOverrides | None = None,
    ucs: UcsCategory | None = None,
    zero_shot: ZeroShot | None = None,
    duration: float | None = None,
    seamless_loop: bool | None = None,
    loop_hint: bool = False,
    min_margin: float = 0.0,
) -> KindDecision:
    """Combine the evidence in the order of the module docstring. Pure.

    ``zero_shot`` counts only when its margin is at least ``min_margin`` (a random or weak
    model gives near-ties; raise it to let length decide those).
    """
    if overrides is not None and relpath is not None:
        hit = overrides.match(relpath, path)
        if hit is not None:
            return KindDecision(hit[1], "override", f"user override {hit[0]!r}")
    if ucs is not None:
        by_ucs = kind_from_ucs(ucs, duration)
        if by_ucs is not None:
            return KindDecision(by_ucs[0], "ucs", by_ucs[1])
    if duration is not None and duration < SHORT_SECONDS:
        return KindDecision("effect", "heuristic", f"only {duration:.1f} s long")
    if zero_shot is not None and zero_shot.margin >= min_margin:
        scored = ", ".join(f"{k} {s:.3f}" for k, s in zero_shot.scores)
        if zero_shot.kind == "effect" and (
            (seamless_loop and (duration or 0.0) >= MIN_LOOP_SECONDS)
            or (duration is not None and duration >= VERY_LONG_SECONDS)
        ):
            why = "a seamless loop" if seamless_loop else f"{duration:.0f} s long"
            return KindDecision(
                "ambience", "heuristic", f"label reads as an effect ({scored}) but {why}",
                zero_shot.scores,
            )  # fmt: skip
        return KindDecision(
            zero_shot.kind, "zero_shot", f"label cosine: {scored}", zero_shot.scores
        )
    by_length = kind_from_heuristics(duration, seamless_loop=seamless_loop, loop_hint=loop_hint)
    if by_length is not None:
        return KindDecision(by_length[0], "heuristic", by_length[1])
    return KindDecision("effect", "default", "no evidence: most library sounds are effects")
