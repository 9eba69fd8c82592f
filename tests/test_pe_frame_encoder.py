"""Our PE-Core frame encoder (sfxmatch.embed.pe.frame_encoder) against timm and transformers.

The references run in a subprocess where timm imports (tests/hf_reference.py). There timm builds
the network with a fixed seed, every parameter is nudged off its initial value (so no bias sits
at zero, no norm at one, and the head is not timm's near-zero init), and the state dict is saved;
ours loads it with ``strict=True`` and must give the same outputs on real frames.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hf_reference import run_reference
from safetensors.torch import load_file
from sfxmatch.embed.pe.frame_encoder import (
    ARCHITECTURES,
    PeCoreFrameEncoder,
    PeCoreFrameEncoderConfig,
    PeCoreSpec,
    PeCoreVisionTransformer,
    use_frame_encoder,
)
from transformers import (
    PeAudioConfig,
    PeAudioVideoConfig,
    PeAudioVideoModel,
    PeVideoConfig,
    PeVideoEncoderConfig,
    PeVideoModel,
    TimmWrapperConfig,
)

TOL = 1e-5
LARGE = "vit_pe_core_large_patch14_336"
TINY_ARGS = dict(
    img_size=56, patch_size=14, embed_dim=32, depth=2, num_heads=2, attn_pool_num_heads=2
)

# name: (architecture, num_classes or None for the architecture's own, model_args)
CASES: dict[str, tuple[str, int | None, dict[str, Any]]] = {
    # the real width, grid, RoPE and position-embedding sizes; two blocks instead of 24
    "large": (LARGE, None, {"depth": 2}),
    "tiny": (LARGE, 16, TINY_ARGS),
    # a non-square grid and reference shape, where mixing up x and y would show
    "tiny_rect": (LARGE, 16, {**TINY_ARGS, "img_size": (56, 84), "ref_feat_shape": (12, 20)}),
    "small": ("vit_pe_core_small_patch16_384", None, {"depth": 2}),
    "base": ("vit_pe_core_base_patch16_224", None, {"depth": 2}),
    # no class token, grid offset 0, an odd MLP ratio; narrowed so it stays cheap
    "gigantic_narrow": (
        "vit_pe_core_gigantic_patch14_448",
        None,
        {"img_size": 112, "embed_dim": 64, "num_heads": 4, "depth": 1},
    ),
}

REF_PARITY = """
import timm
from safetensors.torch import save_file
for name, (arch, num_classes, model_args) in _params["cases"].items():
    torch.manual_seed(0)
    kwargs = dict(model_args, **({} if num_classes is None else {"num_classes": num_classes}))
    model = timm.create_model(arch, pretrained=False, **kwargs).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.02)
        save_file(model.state_dict(), f"{_params['dir']}/{name}.safetensors")
        features = model.forward_features(torch.from_numpy(_inputs[name]))
        _outputs[name + "_logits"] = model.forward_head(features).numpy()
        _outputs[name + "_tokens"] = features[:, model.num_prefix_tokens:].numpy()
        _outputs[name + "_rope"] = model.rope.pos_embed.numpy()
"""

REF_NAMES = """
import timm
found = {}
for arch, num_classes in _params["archs"]:
    kwargs = {} if num_classes is None else {"num_classes": num_classes}
    with torch.device("meta"):
        model = timm.create_model(arch, pretrained=False, **kwargs)
    shapes = {k: list(v.shape) for k, v in model.state_dict().items()}
    transient = sorted(k for k, _ in model.named_buffers() if k not in shapes)
    found[f"{arch}/{num_classes}"] = {"shapes": shapes, "transient": transient}
_outputs["json"] = np.frombuffer(json.dumps(found).encode(), dtype=np.uint8)
"""

_TEMPORAL = dict(
    hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, head_dim=16
)
TINY_AV: dict[str, Any] = dict(
    text_config=dict(
        model_type="modernbert", vocab_size=64, hidden_size=32, intermediate_size=64,
        num_hidden_layers=2, num_attention_heads=2,
        pad_token_id=0, eos_token_id=1, bos_token_id=2, cls_token_id=2, sep_token_id=1,
    ),
    audio_video_config=dict(
        **_TEMPORAL,
        audio_config=dict(**_TEMPORAL, dac_config=dict(encoder_hidden_size=2, codebook_dim=8)),
        video_config=dict(
            **_TEMPORAL,
            # num_labels, not num_classes: see test_output_size_is_num_labels_as_in_transformers
            vision_config=dict(architecture=LARGE, num_labels=16, model_args=TINY_ARGS),
        ),
    ),
)  # fmt: skip

REF_AV = """
from transformers import PeAudioVideoConfig, PeAudioVideoModel
model = PeAudioVideoModel(PeAudioVideoConfig(**_params["config"])).eval()
vision = model.video_model.video_encoder.embedder.vision_model
assert type(vision).__name__ == "TimmWrapperForImageClassification", type(vision)
torch.manual_seed(1)
with torch.no_grad():
    for p in vision.parameters():  # tied: the audio-video encoder's copy moves too
        p.add_(torch.randn_like(p) * 0.02)
    model.save_pretrained(_params["dir"])
    x = torch.from_numpy(_inputs["pixels"])
    _outputs["logits"] = vision(x).logits.numpy()
    av_vision = model.audio_video_encoder.embedder.video_encoder.embedder.vision_model
    _outputs["av_logits"] = av_vision(x).logits.numpy()
"""


def _max_diff(a: torch.Tensor, b: np.ndarray) -> float:
    return float((a.detach() - torch.from_numpy(b)).abs().max())


def _tiny_config() -> PeAudioVideoConfig:
    return PeAudioVideoConfig(**copy.deepcopy(TINY_AV))


def _vision_models(model: PeAudioVideoModel) -> list[torch.nn.Module]:
    return [
        model.video_model.video_encoder.embedder.vision_model,
        model.audio_video_encoder.embedder.video_encoder.embedder.vision_model,
    ]


# ------------------------------------------------------------------------------- no timm, refusals


def test_import_needs_neither_timm_nor_torchvision() -> None:
    code = (
        "import sys, sfxmatch.embed.pe.frame_encoder\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('timm', 'torchvision'))\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_refuses_what_it_does_not_implement() -> None:
    with pytest.raises(ValueError, match="unknown PE-Core architecture"):
        PeCoreSpec.resolve("vit_base_patch16_224")
    with pytest.raises(ValueError, match="dynamic_img_size"):
        PeCoreSpec.resolve(LARGE, dynamic_img_size=True)
    with pytest.raises(ValueError, match="unsupported"):
        PeCoreSpec.resolve(LARGE, qk_norm=True)
    PeCoreSpec.resolve(LARGE + ".fb", global_pool="map", drop_path_rate=0.0)  # inert: accepted
    model = PeCoreVisionTransformer(LARGE, 16, **TINY_ARGS)
    with pytest.raises(ValueError, match="takes"):
        model(torch.zeros(1, 3, 70, 70))
    with pytest.raises(ValueError, match="no timm vision_config"):
        use_frame_encoder(PeAudioConfig())
    resnet = PeVideoEncoderConfig(vision_config={"architecture": "resnet50", "num_labels": 4})
    with pytest.raises(ValueError, match="unknown PE-Core architecture"):
        use_frame_encoder(resnet)


# -------------------------------------------------------------------------------- parity with timm


@pytest.fixture(scope="module")
def frames(vtest_avi: Path) -> torch.Tensor:
    """Two real frames, (2, 3, 576, 768) uint8."""
    from sfxmatch.media import iter_frames

    images = []
    for frame in iter_frames(vtest_avi, rate=0.5):
        images.append(frame.image)
        if len(images) == 2:
            break
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2)


def _pixels(frames: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    x = F.interpolate(frames.float() / 255, size=size, mode="bilinear", antialias=True)
    return (x - 0.5) / 0.5


@pytest.fixture(scope="module")
def parity(
    frames: torch.Tensor, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, torch.Tensor], dict[str, np.ndarray]]:
    folder = tmp_path_factory.mktemp("pe_parity")
    inputs = {}
    for name, (arch, num_classes, args) in CASES.items():
        inputs[name] = _pixels(frames, PeCoreSpec.resolve(arch, num_classes, **args).img_size)
    params = {"cases": CASES, "dir": str(folder)}
    arrays = {k: v.numpy() for k, v in inputs.items()}
    return folder, inputs, run_reference(REF_PARITY, folder, inputs=arrays, params=params)


@pytest.mark.real_media
@pytest.mark.parametrize("name", list(CASES))
def test_matches_timm_on_real_frames(
    name: str, parity: tuple[Path, dict[str, torch.Tensor], dict[str, np.ndarray]]
) -> None:
    folder, inputs, ref = parity
    arch, num_classes, args = CASES[name]
    ours = PeCoreVisionTransformer(arch, num_classes, **args).eval()
    ours.load_state_dict(load_file(folder / f"{name}.safetensors"), strict=True)
    assert torch.equal(ours.rope.pos_embed, torch.from_numpy(ref[name + "_rope"]))
    with torch.no_grad():
        logits, tokens = ours.forward_with_tokens(inputs[name])
    assert logits.shape == ref[name + "_logits"].shape
    assert tokens.shape == (*inputs[name].shape[:1], *ours.spec.grid, ours.spec.embed_dim)
    diffs = (
        _max_diff(logits, ref[name + "_logits"]),
        _max_diff(tokens.flatten(1, 2), ref[name + "_tokens"]),
    )
    print(f"{name}: max |logits - timm| {diffs[0]:.2e}, max |tokens - timm| {diffs[1]:.2e}")
    assert max(diffs) < TOL
    assert np.abs(ref[name + "_logits"]).max() > 1000 * TOL  # the tolerance is not vacuous


# -------------------------------------------------------------------------------- names and shapes


def test_names_and_shapes_match_timm(tmp_path: Path) -> None:
    archs = [(LARGE, 1024), *((arch, None) for arch in ARCHITECTURES)]
    out = run_reference(REF_NAMES, tmp_path, params={"archs": archs})
    ref = json.loads(out["json"].tobytes())
    for arch, num_classes in archs:
        with torch.device("meta"):
            if num_classes is None:
                timm_model: torch.nn.Module = PeCoreVisionTransformer(arch)
            else:  # the full-size transformers wrapper, as PE-AV builds it
                config = PeCoreFrameEncoderConfig(architecture=arch, num_labels=num_classes)
                timm_model = PeCoreFrameEncoder(config).timm_model
        shapes = {k: list(v.shape) for k, v in timm_model.state_dict().items()}
        transient = sorted(k for k, _ in timm_model.named_buffers() if k not in shapes)
        expected = ref[f"{arch}/{num_classes}"]
        assert shapes == expected["shapes"], arch
        assert transient == expected["transient"] == ["rope.pos_embed"], arch


# ---------------------------------------------------------------------------- through transformers


def test_transformers_builds_our_frame_encoder_without_timm() -> None:
    original = _tiny_config()
    config = use_frame_encoder(original)
    assert type(original.audio_video_config.video_config.vision_config) is TimmWrapperConfig
    vision = config.audio_video_config.video_config.vision_config
    assert isinstance(vision, PeCoreFrameEncoderConfig) and vision.num_labels == 16
    source = original.audio_video_config.video_config.vision_config.to_dict()
    assert {**vision.to_dict(), "model_type": source["model_type"]} == source  # all else kept
    model = PeAudioVideoModel(config)
    first, second = _vision_models(model)
    assert isinstance(first, PeCoreFrameEncoder) and isinstance(second, PeCoreFrameEncoder)
    assert first.timm_model.head.weight is second.timm_model.head.weight  # tied as in checkpoints
    assert not any(m.split(".")[0] in ("timm", "torchvision") for m in sys.modules)

    for parent in (
        PeVideoConfig(text_config=TINY_AV["text_config"], video_config=copy.deepcopy(
            TINY_AV["audio_video_config"]["video_config"])),
        original.audio_video_config.video_config,  # a PeVideoEncoderConfig alone
    ):  # fmt: skip
        replaced = use_frame_encoder(parent)
        if isinstance(replaced, PeVideoConfig):
            video = PeVideoModel(replaced).video_encoder.embedder.vision_model
            assert isinstance(video, PeCoreFrameEncoder)
        else:
            assert isinstance(replaced.vision_config, PeCoreFrameEncoderConfig)


def test_loads_a_pe_av_checkpoint_saved_with_timm(tmp_path: Path) -> None:
    torch.manual_seed(0)
    pixels = torch.randn(3, 3, 56, 56)
    folder = tmp_path / "pe_av"
    params = {"config": TINY_AV, "dir": str(folder)}
    ref = run_reference(REF_AV, tmp_path, inputs={"pixels": pixels.numpy()}, params=params)
    model, info = PeAudioVideoModel.from_pretrained(
        folder, config=use_frame_encoder(_tiny_config()), output_loading_info=True
    )
    for kind in ("missing_keys", "unexpected_keys", "mismatched_keys"):
        assert not info.get(kind), (kind, info[kind])
    model.eval()
    for vision in _vision_models(model):
        assert isinstance(vision, PeCoreFrameEncoder)
        with torch.no_grad():
            logits = vision(pixels).logits
        diff = max(_max_diff(logits, ref["logits"]), _max_diff(logits, ref["av_logits"]))
        print(f"transformers round trip: max |logits - timm| {diff:.2e}")
        assert diff < TOL


def test_a_stated_num_classes_sets_the_output_size() -> None:
    # transformers 5.25 builds a TimmWrapperConfig from a vision_config dict without reading its
    # num_classes (only from_dict maps it), so num_labels stays at the default 2 and the timm
    # wrapper would make 2 outputs, where the checkpoints' frame encoder has 1024. Ours honours
    # a stated num_classes. If the first assert fails, transformers now honours it too.
    encoder = PeVideoEncoderConfig(
        vision_config={"architecture": LARGE, "num_classes": 16, "model_args": TINY_ARGS}
    )
    assert encoder.vision_config.num_labels == 2
    vision = use_frame_encoder(encoder).vision_config
    assert vision.num_labels == 16
    assert PeCoreFrameEncoder(vision).timm_model.head.out_features == 16


# -------------------------------------------------------------------------- tokens for attribution


def test_forward_with_tokens_keeps_tokens_in_the_graph() -> None:
    torch.manual_seed(0)
    model = PeCoreVisionTransformer(LARGE, 16, **{**TINY_ARGS, "img_size": (56, 84)}).eval()
    x = torch.randn(2, 3, 56, 84)
    logits, tokens = model.forward_with_tokens(x)
    assert tokens.shape == (2, 4, 6, 32)
    assert torch.equal(logits, model(x))
    (grad,) = torch.autograd.grad(logits[:, 3].sum(), tokens)
    assert grad.shape == tokens.shape and torch.isfinite(grad).all()
    assert grad.abs().sum(-1).gt(0).all()  # every patch token contributes through the pooling
