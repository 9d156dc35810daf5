"""`tunesmith data <step>` and `tunesmith export` take their options from the registries'
options models: a new step or exporter field is a new flag, without editing the CLI."""

import json

import pytest
from pydantic import BaseModel, Field

from tunesmith.cli.main import run
from tunesmith.cli.options import option_parameters, option_values
from tunesmith.data.steps import STEPS
from tunesmith.export import EXPORTERS


def _help(capsys, monkeypatch, *args) -> str:
    monkeypatch.setenv("COLUMNS", "250")
    try:
        run([*args, "--help"])
    except SystemExit:
        pass
    return " ".join(capsys.readouterr().out.split())


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


@pytest.mark.parametrize("step", [s for s in STEPS if s.name not in ("split", "mix")], ids=lambda s: s.name)
def test_every_step_field_is_a_flag_of_its_command(step, capsys, monkeypatch):
    out = _help(capsys, monkeypatch, "data", step.name)
    flags = {"output": "--answer"}  # the template's output: -o/--output is the output file
    for name, field in step.Options.model_fields.items():
        if name != "step":
            assert flags.get(name, _flag(name)) in out, name
            assert " ".join((field.description or "").split()[:4]) in out, name


def test_every_exporter_field_is_a_flag_of_export(capsys, monkeypatch):
    out = _help(capsys, monkeypatch, "export")
    for spec in EXPORTERS:
        for name in spec.options_class.model_fields:
            assert _flag(name) in out and f"{spec.name}:" in out


class Demo(BaseModel):
    names: list[str] = Field(default_factory=list, description="Names.")
    shares: dict[str, float] | str = Field("uniform", description="Shares or a word.")
    fast: bool = Field(False, description="Go fast.")
    size: int = Field(3, description="Size.")


def test_values_take_the_shape_the_model_validates():
    given = {"names": ["a,b", "c"], "shares": ["x=0.5,y=0.5"], "fast": True, "size": None}
    values = option_values(Demo, given)
    assert values == {"names": ["a", "b", "c"], "shares": {"x": "0.5", "y": "0.5"}, "fast": True}
    assert Demo(**values).shares == {"x": 0.5, "y": 0.5}
    assert option_values(Demo, {"shares": ["uniform"]}) == {"shares": "uniform"}
    params = {p.name: p for p in option_parameters(Demo)}
    assert params["fast"].default.param_decls == ("--fast/--no-fast",)
    assert params["size"].default.default is None  # unset options are left to the model's default


def test_generated_flags_reach_the_step(tmp_path):
    src = tmp_path / "rows.jsonl"
    src.write_text("".join(json.dumps({"text": t, "label": lab}) + "\n"
                           for t, lab in [("mail a@b.com", "x"), ("b", "y"), ("c", "y"), ("d", "y")]))
    out, report = tmp_path / "out.jsonl", tmp_path / "report.json"
    with pytest.raises(SystemExit) as done:
        run(["data", "balance", str(src), "-o", str(out), "--label", "label", "--target", "x=0.5,y=0.5",
             "--report", str(report)])
        raise SystemExit(0)
    assert done.value.code == 0
    labels = [json.loads(line)["label"] for line in out.read_text().splitlines()]
    assert labels.count("x") == labels.count("y") == 1  # under-sampled to the target shares
    with pytest.raises(SystemExit) as done:
        run(["data", "clean", str(src), "-o", str(out), "--pii", "all", "--no-nfkc"])
        raise SystemExit(0)
    assert done.value.code == 0 and "[EMAIL]" in out.read_text()
