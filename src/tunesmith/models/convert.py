"""Convert a GGUF checkpoint once into a cached safetensors directory."""

from __future__ import annotations

from pathlib import Path

from tunesmith.errors import ModelError
from tunesmith.utils.io import replace_dir


def convert_gguf(gguf_path: Path, out_dir: Path) -> None:
    """Dequantize `gguf_path` and save it as a plain HF directory (atomically, by rename)."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    folder, name = str(gguf_path.parent), gguf_path.name
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name)
        config = AutoConfig.from_pretrained(folder, gguf_file=name)
    except Exception as err:
        raise ModelError(f"{gguf_path}: cannot read this GGUF file ({err})") from None
    # save_pretrained refuses a gguf-loaded model, so rebuild a plain one from its config.
    model = AutoModelForCausalLM.from_config(config)
    model.load_state_dict(loaded.state_dict())
    with replace_dir(out_dir) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
