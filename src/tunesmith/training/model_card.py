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
    for key, value in results.get("train", {}).items():
        if isinstance(value, (int, float)):
            rows.append(f"| {key} | {value:.4g} |")
    adapter = run.adapter_dir.exists()
    load = (
        "from peft import AutoPeftModelForCausalLM\n"
        f"model = AutoPeftModelForCausalLM.from_pretrained('{run.adapter_dir}')"
        if adapter
        else "from transformers import AutoModelForCausalLM\n"
        f"model = AutoModelForCausalLM.from_pretrained('{run.model_dir}')"
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

![loss](plots/loss.png)

## Load

```
tunesmith chat {run.path}
```

```python
{load}
```
"""
    write_text(run.path / "README.md", text)
