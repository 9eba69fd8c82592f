"""The Encoder protocol over PE-AV (transformers' ``PeAudioVideoModel``).

Which of PE-AV's heads serves which step (the model's text embeddings are specific to a
modality pair, see docs/models.md):

* picture vectors (segments, scenes): the video branch's pooled output through
  ``video_model.video_head``;
* sound vectors (library sounds, windows of beds): ``audio_model.audio_head``;
* text compared with picture (effect labels per segment, VTA's ambience labels):
  ``video_model.text_video_head``;
* text compared with sound (``library search``, kinds, the labels stored with sounds):
  ``audio_model.text_audio_head``;
* picture against sound (VA ambience, the sounds inside an effect's label): the video and
  audio vectors above, which PE-AV trains against each other (its audio-video logits).

The frame encoder (PE-Core L14, 0.4 TFLOP a frame) is nearly all of the video branch's cost,
so frames are encoded once: each decoded frame's features are kept (keyed by its pixels) and
the temporal transformer runs over features, for segments and for scenes alike, through
transformers' own video encoder (our frame encoder passes features through unchanged).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sfxmatch.config import Settings
from sfxmatch.embed.checkpoint import DownloadProgress, checkpoint_digest
from sfxmatch.embed.pe.preprocess import FrameSpec, audio_batch, frames_to_pixels, prepare_audio
from sfxmatch.embed.registry import ModelSpec
from sfxmatch.embed.values import (
    TORCH_DTYPES,
    DevicePlacement,
    SceneInput,
    TextSpace,
    Weights,
    window_starts,
)
from sfxmatch.errors import ConfigError, ModelError
from sfxmatch.match.autosync import DEFAULT_TEMPERATURE

if TYPE_CHECKING:
    import torch

# Bump when preprocessing or post-processing changes the vectors for the same weights.
PIPELINE_VERSION = 1
MAX_SCENE_FRAMES = 64  # frames of a scene through the temporal transformer (evenly sampled)
MAX_AUDIO_SECONDS = 30.0  # one vector per sound sees at most this (its middle); beds get windows
TEXT_MAX_TOKENS = 512  # what PE-AV's own tokenisation truncates to
FRAME_MEMO = 16384  # frame features kept (64 MB at 1024 values): a pass reuses them for scenes
_AUDIO_BATCH_SECONDS = 60.0  # audio per forward pass on CPU, bounding memory


class PeAvEncoder:
    """PE-AV's towers behind the Encoder protocol."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        spec: ModelSpec,
        model_id: str,
        placement: DevicePlacement,
        batch_size: int,
        frames: FrameSpec,
        sampling_rate: int,
        hop: int,
    ) -> None:
        import torch

        if batch_size < 1:
            raise ConfigError(f"batch size must be positive, got {batch_size}")
        self.model = model.eval().requires_grad_(False)
        self.tokenizer = tokenizer
        self.placement = placement
        self.device = torch.device(placement.device)
        self.dtype = getattr(torch, TORCH_DTYPES[placement.dtype])
        self.batch_size = batch_size
        self.frames = frames
        self.sampling_rate = sampling_rate
        self.hop = hop
        self._spec = spec
        self._model_id = model_id
        self._memo: OrderedDict[bytes, torch.Tensor] = OrderedDict()
        self._dim = int(model.config.text_config.hidden_size)
        scale = float(model.video_model.text_video_logit_scale.detach().float().item())
        self._temperature = 1.0 / scale if scale > 0 else DEFAULT_TEMPERATURE

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def spec(self) -> ModelSpec:
        return self._spec

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def temperature(self) -> float:
        return self._temperature

    def __repr__(self) -> str:
        return (
            f"PeAvEncoder({self.model_id!r}, device={self.placement.device}, "
            f"dtype={self.placement.dtype}, batch_size={self.batch_size})"
        )

    # --- pictures --------------------------------------------------------------------------

    def frame_features(self, frames: Sequence[np.ndarray]) -> torch.Tensor:
        """(N, F) float32 frame-encoder outputs of (H, W, 3) uint8 frames, on the device;
        each distinct frame is encoded once and remembered (the newest ``FRAME_MEMO``)."""
        import torch

        keys = [_frame_key(f) for f in frames]
        todo = list(dict.fromkeys(k for k in keys if k not in self._memo))
        first = {k: i for i, k in reversed(list(enumerate(keys)))}
        vision = self._vision()
        with torch.inference_mode():
            for start in range(0, len(todo), self.batch_size):
                chunk = todo[start : start + self.batch_size]
                pixels = frames_to_pixels(
                    [frames[first[k]] for k in chunk], self.frames, device=self.device
                )
                out = vision(pixels.to(self.dtype)).logits.float()
                for key, row in zip(chunk, out, strict=True):
                    self._memo[key] = row
        rows = []
        for key in keys:
            self._memo.move_to_end(key)
            rows.append(self._memo[key])
        while len(self._memo) > FRAME_MEMO:
            self._memo.popitem(last=False)
        return torch.stack(rows) if rows else torch.zeros((0, 1), device=self.device)

    def _video_vectors(self, features: torch.Tensor) -> torch.Tensor:
        """(B, T, F) frame features -> (B, dim) unit float32: transformers' video encoder
        (its frame step passes features through) and the video head."""
        import torch.nn.functional as F

        video = self.model.video_model
        out = video.video_encoder(pixel_values_videos=features.to(self.dtype))
        return F.normalize(video.video_head(out.pooler_output).float(), dim=-1)

    def embed_video_segments(self, clips: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        import torch

        items = clips if isinstance(clips, np.ndarray) else list(clips)
        if isinstance(items, np.ndarray) and items.ndim != 5:
            raise ValueError(f"expected segments (N, T, H, W, 3), got shape {items.shape}")
        out = np.empty((len(items), self.dim), np.float32)
        for start in range(0, len(items), self.batch_size):
            batch = [np.asarray(c) for c in items[start : start + self.batch_size]]
            per = batch[0].shape[0]
            features = self.frame_features([f for clip in batch for f in clip])
            with torch.inference_mode():
                vectors = self._video_vectors(features.view(len(batch), per, -1))
            out[start : start + len(batch)] = vectors.cpu().numpy()
        return out

    def embed_scenes(self, scenes: Sequence[SceneInput]) -> np.ndarray:
        """Each scene as one clip of its frames inside [start, end) (the "all frames"
        checkpoints see every frame; more than ``MAX_SCENE_FRAMES`` are sampled evenly as
        the video processor samples), one forward per scene: no padding between scenes."""
        import torch

        out = np.empty((len(scenes), self.dim), np.float32)
        for i, scene in enumerate(scenes):
            frames = _scene_frames(scene)
            features = self.frame_features(frames)
            with torch.inference_mode():
                out[i] = self._video_vectors(features[None]).cpu().numpy()[0]
        return out

    def emitter_maps(
        self, clips: np.ndarray | Sequence[np.ndarray], label_vectors: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Grad-CAM on the frame encoder's last patch tokens: the gradient of each clip's
        cosine with its label, times the tokens, summed over channels, negatives cut.
        Gradients stop at the tokens, so only the pooling, the temporal transformer and the
        heads are differentiated."""
        import torch

        items = np.asarray(clips if isinstance(clips, np.ndarray) else list(clips))
        labels = np.asarray(label_vectors, np.float32)
        if items.ndim != 5 or labels.shape != (len(items), self.dim):
            raise ValueError("expected clips (N, T, H, W, 3) and one label vector per clip")
        n, per = items.shape[:2]
        vit = self._vision().timm_model
        maps: list[torch.Tensor] = []
        strength = np.empty(n, np.float32)
        step = max(1, self.batch_size // per)
        for start in range(0, n, step):
            chunk = items[start : start + step]
            pixels = frames_to_pixels(
                chunk.reshape(-1, *chunk.shape[2:]), self.frames, device=self.device
            )
            target = torch.from_numpy(labels[start : start + len(chunk)]).to(self.device)
            with torch.enable_grad():
                logits, tokens = vit.forward_with_tokens(
                    pixels.to(self.device, self.dtype), attribute=True
                )
                features = logits.view(len(chunk), per, -1)
                vectors = self._video_vectors(features)
                cosines = (vectors * target).sum(dim=-1)
                (grads,) = torch.autograd.grad(cosines.sum(), tokens)
            relevance = (grads.float() * tokens.detach().float()).sum(dim=-1).clamp_(min=0)
            relevance = relevance.view(len(chunk), per, *relevance.shape[1:]).mean(dim=1)
            total = relevance.sum(dim=(1, 2), keepdim=True)
            uniform = torch.full_like(relevance, 1.0 / relevance[0].numel())
            maps.append(torch.where(total > 0, relevance / total.clamp(min=1e-30), uniform))
            strength[start : start + len(chunk)] = cosines.detach().float().cpu().numpy()
        grid = maps[0].shape[1:] if maps else (1, 1)
        stacked = torch.cat(maps).cpu().numpy() if maps else np.zeros((0, *grid), np.float32)
        return stacked.astype(np.float32), strength

    def _vision(self) -> Any:
        return self.model.video_model.video_encoder.embedder.vision_model

    # --- sound -----------------------------------------------------------------------------

    def prepare_audio(self, samples: np.ndarray, sample_rate: int) -> np.ndarray:
        return prepare_audio(samples, sample_rate, self.sampling_rate)

    def embed_audio(self, waveforms: Sequence[np.ndarray], sample_rate: int) -> np.ndarray:
        import torch
        import torch.nn.functional as F

        waves = [self._middle(self._mono(w, sample_rate)) for w in waveforms]
        out = np.empty((len(waves), self.dim), np.float32)
        audio = self.model.audio_model
        budget = int(_AUDIO_BATCH_SECONDS * self.sampling_rate)
        order = sorted(range(len(waves)), key=lambda i: len(waves[i]))
        start = 0
        while start < len(order):
            stop = start + 1
            while (
                stop < len(order)
                and stop - start < self.batch_size
                and (stop - start + 1) * len(waves[order[stop]]) <= budget
            ):
                stop += 1
            chosen = order[start:stop]
            values, mask = audio_batch([waves[i] for i in chosen], self.hop, device=self.device)
            with torch.inference_mode():
                pooled = audio.audio_encoder(
                    input_values=values.to(self.dtype), padding_mask=mask
                ).pooler_output
                vectors = F.normalize(audio.audio_head(pooled).float(), dim=-1).cpu().numpy()
            out[chosen] = vectors
            start = stop
        return out

    def embed_audio_windows(
        self, waveform: np.ndarray, sample_rate: int, *, window: float, hop: float
    ) -> tuple[np.ndarray, np.ndarray]:
        wave = self._mono(waveform, sample_rate)
        starts = window_starts(len(wave), self.sampling_rate, window, hop)
        length = round(window * self.sampling_rate)
        pieces = [wave[s : s + length] for s in starts]
        vectors = self.embed_audio(pieces, self.sampling_rate)
        return vectors, np.asarray(starts, np.float64) / self.sampling_rate

    def _mono(self, waveform: np.ndarray, sample_rate: int) -> np.ndarray:
        data = np.asarray(waveform, np.float32)
        if sample_rate != self.sampling_rate or data.ndim != 1:
            data = prepare_audio(data, sample_rate, self.sampling_rate)
        if data.size == 0:
            raise ValueError("empty waveform")
        return data

    def _middle(self, wave: np.ndarray) -> np.ndarray:
        longest = int(MAX_AUDIO_SECONDS * self.sampling_rate)
        if len(wave) <= longest:
            return wave
        start = (len(wave) - longest) // 2
        return wave[start : start + longest]

    # --- text ------------------------------------------------------------------------------

    def embed_text(self, texts: Sequence[str], *, space: TextSpace) -> np.ndarray:
        import torch
        import torch.nn.functional as F

        if space == "video":
            head = self.model.video_model.text_video_head
        elif space == "audio":
            head = self.model.audio_model.text_audio_head
        else:
            raise ValueError(f"space must be 'video' or 'audio', not {space!r}")
        texts = list(texts)
        out = np.empty((len(texts), self.dim), np.float32)
        for start in range(0, len(texts), self.batch_size):
            batch = texts[start : start + self.batch_size]
            tokens = self.tokenizer(
                batch,
                padding=True,
                truncation=True,
                max_length=TEXT_MAX_TOKENS,
                return_tensors="pt",
            ).to(self.device)
            with torch.inference_mode():
                hidden = self.model.text_model(
                    input_ids=tokens["input_ids"],
                    attention_mask=tokens["attention_mask"],
                    output_hidden_states=True,
                ).hidden_states[-1][:, 0]
                vectors = F.normalize(head(hidden).float(), dim=-1)
            out[start : start + len(batch)] = vectors.cpu().numpy()
        return out


def _frame_key(frame: np.ndarray) -> bytes:
    array = np.ascontiguousarray(frame)
    digest = hashlib.blake2b(str(array.shape).encode(), digest_size=16)
    digest.update(array.data)
    return digest.digest()


def _scene_frames(scene: SceneInput) -> list[np.ndarray]:
    times = np.asarray(scene.times, np.float64)
    inside = np.flatnonzero((times >= scene.start - 1e-6) & (times < scene.end - 1e-6))
    if inside.size == 0:  # a scene shorter than the frame spacing: the frame on screen
        before = np.flatnonzero(times <= scene.start + 1e-6)
        inside = before[-1:] if before.size else np.arange(min(1, len(times)))
    if inside.size == 0:
        raise ValueError("a scene needs at least one frame")
    if inside.size > MAX_SCENE_FRAMES:  # the video processor's even sampling
        total = inside.size
        picks = [int(i * (total - 1) / (MAX_SCENE_FRAMES - 1)) for i in range(MAX_SCENE_FRAMES)]
        inside = inside[picks]
    return [np.asarray(scene.frames[int(i)]) for i in inside]


# --- loading ---------------------------------------------------------------------------------


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path}: cannot be read ({exc})") from None
    return value if isinstance(value, dict) else {}


def processor_settings(folder: Path) -> tuple[FrameSpec, int, int]:
    """The checkpoint's video and audio preprocessing, refused when it asks for something
    this module does not do (a crop, another resampling filter)."""
    video = _read_json(folder / "video_preprocessor_config.json")
    audio = _read_json(folder / "preprocessor_config.json")
    size = video.get("size") or {"height": 336, "width": 336}
    if video.get("do_center_crop") or video.get("resample", 2) != 2 or "height" not in size:
        raise ModelError(
            f"{folder}: its video preprocessing ({json.dumps(video)[:200]}) is not the squash "
            "resize PE-AV was published with"
        )
    frames = FrameSpec(
        int(size["height"]),
        int(size["width"]),
        tuple(video.get("image_mean", (0.5, 0.5, 0.5))),
        tuple(video.get("image_std", (0.5, 0.5, 0.5))),
    )
    return frames, int(audio.get("sampling_rate", 48_000)), int(audio.get("hop_length", 1920))


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """transformers logs notes meant for model authors, prints one about its own PE-AV code
    to stdout each time a ``PeVideoModel`` is built (5.25: a method defined inside
    ``__init__`` goes through its docstring checker), and draws progress bars while saving
    and loading: keep all of it off a user's terminal and out of ``--json`` output."""
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity(logging.CRITICAL)
    hf_logging.disable_progress_bar()
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def load_folder(folder: Path, placement: DevicePlacement) -> tuple[Any, Any]:
    """transformers' PE-AV model (with our frame encoder) and tokenizer from a checkpoint
    folder in the hub's layout, on the placement's device and dtype. The audio-video fusion
    tower is dropped after loading: no step uses it."""
    import torch

    with quiet_transformers():
        from transformers import AutoConfig, AutoTokenizer, PeAudioVideoConfig, PeAudioVideoModel

        from sfxmatch.embed.pe.frame_encoder import use_frame_encoder

        try:
            config = AutoConfig.from_pretrained(folder)
        except (OSError, ValueError) as exc:
            raise ModelError(f"{folder}: not a PE-AV checkpoint ({exc})") from None
        if not isinstance(config, PeAudioVideoConfig):
            raise ModelError(f"{folder}: holds a {type(config).__name__}, not PE-AV")
        try:
            loaded: Any = PeAudioVideoModel.from_pretrained(
                folder,
                config=use_frame_encoder(config, _frame_outputs(folder)),
                dtype=getattr(torch, TORCH_DTYPES[placement.dtype]),
                output_loading_info=True,
            )
            model, info = loaded  # output_loading_info=True gives (model, info)
            tokenizer = AutoTokenizer.from_pretrained(folder)
        except (OSError, ValueError, RuntimeError) as exc:
            raise ModelError(f"{folder}: the checkpoint cannot be loaded ({exc})") from None
    missing = [k for k in info.get("missing_keys", ()) if not k.startswith(UNUSED_MODULES)]
    if missing:
        raise ModelError(
            f"{folder}: the checkpoint lacks {len(missing)} weights ({missing[0]}, ...)"
        )
    _drop_fusion(model)
    return model.to(placement.device), tokenizer


FRAME_HEAD = "video_model.video_encoder.embedder.vision_model.timm_model.head.weight"


def _frame_outputs(folder: Path) -> int | None:
    """The frame encoder's output size as the checkpoint's weights hold it (read from the
    safetensors header, nothing loaded): saved configs do not keep it reliably."""
    from safetensors import safe_open

    try:
        with safe_open(str(folder / "model.safetensors"), framework="pt") as weights:
            if FRAME_HEAD not in weights.keys():  # noqa: SIM118 (a safetensors handle)
                return None
            return int(weights.get_slice(FRAME_HEAD).get_shape()[0])
    except (OSError, ValueError, RuntimeError) as exc:
        raise ModelError(f"{folder / 'model.safetensors'}: cannot be read ({exc})") from None


# What no pipeline step uses (docs/models.md): dropped after loading, not needed in a folder.
UNUSED_MODULES = (
    "audio_video_encoder",
    "audio_video_head",
    "text_audio_video_head",
    "audio_plus_text_head",
    "video_plus_text_head",
)


def _drop_fusion(model: Any) -> None:
    for name in UNUSED_MODULES:
        if hasattr(model, name):
            delattr(model, name)


def random_model(config: Any, *, seed: int, placement: DevicePlacement) -> Any:
    """transformers' PE-AV at ``config``'s sizes with its own seeded initialisation."""
    import torch

    with quiet_transformers():
        from transformers import PeAudioVideoModel

        from sfxmatch.embed.pe.frame_encoder import use_frame_encoder

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = PeAudioVideoModel(use_frame_encoder(config))
    _drop_fusion(model)
    # transformers wraps ``to`` in a decorator its stubs cannot describe.
    movable: Any = model
    return movable.to(placement.device, getattr(torch, TORCH_DTYPES[placement.dtype]))


def load_pe_av(
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
) -> PeAvEncoder:
    """A PE-AV encoder: pe-av-tiny's in-process checkpoint, a published checkpoint (a folder
    you name, else the hub through the user cache), or seeded random weights at a published
    size (benchmarks)."""
    from sfxmatch.embed.pe.config import FRAME_SIZE, published_config
    from sfxmatch.embed.pe.hub import checkpoint_folder
    from sfxmatch.embed.pe.tiny import RECIPE, write_tiny_checkpoint

    if compile:
        raise ConfigError("torch.compile is not supported for PE-AV yet: unset SFXMATCH_COMPILE")
    if spec.random_only and weights == "random":
        made = f"random-r{RECIPE}-seed{seed}"
        with quiet_transformers():
            folder = write_tiny_checkpoint(settings.models_dir / f"{spec.name}-{made}", seed=seed)
        weights_id = made
    elif weights == "random":
        model = random_model(published_config(spec.name), seed=seed, placement=placement)
        frames = FrameSpec(FRAME_SIZE, FRAME_SIZE)
        tokenizer = _tiny_tokenizer_for(model)
        return PeAvEncoder(
            model,
            tokenizer,
            spec=spec,
            model_id=f"{spec.name}/random-seed{seed}/v{PIPELINE_VERSION}",
            placement=placement,
            batch_size=batch_size,
            frames=frames,
            sampling_rate=48_000,
            hop=1920,
        )
    else:
        folder = checkpoint_folder(
            spec, weights_path, settings=settings, download=download, progress=progress
        )
        weights_id = f"sha256-{_weights_digest(folder, settings, progress)[:16]}"
    model, tokenizer = load_folder(folder, placement)
    frames, sampling_rate, hop = processor_settings(folder)
    return PeAvEncoder(
        model,
        tokenizer,
        spec=spec,
        model_id=f"{spec.name}/{weights_id}/v{PIPELINE_VERSION}",
        placement=placement,
        batch_size=batch_size,
        frames=frames,
        sampling_rate=sampling_rate,
        hop=hop,
    )


def _weights_digest(folder: Path, settings: Settings, progress: DownloadProgress) -> str:
    """SHA-256 of model.safetensors: the hub cache names the file by it; a folder you name
    is hashed once and remembered."""
    weights = (folder / "model.safetensors").resolve()
    if len(weights.name) == 64 and all(c in "0123456789abcdef" for c in weights.name):
        return weights.name
    return checkpoint_digest(weights, settings=settings, progress=progress)


def _tiny_tokenizer_for(model: Any) -> Any:
    """Random weights at a published size have no tokenizer to download: the character
    tokenizer of pe-av-tiny, its ids kept inside the model's vocabulary (speed and shapes
    are what such a model is for)."""
    from transformers import PreTrainedTokenizerFast

    from sfxmatch.embed.pe.tiny import tiny_tokenizer

    return PreTrainedTokenizerFast(
        tokenizer_object=tiny_tokenizer(),
        cls_token="[CLS]",
        sep_token="[SEP]",
        pad_token="[PAD]",
        mask_token="[MASK]",
        unk_token="[UNK]",
    )
