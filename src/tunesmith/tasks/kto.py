"""KTO (TRL's KTOTrainer): learns from replies marked desirable or undesirable, one at a time.

Pairs are split into a desirable (chosen) and an undesirable (rejected) example; rows may also
be unpaired (the "kto" formats): TRL's `{prompt|conversations, completion, label: true|false}` or
LLaMA-Factory's `{messages, label: true|false}`. With LoRA the reference
is the base model with adapters disabled, as for DPO.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tunesmith.config.components import TaskConfig
from tunesmith.data.formats import detect_format, layouts, read_as
from tunesmith.data.records import LayoutError, RowError
from tunesmith.tasks import TrainerParts
from tunesmith.tasks.preference import preference_trainer, register_preference_task, render_pair
from tunesmith.tasks.rows import RowsReport, bad_row, say_skipped


class KtoConfig(TaskConfig):
    name: Literal["kto"] = "kto"
    beta: float = Field(0.1, gt=0, description="Strength of the pull towards the reference model.")
    desirable_weight: float = Field(1.0, gt=0, description="Loss weight of desirable replies.")
    undesirable_weight: float = Field(1.0, gt=0, description="Loss weight of undesirable replies.")


def read_kto(record: dict) -> dict:
    """A pair {prompt, chosen, rejected}, or one judged reply {prompt, completion, label}; the
    LayoutError of a row that is neither lists every layout of both."""
    if detect_format(record, "kto"):
        return read_as(record, "kto")
    if detect_format(record, "preference"):
        return read_as(record, "preference")
    keys = ", ".join(k for k in record if k != "_origin") or "none"
    raise LayoutError(f"not a KTO row (keys: {keys}); expected one of: {layouts('kto')} | {layouts('preference')}")


def check_row(record: dict, cfg) -> None:
    read_kto(record)


def build_features(records: list[dict], tokenizer, config):
    report = RowsReport()
    features = []
    for record in records:
        try:
            row = read_kto(record)
        except RowError as err:
            bad_row(report, config, record, str(err))
            continue
        replies = ([(row["completion"], row["label"])] if "completion" in row
                   else [(row["chosen"], True), (row["rejected"], False)])
        pair = render_pair({"prompt": row["prompt"], "chosen": replies[0][0], "rejected": replies[-1][0]},
                           tokenizer, config)
        for (_, label), key in zip(replies, ("chosen", "rejected")):
            features.append(_counted({"prompt": pair["prompt"], "completion": pair[key], "label": label},
                                     record, tokenizer, config, report))
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
                          build_features, check_row)
def make_trainer(parts: TrainerParts):
    from trl import KTOConfig, KTOTrainer

    cfg = parts.config.task
    return preference_trainer(parts, KTOConfig, KTOTrainer, beta=cfg.beta, desirable_weight=cfg.desirable_weight,
                              undesirable_weight=cfg.undesirable_weight)
