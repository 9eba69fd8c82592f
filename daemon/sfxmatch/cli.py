"""The command line moved to the private package ``sfxmatch._cli``; console scripts written
by an install before the move (an editable install keeps them until it is reinstalled) still
call ``sfxmatch.cli:main``."""

from sfxmatch._cli import main

__all__ = ["main"]
