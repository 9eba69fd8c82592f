"""Shared fixtures live in helper modules beside this file; importing them registers them."""

from fixtures_real_media import *  # noqa: F403
from fixtures_synth import *  # noqa: F403
