"""Load tokenizers and models from resolved directories: safetensors only, checked before use."""

from __future__ import annotations

import json
from pathlib import Path

from tunesmith.errors import ModelError

# weights transformers/PEFT would read with pickle (torch.load), which can run code from the file
PICKLE_WEIGHTS = ("pytorch_model*.bin", "adapter_model.bin", "*.ckpt", "*.pth")


def check_weights(directory: Path) -> None:
    """Every *.safetensors file in `directory` opens (a truncated or corrupt one is named); a folder
    whose only weights are pickle files is refused, since loading those can execute code."""
    from safetensors import SafetensorError, safe_open

    directory = Path(directory)
    files = sorted(directory.glob("*.safetensors"))
    pickles = sorted(p.name for pattern in PICKLE_WEIGHTS for p in directory.glob(pattern))
    if not files and pickles:
        raise ModelError(
            f"{directory / pickles[0]}: tunesmith loads only safetensors weights, because a pickle file "
            "(.bin/.pt) can run arbitrary code when loaded. If you trust it, convert it once with "
            "transformers: load it and save_pretrained(folder) (saves model.safetensors)")
    for file in files:
        try:
            with safe_open(file, "pt"):  # reads and checks the header: tensor offsets cover the file
                pass
        except (SafetensorError, OSError) as err:
            raise ModelError(f"{file}: not a readable safetensors file ({str(err).splitlines()[0]}); "
                             "it is truncated or corrupt: copy or save it again") from None


def check_vocabulary(tokenizer, embedding_rows: int, where: Path) -> None:
    """A tokenizer whose ids reach past the model's embedding rows belongs to another model;
    training would index out of range or learn on the wrong token meanings."""
    top = max(tokenizer.get_vocab().values(), default=-1)
    if top >= embedding_rows:
        raise ModelError(
            f"{where}: the tokenizer has token ids up to {top} but the model has {embedding_rows} embedding "
            "rows (config.json vocab_size); the tokenizer belongs to another model. Put the model's own "
            "tokenizer files beside its weights")


def _embedding_rows(model_dir: Path) -> int | None:
    """vocab_size from config.json (the input embedding's rows), when the folder holds a model."""
    try:
        config = json.loads((Path(model_dir) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # an adapter folder, or a config transformers itself will report
    if not isinstance(config, dict):
        return None
    rows = config.get("vocab_size") or (config.get("text_config") or {}).get("vocab_size")
    return rows if isinstance(rows, int) else None


def load_tokenizer(model_dir: Path, trust_remote_code: bool = False):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir, trust_remote_code=trust_remote_code)
    rows = _embedding_rows(model_dir)
    if rows is not None:
        check_vocabulary(tokenizer, rows, Path(model_dir))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    return tokenizer


def load_model(model_dir: Path, model_class=None, trust_remote_code: bool = False, **kwargs):
    """Weights in fp32 on the CPU; mixed precision is applied by autocast during training."""
    import torch
    from safetensors import SafetensorError
    from transformers import AutoModelForCausalLM

    cls = model_class or AutoModelForCausalLM
    from tunesmith.models.int8 import is_int8_dir, load_int8

    check_weights(Path(model_dir))
    if is_int8_dir(model_dir):  # written by `tunesmith export --to int8`
        return load_int8(model_dir, model_class, trust_remote_code)
    try:
        return cls.from_pretrained(
            model_dir, dtype=torch.float32, trust_remote_code=trust_remote_code, use_safetensors=True, **kwargs
        )
    except (OSError, ValueError, SafetensorError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ModelError(f"cannot load a model from {model_dir}: {first}") from None
