"""``--plot``: the similarity of each label over time, its intervals and the scene cuts.

The source report's Figure 3, because a person judges sync faster by looking than by
reading numbers. Matplotlib with the Agg backend (no display needed), imported only here.
"""

from __future__ import annotations

from pathlib import Path

from sfxmatch.errors import MediaError
from sfxmatch.files import atomic_write
from sfxmatch.suggestions import Suggestions

SYNC_COLOUR = "#2e8b3a"


def sync_marks(suggestions: Suggestions) -> dict[str, list[tuple[float, float]]]:
    """Per effect label, ``(clip start, event)`` record seconds of every placed effect: where
    its clip starts (its pre-roll) and where its own event, its sync point, sounds."""
    marks: dict[str, list[tuple[float, float]]] = {}
    for p in suggestions.placements:
        event = p.event_time
        if p.kind == "effect" and event is not None:
            marks.setdefault(p.label, []).append((p.record_start, event))
    return {label: sorted(v) for label, v in marks.items()}


def plot_suggestions(
    suggestions: Suggestions, path: str | Path, *, threshold: float | None = None
) -> Path:
    """Write a PNG: one row per kept trace, intervals shaded, cuts as dashed lines, and
    where each placed effect's sync point landed (a green line from its clip's start, a
    triangle on its event: on the interval's onset frame)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    out = Path(path)
    traces = suggestions.traces
    rows = max(1, len(traces))
    fig, axes = plt.subplots(rows, 1, figsize=(12, 1.6 * rows + 1), sharex=True, squeeze=False)
    cuts = [s.start for s in suggestions.scenes[1:]]
    intervals: dict[str, list[tuple[float, float]]] = {}
    for scene in suggestions.scenes:
        for effect in scene.effects:
            intervals.setdefault(effect.label, []).append((effect.start, effect.end))
    marks = sync_marks(suggestions)
    if not traces:
        axes[0][0].text(0.5, 0.5, "no effect labels scored", ha="center", va="center")
    for ax, trace in zip((row[0] for row in axes), traces, strict=False):
        ax.plot(trace.times, trace.values, lw=1.0, color="#1f5fa8")
        for start, end in intervals.get(trace.label, []):
            ax.axvspan(start, end, color="#f2a541", alpha=0.35, lw=0)
        for clip_start, event in marks.get(trace.label, []):
            ax.axvline(event, color=SYNC_COLOUR, lw=1.2)
            top = max(trace.values, default=1.0)
            ax.plot([clip_start, event], [top, top], color=SYNC_COLOUR, lw=2.0)
            ax.plot([event], [top], marker="v", color=SYNC_COLOUR, ms=6)
        for cut in cuts:
            ax.axvline(cut, color="#555555", ls="--", lw=0.8)
        if threshold is not None:
            ax.axhline(threshold, color="#b22222", lw=0.6, ls=":")
        ax.set_ylabel(trace.label[:24], rotation=0, ha="right", va="center", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[-1][0].set_xlabel("seconds (record time)")
    title = (
        f"{suggestions.edit.name or 'edit'}: label similarity, intervals (shaded), cuts "
        "(dashed), effects' sync points as placed (green: pre-roll and event)"
    )
    if suggestions.meaningless:
        title += "  [RANDOM WEIGHTS: MEANINGLESS]"
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    try:
        with atomic_write(out, suffix=".png") as tmp:
            fig.savefig(tmp, dpi=110)
    except OSError as exc:
        raise MediaError(out, f"cannot be written: {exc.strerror or exc}") from exc
    finally:
        plt.close(fig)
    return out
