"""Our port of ImageBind's vision, audio and text towers.

The module tree mirrors upstream's ``ImageBindModel`` so its checkpoint loads as is: the
state-dict keys of these three modalities are exactly upstream's (``modality_preprocessors``,
``modality_trunks``, ``modality_heads``, ``modality_postprocessors``); the depth, thermal
and IMU entries of ``imagebind_huge.pth`` are dropped explicitly before a strict load.

Differences from upstream, none of which changes a number:

* attention runs through ``F.scaled_dot_product_attention`` (fused kernels on GPU), batch
  first, while keeping ``nn.MultiheadAttention``'s parameter names;
* the text tower's causal mask is ``is_causal=True``; the mask buffer is kept only because
  the checkpoint carries it;
* inputs must have the configured sizes (upstream would interpolate position embeddings);
* a single 5-D vision clip ``(B, 3, T, H, W)`` is accepted (upstream reads any 5-D input as
  a stack of clips, which breaks for vision);
* ``forward`` returns unit vectors; ``forward_raw`` returns upstream's scaled outputs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Final, Literal, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sfxmatch.embed.imagebind.config import IMAGEBIND_HUGE, ImageBindConfig
from sfxmatch.errors import ModelError

Modality = Literal["vision", "audio", "text"]
VISION: Final = "vision"
AUDIO: Final = "audio"
TEXT: Final = "text"
MODALITIES: Final[tuple[Modality, ...]] = (VISION, AUDIO, TEXT)

# Towers present in imagebind_huge.pth that we do not build.
UNUSED_MODALITIES: Final = frozenset({"depth", "thermal", "imu"})
_CONTAINERS: Final = (
    "modality_preprocessors",
    "modality_trunks",
    "modality_heads",
    "modality_postprocessors",
)

_LN_EPS: Final = 1e-6  # every LayerNorm upstream except the audio stem's (torch default)


# --------------------------------------------------------------------------- building blocks


class _SelfAttention(nn.Module):
    """Multi-head self-attention with ``nn.MultiheadAttention``'s parameter layout."""

    def __init__(self, dim: int, num_heads: int, add_bias_kv: bool) -> None:
        super().__init__()
        self.num_heads = num_heads
        # Rows are [query; key; value] projections, as nn.MultiheadAttention packs them.
        self.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))
        self.in_proj_bias = nn.Parameter(torch.empty(3 * dim))
        self.out_proj = nn.Linear(dim, dim)
        # A learned key/value appended to every sequence (audio trunk only).
        self.bias_k: nn.Parameter | None = None
        self.bias_v: nn.Parameter | None = None
        if add_bias_kv:
            self.bias_k = nn.Parameter(torch.empty(1, 1, dim))
            self.bias_v = nn.Parameter(torch.empty(1, 1, dim))
        # Random init only matters for untrained (test) models; meta builds skip it.
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.zeros_(self.in_proj_bias)
        nn.init.zeros_(self.out_proj.bias)
        if self.bias_k is not None and self.bias_v is not None:
            nn.init.xavier_normal_(self.bias_k)
            nn.init.xavier_normal_(self.bias_v)

    def forward(self, x: Tensor, causal: bool) -> Tensor:
        b, n, d = x.shape
        q, k, v = F.linear(x, self.in_proj_weight, self.in_proj_bias).chunk(3, dim=-1)
        if self.bias_k is not None and self.bias_v is not None:
            # Appended last, like upstream; only unmasked trunks have them (see _Trunk).
            k = torch.cat([k, self.bias_k.expand(b, 1, d)], dim=1)
            v = torch.cat([v, self.bias_v.expand(b, 1, d)], dim=1)

        def heads(t: Tensor) -> Tensor:
            return t.unflatten(-1, (self.num_heads, -1)).transpose(1, 2)

        out = F.scaled_dot_product_attention(heads(q), heads(k), heads(v), is_causal=causal)
        return self.out_proj(out.transpose(1, 2).reshape(b, n, d))


class _Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class _DropPath(nn.Module):
    """Stochastic depth: drops a whole residual branch per sample, in training only."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep


class _Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm_1(x)), then x + mlp(norm_2(x))."""

    def __init__(
        self, dim: int, num_heads: int, mlp_ratio: int, add_bias_kv: bool, drop_path: float
    ) -> None:
        super().__init__()
        self.attn = _SelfAttention(dim, num_heads, add_bias_kv)
        self.drop_path = _DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm_1 = nn.LayerNorm(dim, eps=_LN_EPS)
        self.mlp = _Mlp(dim, mlp_ratio * dim)
        self.norm_2 = nn.LayerNorm(dim, eps=_LN_EPS)

    def forward(self, x: Tensor, causal: bool) -> Tensor:
        x = x + self.drop_path(self.attn(self.norm_1(x), causal))
        return x + self.drop_path(self.mlp(self.norm_2(x)))


class _Trunk(nn.Module):
    """A stack of blocks on (B, L, D) tokens, optionally after a LayerNorm (vision)."""

    def __init__(
        self,
        dim: int,
        num_blocks: int,
        num_heads: int,
        mlp_ratio: int,
        *,
        pre_norm: bool,
        add_bias_kv: bool,
        causal: bool,
        drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        if causal and add_bias_kv:
            raise ValueError("a causal trunk with bias_kv would need an explicit mask")
        self.causal = causal
        # Upstream's Sequential(LayerNorm | Identity, rearrange): only the LayerNorm has
        # weights, at index 0.
        self.pre_transformer_layer: nn.Module = (
            nn.Sequential(nn.LayerNorm(dim, eps=_LN_EPS)) if pre_norm else nn.Identity()
        )
        # Upstream's progressive schedule: 0 for the first block up to drop_path for the last.
        rates = [drop_path * i / max(num_blocks - 1, 1) for i in range(num_blocks)]
        self.blocks = nn.ModuleList(
            _Block(dim, num_heads, mlp_ratio, add_bias_kv, rate) for rate in rates
        )

    def forward(self, x: Tensor) -> Tensor:
        x = self.pre_transformer_layer(x)
        for block in self.blocks:
            x = block(x, self.causal)
        return x


class _PosEmbed(nn.Module):
    def __init__(self, num_tokens: int, dim: int) -> None:
        super().__init__()
        self.pos_embed = nn.Parameter(torch.empty(1, num_tokens, dim))
        nn.init.normal_(self.pos_embed, std=dim**-0.5)


class _RepeatFrames(nn.Module):
    """Turns images (B, C, H, W) or one-frame clips into clips of ``frames`` equal frames."""

    def __init__(self, frames: int) -> None:
        super().__init__()
        self.frames = frames

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim == 4:
            x = x.unsqueeze(2)
        if x.shape[2] == 1 and self.frames > 1:
            x = x.expand(-1, -1, self.frames, -1, -1)
        return x


class _PatchStem(nn.Module):
    """Convolution to patches, flattened to (B, patches, D), with an optional LayerNorm."""

    def __init__(self, proj: nn.Module, norm_layer: nn.Module | None = None) -> None:
        super().__init__()
        self.proj = proj
        self.norm_layer = norm_layer

    def forward(self, x: Tensor) -> Tensor:
        x = self.proj(x).flatten(2).transpose(1, 2)
        return x if self.norm_layer is None else self.norm_layer(x)


class _PatchPreprocessor(nn.Module):
    """Patches plus a class token, plus learned position embeddings (vision and audio)."""

    def __init__(self, stem: _PatchStem, num_tokens: int, dim: int) -> None:
        super().__init__()
        self.rgbt_stem = stem  # upstream's name, for audio too
        self.pos_embedding_helper = _PosEmbed(num_tokens, dim)
        self.cls_token = nn.Parameter(torch.empty(1, 1, dim))
        nn.init.normal_(self.cls_token, std=dim**-0.5)

    def forward(self, x: Tensor) -> Tensor:
        patches = self.rgbt_stem(x)
        cls = self.cls_token.expand(patches.shape[0], -1, -1)
        return torch.cat([cls, patches], dim=1) + self.pos_embedding_helper.pos_embed


class _TextPreprocessor(nn.Module):
    def __init__(self, vocab_size: int, context_length: int, dim: int) -> None:
        super().__init__()
        self.token_embedding = nn.Embedding(vocab_size, dim)
        self.pos_embed = nn.Parameter(torch.empty(1, context_length, dim))
        # The checkpoint stores upstream's additive causal mask; attention uses is_causal
        # instead (lets SDPA pick a fused kernel), so this buffer is only loaded, never read.
        self.register_buffer(
            "mask", torch.full((context_length, context_length), float("-inf")).triu_(1)
        )
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        nn.init.normal_(self.pos_embed, std=0.01)

    def forward(self, tokens: Tensor) -> Tensor:
        return self.token_embedding(tokens) + self.pos_embed


class _SelectToken(nn.Module):
    def __init__(self, index: int) -> None:
        super().__init__()
        self.index = index

    def forward(self, x: Tensor) -> Tensor:
        return x[:, self.index]


class _TextHead(nn.Module):
    """Pools the end-of-text token (the largest id in a CLIP sequence), then projects."""

    def __init__(self, dim: int, out_dim: int) -> None:
        super().__init__()
        self.proj = nn.Sequential(
            nn.LayerNorm(dim, eps=_LN_EPS), nn.Linear(dim, out_dim, bias=False)
        )

    def forward(self, x: Tensor, eot_index: Tensor) -> Tensor:
        return self.proj(x[torch.arange(x.shape[0], device=x.device), eot_index])


class _Normalize(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return F.normalize(x, dim=-1)


class _LogitScale(nn.Module):
    """Multiplies by exp(log scale), clipped; learned (text) or a fixed buffer (audio)."""

    def __init__(self, init: float, learnable: bool, max_scale: float) -> None:
        super().__init__()
        self.max_scale = max_scale
        value = torch.full((), math.log(init))
        self.log_logit_scale: Tensor
        if learnable:
            self.log_logit_scale = nn.Parameter(value)
        else:
            self.register_buffer("log_logit_scale", value)

    def forward(self, x: Tensor) -> Tensor:
        return self.log_logit_scale.exp().clamp(max=self.max_scale) * x


def _cls_head(dim: int, out_dim: int) -> nn.Sequential:
    # LayerNorm, take the class token, project: indices 0 and 2 hold upstream's weights.
    return nn.Sequential(
        nn.LayerNorm(dim, eps=_LN_EPS), _SelectToken(0), nn.Linear(dim, out_dim, bias=False)
    )


# --------------------------------------------------------------------------- the model


class ImageBindModel(nn.Module):
    """ImageBind's vision, audio and text towers for one :class:`ImageBindConfig`.

    Inputs are preprocessed tensors:

    * vision: images ``(B, 3, H, W)``, clips ``(B, 3, T, H, W)`` (T = 1 is repeated to the
      configured frames, like upstream), or several clips per item ``(B, S, 3, T, H, W)``;
    * audio: log-mel spectrograms ``(B, 1, mel_bins, target_len)`` or ``(B, S, 1, ...)``;
    * text: CLIP token ids ``(B, context_length)``, or ``(B, S, context_length)`` to average
      S prompts per item (ours; upstream has no multi-prompt input).

    With ``S`` clips per item the per-clip outputs are averaged, as upstream does.
    Inputs must already be on the model's device; float inputs in the model's dtype.
    """

    def __init__(self, config: ImageBindConfig) -> None:
        super().__init__()
        self.config = c = config

        vision_stem = _PatchStem(
            nn.Sequential(
                _RepeatFrames(c.video_frames),
                nn.Conv3d(3, c.vision_embed_dim, c.kernel_size, stride=c.kernel_size, bias=False),
            )
        )
        audio_stem = _PatchStem(
            nn.Conv2d(
                1,
                c.audio_embed_dim,
                c.audio_kernel_size,
                stride=c.audio_stride,
                bias=False,
            ),
            nn.LayerNorm(c.audio_embed_dim),  # default eps 1e-5, as upstream
        )
        self.modality_preprocessors = nn.ModuleDict(
            {
                VISION: _PatchPreprocessor(vision_stem, c.vision_num_tokens, c.vision_embed_dim),
                TEXT: _TextPreprocessor(c.text_vocab_size, c.text_context_length, c.text_embed_dim),
                AUDIO: _PatchPreprocessor(audio_stem, c.audio_num_tokens, c.audio_embed_dim),
            }
        )
        self.modality_trunks = nn.ModuleDict(
            {
                VISION: _Trunk(
                    c.vision_embed_dim,
                    c.vision_num_blocks,
                    c.vision_num_heads,
                    c.mlp_ratio,
                    pre_norm=True,
                    add_bias_kv=False,
                    causal=False,
                ),
                TEXT: _Trunk(
                    c.text_embed_dim,
                    c.text_num_blocks,
                    c.text_num_heads,
                    c.mlp_ratio,
                    pre_norm=False,
                    add_bias_kv=False,
                    causal=True,
                ),
                AUDIO: _Trunk(
                    c.audio_embed_dim,
                    c.audio_num_blocks,
                    c.audio_num_heads,
                    c.mlp_ratio,
                    pre_norm=False,
                    add_bias_kv=True,
                    causal=False,
                    drop_path=c.audio_drop_path,
                ),
            }
        )
        self.modality_heads = nn.ModuleDict(
            {
                VISION: _cls_head(c.vision_embed_dim, c.out_embed_dim),
                TEXT: _TextHead(c.text_embed_dim, c.out_embed_dim),
                AUDIO: _cls_head(c.audio_embed_dim, c.out_embed_dim),
            }
        )
        self.modality_postprocessors = nn.ModuleDict(
            {
                VISION: _Normalize(),
                TEXT: nn.Sequential(
                    _Normalize(),
                    _LogitScale(
                        c.text_logit_scale_init, learnable=True, max_scale=c.max_logit_scale
                    ),
                ),
                AUDIO: nn.Sequential(
                    _Normalize(),
                    _LogitScale(c.audio_logit_scale, learnable=False, max_scale=c.max_logit_scale),
                ),
            }
        )

    # ----------------------------------------------------------------------- public API

    def forward(self, modality: Modality, inputs: Tensor) -> Tensor:
        """Unit-norm float32 embeddings (B, out_embed_dim): ``forward_raw`` normalised again.

        Normalised in float32 whatever the model's dtype, so bf16/fp16 runs still give
        vectors of norm 1 to float32 precision.
        """
        return F.normalize(self.forward_raw(modality, inputs).float(), dim=-1)

    def forward_raw(self, modality: Modality, inputs: Tensor) -> Tensor:
        """Upstream's output for ``modality``: text scaled by its learned logit scale, audio
        by 20, vision unit-norm; multi-clip inputs give the mean over clips."""
        clip_ndim = {VISION: 6, AUDIO: 5, TEXT: 3}.get(modality)
        if clip_ndim is None:
            raise ValueError(f"unknown modality {modality!r}; expected one of {MODALITIES}")
        if inputs.ndim == clip_ndim:
            b, s = inputs.shape[:2]
            out = self._embed_single(modality, inputs.flatten(0, 1))
            return out.unflatten(0, (b, s)).mean(dim=1)
        return self._embed_single(modality, inputs)

    def embed_vision(self, frames: Tensor) -> Tensor:
        """Unit-norm embeddings of images, clips or multi-clip stacks (see the class doc)."""
        return self.forward(VISION, frames)

    def embed_audio(self, mels: Tensor) -> Tensor:
        """Unit-norm embeddings of (B, 1, mel, time) or (B, S, 1, mel, time) spectrograms."""
        return self.forward(AUDIO, mels)

    def embed_text(self, tokens: Tensor) -> Tensor:
        """Unit-norm embeddings of (B, context_length) CLIP token ids."""
        return self.forward(TEXT, tokens)

    def vision_patch_embeddings(self, frames: Tensor) -> Tensor:
        """Each vision patch token in the joint space: float32 unit vectors (B, t, h, w, D).

        Patch tokens go through the head's LayerNorm and projection, as the class token
        does for the embedding, so a patch's dot product with a unit text embedding is
        their cosine similarity (a map of where a sound's source is on screen). Takes
        single images or clips, not multi-clip stacks.
        """
        tokens = self._trunk_tokens(VISION, frames)
        head = cast(nn.Sequential, self.modality_heads[VISION])  # _cls_head's layers
        patches = head[2](head[0](tokens[:, 1:]))
        return F.normalize(patches.float(), dim=-1).unflatten(1, self.config.vision_grid)

    def vision_with_patches(self, frames: Tensor) -> tuple[Tensor, Tensor]:
        """One trunk pass giving both the unit embeddings (B, D) of single images or clips and
        their unit patch tokens in the joint space (B, t, h, w, D), as the two methods above."""
        tokens = self._trunk_tokens(VISION, frames)
        head = cast(nn.Sequential, self.modality_heads[VISION])  # _cls_head's layers
        pooled = self.modality_postprocessors[VISION](head(tokens))
        patches = head[2](head[0](tokens[:, 1:]))
        return (
            F.normalize(pooled.float(), dim=-1),
            F.normalize(patches.float(), dim=-1).unflatten(1, self.config.vision_grid),
        )

    # ----------------------------------------------------------------------- internals

    def _trunk_tokens(self, modality: Modality, x: Tensor) -> Tensor:
        self._check_input(modality, x)
        tokens = self.modality_preprocessors[modality](x)
        return self.modality_trunks[modality](tokens)

    def _embed_single(self, modality: Modality, x: Tensor) -> Tensor:
        tokens = self._trunk_tokens(modality, x)
        if modality == TEXT:
            # CLIP's end-of-text id is the largest in the vocabulary: argmax finds it.
            pooled = self.modality_heads[TEXT](tokens, x.argmax(dim=-1))
        else:
            pooled = self.modality_heads[modality](tokens)
        return self.modality_postprocessors[modality](pooled)

    def _check_input(self, modality: Modality, x: Tensor) -> None:
        c = self.config
        if modality == VISION:
            size = (c.image_size, c.image_size)
            ok = (x.ndim == 4 and x.shape[1] == 3 and tuple(x.shape[2:]) == size) or (
                x.ndim == 5
                and x.shape[1] == 3
                and x.shape[2] in (1, c.video_frames)
                and tuple(x.shape[3:]) == size
            )
            want = f"(B, 3, {c.image_size}, {c.image_size}) or (B, 3, T, ...) with T in 1, "
            want += f"{c.video_frames}"
        elif modality == AUDIO:
            ok = x.ndim == 4 and tuple(x.shape[1:]) == (
                1,
                c.audio_num_mel_bins,
                c.audio_target_len,
            )
            want = f"(B, 1, {c.audio_num_mel_bins}, {c.audio_target_len})"
        else:
            ok = x.ndim == 2 and x.shape[1] == c.text_context_length and not x.is_floating_point()
            want = f"integer token ids (B, {c.text_context_length})"
        if not ok:
            raise ValueError(
                f"{c.name} {modality} input has shape {tuple(x.shape)} ({x.dtype}); "
                f"expected {want} (one clip, or with a clip axis after B)"
            )


# --------------------------------------------------------------------------- counting


def tower_parameter_count(model: ImageBindModel, modality: Modality) -> int:
    """Parameters (not buffers) of one tower: preprocessor, trunk, head, postprocessor."""
    return sum(
        p.numel()
        for container in _CONTAINERS
        for p in getattr(model, container)[modality].parameters()
    )


# --------------------------------------------------------------------------- loading


def build_model(config: ImageBindConfig, device: torch.device | str = "cpu") -> ImageBindModel:
    """A model in eval mode on ``device``. On "meta" it holds no memory and does no random
    init: give it weights with :func:`load_weights` (``assign=True``)."""
    with torch.device(device):
        model = ImageBindModel(config)
    return model.eval()


def drop_unused_modalities(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """The state dict without the depth, thermal and IMU towers that we do not build."""

    def unused(key: str) -> bool:
        container, _, rest = key.partition(".")
        return container in _CONTAINERS and rest.partition(".")[0] in UNUSED_MODALITIES

    return {key: value for key, value in state_dict.items() if not unused(key)}


def load_weights(
    model: ImageBindModel,
    state_dict: Mapping[str, Tensor],
    *,
    assign: bool = False,
    source: str = "state dict",
) -> None:
    """Strictly loads an upstream-format state dict, ignoring only depth/thermal/IMU.

    Raises :class:`ModelError` naming missing, unexpected and mis-shaped keys. With
    ``assign=True`` the model takes the given tensors as its parameters (no copy): what a
    meta-built model needs.
    """
    weights = drop_unused_modalities(state_dict)
    expected = model.state_dict(keep_vars=True)
    missing = sorted(expected.keys() - weights.keys())
    unexpected = sorted(weights.keys() - expected.keys())
    misshaped = sorted(
        f"{k} {tuple(weights[k].shape)} (want {tuple(v.shape)})"
        for k, v in expected.items()
        if k in weights and weights[k].shape != v.shape
    )
    if missing or unexpected or misshaped:
        parts = [
            f"{label}: {', '.join(keys[:5])}{' …' if len(keys) > 5 else ''}"
            for label, keys in (
                ("missing", missing),
                ("unexpected", unexpected),
                ("wrong shape", misshaped),
            )
            if keys
        ]
        raise ModelError(
            f"{source} does not fit ImageBind config {model.config.name!r} "
            f"({'; '.join(parts)}); use the official imagebind_huge.pth (re-download it, "
            "or point SFXMATCH_IMAGEBIND_CHECKPOINT at a good copy) with the matching config"
        )
    try:
        model.load_state_dict(weights, strict=True, assign=assign)
    except RuntimeError as error:  # e.g. a dtype the parameters cannot take
        raise ModelError(f"{source}: cannot load into ImageBind: {error}") from error


def load_model(
    checkpoint: str | Path,
    config: ImageBindConfig = IMAGEBIND_HUGE,
    *,
    device: torch.device | str = "cpu",
    dtype: torch.dtype | None = None,
) -> ImageBindModel:
    """The model built on "meta" and given the checkpoint's tensors, in eval mode.

    The checkpoint is memory-mapped and its tensors become the parameters (no random init,
    no copy on CPU); moving to ``device`` / ``dtype`` copies once. Gradients are off.
    """
    path = Path(checkpoint)
    if not path.is_file():
        raise ModelError(
            f"{path}: ImageBind checkpoint not found; download imagebind_huge.pth or set "
            "SFXMATCH_IMAGEBIND_CHECKPOINT to its path"
        )
    try:
        try:
            state_dict = torch.load(path, map_location="cpu", mmap=True, weights_only=True)
        except RuntimeError as error:
            if "mmap" not in str(error):
                raise
            # Files in torch's legacy (pre-zip) format cannot be memory-mapped.
            state_dict = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # unpickling errors come in many types
        raise ModelError(
            f"{path}: not a readable PyTorch checkpoint ({type(error).__name__}); "
            "re-download imagebind_huge.pth"
        ) from error
    if not isinstance(state_dict, Mapping):
        raise ModelError(f"{path}: holds a {type(state_dict).__name__}, not a state dict")

    model = build_model(config, device="meta")
    load_weights(model, state_dict, assign=True, source=str(path))
    model.requires_grad_(False)
    return model.to(device=device, dtype=dtype).eval()
