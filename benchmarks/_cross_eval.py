"""Eval loss of a leg's saved LoRA adapter, computed the same way for every leg.

Each tool's own evaluation prepares the eval rows its own way (LLaMA-Factory, for one, truncates
a row longer than the cutoff in prompt and answer, tunesmith only at the end), so their reported
eval losses differ even for identical weights. This evaluator loads the base model + the adapter in
fp32 and takes the mean token loss per batch of 8 padded rows, tokenized by tunesmith's sft task.

Usage: python _cross_eval.py MODEL_DIR ADAPTER_DIR EVAL_FILE  -> prints {"eval_loss": ...}
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "src"))

import torch  # noqa: E402
from peft import PeftModel  # noqa: E402
from transformers import AutoModelForCausalLM  # noqa: E402

from tunesmith.config import validate_config  # noqa: E402
from tunesmith.data.load import load_records  # noqa: E402
from tunesmith.models import load_tokenizer  # noqa: E402
from tunesmith.tasks import TASKS  # noqa: E402
from tunesmith.tasks.collate import CausalLMCollator  # noqa: E402

model_dir, adapter_dir, eval_file = sys.argv[1:4]
tokenizer = load_tokenizer(model_dir)
config = validate_config({"data": {"train": [eval_file], "template": "chatml", "cutoff_len": 512}})
records, _ = load_records(config.data.train, "auto", "error", None)
features, _ = TASKS.get("sft").build_features(records, tokenizer, config)
model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(model_dir), adapter_dir).eval()
collate = CausalLMCollator(tokenizer)
weighted = 0.0
for start in range(0, len(features), 8):
    batch = features[start : start + 8]
    with torch.no_grad():
        weighted += model(**collate(batch)).loss.item() * len(batch)
print(json.dumps({"eval_loss": weighted / len(features)}))
