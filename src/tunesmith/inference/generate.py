"""Batched chat generation with the run's template: left padding, KV cache, stop at end of turn."""

from __future__ import annotations

from tunesmith.inference.load import Loaded
from tunesmith.tasks.sft import with_system
from tunesmith.utils.progress import make_progress


def stop_token_ids(loaded: Loaded) -> list[int]:
    tok = loaded.tokenizer
    ids = {tok.eos_token_id} if tok.eos_token_id is not None else set()
    stop = loaded.template.stop_text(tok)
    stop_ids = tok(stop, add_special_tokens=False)["input_ids"] if stop else []
    if len(stop_ids) == 1:
        ids.add(stop_ids[0])
    return sorted(ids)


def generate_replies(
    loaded: Loaded,
    conversations: list[list[dict]],
    max_new_tokens: int = 128,
    batch_size: int = 8,
    temperature: float = 0.0,
    show_progress: bool = False,
) -> list[str]:
    """The assistant's reply to each conversation (greedy unless temperature > 0)."""
    import torch

    tok, model = loaded.tokenizer, loaded.model
    system = loaded.config.data.system
    prompts = [loaded.template.prompt(with_system(c, system), tok) for c in conversations]
    stop = loaded.template.stop_text(tok)
    tok.padding_side = "left"
    replies: list[str] = []
    progress = make_progress("generate")
    task = progress.add_task("generate", total=len(prompts), info="")
    with progress, torch.no_grad():
        for start in range(0, len(prompts), batch_size):
            batch = tok(prompts[start:start + batch_size], return_tensors="pt", padding=True,
                        add_special_tokens=False)
            out = model.generate(
                **batch, max_new_tokens=max_new_tokens, do_sample=temperature > 0,
                temperature=temperature if temperature > 0 else None, top_p=None, top_k=None,
                eos_token_id=stop_token_ids(loaded), pad_token_id=tok.pad_token_id,
            )
            for row in out[:, batch["input_ids"].shape[1]:]:
                replies.append(_cut(tok.decode(row, skip_special_tokens=True), stop))
            progress.update(task, advance=len(batch["input_ids"]))
    tok.padding_side = "right"
    return replies


def _cut(text: str, stop: str) -> str:
    return (text.split(stop)[0] if stop else text).strip()


def ask(loaded: Loaded, question: str, **kwargs) -> str:
    return generate_replies(loaded, [[{"role": "user", "content": question}]], **kwargs)[0]
