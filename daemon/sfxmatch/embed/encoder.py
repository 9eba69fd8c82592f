"""The Encoder protocol the rest of sfxmatch uses, and its ImageBind implementation.

Importing this module does not import torch: store, match and service code depend on the
protocol only. Torch is imported when an ImageBind encoder is built.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

import numpy as np

from sfxmatch.config import Settings
from sfxmatch.embed.checkpoint import IMAGEBIND_HUGE, Progress, checkpoint_digest, ensure_checkpoint
from sfxmatch.errors import ConfigError, ModelError

if TYPE_CHECKING:
    import torch

    from sfxmatch.embed.imagebind.model import ImageBindModel, Modality


@dataclass(frozen=True)
class SceneInput:
    """A scene for ``embed_scenes``: its decoded frames and where it lies.

    ``frames``: (H, W, 3) uint8 RGB images shown at ``times`` (seconds, same clock as
    start/end). ImageBind samples upstream's 5 clips of 2 frames over [start, end) from them
    and takes 3 crops of each.
    """

    frames: Sequence[np.ndarray] | np.ndarray
    times: Sequence[float] | np.ndarray
    start: float
    end: float


@runtime_checkable
class Encoder(Protocol):
    """Maps video, audio and text into one space of unit vectors.

    Every method is batched and returns a float32 array of shape (N, dim) whose rows have
    unit L2 norm, so a dot product is a cosine similarity.
    """

    @property
    def model_id(self) -> str:
        """Identifies weights, config and preprocessing; cache keys depend on it."""
        ...

    @property
    def dim(self) -> int: ...

    def embed_video_segments(self, clips: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        """Short segments (0.1 s of picture): (N, T, H, W, 3) uint8 RGB frames, T = 2."""
        ...

    def embed_video_segments_with_patches(
        self, clips: np.ndarray | Sequence[np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray]:
        """``embed_video_segments`` plus each segment's patch tokens in the joint space,
        (N, h, w, dim) unit rows (mean over the clip's time steps): where on screen a label
        matches, for pan and gain that follow the emitter."""
        ...

    def embed_scenes(self, scenes: Sequence[SceneInput]) -> np.ndarray:
        """Whole scenes: the encoder samples several clips over each scene (upstream's
        multi-clip video input) and embeds them together into one vector per scene."""
        ...

    def embed_audio(self, waveforms: Sequence[np.ndarray], sample_rate: int) -> np.ndarray:
        """Sounds, each (samples,) or (channels, samples) float32 at ``sample_rate``."""
        ...

    def embed_audio_windows(
        self, waveform: np.ndarray, sample_rate: int, *, window: float = 2.0, hop: float = 1.0
    ) -> tuple[np.ndarray, np.ndarray]:
        """One long sound as windows of ``window`` s every ``hop`` s: (vectors (W, dim),
        window start times in seconds). A bed is then matched by its best part."""
        ...

    def embed_text(self, texts: Sequence[str]) -> np.ndarray:
        """Labels or descriptions."""
        ...


# --- device and dtype ----------------------------------------------------------------------

_DTYPE_ALIASES = {
    "fp32": "fp32",
    "float32": "fp32",
    "float": "fp32",
    "bf16": "bf16",
    "bfloat16": "bf16",
    "fp16": "fp16",
    "float16": "fp16",
    "half": "fp16",
}


@dataclass(frozen=True)
class Placement:
    """Where and in what precision the model runs."""

    device: str  # "cpu", "cuda", "cuda:1", "mps"
    dtype: str  # "fp32", "bf16", "fp16"


def choose_placement(
    device: str | None = None,
    dtype: str | None = None,
    *,
    cuda_available: bool,
    cuda_bf16: bool,
) -> Placement:
    """Pick device and dtype from requests (None = automatic) and what the machine has.

    Automatic: CUDA when available, in bf16 where the GPU supports it (Ampere and later) and
    fp16 otherwise; CPU in fp32 (CPU bf16 is allowed on request: it halves memory). fp16 on
    CPU is refused, being slower than fp32 there and not more accurate.
    """
    if device is None:
        device = "cuda" if cuda_available else "cpu"
    device = device.strip().lower()
    kind = device.split(":", 1)[0]
    if kind not in {"cpu", "cuda", "mps"}:
        raise ConfigError(f"unknown device {device!r}: use cpu, cuda, cuda:N or mps")
    if kind == "cuda" and not cuda_available:
        raise ConfigError(f"device {device!r} was asked for but CUDA is not available here")

    if dtype is None:
        if kind == "cuda":
            dtype = "bf16" if cuda_bf16 else "fp16"
        elif kind == "mps":
            dtype = "fp16"
        else:
            dtype = "fp32"
    name = _DTYPE_ALIASES.get(dtype.strip().lower())
    if name is None:
        raise ConfigError(f"unknown dtype {dtype!r}: use fp32, bf16 or fp16")
    if kind == "cuda" and name == "bf16" and not cuda_bf16:
        raise ConfigError("bf16 was asked for but this GPU does not support it: use fp16")
    if kind == "cpu" and name == "fp16":
        raise ConfigError("fp16 is for GPUs: on CPU use fp32 (default) or bf16")
    return Placement(device, name)


def detect_placement(device: str | None = None, dtype: str | None = None) -> Placement:
    """``choose_placement`` with what torch reports about this machine."""
    import torch

    cuda = torch.cuda.is_available()
    return choose_placement(
        device, dtype, cuda_available=cuda, cuda_bf16=cuda and torch.cuda.is_bf16_supported()
    )


# --- ImageBind ------------------------------------------------------------------------------

DEFAULT_CONFIG = "imagebind-huge"
# Bump when preprocessing or output post-processing changes the vectors for the same
# weights: it is part of every model id, so cached embeddings are not reused across it.
PIPELINE_VERSION = 1
_TORCH_DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


class ImageBindEncoder:
    """The Encoder protocol over our ImageBind port (vision, audio and text towers).

    Build it with :func:`load_encoder`. Inputs are preprocessed on the model's device, in
    batches of ``batch_size`` model inputs, under ``torch.inference_mode``.
    """

    def __init__(
        self,
        model: ImageBindModel,
        *,
        model_id: str,
        placement: Placement,
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
        self.dtype = getattr(torch, _TORCH_DTYPES[placement.dtype])
        self.batch_size = batch_size
        self.compiled = bool(compile)
        # Compiled graphs are specialised to shapes: full batches only (the last is padded).
        # A string names the torch.compile backend (default inductor).
        backend = compile if isinstance(compile, str) else "inductor"
        self._forward = torch.compile(model, dynamic=False, backend=backend) if compile else model
        self._model_id = model_id

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def dim(self) -> int:
        return self.config.out_embed_dim

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

    def embed_video_segments_with_patches(
        self, clips: np.ndarray | Sequence[np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray]:
        import torch
        import torch.nn.functional as F

        from sfxmatch.embed.imagebind.preprocess import frames_to_segment_clip

        items = np.asarray(clips if isinstance(clips, np.ndarray) else list(clips))
        if items.ndim != 5:
            raise ValueError(f"expected segments (N, T, H, W, 3), got shape {items.shape}")
        _, h, w = self.config.vision_grid
        vectors = np.empty((len(items), self.dim), np.float32)
        patches = np.empty((len(items), h, w, self.dim), np.float32)
        model = self.model
        with torch.inference_mode():
            for i in range(0, len(items), self.batch_size):
                x = frames_to_segment_clip(items[i : i + self.batch_size], device=self.device)
                pooled, tokens = model.vision_with_patches(x.to(self.dtype))
                vectors[i : i + len(x)] = pooled.cpu().numpy()
                patches[i : i + len(x)] = F.normalize(tokens.mean(dim=1), dim=-1).cpu().numpy()
        return vectors, patches

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
        self, waveform: np.ndarray, sample_rate: int, *, window: float = 2.0, hop: float = 1.0
    ) -> tuple[np.ndarray, np.ndarray]:
        from sfxmatch.embed.imagebind.preprocess import audio_windows

        inputs, starts = audio_windows(
            np.asarray(waveform, np.float32), sample_rate, window=window, hop=hop
        )
        batches = (
            inputs[i : i + self.batch_size].to(self.device)
            for i in range(0, inputs.shape[0], self.batch_size)
        )
        return self._run("audio", batches, inputs.shape[0]), np.asarray(starts, np.float64)

    def embed_text(self, texts: Sequence[str]) -> np.ndarray:
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
    import math

    import torch

    torch_dtype = getattr(torch, _TORCH_DTYPES[dtype])
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


def load_encoder(
    name: str = DEFAULT_CONFIG,
    checkpoint: str | os.PathLike[str] | None = None,
    device: str | None = None,
    dtype: str | None = None,
    *,
    weights: Literal["checkpoint", "random"] | None = None,
    seed: int = 0,
    batch_size: int | None = None,
    compile: bool | str | None = None,
    settings: Settings | None = None,
    download: bool = True,
    progress: Progress = "rich",
) -> ImageBindEncoder:
    """An ImageBind encoder for a registered configuration ("imagebind-huge", "imagebind-tiny").

    weights: "checkpoint" (default for huge) finds the file through the checkpoint manager
    (explicit ``checkpoint``, then ``$SFXMATCH_IMAGEBIND_CHECKPOINT``, then the user cache,
    downloading if allowed) and raises its ModelError when it cannot be had; "random"
    (default for every other config) gives seeded random weights, which the model id says.
    device / dtype / batch_size / compile: arguments, then SFXMATCH_DEVICE / _DTYPE /
    _BATCH_SIZE / _COMPILE, then automatic (CUDA bf16 when available, else CPU fp32).
    """
    from sfxmatch.embed.imagebind.config import get_config
    from sfxmatch.embed.imagebind.model import build_model, load_model

    settings = settings or Settings.from_env()
    config = get_config(name)
    if weights is None:
        weights = "checkpoint" if name == DEFAULT_CONFIG or checkpoint is not None else "random"
    placement = detect_placement(device or settings.device, dtype or settings.dtype)
    if batch_size is None:
        batch_size = settings.batch_size or (64 if placement.device.startswith("cuda") else 8)
    compile = settings.compile if compile is None else compile

    if weights == "random":
        model = random_weights(
            build_model(config, device="meta"),
            seed=seed,
            device=placement.device,
            dtype=placement.dtype,
        )
        weights_id = f"random-seed{seed}"
    elif weights == "checkpoint":
        path = ensure_checkpoint(
            IMAGEBIND_HUGE, checkpoint, settings=settings, download=download, progress=progress
        )
        torch_dtype = getattr(__import__("torch"), _TORCH_DTYPES[placement.dtype])
        model = load_model(path, config, device=placement.device, dtype=torch_dtype)
        digest = checkpoint_digest(path, settings=settings, progress=progress)
        weights_id = f"sha256-{digest[:16]}"
    else:
        raise ConfigError(f"weights must be 'checkpoint' or 'random', not {weights!r}")
    model_id = f"{config.name}/{weights_id}/v{PIPELINE_VERSION}"
    return ImageBindEncoder(
        model, model_id=model_id, placement=placement, batch_size=batch_size, compile=compile
    )
