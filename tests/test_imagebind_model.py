"""Our ImageBind port against upstream (imagebind-unofficial 0.1.1), loading, and invariants.

Parity runs on the tiny configuration (same code, small sizes) with upstream's random
weights copied into ours; the huge configuration is checked structurally on the meta
device, where it costs no memory.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from sfxmatch.embed.imagebind.config import (
    CONFIGS,
    IMAGEBIND_HUGE,
    IMAGEBIND_TINY,
    ImageBindConfig,
    get_config,
)
from sfxmatch.embed.imagebind.model import (
    AUDIO,
    MODALITIES,
    TEXT,
    VISION,
    ImageBindModel,
    _DropPath,
    build_model,
    drop_unused_modalities,
    load_model,
    load_weights,
    tower_parameter_count,
)
from sfxmatch.errors import ConfigError, ModelError
from upstream_imagebind import build_upstream, require_upstream, upstream_forward

TOL = 1e-5
C = IMAGEBIND_TINY


def _inputs(modality: str, batch: int, *, clips: int | None = None, seed: int = 0) -> torch.Tensor:
    """Random preprocessed inputs shaped like the real ones (clip axis after B if clips)."""
    g = torch.Generator().manual_seed(seed)
    lead = (batch,) if clips is None else (batch, clips)
    if modality == VISION:
        return torch.randn(*lead, 3, C.video_frames, C.image_size, C.image_size, generator=g)
    if modality == AUDIO:
        return torch.randn(*lead, 1, C.audio_num_mel_bins, C.audio_target_len, generator=g)
    # CLIP layout: start token, words, end token (the largest id), zero padding.
    tokens = torch.zeros(*lead, C.text_context_length, dtype=torch.long)
    flat = tokens.view(-1, C.text_context_length)
    for row in flat:
        n = int(torch.randint(1, 20, (1,), generator=g))
        row[0] = 49406
        row[1 : n + 1] = torch.randint(1, 49406, (n,), generator=g)
        row[n + 1] = 49407
    return tokens


@pytest.fixture(scope="module")
def pair() -> tuple[torch.nn.Module, ImageBindModel]:
    """Upstream tiny with random weights, and ours holding a copy of them."""
    require_upstream()
    torch.manual_seed(1234)
    upstream = build_upstream(C)
    ours = build_model(C)
    load_weights(ours, upstream.state_dict())
    return upstream, ours


@pytest.fixture(scope="module")
def tiny() -> ImageBindModel:
    torch.manual_seed(7)
    return build_model(C)


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape
    return float((a - b).abs().max())


# --------------------------------------------------------------------------- config


def test_registry_and_validation() -> None:
    assert set(CONFIGS) == {"imagebind-huge", "imagebind-tiny"}
    assert get_config("imagebind-huge") is IMAGEBIND_HUGE
    with pytest.raises(ConfigError, match="known: imagebind-huge, imagebind-tiny"):
        get_config("imagebind-giant")
    with pytest.raises(ConfigError, match="not divisible"):
        ImageBindConfig(**{**vars(C), "text_num_heads": 3})
    assert IMAGEBIND_HUGE.vision_num_tokens == 257  # 1 + 16 * 16
    assert IMAGEBIND_HUGE.audio_num_tokens == 229  # 1 + 12 * 19


# --------------------------------------------------------------------------- parity (tiny)


def test_tiny_state_dict_matches_upstream(pair: tuple[torch.nn.Module, ImageBindModel]) -> None:
    upstream, ours = pair
    theirs = drop_unused_modalities(upstream.state_dict())
    mine = ours.state_dict()
    assert sorted(theirs) == sorted(mine)
    assert {k: v.shape for k, v in theirs.items()} == {k: v.shape for k, v in mine.items()}
    # The filter removed exactly the depth/thermal/IMU towers and nothing of ours.
    removed = set(upstream.state_dict()) - set(theirs)
    assert removed and all(k.split(".")[1] in {"depth", "thermal", "imu"} for k in removed)


@pytest.mark.parametrize(
    ("modality", "clips", "upstream_view"),
    [
        (VISION, None, lambda x: x[:, None]),  # upstream reads a 5-D input as clips: add S=1
        (VISION, 3, lambda x: x),
        (AUDIO, None, lambda x: x),
        (AUDIO, 3, lambda x: x),
        (TEXT, None, lambda x: x),
    ],
    ids=["vision", "vision-3clips", "audio", "audio-3clips", "text"],
)
def test_parity_random_inputs(
    pair: tuple[torch.nn.Module, ImageBindModel],
    modality: str,
    clips: int | None,
    upstream_view: Callable[[torch.Tensor], torch.Tensor],
) -> None:
    upstream, ours = pair
    x = _inputs(modality, 4, clips=clips)
    with torch.no_grad():
        expected = upstream_forward(upstream, modality, upstream_view(x))
        raw = ours.forward_raw(modality, x)
        unit = ours(modality, x)
    assert _max_diff(raw, expected) < TOL
    assert _max_diff(unit, torch.nn.functional.normalize(expected, dim=-1)) < TOL
    # Not vacuous: the items differ from one another.
    assert _max_diff(unit[0], unit[1]) > 1e-2


def test_parity_single_images_are_repeated_to_two_frames(
    pair: tuple[torch.nn.Module, ImageBindModel],
) -> None:
    upstream, ours = pair
    images = _inputs(VISION, 3)[:, :, 0]  # (B, 3, H, W)
    with torch.no_grad():
        expected = upstream_forward(upstream, VISION, images)
        got = ours.forward_raw(VISION, images)
        as_clip = ours.forward_raw(VISION, images[:, :, None])  # (B, 3, 1, H, W)
    assert _max_diff(got, expected) < TOL
    assert _max_diff(as_clip, expected) < TOL


def test_parity_detects_a_changed_weight(pair: tuple[torch.nn.Module, ImageBindModel]) -> None:
    upstream, _ = pair
    ours = build_model(C)
    state = dict(upstream.state_dict())
    key = "modality_trunks.audio.blocks.1.attn.bias_k"
    state[key] = state[key] + 0.5
    load_weights(ours, state)
    x = _inputs(AUDIO, 2)
    with torch.no_grad():
        diff = _max_diff(ours.forward_raw(AUDIO, x), upstream_forward(upstream, AUDIO, x))
    assert diff > 1e-3


def test_patch_embeddings_match_upstream_head_on_patch_tokens(
    pair: tuple[torch.nn.Module, ImageBindModel],
) -> None:
    upstream, ours = pair
    x = _inputs(VISION, 2)
    with torch.no_grad():
        got = ours.vision_patch_embeddings(x)
        tokens = upstream.modality_preprocessors[VISION](vision=x)["trunk"]
        tokens = upstream.modality_trunks[VISION](**tokens)
        head = upstream.modality_heads[VISION]
        expected = torch.nn.functional.normalize(head[2](head[0](tokens[:, 1:])), dim=-1)
        # The class-token embedding comes from the same head.
        embedding = ours.embed_vision(x)
    t, h, w = C.vision_grid
    assert got.shape == (2, t, h, w, C.out_embed_dim)
    assert _max_diff(got.reshape(2, -1, C.out_embed_dim), expected) < TOL
    cosine = torch.einsum("bthwd,bd->bthw", got, embedding)
    assert cosine.abs().max() <= 1 + 1e-5


# --------------------------------------------------------------------------- real inputs


def _fixture(request: pytest.FixtureRequest, name: str) -> Any:
    try:
        return request.getfixturevalue(name)
    except pytest.FixtureLookupError:
        pytest.skip(f"real-media fixture {name!r} is not defined (tests/fixtures_real_media.py)")


def _sounds(folder: Path, count: int) -> list[tuple[Path, str]]:
    """The first ``count`` sound files (spoken descriptions skipped) with a text label: the
    first line of a ``<name>.txt`` beside it (tuxpaint) or else the file name (minetest)."""
    out = []
    for path in sorted(folder.rglob("*.ogg")):
        if "_desc" in path.stem:
            continue
        note = path.with_suffix(".txt")
        label = note.read_text(errors="replace").splitlines()[0] if note.is_file() else ""
        out.append((path, label.strip() or path.stem.replace("_", " ")))
        if len(out) == count:
            break
    return out


def _real_preprocess() -> Any:
    return pytest.importorskip(
        "sfxmatch.embed.imagebind.preprocess", reason="preprocessing is not written yet"
    )


@pytest.mark.real_media
def test_parity_real_video(
    pair: tuple[torch.nn.Module, ImageBindModel], request: pytest.FixtureRequest
) -> None:
    pre = _real_preprocess()
    media = pytest.importorskip("sfxmatch.media")
    path = Path(_fixture(request, "vtest_avi"))
    frames = []
    for frame in media.iter_frames(path, rate=10):
        frames.append(frame)
        if frame.time >= 6.0:
            break
    images = [f.image for f in frames]
    times = [f.time for f in frames]
    pairs = np.stack(images[:8]).reshape(4, 2, *images[0].shape)  # 4 segments of 2 frames
    segments = pre.frames_to_segment_clip(pairs)  # (4, 3, 2, 224, 224)
    scene = pre.scene_clips(images, times, 0.0, 6.0)[None]  # (1, 15, 3, 2, 224, 224)
    upstream, ours = pair
    with torch.no_grad():
        for x, up_x in ((segments, segments[:, None]), (scene, scene)):
            diff = _max_diff(ours.forward_raw(VISION, x), upstream_forward(upstream, VISION, up_x))
            assert diff < TOL


@pytest.mark.real_media
@pytest.mark.parametrize("fixture", ["minetest_sounds", "tuxpaint_sounds"])
def test_parity_real_audio_and_labels(
    pair: tuple[torch.nn.Module, ImageBindModel], request: pytest.FixtureRequest, fixture: str
) -> None:
    pre = _real_preprocess()
    media = pytest.importorskip("sfxmatch.media")
    tokenizer = pytest.importorskip("sfxmatch.embed.imagebind.tokenizer")
    sounds = _sounds(Path(_fixture(request, fixture)), 4)
    if not sounds:
        pytest.skip(f"{fixture} holds no sounds")
    waves = [media.load_audio(path) for path, _ in sounds]
    mels = torch.stack([pre.audio_clips(w.samples, w.sample_rate) for w in waves])
    assert mels.shape == (len(sounds), 3, 1, 128, 204)  # 3 clips per sound, like upstream
    labels = tokenizer.tokenize([label for _, label in sounds])
    upstream, ours = pair
    with torch.no_grad():
        assert (
            _max_diff(ours.forward_raw(AUDIO, mels), upstream_forward(upstream, AUDIO, mels)) < TOL
        )
        assert (
            _max_diff(ours.forward_raw(TEXT, labels), upstream_forward(upstream, TEXT, labels))
            < TOL
        )


# --------------------------------------------------------------------------- huge (meta)


def test_huge_structure_matches_upstream_on_meta() -> None:
    require_upstream()
    upstream = drop_unused_modalities(build_upstream(IMAGEBIND_HUGE, device="meta").state_dict())
    ours = build_model(IMAGEBIND_HUGE, device="meta")
    mine = ours.state_dict()
    assert sorted(mine) == sorted(upstream)
    assert {k: v.shape for k, v in mine.items()} == {k: v.shape for k, v in upstream.items()}
    assert all(p.is_meta for p in ours.parameters())


def test_huge_parameter_counts() -> None:
    model = build_model(IMAGEBIND_HUGE, device="meta")
    counts = {m: tower_parameter_count(model, m) for m in MODALITIES}
    # DESIGN.md: vision 633 M, text 354 M, audio 86 M.
    assert counts == {VISION: 632_829_440, AUDIO: 86_235_648, TEXT: 354_032_641}
    assert sum(counts.values()) == sum(p.numel() for p in model.parameters())


# --------------------------------------------------------------------------- loading


def _checkpoint_like(model: ImageBindModel) -> dict[str, torch.Tensor]:
    """The model's weights plus some towers we do not build, as the real file has."""
    state = {k: v.clone() for k, v in model.state_dict().items()}
    state["modality_preprocessors.depth.cls_token"] = torch.zeros(1, 1, 8)
    state["modality_trunks.thermal.blocks.0.attn.in_proj_weight"] = torch.zeros(24, 8)
    state["modality_heads.imu.0.weight"] = torch.zeros(8)
    state["modality_postprocessors.depth.1.log_logit_scale"] = torch.zeros(())
    return state


def test_load_model_mmap_assign_equals_normal_build(tiny: ImageBindModel, tmp_path: Path) -> None:
    path = tmp_path / "tiny.pth"
    torch.save(_checkpoint_like(tiny), path)
    loaded = load_model(path, C)
    assert not any(t.is_meta for t in [*loaded.parameters(), *loaded.buffers()])
    assert not any(p.requires_grad for p in loaded.parameters())
    assert not loaded.training
    for modality in MODALITIES:
        x = _inputs(modality, 3)
        with torch.no_grad():
            assert torch.equal(loaded(modality, x), tiny(modality, x))


def test_load_model_errors_are_actionable(tiny: ImageBindModel, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"not found.*SFXMATCH_IMAGEBIND_CHECKPOINT"):
        load_model(tmp_path / "absent.pth", C)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match="not a readable PyTorch checkpoint"):
        load_model(junk, C)

    state = _checkpoint_like(tiny)
    del state["modality_trunks.text.blocks.1.mlp.fc2.bias"]
    missing = tmp_path / "missing.pth"
    torch.save(state, missing)
    with pytest.raises(ModelError, match=r"missing: modality_trunks\.text\.blocks\.1\.mlp\.fc2"):
        load_model(missing, C)
    # The huge config on a tiny file: every shape is wrong, and the message says to re-download.
    with pytest.raises(ModelError, match=r"wrong shape: .*re-download"):
        load_model(tmp_path / "missing.pth", IMAGEBIND_HUGE)


def test_load_weights_rejects_misshaped_and_unexpected_keys(tiny: ImageBindModel) -> None:
    target = build_model(C, device="meta")
    state = _checkpoint_like(tiny)
    state["modality_heads.audio.2.weight"] = torch.zeros(3, 3)
    with pytest.raises(ModelError, match=r"wrong shape: modality_heads\.audio\.2\.weight \(3, 3\)"):
        load_weights(target, state, assign=True)
    state = _checkpoint_like(tiny)
    state["modality_trunks.vision.blocks.9.norm_1.weight"] = torch.zeros(48)
    with pytest.raises(ModelError, match=r"unexpected: modality_trunks\.vision\.blocks\.9"):
        load_weights(target, state, assign=True)


# --------------------------------------------------------------------------- invariants


@pytest.mark.parametrize("modality", MODALITIES)
def test_unit_norm_batch_independence_and_determinism(tiny: ImageBindModel, modality: str) -> None:
    x = _inputs(modality, 5, seed=3)
    with torch.no_grad():
        batch = tiny(modality, x)
        again = tiny(modality, x)
        alone = tiny(modality, x[2:3])
    assert batch.shape == (5, C.out_embed_dim)
    assert _max_diff(batch.norm(dim=-1), torch.ones(5)) < 1e-5
    assert torch.equal(batch, again)
    assert _max_diff(alone[0], batch[2]) < TOL


def test_bfloat16_model_gives_float32_unit_vectors(tiny: ImageBindModel) -> None:
    half = build_model(C)
    half.load_state_dict(tiny.state_dict())
    half = half.to(torch.bfloat16)
    for modality in MODALITIES:
        x = _inputs(modality, 2)
        with torch.no_grad():
            got = half(modality, x if modality == TEXT else x.to(torch.bfloat16))
            reference = tiny(modality, x)
        assert got.dtype == torch.float32
        assert _max_diff(got.norm(dim=-1), torch.ones(2)) < 1e-6
        assert (got * reference).sum(dim=-1).min() > 0.99


def test_raw_outputs_carry_upstream_scales(tiny: ImageBindModel) -> None:
    with torch.no_grad():
        audio = tiny.forward_raw(AUDIO, _inputs(AUDIO, 2)).norm(dim=-1)
        text = tiny.forward_raw(TEXT, _inputs(TEXT, 2)).norm(dim=-1)
        vision = tiny.forward_raw(VISION, _inputs(VISION, 2)).norm(dim=-1)
    assert torch.allclose(audio, torch.full((2,), 20.0))
    assert torch.allclose(text, torch.full((2,), 1 / 0.07))  # learned scale, at its init here
    assert torch.allclose(vision, torch.ones(2))


@pytest.mark.parametrize(("modality", "scale"), [(AUDIO, 20.0), (TEXT, 1 / 0.07)])
def test_multiple_clips_average_before_renormalising(
    tiny: ImageBindModel, modality: str, scale: float
) -> None:
    # Text (B, S, 77) is ours only (prompt ensembles); audio follows upstream.
    x = _inputs(modality, 2, clips=3)
    with torch.no_grad():
        per_clip = torch.stack([tiny.forward_raw(modality, x[:, s]) for s in range(3)], dim=1)
        raw = tiny.forward_raw(modality, x)
        unit = tiny(modality, x)
    assert _max_diff(raw, per_clip.mean(dim=1)) < TOL
    assert raw.norm(dim=-1).max() < scale * 0.999  # a mean of scaled unit vectors is shorter
    assert _max_diff(unit, torch.nn.functional.normalize(raw, dim=-1)) < TOL


def test_bad_input_shapes_are_refused(tiny: ImageBindModel) -> None:
    with pytest.raises(ValueError, match=r"vision input has shape \(2, 3, 3, 224, 224\)"):
        tiny(VISION, torch.zeros(2, 3, 3, 224, 224))
    with pytest.raises(ValueError, match="audio input"):
        tiny(AUDIO, torch.zeros(2, 1, 128, 100))
    with pytest.raises(ValueError, match="integer token ids"):
        tiny(TEXT, torch.zeros(2, 77))
    with pytest.raises(ValueError, match="unknown modality"):
        tiny("depth", torch.zeros(2, 1, 224, 224))  # type: ignore[arg-type]


def test_drop_path_acts_in_training_only() -> None:
    torch.manual_seed(0)
    drop = _DropPath(0.5)
    x = torch.ones(64, 4, 3)
    kept = drop.train()(x)
    assert set(kept.unique().tolist()) == {0.0, 2.0}  # whole samples dropped, others rescaled
    assert torch.equal(drop.eval()(x), x)


# --------------------------------------------------------------------------- speed report


def _ms_per_call(run: Callable[[], torch.Tensor], repeats: int = 5) -> tuple[float, torch.Tensor]:
    out = run()  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        out = run()
    return (time.perf_counter() - start) / repeats * 1e3, out


def test_report_sdpa_versus_upstream_mha_speed(
    pair: tuple[torch.nn.Module, ImageBindModel], record_property: Callable[[str, Any], None]
) -> None:
    """Report only (shared CPU: no timing assertion): tiny config, batch of 8."""
    upstream, ours = pair
    lines = []
    for modality in MODALITIES:
        x = _inputs(modality, 8)
        up_x = x[:, None] if modality == VISION else x
        with torch.no_grad():
            up_ms, up_out = _ms_per_call(
                lambda m=modality, v=up_x: upstream_forward(upstream, m, v)
            )
            our_ms, our_out = _ms_per_call(lambda m=modality, v=x: ours.forward_raw(m, v))
        assert our_out.shape == up_out.shape == (8, C.out_embed_dim)
        lines.append(f"{modality}: upstream {up_ms:.1f} ms, ours {our_ms:.1f} ms")
    record_property("imagebind_tiny_speed", "; ".join(lines))
    print("\n" + "\n".join(lines))
