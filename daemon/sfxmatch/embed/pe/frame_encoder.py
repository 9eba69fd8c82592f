"""PE-AV's per-frame vision encoder (PE-Core) without timm.

transformers builds PE-AV's frame encoder as ``TimmWrapperForImageClassification`` around timm's
``Eva`` (the ``vit_pe_core_*`` factories). timm imports torchvision, whose only wheels beside our
CPU torch fail to import, so this module re-implements that network: the same arithmetic in the
same order, and the same parameter names and shapes, so PE-AV checkpoints load unchanged
(``...vision_model.timm_model.blocks.0.attn.qkv.weight``). :func:`use_frame_encoder` rewrites a
PE-AV config so that transformers builds :class:`PeCoreFrameEncoder` in the wrapper's place.

Only what the PE-Core factories configure is implemented (class token, absolute position
embedding plus 2-D RoPE, pre-norm blocks, latent attention pooling, fixed input size); other Eva
options are refused with a ``ValueError`` rather than silently ignored.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from transformers import (
    AutoConfig,
    AutoModelForImageClassification,
    PreTrainedConfig,
    PreTrainedModel,
    TimmWrapperConfig,
)
from transformers import initialization as init
from transformers.modeling_outputs import ImageClassifierOutput

AnyConfig = TypeVar("AnyConfig", bound=PreTrainedConfig)

_LN_EPS = 1e-5
_ROPE_TEMPERATURE = 10000.0

# What each factory sets, plus the input size and class count timm takes from the architecture's
# pretrained config (its ``input_size`` and ``num_classes``) when they are not passed.
_COMMON: dict[str, Any] = dict(
    in_chans=3, mlp_ratio=4.0, class_token=True, rope_grid_offset=1.0,
    attn_pool_num_heads=8, attn_pool_mlp_ratio=4.0,
)  # fmt: skip
ARCHITECTURES: dict[str, dict[str, Any]] = {
    "vit_pe_core_tiny_patch16_384": dict(
        img_size=384, patch_size=16, embed_dim=192, depth=12, num_heads=3,
        ref_feat_shape=24, num_classes=512,
    ),
    "vit_pe_core_small_patch16_384": dict(
        img_size=384, patch_size=16, embed_dim=384, depth=12, num_heads=6,
        ref_feat_shape=24, num_classes=512,
    ),
    "vit_pe_core_base_patch16_224": dict(
        img_size=224, patch_size=16, embed_dim=768, depth=12, num_heads=12,
        ref_feat_shape=14, num_classes=1024,
    ),
    "vit_pe_core_large_patch14_336": dict(
        img_size=336, patch_size=14, embed_dim=1024, depth=24, num_heads=16,
        ref_feat_shape=24, num_classes=1024,
    ),
    "vit_pe_core_gigantic_patch14_448": dict(
        img_size=448, patch_size=14, embed_dim=1536, depth=50, num_heads=16,
        mlp_ratio=8960 / 1536, class_token=False, rope_grid_offset=0.0,
        ref_feat_shape=32, num_classes=1280,
    ),
}  # fmt: skip
# Eva arguments implemented only at the value the PE-Core factories use: accepted when passed
# at that value, refused otherwise.
_FIXED: dict[str, Any] = dict(
    global_pool="map", attn_type="rope", use_rot_pos_emb=True, use_abs_pos_emb=True,
    use_pre_transformer_norm=True, rope_type="cat", rope_grid_indexing="xy",
    rope_temperature=_ROPE_TEMPERATURE, rope_rotate_half=False, qkv_bias=True, qkv_fused=True,
    num_reg_tokens=0, no_embed_class=False, init_values=None, swiglu_mlp=False, scale_mlp=False,
    scale_attn_inner=False, use_post_norm=False, dynamic_img_size=False, dynamic_img_pad=False,
    drop_rate=0.0, pos_drop_rate=0.0, patch_drop_rate=0.0, proj_drop_rate=0.0,
    attn_drop_rate=0.0, drop_path_rate=0.0,
)  # fmt: skip


def _pair(value: int | tuple[int, int] | list[int]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


@dataclass(frozen=True)
class PeCoreSpec:
    """The resolved hyper-parameters of one PE-Core network."""

    img_size: tuple[int, int]
    patch_size: tuple[int, int]
    in_chans: int
    embed_dim: int
    depth: int
    num_heads: int
    mlp_ratio: float
    class_token: bool
    ref_feat_shape: tuple[int, int] | None
    rope_grid_offset: float
    attn_pool_num_heads: int
    attn_pool_mlp_ratio: float
    num_classes: int

    @property
    def grid(self) -> tuple[int, int]:
        return (self.img_size[0] // self.patch_size[0], self.img_size[1] // self.patch_size[1])

    @property
    def num_prefix_tokens(self) -> int:
        return int(self.class_token)

    @classmethod
    def resolve(
        cls, architecture: str, num_classes: int | None = None, **model_args: Any
    ) -> PeCoreSpec:
        """What ``timm.create_model(architecture, num_classes=..., **model_args)`` builds."""
        name = architecture.split(".", 1)[0]  # timm reads "arch.tag" as the same network
        if name not in ARCHITECTURES:
            raise ValueError(
                f"unknown PE-Core architecture {architecture!r}: {sorted(ARCHITECTURES)}"
            )
        args = {**_COMMON, **ARCHITECTURES[name]}
        for key, value in model_args.items():
            if key in _FIXED:
                if value != _FIXED[key]:
                    raise ValueError(f"{key}={value!r} is not supported (only {_FIXED[key]!r})")
            elif key in args:
                args[key] = value
            else:
                raise ValueError(f"unsupported PE-Core model argument {key!r}")
        if num_classes is not None:
            args["num_classes"] = num_classes
        for key in ("img_size", "patch_size", "ref_feat_shape"):
            args[key] = None if args[key] is None else _pair(args[key])
        spec = cls(**args)
        head_dim, rest = divmod(spec.embed_dim, spec.num_heads)
        if rest or head_dim % 4 or spec.embed_dim % spec.attn_pool_num_heads:
            # RoPE rotates channel pairs, half of them along x and half along y.
            raise ValueError("embed_dim must split into heads of a multiple of 4 channels")
        return spec


def rope_table(spec: PeCoreSpec) -> Tensor:
    """(tokens, 2 * head_dim) float32 [sin | cos] of the patch grid's rotary angles.

    Built on the CPU in float32 whatever the model's device, so every copy gets timm's values.
    Channel pairs 2i, 2i+1 share an angle; the first half of the pairs follow x, the rest y.
    """
    head_dim = spec.embed_dim // spec.num_heads
    n = head_dim // 4
    ref = spec.ref_feat_shape or (None, None)

    def arange(size: int) -> Tensor:  # integer steps then float32, explicitly off any meta device
        return torch.arange(size, dtype=torch.int64, device="cpu").to(torch.float32)

    def axis(size: int, ref_size: int | None) -> Tensor:
        t = arange(size) + spec.rope_grid_offset
        return t if ref_size is None else t / size * ref_size  # positions on the pretraining grid

    bands = 1.0 / _ROPE_TEMPERATURE ** (arange(n) / n)
    gh, gw = spec.grid
    ys, xs = torch.meshgrid(axis(gh, ref[0]), axis(gw, ref[1]), indexing="ij")
    angles = torch.stack((xs, ys), dim=-1).unsqueeze(-1) * bands
    angles = angles.reshape(gh * gw, 2 * n).repeat_interleave(2, dim=-1)
    return torch.cat((angles.sin(), angles.cos()), dim=-1)


def _rotate(x: Tensor, table: Tensor) -> Tensor:
    sin, cos = table.chunk(2, dim=-1)
    pairs = x.unflatten(-1, (-1, 2))
    swapped = torch.stack((-pairs[..., 1], pairs[..., 0]), dim=-1).flatten(-2)
    return x * cos + swapped * sin


class _Rope(nn.Module):
    def __init__(self, spec: PeCoreSpec) -> None:
        super().__init__()
        self.spec = spec
        head_dim = spec.embed_dim // spec.num_heads
        # timm's buffer name: PE-AV's tied-weight patterns single out ``rope.pos_embed``.
        table = torch.empty(spec.grid[0] * spec.grid[1], 2 * head_dim)
        self.register_buffer("pos_embed", table, persistent=False)
        if not table.is_meta:
            with torch.no_grad():
                table.copy_(rope_table(spec))


class _Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class _Attention(nn.Module):
    def __init__(self, dim: int, num_heads: int, num_prefix_tokens: int) -> None:
        super().__init__()
        self.num_heads, self.num_prefix_tokens = num_heads, num_prefix_tokens
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor, rope: Tensor) -> Tensor:
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)  # (b, heads, n, head_dim)
        p = self.num_prefix_tokens  # the class token carries no position
        q = torch.cat((q[:, :, :p], _rotate(q[:, :, p:], rope)), dim=2).type_as(v)
        k = torch.cat((k[:, :, :p], _rotate(k[:, :, p:], rope)), dim=2).type_as(v)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


class _Block(nn.Module):
    def __init__(self, spec: PeCoreSpec) -> None:
        super().__init__()
        dim = spec.embed_dim
        self.norm1 = nn.LayerNorm(dim, eps=_LN_EPS)
        self.attn = _Attention(dim, spec.num_heads, spec.num_prefix_tokens)
        self.norm2 = nn.LayerNorm(dim, eps=_LN_EPS)
        self.mlp = _Mlp(dim, int(dim * spec.mlp_ratio))

    def forward(self, x: Tensor, rope: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x), rope)
        return x + self.mlp(self.norm2(x))


class _AttentionPool(nn.Module):
    """One learned query attends over all tokens (class token included), then a residual MLP."""

    def __init__(self, spec: PeCoreSpec) -> None:
        super().__init__()
        dim = spec.embed_dim
        self.num_heads = spec.attn_pool_num_heads
        self.latent = nn.Parameter(torch.zeros(1, 1, dim))
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm = nn.LayerNorm(dim, eps=_LN_EPS)
        self.mlp = _Mlp(dim, int(dim * spec.attn_pool_mlp_ratio))

    def forward(self, x: Tensor) -> Tensor:
        b, n, c = x.shape
        q = self.q(self.latent.expand(b, -1, -1)).reshape(b, 1, self.num_heads, -1).transpose(1, 2)
        k, v = self.kv(x).reshape(b, n, 2, self.num_heads, -1).permute(2, 0, 3, 1, 4).unbind(0)
        out = self.proj(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, 1, c))
        return (out + self.mlp(self.norm(out)))[:, 0]


class PeCoreVisionTransformer(nn.Module):
    """timm's ``Eva`` as built by ``timm.create_model(architecture, num_classes=..., **model_args)``
    for the ``vit_pe_core_*`` architectures: (B, 3, H, W) at the configured size -> (B, classes).

    Parameters start at PyTorch's defaults (tokens at zero): load a checkpoint. The RoPE table is a
    non-persistent buffer, computed here (or by :class:`PeCoreFrameEncoder` after meta-device
    construction), never loaded.
    """

    def __init__(self, architecture: str, num_classes: int | None = None, **model_args: Any):
        super().__init__()
        spec = self.spec = PeCoreSpec.resolve(architecture, num_classes, **model_args)
        dim, (gh, gw) = spec.embed_dim, spec.grid
        # No conv bias: the norm right after it (norm_pre) makes one redundant.
        proj = nn.Conv2d(spec.in_chans, dim, spec.patch_size, stride=spec.patch_size, bias=False)
        self.patch_embed = nn.ModuleDict({"proj": proj})
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim)) if spec.class_token else None
        self.pos_embed = nn.Parameter(torch.zeros(1, spec.num_prefix_tokens + gh * gw, dim))
        self.rope = _Rope(spec)
        self.norm_pre = nn.LayerNorm(dim, eps=_LN_EPS)
        self.blocks = nn.ModuleList(_Block(spec) for _ in range(spec.depth))
        self.norm = nn.LayerNorm(dim, eps=_LN_EPS)
        self.attn_pool = _AttentionPool(spec)
        self.head = nn.Linear(dim, spec.num_classes) if spec.num_classes > 0 else nn.Identity()

    def forward_features(self, x: Tensor) -> Tensor:
        """(B, prefix + patches, C) tokens after the last block and the final norm."""
        if tuple(x.shape[-2:]) != self.spec.img_size:
            raise ValueError(
                f"input is {tuple(x.shape[-2:])}, the model takes {self.spec.img_size}"
            )
        x = self.patch_embed["proj"](x).flatten(2).transpose(1, 2)
        if self.cls_token is not None:
            x = torch.cat((self.cls_token.expand(x.shape[0], -1, -1), x), dim=1)
        x = self.norm_pre(x + self.pos_embed)
        for block in self.blocks:
            x = block(x, self.rope.pos_embed)
        return self.norm(x)

    def forward_with_tokens(self, x: Tensor, *, attribute: bool = False) -> tuple[Tensor, Tensor]:
        """Logits, and the final patch tokens (B, grid_h, grid_w, C) they were computed from.

        The pooling reads the returned tokens themselves (re-joined to the prefix), so gradients
        of the logits reach them (for attribution). ``attribute``: the tokens start the graph
        (they require grad, the trunk below them is not differentiated), so a frozen model
        still gives gradients at the tokens, for the cost of the pooling and head only.
        """
        features = self.forward_features(x)
        p = self.spec.num_prefix_tokens
        if attribute:
            features = features.detach()
        tokens = features[:, p:].unflatten(1, self.spec.grid)
        if attribute:
            tokens = tokens.requires_grad_(True)
        joined = torch.cat((features[:, :p], tokens.flatten(1, 2)), dim=1)
        return self.head(self.attn_pool(joined)), tokens

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_with_tokens(x)[0]


class PeCoreFrameEncoderConfig(TimmWrapperConfig):
    """A ``TimmWrapperConfig`` of a PE-Core architecture that builds :class:`PeCoreFrameEncoder`."""

    model_type = "sfxmatch_pe_core"


class PeCoreFrameEncoder(PreTrainedModel):
    """Drop-in for ``TimmWrapperForImageClassification`` on the PE-Core architectures: the same
    ``timm_model`` attribute and parameter names, ``config.num_labels`` outputs."""

    config: PeCoreFrameEncoderConfig
    config_class = PeCoreFrameEncoderConfig
    base_model_prefix = "timm_model"
    main_input_name = "pixel_values"
    input_modalities = "image"
    # One device, like timm's. A plain attribute: transformers declares it on instances.
    _no_split_modules = ["PeCoreFrameEncoder"]  # noqa: RUF012
    _supports_sdpa = True
    accepts_loss_kwargs = False

    def __init__(self, config: PeCoreFrameEncoderConfig) -> None:
        super().__init__(config)
        if not config.num_labels:
            raise ValueError("the frame encoder needs num_labels > 0 (the size of its output)")
        model_args = config.model_args or {}
        self.timm_model = PeCoreVisionTransformer(
            config.architecture, config.num_labels, **model_args
        )
        self.num_labels = config.num_labels
        self.post_init()

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        # transformers' init functions skip tensors a checkpoint has filled; the RoPE table is
        # never in one and is left uninitialised by meta-device construction, so recompute it.
        super()._init_weights(module)
        if isinstance(module, PeCoreVisionTransformer):
            for token in (module.cls_token, module.pos_embed):
                if token is not None:
                    init.trunc_normal_(token, std=0.02)
        elif isinstance(module, _AttentionPool):
            init.trunc_normal_(module.latent, std=module.latent.shape[-1] ** -0.5)
        elif isinstance(module, _Rope):
            init.copy_(cast(Tensor, module.pos_embed), rope_table(module.spec))

    def forward(self, pixel_values: Tensor, **kwargs: Any) -> ImageClassifierOutput | tuple[Tensor]:
        """(B, 3, H, W) pictures -> (B, num_labels). Rows of features this encoder already
        made ((B, num_labels)) pass through unchanged: PE-AV's video encoder then runs its
        temporal transformer over frames encoded once and remembered (the frame encoder is
        nearly all of the video branch's cost), with transformers' own code."""
        return_dict = kwargs.pop("return_dict", None)
        unsupported = sorted(k for k, v in kwargs.items() if v is not None and v is not False)
        if unsupported:
            raise ValueError(f"the PE-Core frame encoder does not support {unsupported}")
        if pixel_values.ndim == 2:
            if pixel_values.shape[-1] != self.num_labels:
                raise ValueError(
                    f"frame features have {pixel_values.shape[-1]} values, not {self.num_labels}"
                )
            logits = pixel_values.to(self.device, self.dtype)
        else:
            logits = self.timm_model(pixel_values.to(self.device, self.dtype))
        if return_dict is False or (return_dict is None and not self.config.return_dict):
            return (logits,)
        return ImageClassifierOutput(logits=logits)


def frame_encoder_config(
    source: TimmWrapperConfig, outputs: int | None = None
) -> PeCoreFrameEncoderConfig:
    """``source`` (a PE-Core ``TimmWrapperConfig``) as a :class:`PeCoreFrameEncoderConfig`, every
    attribute kept (architecture, model_args, global_pool, ...), with ``outputs`` values per
    frame when given (the checkpoint's own head says it best: see :func:`use_frame_encoder`)."""
    if isinstance(source, PeCoreFrameEncoderConfig) and outputs in (None, source.num_labels):
        return source
    converted = PeCoreFrameEncoderConfig(**{k: v for k, v in vars(source).items() if k[0] != "_"})
    if outputs is not None:
        converted.num_labels = outputs
    else:
        # transformers 5.25 builds a TimmWrapperConfig from a dict (how every PE-AV config
        # arrives) without reading its num_classes, leaving the default 2 labels; the published
        # frame encoder has num_classes outputs (1024), so num_classes counts unless num_labels
        # was set to something else.
        stated = getattr(source, "num_classes", None)
        if isinstance(stated, int) and stated > 0 and converted.num_labels == 2:
            converted.num_labels = stated
    PeCoreSpec.resolve(converted.architecture, converted.num_labels, **(converted.model_args or {}))
    return converted


def _replace_vision_configs(config: PreTrainedConfig, outputs: int | None) -> int:
    found = 0
    for key in type(config).sub_configs_defaults:
        sub = getattr(config, key, None)
        if key == "vision_config" and isinstance(sub, TimmWrapperConfig):
            setattr(config, key, frame_encoder_config(sub, outputs))
            found += 1
        elif isinstance(sub, PreTrainedConfig):
            found += _replace_vision_configs(sub, outputs)
    return found


def use_frame_encoder(config: AnyConfig, outputs: int | None = None) -> AnyConfig:
    """A copy of a PE-AV config (``PeAudioVideoConfig``, ``PeVideoConfig``,
    ``PeVideoEncoderConfig``, ...) whose every frame-encoder ``vision_config`` builds
    :class:`PeCoreFrameEncoder` instead of timm; pass it to ``PeAudioVideoModel(config)`` or
    ``PeAudioVideoModel.from_pretrained(path, config=...)``.

    ``outputs``: the frame encoder's output size. A saved PE-AV config does not keep it
    reliably (transformers 5.25 reads a vision config's ``num_classes`` only through
    ``from_dict``, and a saved-then-loaded config falls back to 2), so a loader passes what the
    checkpoint's head weight says.

    ``PeAudioVideoConfig.video_config`` is a property rebuilt from
    ``audio_video_config.video_config`` at each access, so replacing the sub-configs themselves
    reaches both the video model and the audio-video encoder.
    """
    config = copy.deepcopy(config)
    if not _replace_vision_configs(config, outputs):
        raise ValueError(f"{type(config).__name__} holds no timm vision_config to replace")
    return config


def _register() -> None:
    # exist_ok: idempotent if this module is ever imported (or reloaded) twice.
    AutoConfig.register(
        PeCoreFrameEncoderConfig.model_type, PeCoreFrameEncoderConfig, exist_ok=True
    )
    AutoModelForImageClassification.register(
        PeCoreFrameEncoderConfig, PeCoreFrameEncoder, exist_ok=True
    )


_register()
