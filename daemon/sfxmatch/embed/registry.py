"""The model registry: every encoder sfxmatch can run, and what the rest of it needs to know.

Whatever depends on the model (its name, embedding size, the sample rate its audio tower
reads, how many frames a 0.1 s segment shows it, the picture size it sees, its licence, where
its weights come from) is read from a :class:`ModelSpec` here, never hard-wired. Importing
this module imports no torch.

Two families:

* ``pe-av-*``: Meta's Perception Encoder Audio-Visual (arXiv 2512.19687), Apache-2.0, run
  through Hugging Face transformers. Every size shares the same frame encoder (PE-Core
  L14 at 336 px); they differ in their audio, temporal and fusion towers.
* ``imagebind-*``: ImageBind huge, the seed projects' model, CC BY-NC-SA 4.0 (no commercial
  use), run through our port of its towers.

The ``*-tiny`` models are random, tiny configurations of the same code, for tests: every
result made with them is meaningless, and every command that uses one says so.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from sfxmatch.errors import ConfigError

Family = Literal["pe-av", "imagebind"]

APACHE = "Apache-2.0"
CC_BY_NC_SA = "CC BY-NC-SA 4.0 (non-commercial use only)"


@dataclass(frozen=True)
class ModelSpec:
    """One registered model."""

    name: str
    family: Family
    dim: int  # joint embedding size: every vector the encoder returns has it
    audio_rate: int  # Hz the audio tower reads; the indexer decodes sounds at this rate
    audio_window: float  # seconds per window vector of a long bed
    segment_frames: int  # frames a 0.1 s segment shows the video tower
    frame_size: int  # side of the (square or short-side) picture the video tower sees
    licence: str
    commercial_use: bool
    random_only: bool = False  # a test model: random weights, meaningless results
    hub_repo: str | None = None  # PE-AV: the Hugging Face repository of its weights
    weights_bytes: int | None = None  # size of the weights on disk
    pick_when: str = ""  # one line for the README's table and `sfxmatch models`

    @property
    def decode_side(self) -> int:
        """Longest side worth decoding for the video tower: twice what it sees, so the
        resize to the model's input is a real downscale (as from the full frame) while a
        1080p frame costs a fraction to decode."""
        return 2 * self.frame_size

    @property
    def needs_weights(self) -> bool:
        return not self.random_only


_MODELS: tuple[ModelSpec, ...] = (
    ModelSpec(
        name="pe-av-small",
        family="pe-av",
        dim=1024,
        audio_rate=48_000,
        audio_window=10.0,
        segment_frames=1,
        frame_size=336,
        licence=APACHE,
        commercial_use=True,
        hub_repo="facebook/pe-av-small",
        weights_bytes=3_387_965_232,  # float32 model.safetensors (every parameter once)
        pick_when="the default without a GPU: commercial use allowed, the smallest PE-AV",
    ),
    ModelSpec(
        name="pe-av-base",
        family="pe-av",
        dim=1024,
        audio_rate=48_000,
        audio_window=10.0,
        segment_frames=1,
        frame_size=336,
        licence=APACHE,
        commercial_use=True,
        hub_repo="facebook/pe-av-base",
        weights_bytes=4_134_806_320,  # float32 model.safetensors (every parameter once)
        pick_when="the default with a GPU: better retrieval than small at little extra cost",
    ),
    ModelSpec(
        name="pe-av-large",
        family="pe-av",
        dim=1024,
        audio_rate=48_000,
        audio_window=10.0,
        segment_frames=1,
        frame_size=336,
        licence=APACHE,
        commercial_use=True,
        hub_repo="facebook/pe-av-large",
        weights_bytes=8_938_802_992,  # float32 model.safetensors (every parameter once)
        pick_when="a GPU with 12 GB or more: PE-AV's best retrieval",
    ),
    ModelSpec(
        name="imagebind-huge",
        family="imagebind",
        dim=1024,
        audio_rate=16_000,
        audio_window=2.0,
        segment_frames=2,
        frame_size=224,
        licence=CC_BY_NC_SA,
        commercial_use=False,
        weights_bytes=4_803_584_173,
        pick_when="non-commercial work only: the seed projects' model, for comparison",
    ),
    ModelSpec(
        name="pe-av-tiny",
        family="pe-av",
        dim=32,
        audio_rate=48_000,
        audio_window=10.0,
        segment_frames=1,
        frame_size=56,
        licence=APACHE,
        commercial_use=True,
        random_only=True,
        pick_when="tests and development only: random weights, meaningless results",
    ),
    ModelSpec(
        name="imagebind-tiny",
        family="imagebind",
        dim=24,
        audio_rate=16_000,
        audio_window=2.0,
        segment_frames=2,
        frame_size=224,
        licence=CC_BY_NC_SA,
        commercial_use=False,
        random_only=True,
        pick_when="tests and development only: random weights, meaningless results",
    ),
)

MODELS: dict[str, ModelSpec] = {m.name: m for m in _MODELS}
DEFAULT_GPU_MODEL = "pe-av-base"
DEFAULT_CPU_MODEL = "pe-av-small"


def get_model(name: str) -> ModelSpec:
    """The spec of a registered model; a ConfigError naming the choices otherwise."""
    spec = MODELS.get(name.strip().lower()) if isinstance(name, str) else None
    if spec is None:
        raise ConfigError(f"unknown model {name!r}: choose one of {', '.join(MODELS)}")
    return spec


def default_model_name(device: str | None) -> str:
    """pe-av-base where a GPU runs the model (CUDA or Apple's MPS), pe-av-small elsewhere."""
    kind = (device or "cpu").split(":", 1)[0].strip().lower()
    return DEFAULT_GPU_MODEL if kind in ("cuda", "mps") else DEFAULT_CPU_MODEL


def model_names(models: Iterable[ModelSpec] = _MODELS) -> list[str]:
    return [m.name for m in models]
