import json
import os
import sys
from collections import Counter
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


def _find_shared() -> Path:
    """../shared beside the checkout (or beside any parent folder, for git worktrees)."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "shared" / "datasets").is_dir():
            return parent / "shared" / "datasets"
    return here.parents[1].parent / "shared" / "datasets"


SHARED = _find_shared()

# pytest-xdist workers start with COLUMNS=80 in their environment, and rich fixes a console's width
# from COLUMNS when the console is made (at import): tests that widen output with COLUMNS at print
# time would get 80 there. Without it the width is measured at print time, as in a serial run.
os.environ.pop("COLUMNS", None)
os.environ.pop("LINES", None)


@pytest.fixture(autouse=True)
def _console_width_at_print_time(monkeypatch):
    """Each test starts with the CLI's consoles measuring their width when they print, whatever a
    test before it in the same worker left behind (a width fixed while COLUMNS was set folded table
    cells such as "pruned" in later tests, in some xdist orders)."""
    from tunesmith.cli.output import stdout
    from tunesmith.utils.progress import console

    monkeypatch.delenv("COLUMNS", raising=False)
    for shown in (stdout, console):
        monkeypatch.setattr(shown, "_width", None)


def pytest_collection_modifyitems(items):
    """Long files first, each file's tests kept in order: files with tests on real weights, then by
    number of tests. `make test` hands whole files to two workers in this order
    (--dist loadfile --no-loadscope-reorder), so no long file starts last and leaves a worker idle."""
    counts = Counter(item.path for item in items)
    slow = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: (item.path not in slow, -counts[item.path]))  # sort is stable


@pytest.fixture(autouse=True)
def _isolated_home(request, tmp_path_factory, monkeypatch):
    """Fast tests get a throwaway cache; slow tests share the real one (zoo conversions are kept)."""
    if "TUNESMITH_HOME" not in os.environ and not request.node.get_closest_marker("slow"):
        monkeypatch.setenv("TUNESMITH_HOME", str(tmp_path_factory.getbasetemp() / "home"))


@pytest.fixture(scope="session", autouse=True)
def _threads_chosen_by_tests():
    """train() sets one torch thread per usable CPU unless train.threads is given. In tests it keeps
    the count `_threads` chose (and one for module- and session-scoped fixtures that train): two
    threads on a tiny model were 6x slower than one on a busy 2-core machine."""
    import torch

    from tunesmith.training import process

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(process, "usable_cpus", torch.get_num_threads)
        yield
    torch.set_num_threads(previous)


@pytest.fixture(autouse=True)
def _threads(request, monkeypatch):
    """Tiny models run fastest on one thread (and subprocesses inherit it); real models use all cores
    (shared among the pytest-xdist workers)."""
    import torch

    slow = request.node.get_closest_marker("slow") is not None
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))  # `make test` runs pytest -n 2
    threads = max(1, (os.cpu_count() or 1) // workers) if slow else 1
    monkeypatch.setenv("OMP_NUM_THREADS", str(threads))
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    from tiny import save_tiny_llama

    return save_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture
def chat_file(tmp_path) -> Path:
    """12 short OpenAI-chat rows."""
    rows = [
        {"messages": [{"role": "user", "content": f"what is {i} plus {i}?"},
                      {"role": "assistant", "content": f"{i} plus {i} is {2 * i}."}]}
        for i in range(12)
    ]
    path = tmp_path / "chat.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def tiny_config(tiny_model_dir, chat_file, tmp_path):
    """A RunConfig that trains the tiny llama with LoRA for a few steps."""
    from tunesmith.config import validate_config

    def make(**sections):
        data = {
            "model": {"name_or_path": str(tiny_model_dir)},
            "data": {"train": [str(chat_file)], "eval_ratio": 0.25, "template": "chatml"},
            "method": {"name": "lora", "r": 4, "alpha": 8, "dropout": 0.0},
            "train": {"max_steps": 6, "batch_size": 4, "learning_rate": 5e-3, "logging_steps": 1,
                      "save_steps": 3, "precision": "fp32", "save_total_limit": 5},
            "output": {"dir": str(tmp_path / "run")},
        }
        for key, value in sections.items():
            replace = key == "method" and value.get("name", "lora") != "lora"
            data[key] = value if replace else {**data.get(key, {}), **value}
        return validate_config(data)

    return make


def shared(*parts) -> Path:
    """A file of ../shared/datasets. Skipped only when the whole folder is absent (a checkout
    without it); CI has it, so a missing or renamed file there fails instead of passing unseen."""
    path = SHARED.joinpath(*parts)
    if not SHARED.is_dir():
        pytest.skip(f"../shared/datasets is not beside the checkout ({SHARED})")
    if not path.exists():
        pytest.fail(f"../shared dataset missing: {path}")
    return path
