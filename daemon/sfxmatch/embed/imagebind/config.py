"""Sizes of the ImageBind towers we build (vision, audio, text), and a registry of them.

Field names follow the arguments of upstream's ``ImageBindModel`` constructor where it has
one, so a configuration maps one to one onto upstream's model (the parity tests do that).
Upstream hard-codes the image size, the text context length and the vocabulary size; they
are fields here so nothing about a tower's shape lives outside this file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sfxmatch.errors import ConfigError


@dataclass(frozen=True)
class ImageBindConfig:
    """Every size that differs between ImageBind configurations; one model class builds all."""

    name: str
    out_embed_dim: int

    # Vision: an RGB clip of ``video_frames`` frames cut into (t, h, w) patches by one Conv3d.
    vision_embed_dim: int
    vision_num_blocks: int
    vision_num_heads: int
    kernel_size: tuple[int, int, int]  # (time, height, width) of a patch, also the stride
    video_frames: int
    image_size: int

    # Audio: a (num_mel_bins, target_len) log-mel spectrogram cut into overlapping patches.
    audio_embed_dim: int
    audio_num_blocks: int
    audio_num_heads: int
    audio_kernel_size: int
    audio_stride: int
    audio_num_mel_bins: int
    audio_target_len: int
    audio_drop_path: float  # stochastic depth in training only; inference ignores it

    # Text: CLIP BPE token ids, causal attention, pooled at the end-of-text token.
    text_embed_dim: int
    text_num_blocks: int
    text_num_heads: int
    text_context_length: int
    text_vocab_size: int

    mlp_ratio: int = 4
    # Post-processing constants of upstream: audio is scaled by a fixed 20 (a buffer in the
    # checkpoint); text by exp of a learned log scale initialised to log(1/0.07); both clipped
    # at 100.
    audio_logit_scale: float = 20.0
    text_logit_scale_init: float = 1 / 0.07
    max_logit_scale: float = 100.0

    def __post_init__(self) -> None:
        for tower, dim, heads in (
            ("vision", self.vision_embed_dim, self.vision_num_heads),
            ("audio", self.audio_embed_dim, self.audio_num_heads),
            ("text", self.text_embed_dim, self.text_num_heads),
        ):
            if dim % heads:
                raise ConfigError(
                    f"{self.name}: {tower} embed dim {dim} is not divisible by {heads} heads"
                )
        kt, kh, kw = self.kernel_size
        if self.video_frames % kt or self.image_size % kh or self.image_size % kw:
            raise ConfigError(
                f"{self.name}: vision kernel {self.kernel_size} does not tile "
                f"{self.video_frames} frames of {self.image_size}x{self.image_size}"
            )
        if min(self.audio_num_mel_bins, self.audio_target_len) < self.audio_kernel_size:
            raise ConfigError(f"{self.name}: audio kernel is larger than the spectrogram")

    @property
    def vision_grid(self) -> tuple[int, int, int]:
        """Patches along (time, height, width) of one vision clip."""
        kt, kh, kw = self.kernel_size
        return self.video_frames // kt, self.image_size // kh, self.image_size // kw

    @property
    def audio_grid(self) -> tuple[int, int]:
        """Patches along (mel, time) of one spectrogram (a strided, unpadded convolution)."""
        k, s = self.audio_kernel_size, self.audio_stride
        return (
            (self.audio_num_mel_bins - k) // s + 1,
            (self.audio_target_len - k) // s + 1,
        )

    @property
    def vision_num_tokens(self) -> int:
        """Tokens through the vision trunk: one class token plus the patches."""
        return 1 + math.prod(self.vision_grid)

    @property
    def audio_num_tokens(self) -> int:
        """Tokens through the audio trunk: one class token plus the patches."""
        return 1 + math.prod(self.audio_grid)


# The released model (imagebind_huge.pth): upstream's imagebind_huge() sizes.
IMAGEBIND_HUGE = ImageBindConfig(
    name="imagebind-huge",
    out_embed_dim=1024,
    vision_embed_dim=1280,
    vision_num_blocks=32,
    vision_num_heads=16,
    kernel_size=(2, 14, 14),
    video_frames=2,
    image_size=224,
    audio_embed_dim=768,
    audio_num_blocks=12,
    audio_num_heads=12,
    audio_kernel_size=16,
    audio_stride=10,
    audio_num_mel_bins=128,
    audio_target_len=204,
    audio_drop_path=0.1,
    text_embed_dim=1024,
    text_num_blocks=24,
    text_num_heads=16,
    text_context_length=77,
    text_vocab_size=49408,
)

# For tests: takes the same inputs as huge (224 px clips of 2 frames, 128x204 mels, 77 CLIP
# tokens, so real preprocessing feeds it) and runs every code path (several blocks and
# heads, audio's bias_kv, text's causal mask), with towers of different widths so a mixed-up
# dimension fails loudly. Random weights only; a CPU forward of 8 items takes milliseconds.
IMAGEBIND_TINY = ImageBindConfig(
    name="imagebind-tiny",
    out_embed_dim=24,
    vision_embed_dim=48,
    vision_num_blocks=2,
    vision_num_heads=4,
    kernel_size=(2, 32, 32),
    video_frames=2,
    image_size=224,
    audio_embed_dim=32,
    audio_num_blocks=2,
    audio_num_heads=4,
    audio_kernel_size=32,  # overlapping patches like huge's 16/10, but only 5 x 8 of them
    audio_stride=24,
    audio_num_mel_bins=128,
    audio_target_len=204,
    audio_drop_path=0.1,
    text_embed_dim=40,
    text_num_blocks=2,
    text_num_heads=5,
    text_context_length=77,
    text_vocab_size=49408,
)

CONFIGS: dict[str, ImageBindConfig] = {c.name: c for c in (IMAGEBIND_HUGE, IMAGEBIND_TINY)}


def get_config(name: str) -> ImageBindConfig:
    """The registered configuration called ``name``."""
    try:
        return CONFIGS[name]
    except KeyError:
        known = ", ".join(sorted(CONFIGS))
        raise ConfigError(f"unknown ImageBind configuration {name!r} (known: {known})") from None
