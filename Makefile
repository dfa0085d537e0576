# Two commands matter on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip
CONSTRAINTS := -c constraints.txt
WORKSPACE ?= workspace

.PHONY: run test lint bench bench-long bench-train bench-web bench-play models clean

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
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/python -m pytest

bench: $(VENV)/.dev
	$(BIN)/antiphon bench --markdown bench-results.md

# The engine's full measurements: 30 s of idle CPU and a 10-minute performance.
bench-long: $(VENV)/.dev
	$(BIN)/python -m antiphon.bench.engine --long

# Training quality and time to quality against IMPSY's recipe (about an hour; needs ../shared/impsy).
bench-train: $(VENV)/.dev
	mkdir -p build
	$(BIN)/python benchmarks/training.py --markdown build/bench-train.md --json build/bench-train.json

# The engine's timing while a browser uses the web UI: pages, dataset builds, zips, training
# (about 9 minutes).
bench-web: $(VENV)/.dev
	mkdir -p build
	$(BIN)/python benchmarks/web_load.py --markdown build/bench-web.md

# From the engine's output to the Play page's voice in headless Chromium, and the engine's
# timing while the page plays (about 3 minutes; needs Debian's chromium).
bench-play: $(VENV)/.dev
	mkdir -p build
	PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 $(BIN)/python benchmarks/play_latency.py --markdown build/bench-play.md

# The bundled default models (a few minutes; seeded, so the same files again).
models: $(VENV)/.dev
	$(BIN)/python -m antiphon.training.default_models

# A screenshot of every page, desktop and phone sized, for the docs: the browser tests
# drive a real `antiphon run` in headless Chromium (Debian's chromium) and save them.
.PHONY: screenshots
screenshots: $(VENV)/.dev
	@test -x /usr/bin/chromium || { echo "needs Debian's chromium: apt-get install chromium"; exit 1; }
	ANTIPHON_SCREENSHOTS=docs/screenshots PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 \
		$(BIN)/python -m pytest -q -p no:cacheprovider tests/integration/test_browser.py

# An emulated Raspberry Pi: 64-bit Debian under qemu-system-aarch64 (4 cores, 512 MB).
# deploy/rpi/install.sh on a fresh system, a reboot into the service, a laptop playing
# and updating it, a power cut, memory with s and xl models. Needs root and Debian's
# debootstrap, qemu-system-arm, cpio; the image is cached in build/pi/. PI_SUITE=trixie
# checks Python 3.13. Measurements: build/pi/$(PI_SUITE)/report.json.
PI_SUITE ?= bookworm
.PHONY: test-pi
test-pi: $(VENV)/.dev
	ANTIPHON_PI_SUITE=$(PI_SUITE) $(BIN)/python -m pytest -x -v --tb=short tests/pi

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build dist
