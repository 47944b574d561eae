# Quick start: `make serve` (install and start the MCP server) and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?= -n auto

.PHONY: serve test test-fast lint format settings-doc commands-doc install install-test clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

serve: $(VENV)/.installed
	$(BIN)/gen-searcher serve --transport http --host $(HOST) --port $(PORT)

test: $(VENV)/.installed-test
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The fast lane: everything but the render and training tests.
test-fast: $(VENV)/.installed-test
	$(BIN)/python -m pytest $(PYTEST_ARGS) -m "not slow"

# The gate CI runs before the tests: format, lint, types, and the house plan (import contracts).
lint: $(VENV)/.installed-test
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# docs/settings.md from the settings models (a test fails when it is stale).
settings-doc: $(VENV)/.installed-test
	$(BIN)/python -m gen_searcher_core.settings_reference --out docs/settings.md

# docs/commands.md from the typer apps of the shipped commands (a test fails when it is stale).
commands-doc: $(VENV)/.installed-test
	$(BIN)/python -m gen_searcher_core.commands_reference --out docs/commands.md

format: $(VENV)/.installed-test
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info

# One GPU check before the first GPU hour (perf/gpu_check.py): the trainer parts run in the GPU training
# environment (TRAIN_PYTHON, see docs/training.md#install), the render part in .venv; each writes a JSON.
# `make gpu-check GPU_CHECK_ARGS=--dry-run` prepares everything on CPU and stops at each first GPU call.
TRAIN_PYTHON ?= .venv-train/bin/python
.PHONY: gpu-check
gpu-check: $(VENV)/.installed-test
	$(TRAIN_PYTHON) -m perf.gpu_check --parts smoke,grpo --out gpu-check-train.json $(GPU_CHECK_ARGS)
	$(BIN)/python -m perf.gpu_check --parts render --out gpu-check-render.json $(GPU_CHECK_ARGS)
