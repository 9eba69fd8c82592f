"""THE sync rule: where an effect's clip goes so that its own event lands on the picture's.

Sound editors spot an effect by its sync point, the event inside the file, not by the file's
first sample. :func:`spot_effect` puts the sync point of a sound on the onset frame of an
effect interval:

- Up to ``preroll_frames`` whole frames of the sound before its sync point are kept (the
  breath of the attack; default 2, ``SuggestOptions.preroll_frames``); anything earlier is
  trimmed through the clip's source in-point, never by moving the event. Near the start of
  the edit the pre-roll is trimmed too, rather than the event shifted.
- The clip starts on the frame grid (``onset_frame - lead`` frames) and lasts whole frames;
  its source in-point is exact (seconds, to the sample), so that
  ``record_start + (sync_point - source_start)`` is the onset frame's time exactly.
- It plays to the end of the sound (``play=None``), or for ``play`` seconds after the sync
  point, and never past the end of the edit nor of the file: its length is the whole frames
  of the file from the in point (:func:`sfxmatch.framing.whole_media_frames`, floored),
  so an editor is never asked for media past the file's last sample.

The mixer renders the resulting placement, the OTIO / FCP7 XML exporter and the Resolve
script lay its clip, and the Premiere outputs come from the same file: one rule everywhere.
Ambience beds are not spotted (they loop from their first sample).
"""

from __future__ import annotations

import math
from fractions import Fraction

from sfxmatch.framing import whole_media_frames
from sfxmatch.suggestions import DEFAULT_PREROLL_FRAMES, Spot

_EPS = 1e-9


def spot_effect(
    *,
    sound_id: str,
    onset_frame: int,
    fps: Fraction,
    sync_point: float,
    sound_duration: float,
    end_frame: int,
    preroll_frames: int = DEFAULT_PREROLL_FRAMES,
    play: float | None = None,
) -> Spot | None:
    """The clip that puts ``sync_point`` (seconds into the sound) on ``onset_frame`` of an
    edit at ``fps`` that ends at ``end_frame`` (module notes). None when nothing of it fits
    before the end of the edit."""
    if preroll_frames < 0:
        raise ValueError(f"preroll_frames must be 0 or more, not {preroll_frames}")
    if not (math.isfinite(sync_point) and sync_point >= 0):
        raise ValueError(f"sync_point must be a time >= 0, not {sync_point!r}")
    if onset_frame < 0 or onset_frame >= end_frame:
        return None
    frame = 1 / Fraction(fps)
    sync = Fraction(sync_point)
    # Whole frames of the sound before its event: the pre-roll, what the file has before the
    # event, and what the edit has before the onset frame, whichever is least.
    lead = min(preroll_frames, math.floor(sync / frame + Fraction(_EPS)), onset_frame)
    lead = max(lead, 0)
    start_frame = onset_frame - lead
    source_start = max(Fraction(0), sync - lead * frame)
    length = Fraction(max(0.0, sound_duration))
    # The clip never asks for media the file does not have: its length is the file's whole
    # frames from the in point (framing.whole_media_frames), its last partial frame left out.
    media = whole_media_frames(length - source_start, Fraction(fps))
    if media <= lead:
        # Less than a frame of the sound after its event: the clip is one frame more than the
        # pre-roll, ending on the file's last sample, its in point earlier by what is missing
        # (the event then sounds late by less than a frame, and the spot says where). A file
        # shorter than that cannot lie on a frame grid at all.
        if length < (lead + 1) * frame:
            return None
        source_start = length - (lead + 1) * frame
        media = lead + 1
    if play is None:
        frames = media
    else:
        after = min(length - sync, Fraction(max(0.0, play)))
        frames = min(media, max(1, round((lead * frame + max(after, Fraction(0))) / frame)))
    frames = min(frames, end_frame - start_frame)
    if frames <= 0:
        return None
    return Spot(
        sound_id=sound_id,
        record_start=float(start_frame * frame),
        duration=float(frames * frame),
        source_start=float(source_start),
        sync_point=float(sync_point),
    )
