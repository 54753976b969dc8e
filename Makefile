# gatescope — `make run` and `make test` set everything up themselves, in .venv (Python) and
# node_modules (the JavaScript lint). `make help` lists the targets.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# stamps: gatescope and what serving needs; then the test extras; eslint from package-lock.json
RUN_STAMP := $(VENV)/.installed-run
TEST_STAMP := $(VENV)/.installed-test
JS_STAMP := node_modules/.installed

.PHONY: help setup run test test-fast lint fixtures bench presets clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 14

$(RUN_STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "gatescope needs Python 3.11 or newer (PYTHON=$(PYTHON))")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	@touch $@

$(TEST_STAMP): $(RUN_STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $@

$(JS_STAMP): package.json package-lock.json
	@command -v npm >/dev/null || { echo "the JavaScript lint needs Node.js and npm"; exit 1; }
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

setup: $(TEST_STAMP) $(JS_STAMP)  ## create .venv with the test extras, and node_modules

run: $(RUN_STAMP)  ## serve the explorer at http://127.0.0.1:8000 (installs only what serving needs)
	$(BIN)/gatescope serve --host 127.0.0.1 --port 8000

lint: $(TEST_STAMP) $(JS_STAMP)  ## ruff, mypy and eslint
	$(BIN)/ruff check .
	$(BIN)/mypy
	node_modules/.bin/eslint --max-warnings 0 frontend/js

test: lint  ## lint, then every test (what CI runs)
	$(BIN)/python -m pytest

test-fast: $(TEST_STAMP)  ## the edit-test loop: ruff, mypy, every test but the browser and slow ones
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -m "not browser and not slow"

fixtures: $(TEST_STAMP)  ## regenerate the PyTorch golden fixtures (installs torch into .venv)
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python tests/fixtures/generate.py
	$(BIN)/python tests/fixtures/generate_training.py
	$(BIN)/python tests/fixtures/generate_models.py

bench: $(TEST_STAMP)  ## speed against PyTorch and over HTTP (installs torch into .venv); the lecture's claims (~25 min)
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python benchmarks/engine.py
	$(BIN)/python benchmarks/api.py
	$(BIN)/python benchmarks/load.py
	$(BIN)/python benchmarks/train.py
	$(BIN)/python benchmarks/long_term.py

presets: $(RUN_STAMP)  ## retrain the bundled presets from their commands (2 at a time) and write SHA256SUMS
	$(BIN)/python backend/gatescope/presets/build.py

clean:  ## remove the environments and caches
	rm -rf $(VENV) node_modules .pytest_cache .ruff_cache .mypy_cache build dist
