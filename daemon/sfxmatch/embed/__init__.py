"""Embedding models behind the Encoder protocol (sfxmatch.embed.encoder)."""
