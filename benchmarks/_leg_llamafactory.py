"""Leg (b): LLaMA-Factory's own training entry point, run inside its own venv.

Usage: <lf-venv>/bin/python _leg_llamafactory.py CONFIG.json
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import _probe  # noqa: E402

_probe.install()

from llamafactory.train.tuner import run_exp  # noqa: E402

run_exp(json.loads(Path(sys.argv[1]).read_text()))
