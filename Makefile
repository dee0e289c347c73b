# One entry point for people and CI. `make demo` and `make test` each set up a virtual
# environment in .venv (Python 3.11+) the first time, then do their job: `make demo`
# trains two small models, compares them and writes imacs-demo/report.html.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# The browser tests drive Debian's chromium through Playwright (its own browser downloads
# need the internet). Installed with apt when missing, which needs root or sudo.
CHROMIUM ?= /usr/bin/chromium

.PHONY: setup demo test lint typecheck unit browser clean

setup: $(STAMP)

$(STAMP): requirements-dev.txt pyproject.toml plugins/imacs-torch/pyproject.toml plugins/imacs-tensorflow/pyproject.toml \
		plugins/imacs-ltx/pyproject.toml plugins/imacs-ray/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

# where `make demo` writes its report
DEMO_OUT ?= imacs-demo

demo: setup
	$(BIN)/imacs demo --out $(DEMO_OUT)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy

browser: $(CHROMIUM)

$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ]; then SUDO=; elif command -v sudo >/dev/null; then SUDO=sudo; \
	else echo "the browser tests need Debian's chromium at $(CHROMIUM): run" \
	  "'apt-get install -y chromium' as root"; exit 1; fi; \
	$$SUDO apt-get update -qq && \
	DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null

unit: setup browser
	$(BIN)/python -m pytest

test: lint typecheck unit

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
