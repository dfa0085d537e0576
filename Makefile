# Two commands matter on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip
CONSTRAINTS := -c constraints.txt
WORKSPACE ?= workspace

.PHONY: run test lint bench bench-long bench-train models clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# The base install: what an instrument runs.
$(VENV)/.base: $(BIN)/python pyproject.toml
	$(PIP) install --quiet $(CONSTRAINTS) -e .
	touch $@

# Everything a developer needs: training, IMPSY import, plots, tests.
$(VENV)/.dev: $(BIN)/python pyproject.toml constraints.txt
	$(PIP) install --quiet $(CONSTRAINTS) -e '.[train,impsy,plot,dev]'
	touch $@ $(VENV)/.base

$(WORKSPACE)/config.toml: | $(VENV)/.base
	$(BIN)/antiphon init $(WORKSPACE)

run: $(VENV)/.base $(WORKSPACE)/config.toml
	cd $(WORKSPACE) && ../$(BIN)/antiphon run --verbose

lint: $(VENV)/.dev
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests

test: lint
	$(BIN)/python -m pytest

bench: $(VENV)/.dev
	$(BIN)/antiphon bench --markdown bench-results.md

# The engine's full measurements: 30 s of idle CPU and a 10-minute performance.
bench-long: $(VENV)/.dev
	$(BIN)/python -m antiphon.engine.bench --long

# Training quality and time to quality against IMPSY's recipe (about an hour; needs ../shared/impsy).
bench-train: $(VENV)/.dev
	mkdir -p build
	$(BIN)/python benchmarks/training.py --markdown build/bench-train.md --json build/bench-train.json

# The bundled default models (a few minutes; seeded, so the same files again).
models: $(VENV)/.dev
	$(BIN)/python -m antiphon.data.default_models

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build dist
