"""Writing WAV files (float32, 16- or 24-bit PCM; WAVE_FORMAT_EXTENSIBLE past two channels)."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from sfxmatch.errors import ConfigError, MediaError
from sfxmatch.files import atomic_write
from sfxmatch.media.probe import _describe
from sfxmatch.media.values import Audio, WavSubtype

# --------------------------------------------------------------------------- WAV writing

_RIFF_MAX = 2**32 - 1
_FORMAT_PCM = 0x0001
_FORMAT_FLOAT = 0x0003
_FORMAT_EXTENSIBLE = 0xFFFE
_GUID_TAIL = b"\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"  # KSDATAFORMAT_SUBTYPE_*
_CHANNEL_MASKS = {1: 0x4, 2: 0x3, 4: 0x33, 6: 0x3F, 8: 0x63F}  # mono, stereo, quad, 5.1, 7.1
_CHUNK_FRAMES = 1 << 18  # sample frames converted at a time (bounded extra memory)


def write_wav(path: str | Path, audio: Audio, *, subtype: WavSubtype = "float32") -> Path:
    """Write a WAV file atomically (temporary file, then rename) and return its path.

    float32 is WAVE_FORMAT_IEEE_FLOAT with a fact chunk, written bit for bit; pcm16 / pcm24
    clip to [-1, 1) and round (scale 2**15 / 2**23, what FFmpeg reads back exactly). More than
    two channels use WAVE_FORMAT_EXTENSIBLE. Files past the 4 GiB RIFF limit are refused.
    """
    p = Path(path)
    bits = {"float32": 32, "pcm16": 16, "pcm24": 24}.get(subtype)
    if bits is None:
        raise ConfigError(f"subtype must be float32, pcm16 or pcm24, not {subtype!r}")
    samples = np.asarray(audio.samples)
    if samples.ndim != 2 or samples.shape[0] < 1:
        raise ConfigError(f"audio samples must be (channels, n), got shape {samples.shape}")
    rate = audio.sample_rate
    if isinstance(rate, bool) or not isinstance(rate, (int, np.integer)) or not 0 < rate < 2**32:
        raise ConfigError(f"sample_rate must be a positive whole number of Hz, not {rate!r}")
    channels, n = samples.shape
    block = channels * bits // 8
    data_size = n * block
    is_float = subtype == "float32"
    tag = _FORMAT_FLOAT if is_float else _FORMAT_PCM
    fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * block, block, bits)
    if channels > 2:
        # Plain WAVE formats cannot say which speaker a channel is; EXTENSIBLE can.
        subformat = struct.pack("<I", tag) + _GUID_TAIL
        mask = _CHANNEL_MASKS.get(channels, 0)
        fmt = (
            struct.pack(
                "<HHIIHHHHI",
                _FORMAT_EXTENSIBLE,
                channels,
                rate,
                rate * block,
                block,
                bits,
                22,
                bits,
                mask,
            )
            + subformat
        )
    elif is_float:
        fmt += struct.pack("<H", 0)  # cbSize: non-PCM formats carry it
    chunks = b"fmt " + struct.pack("<I", len(fmt)) + fmt
    if is_float:
        chunks += b"fact" + struct.pack("<II", 4, n)  # required for non-PCM data
    pad = data_size % 2  # RIFF chunks are word aligned
    riff_size = 4 + len(chunks) + 8 + data_size + pad
    if riff_size > _RIFF_MAX:
        raise MediaError(
            p,
            f"too long for a WAV file: {data_size / 2**30:.1f} GiB of audio is past the 4 GiB "
            "RIFF limit; write shorter files or fewer channels",
        )
    header = b"RIFF" + struct.pack("<I", riff_size) + b"WAVE" + chunks
    header += b"data" + struct.pack("<I", data_size)
    if not p.parent.is_dir():  # a WAV is written into a folder that exists, never makes one
        raise MediaError(p, "cannot be written: its folder does not exist")
    try:
        with atomic_write(p) as tmp, open(tmp, "wb") as f:
            f.write(header)
            for a in range(0, n, _CHUNK_FRAMES):
                f.write(_wav_bytes(samples[:, a : a + _CHUNK_FRAMES], subtype))
            if pad:
                f.write(b"\x00")
    except OSError as exc:
        raise MediaError(p, f"cannot be written: {_describe(exc)}") from exc
    return p


def _wav_bytes(block: np.ndarray, subtype: WavSubtype) -> bytes:
    """Interleaved little-endian sample bytes of a (channels, n) block."""
    frames = block.T  # (n, channels): interleaved once made contiguous
    if subtype == "float32":
        return np.ascontiguousarray(frames, dtype="<f4").tobytes()
    full = 2.0 ** (15 if subtype == "pcm16" else 23)
    x = np.nan_to_num(frames.astype(np.float64), nan=0.0, posinf=1.0, neginf=-1.0)
    q = np.clip(np.rint(x * full), -full, full - 1)
    if subtype == "pcm16":
        return np.ascontiguousarray(q, dtype="<i2").tobytes()
    # 24-bit: the low three bytes of each little-endian int32.
    q32 = np.ascontiguousarray(q, dtype="<i4")
    return q32.view(np.uint8).reshape(*q32.shape, 4)[..., :3].tobytes()
