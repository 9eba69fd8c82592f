"""The published PE-AV checkpoints' configurations, for models with random weights at the real
sizes (benchmarks, sizes on disk, FLOP counts) where the checkpoint itself cannot be had.

Values from the checkpoints' ``config.json`` on the hub (facebook/pe-av-{small,base,large};
the -16-frame variants differ only in their video processor). Every size shares the text
tower (ModernBERT, 22 layers of 1024), the DAC-VAE audio front end and the frame encoder
(PE-Core L14 at 336 px); the audio, temporal video and fusion transformers differ.
"""

from __future__ import annotations

from typing import Any

# hidden, heads, intermediate, audio layers, video (temporal) layers, fusion layers
SIZES: dict[str, tuple[int, int, int, int, int, int]] = {
    "pe-av-small": (768, 6, 2048, 12, 4, 6),
    "pe-av-base": (1024, 8, 2752, 16, 4, 6),
    "pe-av-large": (1792, 14, 4800, 28, 4, 6),
}
FRAME_SIZE = 336


def published_config(name: str) -> Any:
    """transformers' ``PeAudioVideoConfig`` of a published checkpoint."""
    from transformers import PeAudioVideoConfig

    hidden, heads, intermediate, audio_layers, video_layers, fusion_layers = SIZES[name]
    tower = {
        "hidden_size": hidden,
        "num_attention_heads": heads,
        "num_key_value_heads": heads,
        "head_dim": 128,
        "intermediate_size": intermediate,
        "hidden_act": "silu",
        "rms_norm_eps": 1e-5,
        "max_position_embeddings": 10000,
        "rope_parameters": {"rope_theta": 20000.0, "rope_type": "default"},
    }
    return PeAudioVideoConfig(
        text_config={
            "model_type": "modernbert",
            "vocab_size": 50368,
            "hidden_size": 1024,
            "intermediate_size": 2624,
            "num_hidden_layers": 22,
            "num_attention_heads": 16,
            "max_position_embeddings": 8192,
            "local_attention": 128,
            "global_attn_every_n_layers": 3,
            "pad_token_id": 50283,
            "bos_token_id": 50281,
            "cls_token_id": 50281,
            "eos_token_id": 50282,
            "sep_token_id": 50282,
        },
        audio_video_config={
            **tower,
            "num_hidden_layers": fusion_layers,
            "audio_config": {
                **tower,
                "num_hidden_layers": audio_layers,
                "dac_config": {
                    "encoder_hidden_size": 64,
                    "downsampling_ratios": [2, 8, 10, 12],
                    "hidden_size": 1024,
                    "codebook_dim": 128,
                    "codebook_size": 1024,
                    "n_codebooks": 16,
                    "sampling_rate": 48000,
                },
            },
            "video_config": {
                **tower,
                "num_hidden_layers": video_layers,
                "vision_config": {
                    "architecture": "vit_pe_core_large_patch14_336",
                    "num_classes": 1024,
                    "num_labels": 1024,  # transformers reads this one (see frame_encoder)
                    "global_pool": "map",
                    "do_pooling": True,
                    "model_args": {},
                },
            },
        },
    )
