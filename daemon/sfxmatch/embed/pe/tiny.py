"""pe-av-tiny: PE-AV's architecture at toy sizes, as a checkpoint folder made in-process.

Tests and development cannot download PE-AV, so :func:`write_tiny_checkpoint` writes a
folder in the layout of a Hugging Face PE-AV repository (``config.json``,
``model.safetensors``, the two preprocessor configs, ``tokenizer.json`` and
``tokenizer_config.json``) holding transformers' own PE-AV model at tiny sizes with seeded
random weights, and a small character-level tokenizer. The encoder then loads it exactly as
it loads a downloaded checkpoint: one code path, nothing faked. Every result made with it is
meaningless.
"""

from __future__ import annotations

import json
import os
import shutil
import string
import tempfile
from pathlib import Path
from typing import Any

# The real checkpoints' frame encoder, scaled down through timm-style model_args.
FRAME_ARCHITECTURE = "vit_pe_core_large_patch14_336"
TINY_FRAME_SIZE = 56
TINY_DIM = 32
HOP_LENGTH = 1920  # 48 kHz / 25 Hz: PE-AV's 40 ms audio token grid, kept at every size
SAMPLING_RATE = 48_000
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
RECIPE = 1  # bump when the tiny checkpoint's making changes: it names the folder and model id


def tiny_tokenizer() -> Any:
    """A WordPiece tokenizer over single characters (lower-cased ASCII letters, digits and
    punctuation, with ``##`` continuations): any text tokenizes, nothing is trained, and it
    frames sequences as ModernBERT's does, ``[CLS] text [SEP]``."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    chars = string.ascii_lowercase + string.digits + string.punctuation
    vocab = {token: i for i, token in enumerate(SPECIAL_TOKENS)}
    for char in chars:
        vocab.setdefault(char, len(vocab))
    for char in chars:
        vocab.setdefault(f"##{char}", len(vocab))
    tokenizer = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]", max_input_chars_per_word=64))
    tokenizer.normalizer = normalizers.Sequence(
        [normalizers.NFKD(), normalizers.StripAccents(), normalizers.Lowercase()]
    )
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    tokenizer.decoder = decoders.WordPiece()
    return tokenizer


def tiny_config(vocab_size: int, ids: dict[str, int]) -> Any:
    """transformers' ``PeAudioVideoConfig`` with every tower at toy size."""
    from transformers import PeAudioVideoConfig

    head = {"num_attention_heads": 2, "num_key_value_heads": 2, "head_dim": 16}
    return PeAudioVideoConfig(
        text_config={
            "model_type": "modernbert",
            "vocab_size": vocab_size,
            "hidden_size": TINY_DIM,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "max_position_embeddings": 512,
            "local_attention": 16,
            "pad_token_id": ids["[PAD]"],
            "bos_token_id": ids["[CLS]"],
            "cls_token_id": ids["[CLS]"],
            "eos_token_id": ids["[SEP]"],
            "sep_token_id": ids["[SEP]"],
        },
        audio_video_config={
            "hidden_size": TINY_DIM,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            **head,
            "audio_config": {
                "dac_config": {
                    "encoder_hidden_size": 2,
                    "downsampling_ratios": [2, 8, 10, 12],
                    "hidden_size": 16,
                    "codebook_dim": 8,
                },
                "hidden_size": TINY_DIM,
                "intermediate_size": 64,
                "num_hidden_layers": 2,
                **head,
            },
            "video_config": {
                "vision_config": {
                    "architecture": FRAME_ARCHITECTURE,
                    "num_classes": 16,
                    "num_labels": 16,  # transformers reads this one (see frame_encoder)
                    "global_pool": "map",
                    "do_pooling": True,
                    "model_args": {
                        "img_size": TINY_FRAME_SIZE,
                        "embed_dim": TINY_DIM,
                        "depth": 2,
                        "num_heads": 2,
                        "attn_pool_num_heads": 2,
                    },
                },
                "hidden_size": TINY_DIM,
                "intermediate_size": 64,
                "num_hidden_layers": 2,
                **head,
            },
        },
    )


def processor_files(frame_size: int) -> dict[str, dict[str, Any]]:
    """The two preprocessor configs of a PE-AV repository ("all frames" variant)."""
    return {
        "preprocessor_config.json": {
            "feature_extractor_type": "PeAudioFeatureExtractor",
            "feature_size": 1,
            "hop_length": HOP_LENGTH,
            "padding_side": "right",
            "padding_value": 0.0,
            "return_attention_mask": True,
            "sampling_rate": SAMPLING_RATE,
        },
        "video_preprocessor_config.json": {
            "video_processor_type": "PeVideoVideoProcessor",
            "do_sample_frames": False,
            "num_frames": None,
            "size": {"height": frame_size, "width": frame_size},
            "do_resize": True,
            "do_rescale": True,
            "do_normalize": True,
            "do_convert_rgb": True,
            "image_mean": [0.5, 0.5, 0.5],
            "image_std": [0.5, 0.5, 0.5],
        },
    }


def _spread(model: Any) -> None:
    """Redraw every weight matrix with variance 1 / fan-in. transformers' initialisation (a
    small normal spread, meant for training) leaves a tiny untrained model's outputs nearly
    the same for every input, so every label would score alike and tests would never see
    an effect found; at unit gain, different pictures, sounds and texts give different
    vectors, as a trained model's do (their values still mean nothing)."""
    import torch

    with torch.no_grad():
        for param in model.parameters():
            if param.ndim >= 2:
                fan_in = param[0].numel()
                param.normal_(0.0, fan_in**-0.5)


def write_tiny_checkpoint(folder: str | os.PathLike[str], *, seed: int = 0) -> Path:
    """Write pe-av-tiny with weights drawn from ``seed`` into ``folder`` (made whole or not
    at all: built beside it, then renamed into place; an existing folder is kept)."""
    import torch
    from transformers import PeAudioVideoModel

    from sfxmatch.embed.pe.frame_encoder import use_frame_encoder

    target = Path(folder)
    if (target / "model.safetensors").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tokenizer = tiny_tokenizer()
    ids = {token: tokenizer.token_to_id(token) for token in SPECIAL_TOKENS}
    config = tiny_config(tokenizer.get_vocab_size(), ids)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = PeAudioVideoModel(use_frame_encoder(config))
        _spread(model)
    building = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        model.save_pretrained(building)
        # The saved config names our frame encoder's config type: write the original, as the
        # hub's checkpoints hold it (a timm frame encoder).
        (building / "config.json").write_text(config.to_json_string())
        tokenizer.save(str(building / "tokenizer.json"))
        tokenizer_config = {
            "tokenizer_class": "PreTrainedTokenizerFast",
            "cls_token": "[CLS]",
            "sep_token": "[SEP]",
            "pad_token": "[PAD]",
            "mask_token": "[MASK]",
            "unk_token": "[UNK]",
            "model_max_length": 512,
        }
        files = {"tokenizer_config.json": tokenizer_config, **processor_files(TINY_FRAME_SIZE)}
        for name, content in files.items():
            (building / name).write_text(json.dumps(content, indent=2))
        try:
            os.rename(building, target)
        except OSError:
            if not (target / "model.safetensors").is_file():  # not a concurrent writer's win
                raise
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return target
