"""Regenerate daemon/sfxmatch/_generated from the .proto files (same as
``python -m sfxmatch.service.codegen``)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "daemon"))

from sfxmatch.service.codegen import main

if __name__ == "__main__":
    sys.exit(main())
