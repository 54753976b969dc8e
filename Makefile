# gatescope — `make test` and `make run` set everything up in a local virtual environment.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup test lint run fixtures bench presets clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "gatescope needs Python 3.11 or newer (PYTHON=$(PYTHON))")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $@

setup: $(STAMP)  ## create .venv and install gatescope with its test extras

lint: $(STAMP)  ## ruff over the whole repo
	$(BIN)/ruff check .

test: lint  ## lint, then every test
	$(BIN)/python -m pytest

run: $(STAMP)  ## serve the explorer at http://127.0.0.1:8000
	$(BIN)/gatescope serve --host 127.0.0.1 --port 8000

fixtures: $(STAMP)  ## regenerate the PyTorch golden fixtures (installs torch into .venv)
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python tests/fixtures/generate.py
	$(BIN)/python tests/fixtures/generate_training.py

bench: $(STAMP)  ## speed against PyTorch and over HTTP (installs torch into .venv); the lecture's claims (~25 min)
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python benchmarks/engine.py
	$(BIN)/python benchmarks/api.py
	$(BIN)/python benchmarks/train.py
	$(BIN)/python benchmarks/long_term.py

presets: $(STAMP)  ## retrain the bundled presets from their commands (2 at a time; same bytes)
	$(BIN)/python backend/gatescope/presets/build.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache backend/*.egg-info
