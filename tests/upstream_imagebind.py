"""Upstream ImageBind (``imagebind-unofficial==0.1.1``, installed ``--no-deps``) for tests only.

Importing upstream as a package fails here: ``imagebind/__init__.py`` imports its data
module (torchvision, torchaudio, pytorchvideo: not installable on this stack), and its model
code imports ``timm`` for two helpers, while timm drags in a torchvision whose import fails.
So this module

* registers a bare ``imagebind`` package (the installed directory as its path, its
  ``__init__`` not run), so only the model submodules are imported, never ``imagebind.data``;
* while importing them, provides a stand-in ``timm.layers`` with just the two names upstream
  uses, unless a real timm imports: ``DropPath`` (identity here: the tests run in eval
  mode, where stochastic depth does nothing) and ``trunc_normal_`` (torch's own; it only
  initialises weights, which the tests overwrite or compare after copying).

:func:`build_upstream` then builds upstream's ``ImageBindModel`` with our configuration's
sizes. Tests call :func:`require_upstream`, which skips them with the reason when upstream
cannot be imported.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import sys
import types
from collections.abc import Iterator
from typing import Any

import pytest
import torch
from sfxmatch.embed.imagebind.config import ImageBindConfig
from torch import nn
from torch.overrides import TorchFunctionMode

# Upstream hard-codes these; a configuration with other values cannot be compared.
_UPSTREAM_FIXED = {"image_size": 224, "text_context_length": 77, "text_vocab_size": 49408}

# The towers we do not port, built as small as upstream allows so that building upstream
# costs little (their weights are dropped anyway).
_SMALL_UNUSED_TOWERS: dict[str, Any] = {
    "depth_embed_dim": 8,
    "depth_num_blocks": 1,
    "depth_num_heads": 1,
    "thermal_embed_dim": 8,
    "thermal_num_blocks": 1,
    "thermal_num_heads": 1,
    "imu_embed_dim": 8,
    "imu_num_blocks": 1,
    "imu_num_heads": 1,
}


class _EvalOnlyDropPath(nn.Identity):
    """Stand-in for timm's DropPath: stochastic depth is the identity in eval mode."""

    def __init__(self, drop_prob: float = 0.0, *args: object, **kwargs: object) -> None:
        super().__init__()
        self.drop_prob = drop_prob


@contextlib.contextmanager
def _timm_stand_in() -> Iterator[None]:
    try:
        importlib.import_module("timm.layers")
        yield  # a working timm: use it
        return
    except Exception:  # ImportError, or timm's own failing torchvision import
        pass
    saved = {name: sys.modules.get(name) for name in ("timm", "timm.layers")}
    timm = types.ModuleType("timm")
    layers = types.ModuleType("timm.layers")
    layers.DropPath = _EvalOnlyDropPath  # type: ignore[attr-defined]
    layers.trunc_normal_ = nn.init.trunc_normal_  # type: ignore[attr-defined]
    timm.layers = layers  # type: ignore[attr-defined]
    sys.modules.update({"timm": timm, "timm.layers": layers})
    try:
        yield
    finally:
        # Upstream's modules keep their references; nothing else should see the stand-in.
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def _import_upstream_model() -> types.ModuleType:
    if "imagebind.models.imagebind_model" in sys.modules:
        return sys.modules["imagebind.models.imagebind_model"]
    spec = importlib.util.find_spec("imagebind")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("imagebind-unofficial is not installed")
    if "imagebind" not in sys.modules:
        package = types.ModuleType("imagebind")
        package.__path__ = list(spec.submodule_search_locations)
        package.__spec__ = spec
        sys.modules["imagebind"] = package  # without running its __init__ (imports data)
    with _timm_stand_in():
        return importlib.import_module("imagebind.models.imagebind_model")


def upstream_model_module() -> types.ModuleType | None:
    """Upstream's ``imagebind.models.imagebind_model``, or None when it cannot be imported."""
    try:
        return _import_upstream_model()
    except Exception:
        return None


def require_upstream() -> types.ModuleType:
    """Upstream's model module, or skip the calling test saying why."""
    try:
        return _import_upstream_model()
    except Exception as error:  # any failure means "no reference here", not a bug of ours
        pytest.skip(f"upstream imagebind-unofficial cannot be imported: {error!r}")


class _CpuLinspace(TorchFunctionMode):
    """Upstream calls ``torch.linspace(...).item()`` for drop-path rates, which a meta
    tensor cannot answer: make just that call on the CPU (tiny), all else stays on meta."""

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        kwargs = dict(kwargs or {})
        if func is torch.linspace:
            kwargs["device"] = "cpu"
        return func(*args, **kwargs)


def build_upstream(config: ImageBindConfig, device: str = "cpu") -> nn.Module:
    """Upstream's ``ImageBindModel`` with ``config``'s sizes, randomly initialised, eval mode.

    ``device="meta"`` builds the structure only (for the huge configuration's key and shape
    checks). Depth, thermal and IMU towers are built tiny.
    """
    module = require_upstream()
    for field, value in _UPSTREAM_FIXED.items():
        if getattr(config, field) != value:
            raise ValueError(f"upstream hard-codes {field}={value}; {config.name} differs")
    c = config
    kwargs: dict[str, Any] = {
        "video_frames": c.video_frames,
        "kernel_size": c.kernel_size,
        "audio_kernel_size": c.audio_kernel_size,
        "audio_stride": c.audio_stride,
        "out_embed_dim": c.out_embed_dim,
        "vision_embed_dim": c.vision_embed_dim,
        "vision_num_blocks": c.vision_num_blocks,
        "vision_num_heads": c.vision_num_heads,
        "audio_embed_dim": c.audio_embed_dim,
        "audio_num_blocks": c.audio_num_blocks,
        "audio_num_heads": c.audio_num_heads,
        "audio_num_mel_bins": c.audio_num_mel_bins,
        "audio_target_len": c.audio_target_len,
        "audio_drop_path": c.audio_drop_path,
        "text_embed_dim": c.text_embed_dim,
        "text_num_blocks": c.text_num_blocks,
        "text_num_heads": c.text_num_heads,
        **_SMALL_UNUSED_TOWERS,
    }
    with torch.device(device), _CpuLinspace():
        model = module.ImageBindModel(**kwargs)
    return model.eval()


def upstream_forward(model: nn.Module, modality: str, inputs: torch.Tensor) -> torch.Tensor:
    """Upstream's output for one modality (its ``forward`` takes and returns a dict)."""
    return model({modality: inputs})[modality]
