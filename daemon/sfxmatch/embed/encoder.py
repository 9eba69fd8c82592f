"""The Encoder protocol the rest of sfxmatch uses, where models run, and the one factory.

The values the families share (``SceneInput``, ``DevicePlacement``, ``window_starts``...) live in
:mod:`sfxmatch.embed.values` and are importable from here too.

Importing this module does not import torch: store, match and service code depend on the
protocol only. Torch is imported when an encoder is built (:func:`load_encoder`), by the
family's own module (``sfxmatch.embed.pe`` or ``sfxmatch.embed.imagebind``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from sfxmatch.config import Settings
from sfxmatch.embed.checkpoint import DownloadProgress
from sfxmatch.embed.registry import ModelSpec, default_model_name, get_model
from sfxmatch.embed.values import (
    TEXT_SPACES,
    TORCH_DTYPES,
    DevicePlacement,
    SceneInput,
    TextSpace,
    Weights,
    window_starts,
)
from sfxmatch.errors import ConfigError


@runtime_checkable
class Encoder(Protocol):
    """Maps video, audio and text into joint spaces of unit vectors.

    Every ``embed_*`` method is batched and returns a float32 array of shape (N, dim) whose
    rows have unit L2 norm, so a dot product is a cosine similarity.
    """

    @property
    def model_id(self) -> str:
        """Identifies weights, config and preprocessing; cache keys depend on it."""
        ...

    @property
    def spec(self) -> ModelSpec:
        """The registry entry: name, sizes, audio rate, frames per segment, licence."""
        ...

    @property
    def dim(self) -> int: ...

    @property
    def placement(self) -> DevicePlacement:
        """Where the model runs (device, dtype)."""
        ...

    @property
    def temperature(self) -> float:
        """Softmax temperature for a segment's label similarities: the inverse of the
        model's learned video-text logit scale (or the registry's fallback)."""
        ...

    def embed_video_segments(self, clips: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        """Short segments (0.1 s of picture): (N, T, H, W, 3) uint8 RGB, T = spec.segment_frames."""
        ...

    def embed_scenes(self, scenes: Sequence[SceneInput]) -> np.ndarray:
        """Whole scenes, one vector each, from frames sampled over the scene."""
        ...

    def prepare_audio(self, samples: np.ndarray, sample_rate: int) -> np.ndarray:
        """A decoded sound ((samples,) or (channels, samples) float32 at its own rate) made
        mono at ``spec.audio_rate`` the way the model's reference loader does it."""
        ...

    def embed_audio(self, waveforms: Sequence[np.ndarray], sample_rate: int) -> np.ndarray:
        """Sounds, each (samples,) or (channels, samples) float32 at ``sample_rate``."""
        ...

    def embed_audio_windows(
        self, waveform: np.ndarray, sample_rate: int, *, window: float, hop: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """One long sound as windows of ``window`` s every ``hop`` s (:func:`window_starts`):
        (vectors (W, dim), window start times in seconds). A bed is then matched by its best
        part."""
        ...

    def embed_text(self, texts: Sequence[str], *, space: TextSpace) -> np.ndarray:
        """Labels, descriptions or queries, for comparison with ``space``."""
        ...

    def emitter_maps(
        self, clips: np.ndarray | Sequence[np.ndarray], label_vectors: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Where on screen each clip's label is: (maps (N, h, w), non-negative, each summing
        to 1; strength (N,), the clip's similarity with its label). ``clips`` as for
        ``embed_video_segments``; ``label_vectors`` (N, dim), video-space text vectors."""
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


def choose_placement(
    device: str | None = None,
    dtype: str | None = None,
    *,
    cuda_available: bool,
    cuda_bf16: bool,
    mps_available: bool = False,
) -> DevicePlacement:
    """Pick device and dtype from requests (None = automatic) and what the machine has.

    Automatic: CUDA when available, in bf16 where the GPU supports it (Ampere and later) and
    fp16 otherwise; then Apple's MPS in fp16; else CPU in fp32 (CPU bf16 is allowed on
    request: it halves memory). fp16 on CPU is refused, being slower than fp32 there and not
    more accurate. MPS cannot be tested on our machines: its path is the plain one (no
    compile, fp16 or fp32) and it is chosen only when torch reports it usable.
    """
    if device is None:
        device = "cuda" if cuda_available else "mps" if mps_available else "cpu"
    device = device.strip().lower()
    kind = device.split(":", 1)[0]
    if kind not in {"cpu", "cuda", "mps"}:
        raise ConfigError(f"unknown device {device!r}: use cpu, cuda, cuda:N or mps")
    if kind == "cuda" and not cuda_available:
        raise ConfigError(f"device {device!r} was asked for but CUDA is not available here")
    if kind == "mps" and not mps_available:
        raise ConfigError("device 'mps' was asked for but Apple's MPS is not available here")

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
    if kind == "mps" and name == "bf16":
        raise ConfigError("bf16 is not supported on MPS: use fp16 (default) or fp32")
    return DevicePlacement(device, name)


def detect_placement(device: str | None = None, dtype: str | None = None) -> DevicePlacement:
    """``choose_placement`` with what torch reports about this machine."""
    import torch

    cuda = torch.cuda.is_available()
    mps = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    return choose_placement(
        device,
        dtype,
        cuda_available=cuda,
        cuda_bf16=cuda and torch.cuda.is_bf16_supported(),
        mps_available=mps,
    )


def resolve_model_name(name: str | None, settings: Settings) -> str:
    """The model to run: ``name``, else ``$SFXMATCH_MODEL``, else the registry's default for
    the device the model would run on (which asks torch only when no device is set)."""
    chosen = name or settings.model
    if chosen:
        return get_model(chosen).name
    device = settings.device or detect_placement().device
    return default_model_name(device)


def default_batch_size(placement: DevicePlacement) -> int:
    return 64 if placement.device.startswith(("cuda", "mps")) else 8


def load_encoder(
    name: str | None = None,
    weights_path: str | os.PathLike[str] | None = None,
    device: str | None = None,
    dtype: str | None = None,
    *,
    weights: Weights | None = None,
    seed: int = 0,
    batch_size: int | None = None,
    compile: bool | str | None = None,
    settings: Settings | None = None,
    download: bool = True,
    progress: DownloadProgress = "rich",
) -> Encoder:
    """The encoder of a registered model (:mod:`sfxmatch.embed.registry`).

    weights: "checkpoint" (default for every real model, and for a test model given weights)
    finds the weights (an explicit ``weights_path``, then ``$SFXMATCH_WEIGHTS``, then the user
    cache, downloading if allowed) and raises a ModelError naming the model, the folder and
    how to get them when they cannot be had; "random" (default for the tiny test models,
    allowed for every model: benchmarks use it) gives seeded random weights, which the model
    id says.
    device / dtype / batch_size / compile: arguments, then SFXMATCH_DEVICE / _DTYPE /
    _BATCH_SIZE / _COMPILE, then automatic (CUDA bf16, MPS fp16, else CPU fp32).
    """
    settings = settings or Settings.from_env()
    spec = get_model(resolve_model_name(name, settings))
    given = weights_path or settings.weights
    if weights is None:
        weights = "random" if spec.random_only and given is None else "checkpoint"
    if weights not in ("checkpoint", "random"):
        raise ConfigError(f"weights must be 'checkpoint' or 'random', not {weights!r}")
    if weights == "checkpoint" and spec.random_only and given is None:
        raise ConfigError(f"{spec.name} is a test model: it has no weights to download")
    placement = detect_placement(device or settings.device, dtype or settings.dtype)
    batch = batch_size or settings.batch_size or default_batch_size(placement)
    compile = settings.compile if compile is None else compile
    common = dict(
        weights=weights,
        weights_path=weights_path,
        placement=placement,
        batch_size=batch,
        compile=compile,
        seed=seed,
        settings=settings,
        download=download,
        progress=progress,
    )
    if spec.family == "pe-av":
        from sfxmatch.embed.pe.encoder import load_pe_av

        return load_pe_av(spec, **common)  # type: ignore[arg-type]
    from sfxmatch.embed.imagebind.encoder import load_imagebind

    return load_imagebind(spec, **common)  # type: ignore[arg-type]


def weights_here(spec: ModelSpec, settings: Settings) -> bool:
    """Whether ``spec``'s weights can be loaded without downloading (tiny models always)."""
    if spec.random_only:
        return True
    if spec.family == "pe-av":
        from sfxmatch.embed.pe.hub import cached_folder

        return cached_folder(spec, settings) is not None
    from sfxmatch.embed.checkpoint import IMAGEBIND_HUGE, cache_path

    explicit = settings.weights or settings.imagebind_checkpoint
    return (explicit or cache_path(IMAGEBIND_HUGE, settings)).is_file()


__all__ = [
    "TEXT_SPACES",
    "TORCH_DTYPES",
    "DevicePlacement",
    "Encoder",
    "SceneInput",
    "TextSpace",
    "Weights",
    "choose_placement",
    "default_batch_size",
    "detect_placement",
    "load_encoder",
    "resolve_model_name",
    "weights_here",
    "window_starts",
]
