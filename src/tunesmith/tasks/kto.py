"""KTO (TRL's KTOTrainer): learns from replies marked desirable or undesirable, one at a time.

Pairs are split into a desirable (chosen) and an undesirable (rejected) example; rows may also
be unpaired: `{prompt|conversations, completion, label: true|false}`. With LoRA the reference
is the base model with adapters disabled, as for DPO.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tunesmith.config.components import TaskConfig
from tunesmith.data.preference import messages, reply
from tunesmith.data.records import RowError
from tunesmith.tasks import TrainerParts
from tunesmith.tasks.preference import preference_trainer, read_pairs, register_preference_task, render_pair
from tunesmith.tasks.rows import RowsReport, bad_row, say_skipped


class KtoConfig(TaskConfig):
    name: Literal["kto"] = "kto"
    beta: float = Field(0.1, gt=0, description="Strength of the pull towards the reference model.")
    desirable_weight: float = Field(1.0, gt=0, description="Loss weight of desirable replies.")
    undesirable_weight: float = Field(1.0, gt=0, description="Loss weight of undesirable replies.")


def _unpaired(record: dict, tokenizer, config) -> dict:
    if not isinstance(record.get("label"), bool):
        raise RowError("an unpaired KTO row needs label: true or false")
    prompt = messages(record.get("prompt", record.get("conversations")))
    completion = reply(record.get("completion"))
    pair = render_pair({"prompt": prompt, "chosen": completion, "rejected": completion + " "}, tokenizer, config)
    return {"prompt": pair["prompt"], "completion": pair["chosen"], "label": record["label"]}


def build_features(records: list[dict], tokenizer, config):
    report = RowsReport()
    paired = [r for r in records if "completion" not in r]
    features = []
    for record, pair in read_pairs(paired, tokenizer, config, report):
        for completion, label in ((pair["chosen"], True), (pair["rejected"], False)):
            features.append(_counted({"prompt": pair["prompt"], "completion": completion, "label": label},
                                     record, tokenizer, config, report))
    for record in (r for r in records if "completion" in r):
        try:
            features.append(_counted(_unpaired(record, tokenizer, config), record, tokenizer, config, report))
        except RowError as err:
            bad_row(report, config, record, str(err))
    say_skipped(report, "KTO")
    return features, report


def _counted(feature: dict, record: dict, tokenizer, config, report: RowsReport) -> dict:
    """`feature`, counted in the data report: its tokens, and the reply's as the trained ones."""
    def encode(text):
        return tokenizer(text, add_special_tokens=False)["input_ids"]

    completion = encode(feature["completion"])
    report.count(encode(feature["prompt"]) + completion, config.data.cutoff_len, record.get("_origin", "?"))
    report.trainable_tokens += len(completion)
    return feature


@register_preference_task(KtoConfig, "KTO on desirable/undesirable replies (pairs are split) (TRL)",
                          build_features)
def make_trainer(parts: TrainerParts):
    from trl import KTOConfig, KTOTrainer

    cfg = parts.config.task
    return preference_trainer(parts, KTOConfig, KTOTrainer, beta=cfg.beta, desirable_weight=cfg.desirable_weight,
                              undesirable_weight=cfg.undesirable_weight)
