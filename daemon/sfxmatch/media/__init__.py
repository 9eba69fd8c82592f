"""Media I/O: probe, decode frames once for several consumers, load and write audio.

Modules: :mod:`~sfxmatch.media.probe` (opening files, :func:`probe`),
:mod:`~sfxmatch.media.frames` (pictures), :mod:`~sfxmatch.media.audio` (sound),
:mod:`~sfxmatch.media.wav` (writing WAV), :mod:`~sfxmatch.media.values` (what they return).

CONTRACT (types and signatures are fixed):
- Every failure on a user's file raises ``sfxmatch.errors.MediaError(path, problem)``; nothing
  from PyAV (``av.error.*``) and no ``OSError`` reaches the caller. Bad argument values (a
  negative rate, an unknown channel mode) raise ``sfxmatch.errors.ConfigError``.
- Frames are upright (rotation metadata applied) RGB ``uint8`` arrays of shape (H, W, 3). They
  are read-only: one array may be shared by several consumers and by held (repeated) frames.
- Audio samples are ``float32`` arrays of shape (channels, samples), nominally in [-1, 1]
  (float sources can exceed it; nothing is clipped on reading).
- Times are seconds from the start of the file: the earliest start of its audio/video streams
  (negative starts, such as encoder priming, count as 0). Frames and audio share that origin.
- A file with no picture starts where its sound starts: its first decoded sample is sample 0,
  whatever timestamp the demuxer gives it, as the reference decoders (FFmpeg's command line,
  libsndfile, libvorbisfile) have it. FFmpeg's libraries time some Ogg Vorbis streams from a
  first packet that decodes to nothing (minetest's ``doors_glass_door_open.ogg``: its first
  frame at 256 samples); padding that with silence shifted every event of the file late.
  Encoder priming is dropped as FFmpeg does (Opus pre-skip, an MP3's LAME/Xing encoder delay,
  an MP4's edit list or ``iTunSMPB`` priming), and the end is where FFmpeg's command line ends
  it, except that an MP4's stated length (edit list, ``iTunSMPB``) drops AAC's padding too.

Truncated files: when the container itself proves it (an index pointing past the end of the
file, a header promising more frames than the data holds) the file is refused as soon as it
is opened, by ``probe``, ``iter_frames`` and ``load_audio`` alike. Otherwise (say a Matroska
file cut short) frames are delivered up to the cut and then a ``MediaError`` says where the
file ends early; ``load_audio`` raises when the window it was asked for runs into the cut.
"""

from sfxmatch.media.audio import load_audio
from sfxmatch.media.frames import (
    PASS_DECODER_THREADS,
    FrameTable,
    broadcast,
    frame_table,
    iter_frames,
)
from sfxmatch.media.probe import probe
from sfxmatch.media.values import (
    Audio,
    AudioStreamInfo,
    ChannelMode,
    Frame,
    MediaInfo,
    VideoStreamInfo,
    WavSubtype,
)
from sfxmatch.media.wav import write_wav

__all__ = [
    "PASS_DECODER_THREADS",
    "Audio",
    "AudioStreamInfo",
    "ChannelMode",
    "Frame",
    "FrameTable",
    "MediaInfo",
    "VideoStreamInfo",
    "WavSubtype",
    "broadcast",
    "frame_table",
    "iter_frames",
    "load_audio",
    "probe",
    "write_wav",
]
