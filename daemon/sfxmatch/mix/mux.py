"""Put the new audio under the picture: the video stream copied untouched, the mix encoded.

mp4 / m4v / mkv get AAC (256 kb/s stereo); mov gets 24-bit PCM, what editors import without
a decode step. The audio is made to span the video stream exactly (silence added or the
tail cut), every other stream of the input (its own audio, subtitles) is left out. PyAV does
the work, so no ``ffmpeg`` process is started. The file is written under a temporary name
beside the target, checked with :func:`sfxmatch.media.probe` (a video and an audio stream),
and only then renamed into place.
"""

from __future__ import annotations

import contextlib
import threading
from fractions import Fraction
from pathlib import Path
from typing import cast

import av
import av.container
import av.error
import numpy as np

from sfxmatch import media
from sfxmatch.errors import ConfigError, MediaError
from sfxmatch.files import atomic_write
from sfxmatch.progress import ProgressFn

from .render import check_cancel, report

MUX_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}
_AAC_BIT_RATE = 256_000
_CHUNK = 1024 * 48  # audio samples encoded per step (interleaved with the video packets)


def audio_codec_for(path: str | Path) -> str:
    """The audio codec a muxed file of this extension gets."""
    return "pcm_s24le" if Path(path).suffix.lower() == ".mov" else "aac"


def mux_video(
    video: str | Path,
    audio: media.Audio | str | Path,
    out_path: str | Path,
    *,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> Path:
    """Write ``out_path`` (.mp4, .m4v, .mov or .mkv): ``video``'s picture with ``audio``.

    ``audio`` is an :class:`~sfxmatch.media.Audio` or the path of a sound file (the mix WAV).
    Raises MediaError naming the file at fault; nothing is left at ``out_path`` on failure.
    """
    out = Path(out_path)
    fmt = MUX_FORMATS.get(out.suffix.lower())
    if fmt is None:
        endings = ", ".join(sorted(MUX_FORMATS))
        raise ConfigError(f"{out.name}: the muxed video must end in {endings}")
    info = media.probe(video)
    if info.video is None:
        raise MediaError(video, "has no video stream to put the mix under")
    sound = audio if isinstance(audio, media.Audio) else media.load_audio(audio, channels="keep")
    if sound.channels not in (1, 2):
        raise ConfigError(f"the muxed audio must be mono or stereo, not {sound.channels} channels")
    if not out.parent.is_dir():  # the caller's folder, never one made here
        raise MediaError(out, "cannot be written: its folder does not exist")
    written: Path | None = None
    try:
        with atomic_write(out, suffix=out.suffix) as tmp:
            written = tmp
            _write(Path(video), sound, tmp, fmt, audio_codec_for(out), progress, cancel)
            check = media.probe(tmp)
            if check.video is None or not check.audio:
                raise MediaError(out, "the written file lacks its video or its audio stream")
    except (OSError, av.error.FFmpegError) as exc:
        raise MediaError(out, f"cannot be written: {exc}") from exc
    except MediaError as exc:
        if written is not None and exc.path == written:  # found in the temporary file
            raise MediaError(out, exc.problem) from exc
        raise
    report(progress, "mux", 1.0, out.name)
    return out


_FALLBACK_VIDEO_CODEC = "libx264" if "libx264" in av.codecs_available else "mpeg4"


def _remove(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()


def _write(
    video: Path,
    sound: media.Audio,
    tmp: Path,
    fmt: str,
    codec: str,
    progress: ProgressFn | None,
    cancel: threading.Event | None,
) -> None:
    with av.open(str(video)) as source:
        in_v = source.streams.video[0]
        length = _video_length(source, in_v)
        rate = sound.sample_rate
        samples = _fit(sound.samples, round(length * rate))
        with av.open(str(tmp), "w", format=fmt) as target:
            try:
                out_v = target.add_stream_from_template(in_v)
                copy = True
            except ValueError:
                # The container cannot hold this codec (msmpeg4 in mp4...): re-encode the
                # picture as H.264, visually lossless, rather than refuse the user's choice.
                out_v = cast(
                    av.VideoStream,
                    target.add_stream(_FALLBACK_VIDEO_CODEC, rate=in_v.average_rate or 25),
                )
                out_v.width = in_v.codec_context.width
                out_v.height = in_v.codec_context.height
                out_v.pix_fmt = "yuv420p"
                out_v.options = {"crf": "18", "preset": "veryfast"}
                copy = False
            layout = "mono" if samples.shape[0] == 1 else "stereo"
            out_a = cast(av.AudioStream, target.add_stream(codec, rate=rate, layout=layout))
            if codec == "aac":
                out_a.codec_context.bit_rate = _AAC_BIT_RATE
            encoder = _AudioEncoder(target, out_a, samples, rate)
            if copy:
                for packet in source.demux(in_v):
                    if packet.dts is None:  # the demuxer's empty flush packet
                        continue
                    if packet.pts is not None and packet.time_base:
                        t = float(packet.pts * packet.time_base)
                        encoder.encode_until(t + 1.0)
                        report(progress, "mux", t / length if length else 1.0, "")
                        check_cancel(cancel, "mux")
                    packet.stream = out_v
                    target.mux(packet)
            else:
                for frame in source.decode(in_v):
                    t = float(frame.time or 0.0)
                    encoder.encode_until(t + 1.0)
                    report(progress, "mux", t / length if length else 1.0, "re-encoding")
                    check_cancel(cancel, "mux")
                    picture = frame.reformat(format="yuv420p")
                    picture.pts = frame.pts
                    picture.time_base = frame.time_base
                    for packet in out_v.encode(picture):
                        target.mux(packet)
                for packet in out_v.encode(None):
                    target.mux(packet)
            encoder.finish()


def _video_length(container: av.container.InputContainer, stream: av.VideoStream) -> float:
    """Seconds the video stream lasts from the file's start."""
    if stream.duration and stream.time_base:
        start = stream.start_time or 0
        return float((start + stream.duration) * stream.time_base)
    if stream.frames and stream.average_rate:
        return float(Fraction(stream.frames) / stream.average_rate)
    if container.duration:
        return container.duration / av.time_base
    raise MediaError(str(container.name), "the length of its video stream is unknown")


def _fit(samples: np.ndarray, n: int) -> np.ndarray:
    """Exactly ``n`` samples: the tail cut or silence added."""
    if samples.shape[1] >= n:
        return np.ascontiguousarray(samples[:, :n], dtype=np.float32)
    pad = np.zeros((samples.shape[0], n - samples.shape[1]), dtype=np.float32)
    return np.concatenate([samples.astype(np.float32), pad], axis=1)


class _AudioEncoder:
    """Feeds the samples to the encoder a chunk at a time, as the video packets advance."""

    def __init__(
        self,
        container: av.container.OutputContainer,
        stream: av.AudioStream,
        samples: np.ndarray,
        rate: int,
    ) -> None:
        self.container, self.stream, self.samples, self.rate = container, stream, samples, rate
        self.at = 0

    def encode_until(self, seconds: float) -> None:
        stop = min(self.samples.shape[1], round(seconds * self.rate))
        while self.at < stop:
            end = min(stop, self.at + _CHUNK)
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(self.samples[:, self.at : end]),
                format="fltp",
                layout=self.stream.layout.name,
            )
            frame.sample_rate = self.rate
            frame.pts = self.at
            frame.time_base = Fraction(1, self.rate)
            for packet in self.stream.encode(frame):
                self.container.mux(packet)
            self.at = end

    def finish(self) -> None:
        self.encode_until(self.samples.shape[1] / self.rate)
        for packet in self.stream.encode(None):
            self.container.mux(packet)
