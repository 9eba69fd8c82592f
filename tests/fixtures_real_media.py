"""Session fixtures: the real media of shared/MEDIA.md (sfxmatch.testing.media).

Each fetches into the cache on first use (instant afterwards) and skips the test with the
reason when the item cannot be had. Mark tests that use them ``@pytest.mark.real_media``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sfxmatch.testing.media import MediaUnavailable, media_path

__all__ = [
    "acoustic_scene_wav",
    "minetest_sounds",
    "ovos_sounds",
    "tree_avi",
    "tuxpaint_sounds",
    "vtest_avi",
]


def _real(name: str) -> Path:
    try:
        return media_path(name)
    except MediaUnavailable as exc:
        pytest.skip(f"real media '{name}' unavailable: {exc.reason}")


@pytest.fixture(scope="session")
def vtest_avi() -> Path:
    """vtest.avi: 79.5 s, 768x576, 10 fps, msmpeg4v3, no audio, one long take (no cuts)."""
    return _real("vtest")


@pytest.fixture(scope="session")
def tree_avi() -> Path:
    """tree.avi: 29.6 s, 320x240, cinepak."""
    return _real("tree")


@pytest.fixture(scope="session")
def minetest_sounds() -> Path:
    """Folder of ~108 Ogg clips as <mod>/sounds/<name>.ogg (use rglob("*.ogg"))."""
    return _real("minetest")


@pytest.fixture(scope="session")
def tuxpaint_sounds() -> Path:
    """Folder of ~112 effects as <category>/.../<name>.ogg, each beside <name>.txt whose
    first line describes it; some are 8 or 11 kHz."""
    return _real("tuxpaint")


@pytest.fixture(scope="session")
def ovos_sounds() -> Path:
    """Folder with cow, dog, cat, horse, sheep, pig, rooster, duck, owl, frog .mp3 (CC0)."""
    return _real("ovos")


@pytest.fixture(scope="session")
def acoustic_scene_wav() -> Path:
    """acoustic_scene.wav: 10 s of an outdoor scene (ambience)."""
    return _real("acoustic_scene")
