"""Hugging Face's own PE-AV stack (transformers + timm + torchvision) as a test reference.

transformers builds PE-AV's frame encoder with timm, and timm and transformers' video
processor import torchvision. The torchvision wheels that install beside our CPU torch are
CUDA builds: their C extension cannot load, and importing the package then fails on two
operator registrations (``torchvision::nms``/``qnms``). Neither timm nor the resize we use
needs those operators, so the reference process declares their schemas before importing
torchvision, and everything else is the libraries' own code.

None of this may reach sfxmatch's own process (run time has no torchvision or timm, and
transformers would change behaviour if it found them): ``bash dev.sh`` installs the
reference packages into ``.venv/reference`` (``pip install --target``, never into the
environment itself), and :func:`run_reference` runs reference code in a subprocess with that
folder on its path. Arrays go in and out as ``.npz`` files.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

REFERENCE_DIR = Path(sys.prefix) / "reference"

_PRELUDE = """
import json, sys
import numpy as np
import torch
# torchvision's C extension is a CUDA build here; declare the two operators its Python
# package registers fake kernels for, so that the package (transforms, timm's imports) loads.
_SCHEMA = "(Tensor dets, Tensor scores, float iou_threshold) -> Tensor"
for _op in ("nms", "qnms"):
    torch.library.define(f"torchvision::{_op}", _SCHEMA)
import torchvision  # noqa: F401
torch.manual_seed(0)
_inputs = dict(np.load(sys.argv[1], allow_pickle=False))
_params = json.loads(sys.argv[3])
_outputs = {}
"""

_EPILOGUE = """
np.savez(sys.argv[2], **{k: np.asarray(v) for k, v in _outputs.items()})
"""


def reference_missing() -> str | None:
    """Why the reference cannot run here, or None."""
    if not (REFERENCE_DIR / "timm").is_dir() or not (REFERENCE_DIR / "torchvision").is_dir():
        return f"the reference packages (timm, torchvision) are not in {REFERENCE_DIR}: bash dev.sh"
    return None


def require_reference() -> None:
    reason = reference_missing()
    if reason:
        pytest.skip(reason)


def run_reference(
    code: str,
    tmp_path: Path,
    inputs: dict[str, np.ndarray] | None = None,
    params: dict[str, Any] | None = None,
    timeout: float = 600,
) -> dict[str, np.ndarray]:
    """Run ``code`` in the reference process and return what it put in ``_outputs``.

    The code sees ``_inputs`` (the arrays given), ``_params`` (JSON values) and fills
    ``_outputs`` with arrays.
    """
    require_reference()
    tmp_path.mkdir(parents=True, exist_ok=True)
    source = tmp_path / "reference_inputs.npz"
    target = tmp_path / "reference_outputs.npz"
    np.savez(source, **(inputs or {}))
    script = _PRELUDE + textwrap.dedent(code) + _EPILOGUE
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REFERENCE_DIR), env.get("PYTHONPATH", "")])
    env["HF_HUB_OFFLINE"] = "1"
    env["TRANSFORMERS_VERBOSITY"] = "error"
    done = subprocess.run(
        [sys.executable, "-c", script, str(source), str(target), json.dumps(params or {})],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode != 0:
        raise AssertionError(f"the reference process failed:\n{done.stderr[-4000:]}")
    with np.load(target, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}
