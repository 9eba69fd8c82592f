"""``python -m sfxmatch``: the same command line as the ``sfxmatch`` console script."""

from sfxmatch._cli import main

raise SystemExit(main())
