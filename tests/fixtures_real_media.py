"""Fixtures for the real media of shared/MEDIA.md (being written)."""
