"""How far FFmpeg's resampler is from each model's reference resampler, on real sounds.

The indexer decodes a sound at its own rate and resamples it as the model's reference loader
does (``Encoder.prepare_audio``): ImageBind's band-limited sinc (torchaudio's, ported) to
16 kHz, PE-AV's soxr (high quality, transformers' and librosa's loader) to 48 kHz. This
measures what letting FFmpeg resample while decoding (``media.load_audio(sample_rate=...)``,
what the indexer did before) would change: the largest and the RMS sample difference, and
the cosine between the tiny models' embeddings of both versions.

    .venv/bin/python benchmarks/bench_resample.py
"""

from __future__ import annotations

import statistics

import numpy as np
from sfxmatch import media
from sfxmatch.embed.encoder import load_encoder
from sfxmatch.testing.media import media_path


def sounds() -> list:
    found = [media_path("acoustic_scene")]
    found += sorted(media_path("ovos").glob("*.mp3"))[:4]
    found += sorted(media_path("minetest").rglob("*.ogg"))[:8]
    found += sorted(p for p in media_path("tuxpaint").rglob("*.ogg") if "_desc" not in p.name)[:8]
    return found


def main() -> int:
    files = sounds()
    for name in ("imagebind-tiny", "pe-av-tiny"):
        encoder = load_encoder(name, device="cpu", progress=None)
        rate = encoder.spec.audio_rate
        worst, rms, cosines = [], [], []
        for path in files:
            native = media.load_audio(path, channels="mono")
            if native.sample_rate == rate:
                continue  # nothing to resample
            ours = encoder.prepare_audio(native.samples[0], native.sample_rate)
            ffmpeg = media.load_audio(path, sample_rate=rate, channels="mono").samples[0]
            n = min(len(ours), len(ffmpeg))
            diff = ours[:n] - ffmpeg[:n]
            worst.append(float(np.abs(diff).max()))
            rms.append(float(np.sqrt(np.mean(diff**2))))
            a, b = encoder.embed_audio([ours[:n], ffmpeg[:n]], rate)
            cosines.append(float(a @ b))
        print(
            f"{name} ({rate} Hz, {len(worst)} resampled files): max |diff| median "
            f"{statistics.median(worst):.2e}, worst {max(worst):.2e}; RMS median "
            f"{statistics.median(rms):.2e}; tiny-model embedding cosine min {min(cosines):.6f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
