"""Merge several LoRA adapters into a new one with PEFT's `add_weighted_adapter`.

ties and dare run on the full updates (delta W = B A), which is where the TIES and DARE papers
define them, then factor the result back with an SVD. The SVD rank defaults to the sum of the
input ranks: exact for svd and for dare at density 1 (weighted sums of the updates); ties'
per-entry sign election and any random drop make the update full-rank, so there the rank
(`--rank`) decides how much of it the new adapter keeps.
"""

from __future__ import annotations

from pathlib import Path

from tunesmith.adapters.multi import load_adapter_set
from tunesmith.errors import ConfigError
from tunesmith.runs.rundir import RunDir
from tunesmith.utils.io import replace_dir, write_json

# our name -> PEFT combination_type
HOWS = {"linear": "linear", "cat": "cat", "svd": "svd", "ties": "ties_svd",
        "dare": "dare_linear_svd", "dare_ties": "dare_ties_svd"}
NEEDS_DENSITY = {"ties", "dare", "dare_ties"}


def merge_adapters(sources: list[str | Path], weights: list[float], how: str, out: str | Path, *,
                   density: float = 0.5, rank: int | None = None, seed: int = 0,
                   overwrite: bool = False) -> Path:
    """Write a run directory `out` whose adapter/ is the weighted merge of `sources`."""
    import torch

    _check(sources, weights, how, density)
    adapters = load_adapter_set({f"a{i}": s for i, s in enumerate(sources)})
    names = adapters.names
    svd_rank = rank or sum(s.rank or 0 for s in adapters.sources.values()) or None
    torch.manual_seed(seed)  # dare drops entries at random
    try:
        adapters.model.add_weighted_adapter(
            names, list(weights), "default", combination_type=HOWS[how],
            svd_rank=svd_rank if HOWS[how].endswith("svd") else None,
            density=density if how in NEEDS_DENSITY else None,
        )
    except (ValueError, TypeError, AttributeError) as err:
        raise ConfigError(f"adapters merge --how {how}: {err}") from None
    run = RunDir.create(out, overwrite=overwrite)
    with replace_dir(run.adapter_dir) as tmp:
        adapters.model.save_pretrained(tmp, selected_adapters=["default"])
        adapters.loaded.tokenizer.save_pretrained(tmp)
    first = next(iter(adapters.sources.values()))
    config = first.config.model_copy(deep=True)
    config.output.dir = str(out)
    run.write_config(config.model_dump(mode="json"))
    record = {"sources": [str(s) for s in sources], "weights": list(weights), "how": how,
              "peft_combination_type": HOWS[how], "density": density if how in NEEDS_DENSITY else None,
              "svd_rank": svd_rank if HOWS[how].endswith("svd") else None, "seed": seed}
    write_json(run.path / "merge.json", record)
    run.event("merged", f"{how} merge of {len(sources)} adapters with weights {list(weights)}", **record)
    run.set_status("succeeded")
    return run.path


def _check(sources, weights, how, density) -> None:
    if how not in HOWS:
        raise ConfigError(f"--how {how!r}: choose one of {', '.join(HOWS)}")
    if len(sources) < 2:
        raise ConfigError("adapters merge needs at least two adapters")
    if len(weights) != len(sources):
        raise ConfigError(f"--weights: {len(weights)} weights for {len(sources)} adapters; give one each")
    if how in NEEDS_DENSITY and not 0 < density <= 1:
        raise ConfigError(f"--density {density}: must be in (0, 1] (share of each update kept)")
