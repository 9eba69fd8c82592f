"""Matching: effect-label similarity series to synced intervals, and how to measure them."""

from sfxmatch.match.autosync import (
    Interval,
    SyncParams,
    softmax_scores,
    sync_intervals,
    sync_labels,
    sync_trace,
)

__all__ = [
    "Interval",
    "SyncParams",
    "softmax_scores",
    "sync_intervals",
    "sync_labels",
    "sync_trace",
]
