"""Leg (a): the seeds' baseline. transformers Trainer + PEFT LoRA, fp32, padding="max_length".

Usage: python _leg_hf_baseline.py CONFIG.json  (the benchmark writes the JSON)
The chat text is chatml written out by hand, prompt tokens masked, as the other legs do.
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import _probe  # noqa: E402

_probe.install()

import torch  # noqa: E402
from peft import LoraConfig, get_peft_model  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer, TrainingArguments  # noqa: E402

cfg = json.loads(Path(sys.argv[1]).read_text())
tokenizer = AutoTokenizer.from_pretrained(cfg["model"])


def encode(row: dict) -> dict:
    user = row["instruction"] + ("\n" + row["input"] if row.get("input") else "")
    prompt = f"<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n"
    answer = f"{row['output']}<|im_end|>\n"
    n_prompt = len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
    enc = tokenizer(prompt + answer, add_special_tokens=False, padding="max_length",
                    max_length=cfg["cutoff_len"], truncation=True)
    labels = [t if (i >= n_prompt and m) else -100
              for i, (t, m) in enumerate(zip(enc["input_ids"], enc["attention_mask"]))]
    return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"], "labels": labels}


def dataset(path: str) -> list[dict]:
    return [encode(r) for r in json.loads(Path(path).read_text())]


def collate(features: list[dict]) -> dict:
    return {k: torch.tensor([f[k] for f in features]) for k in features[0]}


model = AutoModelForCausalLM.from_pretrained(cfg["model"], dtype=torch.float32)
model = get_peft_model(model, LoraConfig(r=cfg["lora_r"], lora_alpha=cfg["lora_alpha"], lora_dropout=0.0,
                                         target_modules=cfg["lora_targets"], task_type="CAUSAL_LM"))
args = TrainingArguments(
    output_dir=cfg["output_dir"], per_device_train_batch_size=cfg["batch_size"],
    per_device_eval_batch_size=cfg["batch_size"], learning_rate=cfg["learning_rate"],
    lr_scheduler_type="cosine", num_train_epochs=1, max_steps=cfg["max_steps"], logging_steps=1,
    save_strategy="no", eval_strategy="no", report_to="none", seed=cfg["seed"], use_cpu=True,
    remove_unused_columns=False, disable_tqdm=True, dataloader_num_workers=0,
)
trainer = Trainer(model=model, args=args, train_dataset=dataset(cfg["train_file"]),
                  eval_dataset=dataset(cfg["eval_file"]), data_collator=collate)
trainer.train()
if cfg.get("evaluate", True):
    trainer.evaluate()
