"""Shared fixtures live in helper modules beside this file; importing them registers them."""

import os

from fixtures_real_media import *  # noqa: F403
from fixtures_synth import *  # noqa: F403
from hypothesis import settings

# CI runs the same examples every time (a failure there is reproducible, never luck); locally
# Hypothesis keeps exploring new ones. Loaded before the test modules make their @settings.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")
