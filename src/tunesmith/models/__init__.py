"""The offline zoo and model loading: `resolve_model(name)` gives a directory to load."""

from tunesmith.models.load import load_model, load_tokenizer
from tunesmith.models.resolve import resolve_model, tunesmith_home
from tunesmith.models.zoo import ZOO

__all__ = ["ZOO", "load_model", "load_tokenizer", "resolve_model", "tunesmith_home"]
