"""Leg (c): tunesmith's `train(config)`, the call the CLI makes.

Usage: python _leg_tunesmith.py CONFIG.yaml
"""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "src"))

import _probe  # noqa: E402

_probe.install()

from tunesmith.config import load_config  # noqa: E402
from tunesmith.models import load_tokenizer, resolve_model  # noqa: E402
from tunesmith.training.runner import train  # noqa: E402

config = load_config(sys.argv[1])
tokenizer = load_tokenizer(resolve_model(config.model.name_or_path))
os.environ["BENCH_PAD_ID"] = str(tokenizer.pad_token_id)  # packed rows' trailing padding (probe)
train(config)
