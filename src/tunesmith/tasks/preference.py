"""Preference pairs, shared by the DPO, ORPO, SimPO, KTO and reward-model tasks.

Rows become `{"prompt": [messages], "chosen": str, "rejected": str}` through the "preference"
formats (data/formats/*_preference.py: LLaMA-Factory, LLaMA-Factory v1, OpenAI, TRL, HH-RLHF).
A pair whose chosen equals its rejected answer teaches nothing and is a bad row.
"""

from __future__ import annotations

from tunesmith.data.preference import preference_record
from tunesmith.data.records import RowError
from tunesmith.data.templates import get_template
from tunesmith.tasks import TrainerParts, register_task
from tunesmith.tasks.rows import RowsReport, bad_row, say_skipped
from tunesmith.tasks.sft import with_system

__all__ = ["preference_record", "read_pairs", "build_pair_features", "score_pairs"]

def render_pair(pair: dict, tokenizer, config) -> dict:
    """Prompt text up to the assistant's turn, and each reply with its end-of-turn marker."""
    template = get_template(config.data.template, tokenizer)
    messages = with_system(pair["prompt"], config.data.system)
    prompt = template.prompt(messages, tokenizer)

    def reply(text):
        segments = template.segments([*messages, {"role": "assistant", "content": text}], tokenizer)
        return segments[-1][0].rstrip()  # TRL appends EOS unless the reply already ends with it

    return {"prompt": prompt, "chosen": reply(pair["chosen"]), "rejected": reply(pair["rejected"])}


def read_pairs(records: list[dict], tokenizer, config, report: RowsReport) -> list[tuple[dict, dict]]:
    """(record, rendered pair) for every good row; bad rows per data.on_bad_row."""
    out = []
    for record in records:
        try:
            pair = preference_record(record)
        except RowError as err:
            bad_row(report, config, record, str(err))
            continue
        out.append((record, render_pair(pair, tokenizer, config)))
    say_skipped(report, "preference")
    return out


def build_pair_features(records: list[dict], tokenizer, config) -> tuple[list[dict], RowsReport]:
    """Rendered text pairs; TRL tokenizes them (and truncates at data.cutoff_len)."""
    report = RowsReport()
    features = []
    cutoff = config.data.cutoff_len
    for record, pair in read_pairs(records, tokenizer, config, report):
        where = record.get("_origin", "?")
        prompt = tokenizer(pair["prompt"], add_special_tokens=False)["input_ids"]
        if len(prompt) >= cutoff:  # TRL would drop it silently: no reply token fits
            report.dropped.append(where)
            continue
        longest = max(len(tokenizer(pair["prompt"] + pair[k], add_special_tokens=False)["input_ids"])
                      for k in ("chosen", "rejected"))
        report.count(prompt + [0] * (longest - len(prompt)), None)
        if longest > cutoff:
            report.truncated.append(where)
        features.append(pair)
    if report.dropped:
        from tunesmith.utils.progress import say

        say(f"[yellow]{len(report.dropped)} pair(s) dropped[/]: the prompt alone fills data.cutoff_len="
            f"{cutoff} (first: {report.dropped[0]}); raise data.cutoff_len to keep them")
    return features, report


def dataset(rows: list[dict]):
    from datasets import Dataset

    return Dataset.from_list(rows) if rows else None


def drop_reference_adapter(model) -> None:
    """TRL copies a PEFT model's adapter as a "ref" adapter; a fresh LoRA equals the base model, so
    we drop the copy and TRL falls back to the base with adapters disabled (no extra weights)."""
    if hasattr(model, "peft_config") and "ref" in model.peft_config:
        model.delete_adapter("ref")
        model.set_adapter("default")


def preference_trainer(parts: TrainerParts, args_class, trainer_class, **options):
    """The one builder of the TRL preference trainers (DPO, KTO, ORPO, SimPO, reward): `args_class`
    made from the run's arguments, `options` and max_length = data.cutoff_len, on the rendered
    rows. Methods with a reference (DPO, KTO) use the base with adapters off (see above)."""
    args = parts.arguments(args_class, max_length=parts.config.data.cutoff_len, **options)
    trainer = trainer_class(model=parts.model, args=args, train_dataset=dataset(parts.train),
                            eval_dataset=dataset(parts.eval), processing_class=parts.tokenizer,
                            callbacks=parts.callbacks)
    drop_reference_adapter(trainer.model)
    return trainer


def check_pair(record: dict, cfg) -> None:
    """A row of any preference layout (the LayoutError lists them all)."""
    preference_record(record)


def register_preference_task(config_class, summary: str, build_features=None, check_row=check_pair):
    """Decorator for the `make_trainer` of a causal-LM task trained by a TRL preference trainer
    on pairs (`build_pair_features` unless given) and scored by `score_pairs`."""

    def wrap(make_trainer):
        register_task(config_class, summary, model_class=causal_lm_class, collator=no_collator,
                      data_format="rows", make_trainer=make_trainer, predict=score_pairs,
                      check_row=check_row)(build_features or build_pair_features)
        return make_trainer

    return wrap


def causal_lm_class():
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM


def no_collator(tokenizer):
    """The TRL trainers tokenize and batch preference data themselves."""
    return None


def reply_logps(model, tokenizer, prompts: list[str], replies: list[str], batch_size: int, cutoff: int):
    """Summed log-probability of each reply after its prompt, and the reply's token count."""
    from tunesmith.tasks.batching import continuation_logps

    def encode(text):
        return tokenizer(text, add_special_tokens=False)["input_ids"]

    return continuation_logps(model, tokenizer, [(encode(p), encode(r)) for p, r in zip(prompts, replies)],
                              batch_size, cutoff)


def score_pairs(model, tokenizer, records: list[dict], config, batch_size: int = 8) -> tuple[list[dict], dict]:
    """Does the model prefer the chosen reply? By log-probability, and (LoRA runs) by DPO's implicit
    reward beta * (log pi - log pi_ref) with the base model (adapters off) as the reference."""
    report = RowsReport()
    cut = config.data.cutoff_len
    kept = [(r, p) for r, p in read_pairs(records, tokenizer, config, report)
            if len(tokenizer(p["prompt"], add_special_tokens=False)["input_ids"]) < cut]
    if len(kept) < len(records):
        from tunesmith.utils.progress import say

        say(f"[yellow]scoring {len(kept)} of {len(records)} pairs[/]: the others are bad rows or their "
            f"prompt alone fills data.cutoff_len={cut}, as in training")
    prompts = [p["prompt"] for _, p in kept]

    def logps(replies):
        return reply_logps(model, tokenizer, prompts, replies, batch_size, cut)

    chosen, n_chosen = logps([p["chosen"] for _, p in kept])
    rejected, n_rejected = logps([p["rejected"] for _, p in kept])
    ref = None
    if hasattr(model, "disable_adapter"):
        with model.disable_adapter():
            ref = (logps([p["chosen"] for _, p in kept])[0], logps([p["rejected"] for _, p in kept])[0])
    beta = getattr(config.task, "beta", 0.1)
    rows, metrics = [], _pair_metrics(chosen, rejected, n_chosen, n_rejected)
    for i, (record, pair) in enumerate(kept):
        row = {"origin": record.get("_origin"), "prompt": pair["prompt"], "chosen_logp": chosen[i],
               "rejected_logp": rejected[i], "prefers_chosen": chosen[i] > rejected[i]}
        if ref:
            row["chosen_reward"] = beta * (chosen[i] - ref[0][i])
            row["rejected_reward"] = beta * (rejected[i] - ref[1][i])
        rows.append(row)
    if ref and rows:
        margins = [r["chosen_reward"] - r["rejected_reward"] for r in rows]
        metrics["reward_accuracy"] = sum(m > 0 for m in margins) / len(margins)
        metrics["reward_margin"] = sum(margins) / len(margins)
        base = _pair_metrics(ref[0], ref[1], n_chosen, n_rejected)  # the untuned model, for comparison
        metrics.update({f"base_{k}": v for k, v in base.items()})
    return rows, metrics


def _pair_metrics(chosen, rejected, n_chosen, n_rejected) -> dict:
    if not chosen:
        return {}
    n = len(chosen)
    per_token = [c / max(a, 1) > r / max(b, 1) for c, r, a, b in zip(chosen, rejected, n_chosen, n_rejected)]
    return {"logp_accuracy": sum(c > r for c, r in zip(chosen, rejected)) / n,
            "logp_accuracy_per_token": sum(per_token) / n}
