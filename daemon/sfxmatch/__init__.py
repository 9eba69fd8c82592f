"""sfxmatch: ambience and sound-effect suggestions for video, from your own sound library."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("sfxmatch")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
