"""Preference pairs, shared by the DPO, ORPO, SimPO, KTO and reward-model tasks.

Rows become `{"prompt": [messages], "chosen": str, "rejected": str}`. Accepted layouts:
- LLaMA-Factory: `conversations` (from/value, or role/content) + `chosen`/`rejected` (a message or text);
  also alpaca-style `instruction` (+ `input`, `system`) with `chosen`/`rejected` text;
- LLaMA-Factory v1: `chosen_messages` / `rejected_messages` (shared turns, then the two replies);
- OpenAI preference fine-tuning: `{input: {messages}, preferred_output: [...], non_preferred_output: [...]}`;
- TRL: `prompt` (text or messages) + `chosen`/`rejected` (text or messages);
- HH-RLHF: `chosen`/`rejected` full transcripts ("\\n\\nHuman: ... \\n\\nAssistant: ...").
A pair whose chosen equals its rejected answer teaches nothing and is a bad row.
"""

from __future__ import annotations

import re

from tunesmith.data.records import RowError
from tunesmith.data.templates import get_template
from tunesmith.tasks.rows import RowsReport, bad_row, say_skipped
from tunesmith.tasks.sft import with_system

_ROLE = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system",
         "observation": "tool", "tool": "tool", "function_call": "assistant", "function": "tool"}
_HH_TURN = re.compile(r"\n\n(Human|Assistant): ?")


def _text(content) -> str:
    """Message content as text: a string, or a list of {type: text, text|value} parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", p.get("value", "")) for p in content if isinstance(p, dict))
    raise RowError(f"message content must be text, got {type(content).__name__}")


def _message(m) -> dict:
    if not isinstance(m, dict):
        raise RowError(f"a message must be an object, got {type(m).__name__}")
    role = _ROLE.get(m.get("role", m.get("from")))
    if role is None:
        raise RowError(f"unknown message role {m.get('role', m.get('from'))!r}")
    return {"role": role, "content": _text(m.get("content", m.get("value", "")))}


def _messages(value) -> list[dict]:
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    if not isinstance(value, list):
        raise RowError(f"expected a list of messages, got {type(value).__name__}")
    return [_message(m) for m in value]


def _reply(value) -> str:
    """A reply given as text, one message, or a list of messages (the last assistant one)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return _message(value)["content"]
    if isinstance(value, list) and value:
        replies = [m for m in _messages(value) if m["role"] == "assistant"]
        if replies:
            return replies[-1]["content"]
    raise RowError("a chosen/rejected reply must be text, a message, or a list with an assistant message")


def _hh(chosen: str, rejected: str) -> tuple[list[dict], str, str]:
    """Split two HH transcripts into their shared conversation and last assistant replies."""
    def split(text):
        parts = _HH_TURN.split("\n\n" + text.lstrip("\n") if not text.startswith("\n\n") else text)
        turns = [{"role": "user" if who == "Human" else "assistant", "content": body.strip()}
                 for who, body in zip(parts[1::2], parts[2::2])]
        if len(turns) < 2 or turns[-1]["role"] != "assistant":
            raise RowError("an HH transcript must end with an \"Assistant:\" turn")
        return turns[:-1], turns[-1]["content"]

    prompt_c, reply_c = split(chosen)
    prompt_r, reply_r = split(rejected)
    if prompt_c != prompt_r:
        raise RowError("the chosen and rejected transcripts differ before their last Assistant turn")
    return prompt_c, reply_c, reply_r


def preference_record(row: dict) -> dict:
    """Any accepted layout -> {"prompt": messages, "chosen": text, "rejected": text}; RowError otherwise."""
    if "preferred_output" in row or "non_preferred_output" in row:
        prompt = _messages((row.get("input") or {}).get("messages", []))
        chosen, rejected = _reply(row.get("preferred_output")), _reply(row.get("non_preferred_output"))
    elif "chosen_messages" in row:
        chosen_msgs, rejected_msgs = _messages(row["chosen_messages"]), _messages(row.get("rejected_messages"))
        prompt, chosen, rejected = chosen_msgs[:-1], _reply(chosen_msgs[-1:]), _reply(rejected_msgs[-1:])
        if rejected_msgs[:-1] != prompt:
            raise RowError("chosen_messages and rejected_messages differ before their last turn")
    elif "conversations" in row:
        prompt = _messages(row["conversations"])
        chosen, rejected = _reply(row.get("chosen")), _reply(row.get("rejected"))
    elif "instruction" in row:
        text = "\n\n".join(p for p in (row.get("instruction"), row.get("input")) if p)
        prompt = [{"role": "user", "content": text}]
        chosen, rejected = _reply(row.get("chosen")), _reply(row.get("rejected"))
    elif "prompt" in row:
        prompt = _messages(row["prompt"])
        chosen, rejected = _reply(row.get("chosen")), _reply(row.get("rejected"))
    elif isinstance(row.get("chosen"), str) and isinstance(row.get("rejected"), str):
        prompt, chosen, rejected = _hh(row["chosen"], row["rejected"])
    else:
        keys = ", ".join(k for k in row if k != "_origin")
        raise RowError(f"not a preference pair (keys: {keys}); expected conversations+chosen+rejected, "
                       "input+preferred_output+non_preferred_output, prompt+chosen+rejected, or HH chosen/rejected")
    if row.get("system") and (not prompt or prompt[0]["role"] != "system"):
        prompt = [{"role": "system", "content": row["system"]}, *prompt]
    if not prompt or prompt[-1]["role"] not in ("user", "tool"):
        raise RowError("the prompt must end with a user turn")
    if not chosen.strip() or not rejected.strip():
        raise RowError("the chosen or rejected reply is empty")
    if chosen.strip() == rejected.strip():
        raise RowError("chosen and rejected are the same reply; the pair teaches nothing")
    return {"prompt": prompt, "chosen": chosen, "rejected": rejected}


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
        from tunesmith.utils.progress import console

        console.print(f"[yellow]{len(report.dropped)} pair(s) dropped[/]: the prompt alone fills data.cutoff_len="
                      f"{cutoff} (first: {report.dropped[0]}); raise data.cutoff_len to keep them", highlight=False)
    return features, report


def causal_lm_class():
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM


def no_collator(tokenizer):
    """The TRL trainers tokenize and batch preference data themselves."""
    return None


def reply_logps(model, tokenizer, prompts: list[str], replies: list[str], batch_size: int, cutoff: int):
    """Summed log-probability of each reply after its prompt, and the reply's token count."""
    from tunesmith.tasks.batching import continuation_logps

    encode = lambda text: tokenizer(text, add_special_tokens=False)["input_ids"]
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
        from tunesmith.utils.progress import console

        console.print(f"[yellow]scoring {len(kept)} of {len(records)} pairs[/]: the others are bad rows or their "
                      f"prompt alone fills data.cutoff_len={cut}, as in training", highlight=False)
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
