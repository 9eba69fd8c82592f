"""The model registry: every model-dependent value comes from one entry per model."""

from __future__ import annotations

import pytest
import torch
from sfxmatch.config import Settings
from sfxmatch.embed.encoder import resolve_model_name
from sfxmatch.embed.registry import MODELS, default_model_name, get_model
from sfxmatch.errors import ConfigError


def test_the_models_the_product_names():
    assert set(MODELS) == {
        "pe-av-small",
        "pe-av-base",
        "pe-av-large",
        "imagebind-huge",
        "pe-av-tiny",
        "imagebind-tiny",
    }
    for spec in MODELS.values():
        assert spec.commercial_use == spec.name.startswith("pe-av")
        assert spec.random_only == spec.name.endswith("-tiny")
        assert spec.needs_weights == (spec.weights_bytes is not None)
        assert spec.decode_side == 2 * spec.frame_size


def test_defaults_by_device():
    assert default_model_name("cuda") == default_model_name("cuda:1") == "pe-av-base"
    assert default_model_name("mps") == "pe-av-base"
    assert default_model_name("cpu") == default_model_name(None) == "pe-av-small"
    assert resolve_model_name(None, Settings(cache_dir=None, device="cpu")) == "pe-av-small"  # type: ignore[arg-type]
    assert resolve_model_name(None, Settings(cache_dir=None, device="cuda")) == "pe-av-base"  # type: ignore[arg-type]
    chosen = Settings(cache_dir=None, model="IMAGEBIND-HUGE", device="cuda")  # type: ignore[arg-type]
    assert resolve_model_name(None, chosen) == "imagebind-huge"
    assert resolve_model_name("pe-av-tiny", chosen) == "pe-av-tiny"


def test_an_unknown_model_names_the_choices():
    with pytest.raises(ConfigError, match="unknown model 'pe-av-xl': choose one of pe-av-small"):
        get_model("pe-av-xl")


@pytest.mark.parametrize("name", ["pe-av-small", "pe-av-base", "pe-av-large"])
def test_pe_av_sizes_on_disk_are_the_published_configs(name):
    """A float32 safetensors file holds every parameter once: the registry's size is the
    published configuration's parameter count (pe-av-large's 8.94 GB is the hub's figure)."""
    from sfxmatch.embed.pe.config import published_config
    from sfxmatch.embed.pe.encoder import quiet_transformers
    from sfxmatch.embed.pe.frame_encoder import use_frame_encoder

    with quiet_transformers():
        from transformers import PeAudioVideoModel

        with torch.device("meta"):
            model = PeAudioVideoModel(use_frame_encoder(published_config(name)))
    unique = {id(p): p.numel() for p in model.parameters()}
    assert 4 * sum(unique.values()) == get_model(name).weights_bytes
    assert model.config.text_config.hidden_size == get_model(name).dim


@pytest.mark.parametrize(
    ("model", "random_weights", "says"),
    [
        ("imagebind-huge", False, "CC BY-NC-SA 4.0"),
        ("imagebind-huge", True, "RANDOM weights"),
        ("pe-av-tiny", False, "RANDOM weights"),
        ("pe-av-small", False, None),
    ],
)
def test_daemon_run_says_the_models_terms(model, random_weights, says, capsys):
    """`daemon run` says what the CLI says: random weights, or a licence against commerce."""
    import argparse

    from sfxmatch._cli.daemon import _say_model_terms

    _say_model_terms(argparse.Namespace(model=model, random_weights=random_weights))
    said = capsys.readouterr().err
    if says is None:
        assert said == ""
    else:
        assert says in said
        assert ("commercial" in said) == (says == "CC BY-NC-SA 4.0")
