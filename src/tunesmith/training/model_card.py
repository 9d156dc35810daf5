"""README.md model card for a finished run."""

from __future__ import annotations

from tunesmith.utils.io import write_text


def write_model_card(run, config, results: dict) -> None:
    before = results.get("eval_before", {}).get("eval_loss")
    after = results.get("eval_after", {}).get("eval_loss")
    rows = []
    if before is not None:
        rows.append(f"| eval loss before | {before:.4f} |")
    if after is not None:
        rows.append(f"| eval loss after | {after:.4f} |")
    for key, value in results.get("eval_after", {}).items():
        if key not in ("eval_loss", "epoch") and isinstance(value, (int, float)) and "runtime" not in key \
                and "per_second" not in key and "preparation" not in key:
            rows.append(f"| {key} after | {value:.4g} |")
    for key, value in results.get("train", {}).items():
        if isinstance(value, (int, float)):
            rows.append(f"| {key} | {value:.4g} |")
    forgetting = _forgetting_section(results.get("forgetting"), config)
    adapter = run.adapter_dir.exists()
    from tunesmith.tasks import TASKS

    auto = TASKS.get(config.task.name).model_class().__name__  # e.g. AutoModelForSequenceClassification
    peft_auto = auto.replace("AutoModel", "AutoPeftModel")
    load = (
        f"from peft import {peft_auto}\n"
        f"model = {peft_auto}.from_pretrained('{run.adapter_dir}')"
        if adapter
        else f"from transformers import {auto}\nmodel = {auto}.from_pretrained('{run.model_dir}')"
    )
    text = f"""# {run.path.name}

Fine-tuned with tunesmith.

- base model: `{config.model.name_or_path}`
- method: `{config.method.name}` ({config.method.model_dump(exclude={'name'})})
- task: `{config.task.name}`
- training data: {', '.join(f'`{p}`' for p in config.data.train)}
- eval data: {', '.join(f'`{p}`' for p in config.data.eval) or f'{config.data.eval_ratio:.0%} of train'}

## Results

| metric | value |
|---|---|
{chr(10).join(rows)}

{forgetting}![loss](plots/loss.png)

## Load

```
tunesmith chat {run.path}
```

```python
{load}
```
"""
    write_text(run.path / "README.md", text)


def _forgetting_section(found: dict | None, config) -> str:
    """What a continued run kept of its earlier tasks (docs/continual.md), as a markdown section."""
    if not found:
        return ""
    rows = [f"| {name} (earlier) | {t['before']:.4f} | {t['after']:.4f} | {t['relative']:+.1%} |"
            for name, t in found.get("earlier_tasks", {}).items()]
    lines = [f"## Forgetting\n\nContinues `{config.model.from_run}`"
             + (f" with regulariser `{config.train.regulariser.name}`" if config.train.regulariser else "") + ".\n",
             "| eval set | loss before | loss after | change |", "|---|---|---|---|", *rows]
    for key, label in (("backward_transfer", "backward transfer (old loss before - after)"),
                       ("forward_gain", "forward gain (new loss before - after)")):
        if key in found:
            lines.append(f"\n- {label}: {found[key]:+.4f} ({found[key + '_relative']:+.1%})")
    return "\n".join(lines) + "\n\n"
