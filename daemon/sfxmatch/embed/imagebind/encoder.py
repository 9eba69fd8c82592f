"""The Encoder protocol over our ImageBind port (vision, audio and text towers).

Build it with :func:`sfxmatch.embed.encoder.load_encoder`. Inputs are preprocessed on the
model's device, in batches of ``batch_size`` model inputs, under ``torch.inference_mode``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np

from sfxmatch.config import Settings
from sfxmatch.embed.checkpoint import (
    IMAGEBIND_HUGE,
    DownloadProgress,
    checkpoint_digest,
    ensure_checkpoint,
)
from sfxmatch.embed.registry import ModelSpec
from sfxmatch.embed.values import (
    TORCH_DTYPES,
    DevicePlacement,
    SceneInput,
    TextSpace,
    Weights,
)
from sfxmatch.errors import ConfigError, ModelError
from sfxmatch.match.autosync import DEFAULT_TEMPERATURE

if TYPE_CHECKING:
    import os

    import torch

    from sfxmatch.embed.imagebind.model import ImageBindModel, Modality

# Bump when preprocessing or output post-processing changes the vectors for the same
# weights: it is part of every model id, so cached embeddings are not reused across it.
PIPELINE_VERSION = 1


class ImageBindEncoder:
    """ImageBind's towers behind the Encoder protocol. One text space (``space`` is
    accepted and ignored); emitter maps from the vision head's patch tokens."""

    def __init__(
        self,
        model: ImageBindModel,
        *,
        spec: ModelSpec,
        model_id: str,
        placement: DevicePlacement,
        batch_size: int,
        compile: bool | str = False,
    ) -> None:
        import torch

        if batch_size < 1:
            raise ConfigError(f"batch size must be positive, got {batch_size}")
        self.model = model.eval().requires_grad_(False)
        self.config = model.config
        self.placement = placement
        self.device = torch.device(placement.device)
        self.dtype = getattr(torch, TORCH_DTYPES[placement.dtype])
        self.batch_size = batch_size
        self.compiled = bool(compile)
        # Compiled graphs are specialised to shapes: full batches only (the last is padded).
        # A string names the torch.compile backend (default inductor).
        backend = compile if isinstance(compile, str) else "inductor"
        self._forward = torch.compile(model, dynamic=False, backend=backend) if compile else model
        self._model_id = model_id
        self._spec = spec

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def spec(self) -> ModelSpec:
        return self._spec

    @property
    def dim(self) -> int:
        return self.config.out_embed_dim

    @property
    def temperature(self) -> float:
        # Upstream's learned text logit scale sits at its cap, 100.
        return DEFAULT_TEMPERATURE

    def __repr__(self) -> str:
        return (
            f"ImageBindEncoder({self.model_id!r}, device={self.placement.device}, "
            f"dtype={self.placement.dtype}, batch_size={self.batch_size})"
        )

    # The public methods preprocess a batch at a time so peak memory stays bounded.

    def embed_video_segments(self, clips: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        from sfxmatch.embed.imagebind.preprocess import frames_to_segment_clip

        items = clips if isinstance(clips, np.ndarray) else list(clips)
        if isinstance(items, np.ndarray) and items.ndim != 5:
            # A 4-D array would read as one segment of many frames: refuse it clearly.
            raise ValueError(f"expected segments (N, T, H, W, 3), got shape {items.shape}")
        batches = (
            frames_to_segment_clip(np.asarray(items[i : i + self.batch_size]), device=self.device)
            for i in range(0, len(items), self.batch_size)
        )
        return self._run("vision", batches, len(items))

    def emitter_maps(
        self, clips: np.ndarray | Sequence[np.ndarray], label_vectors: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """The head's patch tokens live in the joint space: each patch's cosine with the
        label, sharpened by a softmax (Soundify's Grad-CAM role, without gradients)."""
        import torch

        from sfxmatch.embed.imagebind.preprocess import frames_to_segment_clip
        from sfxmatch.match.spatial import patch_weights

        items = np.asarray(clips if isinstance(clips, np.ndarray) else list(clips))
        labels = np.asarray(label_vectors, np.float32)
        if items.ndim != 5 or labels.shape != (len(items), self.dim):
            raise ValueError("expected clips (N, T, H, W, 3) and one label vector per clip")
        _, h, w = self.config.vision_grid
        maps = np.empty((len(items), h, w), np.float32)
        strength = np.empty(len(items), np.float32)
        with torch.inference_mode():
            for i in range(0, len(items), self.batch_size):
                x = frames_to_segment_clip(items[i : i + self.batch_size], device=self.device)
                _, tokens = self.model.vision_with_patches(x.to(self.dtype))
                patches = torch.nn.functional.normalize(tokens.mean(dim=1), dim=-1).cpu().numpy()
                maps[i : i + len(x)], strength[i : i + len(x)] = patch_weights(
                    patches, labels[i : i + len(x)]
                )
        return maps, strength

    def embed_scenes(self, scenes: Sequence[SceneInput]) -> np.ndarray:
        from sfxmatch.embed.imagebind.preprocess import scene_clips

        # One scene is 5 clips x 3 crops = 15 model inputs: batch scenes so that a batch
        # holds about batch_size inputs.
        per_batch = max(1, self.batch_size // 15)
        scenes = list(scenes)
        batches = (
            _stack(
                [
                    scene_clips(s.frames, s.times, s.start, s.end, device=self.device)
                    for s in scenes[i : i + per_batch]
                ]
            )
            for i in range(0, len(scenes), per_batch)
        )
        return self._run("vision", batches, len(scenes), full=per_batch)

    def prepare_audio(self, samples: np.ndarray, sample_rate: int) -> np.ndarray:
        """Mono (the mean of the channels: every channel counts, where upstream reads only
        channel 0), resampled to 16 kHz with upstream's band-limited sinc."""
        from sfxmatch.embed.imagebind.preprocess import AUDIO_SAMPLE_RATE, resample

        data = np.asarray(samples, np.float32)
        if data.ndim == 2:
            data = data.mean(axis=0, dtype=np.float32)
        return resample(data, sample_rate, AUDIO_SAMPLE_RATE).numpy().astype(np.float32)

    def embed_audio(self, waveforms: Sequence[np.ndarray], sample_rate: int) -> np.ndarray:
        from sfxmatch.embed.imagebind.preprocess import AUDIO_CLIPS_PER_VIDEO, audio_clips

        per_batch = max(1, self.batch_size // AUDIO_CLIPS_PER_VIDEO)
        waveforms = list(waveforms)
        batches = (
            _stack(
                [
                    audio_clips(np.asarray(w, np.float32), sample_rate, device=self.device)
                    for w in waveforms[i : i + per_batch]
                ]
            )
            for i in range(0, len(waveforms), per_batch)
        )
        return self._run("audio", batches, len(waveforms), full=per_batch)

    def embed_audio_windows(
        self, waveform: np.ndarray, sample_rate: int, *, window: float, hop: float
    ) -> tuple[np.ndarray, np.ndarray]:
        from sfxmatch.embed.imagebind.preprocess import audio_windows

        # At 16 kHz these are the windows of the shared rule (encoder.window_starts), which
        # the embedding cache relies on; the indexer always passes 16 kHz audio.
        inputs, starts = audio_windows(
            np.asarray(waveform, np.float32), sample_rate, window=window, hop=hop
        )
        batches = (
            inputs[i : i + self.batch_size].to(self.device)
            for i in range(0, inputs.shape[0], self.batch_size)
        )
        return self._run("audio", batches, inputs.shape[0]), np.asarray(starts, np.float64)

    def embed_text(self, texts: Sequence[str], *, space: TextSpace) -> np.ndarray:
        from sfxmatch.embed.imagebind.tokenizer import tokenize

        texts = list(texts)
        batches = (
            tokenize(texts[i : i + self.batch_size], self.config.text_context_length)
            for i in range(0, len(texts), self.batch_size)
        )
        return self._run("text", batches, len(texts))

    def embed_tensors(self, modality: Modality, inputs: torch.Tensor) -> torch.Tensor:
        """Model inputs already preprocessed (see ImageBindModel) -> float32 unit rows on the
        device. One forward pass: the caller batches (benchmarks use this)."""
        import torch
        import torch.nn.functional as F

        with torch.inference_mode():
            x = inputs.to(self.device, non_blocking=True)
            if x.is_floating_point():
                x = x.to(self.dtype)
            out = self._forward(modality, x)
            # Normalise again in float32: a bf16 unit vector is only unit to ~1e-2.
            return F.normalize(out.float(), dim=-1)

    def _run(
        self,
        modality: Modality,
        batches: Iterator[torch.Tensor],
        count: int,
        *,
        full: int | None = None,
    ) -> np.ndarray:
        """``full``: rows per batch (default ``batch_size``). When compiled, a short last
        batch is padded to it, so each kind of input has one shape and one graph: with a
        shape per remainder, torch.compile recompiles each time and, past its recompile
        limit (8 per function), silently runs eager."""
        import torch

        full = full or self.batch_size
        out = np.empty((count, self.dim), dtype=np.float32)
        done = 0
        with torch.inference_mode():
            for batch in batches:
                n = batch.shape[0]
                if self.compiled and n < full:
                    filler = batch[-1:].expand(full - n, *batch.shape[1:])
                    batch = torch.cat([batch, filler])
                rows = self.embed_tensors(modality, batch)[:n]
                out[done : done + n] = rows.cpu().numpy()
                done += n
        assert done == count, (done, count)
        return out


def _stack(items: list[torch.Tensor]) -> torch.Tensor:
    import torch

    return torch.stack(items)


def random_weights(
    model: ImageBindModel,
    *,
    seed: int,
    device: str = "cpu",
    dtype: str = "fp32",
) -> ImageBindModel:
    """Give a model built on "meta" seeded random weights on ``device``, in ``dtype``.

    Each tensor is drawn on the CPU from one seeded generator, in state-dict order, then
    copied: the same seed gives the same weights on any device, and only one tensor at a
    time exists in float32 (the huge model never needs 4.5 GB of host memory for a GPU).
    Weights are ViT-style (normal, std 0.02; LayerNorm 1 and 0; biases 0); the two buffers
    get the values the model defines (text causal mask, audio logit scale 20).
    """
    import torch

    torch_dtype = getattr(torch, TORCH_DTYPES[dtype])
    config = model.config
    model = model.to(dtype=torch_dtype).to_empty(device=device)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            leaf = name.rsplit(".", 1)[-1]
            if leaf == "log_logit_scale":
                value = torch.full(param.shape, math.log(config.text_logit_scale_init))
            elif leaf.endswith("bias") and param.ndim == 1:
                value = torch.zeros(param.shape)
            elif param.ndim == 1:  # LayerNorm scales
                value = torch.ones(param.shape)
            else:
                value = torch.randn(param.shape, generator=generator) * 0.02
            param.copy_(value)
        for name, buffer in model.named_buffers():
            leaf = name.rsplit(".", 1)[-1]
            if leaf == "mask":
                value = torch.full(buffer.shape, float("-inf")).triu_(1)
            elif leaf == "log_logit_scale":
                value = torch.full(buffer.shape, math.log(config.audio_logit_scale))
            else:  # a new buffer needs a rule here, not silent garbage
                raise ModelError(f"random_weights: no rule for buffer {name!r}")
            buffer.copy_(value)
    return model.eval().requires_grad_(False)


def load_imagebind(
    spec: ModelSpec,
    *,
    weights: Weights,
    weights_path: str | os.PathLike[str] | None,
    placement: DevicePlacement,
    batch_size: int,
    compile: bool | str,
    seed: int,
    settings: Settings,
    download: bool,
    progress: DownloadProgress,
) -> ImageBindEncoder:
    """An ImageBind encoder: the checkpoint through the checkpoint manager (explicit path,
    ``$SFXMATCH_WEIGHTS`` or ``$SFXMATCH_IMAGEBIND_CHECKPOINT``, then the user cache,
    downloading if allowed), or seeded random weights."""
    import torch

    from sfxmatch.embed.imagebind.config import get_config
    from sfxmatch.embed.imagebind.model import build_model, load_model

    config = get_config(spec.name)
    if weights == "random":
        model = random_weights(
            build_model(config, device="meta"),
            seed=seed,
            device=placement.device,
            dtype=placement.dtype,
        )
        weights_id = f"random-seed{seed}"
    else:
        explicit = weights_path or settings.weights
        path = ensure_checkpoint(
            IMAGEBIND_HUGE, explicit, settings=settings, download=download, progress=progress
        )
        torch_dtype = getattr(torch, TORCH_DTYPES[placement.dtype])
        model = load_model(path, config, device=placement.device, dtype=torch_dtype)
        digest = checkpoint_digest(path, settings=settings, progress=progress)
        weights_id = f"sha256-{digest[:16]}"
    model_id = f"{config.name}/{weights_id}/v{PIPELINE_VERSION}"
    return ImageBindEncoder(
        model,
        spec=spec,
        model_id=model_id,
        placement=placement,
        batch_size=batch_size,
        compile=compile,
    )
