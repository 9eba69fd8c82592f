"""Fixtures for synthetic media with exact ground truth (being written)."""
