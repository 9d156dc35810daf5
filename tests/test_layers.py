"""Imports point down the layers only (docs/guide.md, "Layers"): a module may import its own
package and the packages below it, never one above. Checked on the source, so a lazy import
inside a function counts too."""

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "tunesmith"

# Lowest first. Each package may import only itself and the packages listed before it.
LAYERS = [
    ["errors"], ["registry"], ["utils"], ["config"], ["runs"],  # foundations
    ["models"], ["data"], ["metrics"], ["tasks"], ["methods"],  # components
    ["inference"], ["evaluation"], ["adapters"], ["continual"], ["training"],  # orchestration
    ["export"], ["sweep"], ["serving"],
    ["jobs"],
    ["quickstart"], ["server"], ["cli"], ["__init__"],  # front ends and the public entry point
]
RANK = {pkg: i for i, layer in enumerate(LAYERS) for pkg in layer}


def package_of(path: Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def imported_packages(path: Path) -> set[tuple[str, int]]:
    found = set()
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(parts[: len(parts) - node.level])
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            names = [module] + ([f"{module}.{a.name}" for a in node.names] if module == "tunesmith" else [])
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        for name in names:
            bits = name.split(".")
            if bits[0] == "tunesmith" and len(bits) > 1 and bits[1] in RANK:
                found.add((bits[1], node.lineno))
    return found


def test_every_package_has_a_layer():
    packages = {package_of(p) for p in SRC.rglob("*.py")}
    assert packages <= set(RANK), f"give these packages a layer: {sorted(packages - set(RANK))}"


@pytest.mark.parametrize("path", sorted(SRC.rglob("*.py")), ids=lambda p: str(p.relative_to(SRC)))
def test_imports_point_down(path):
    own = package_of(path)
    upward = [f"{path.relative_to(SRC)}:{line} imports tunesmith.{pkg} (layer {RANK[pkg]} > {RANK[own]})"
              for pkg, line in sorted(imported_packages(path)) if RANK[pkg] > RANK[own]]
    assert not upward, "\n".join(upward)


def test_the_data_commands_do_not_load_torch():
    """`tunesmith data ...` on a million rows must fit in 1 GB (docs/data.md): torch alone is ~180 MB
    of resident memory, so the data steps and their config registries import it only where used."""
    import os
    import subprocess
    import sys

    code = ("import sys, tunesmith.data.tools, tunesmith.data.validate, tunesmith.data.steps.dedup, "
            "tunesmith.config; print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")})
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
