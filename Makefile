# trustcircle — every target does its own set-up on a fresh machine.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: install test lint demo bench clean system-deps

$(STAMP): pyproject.toml
	@{ command -v openssl && command -v chromium; } >/dev/null || $(MAKE) system-deps
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	-$(BIN)/python -m compileall -q -j 0 src $(VENV)/lib >/dev/null 2>&1
	@touch $(STAMP)

install: $(STAMP)

# Debian packages the tests use: the openssl CLI (interoperability tests) and chromium
# (Playwright browser tests drive Debian's chromium; nothing is downloaded by Playwright).
system-deps:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    openssl chromium fonts-dejavu-core >/dev/null; \
	else echo "install openssl and chromium with your package manager"; fi

test: install
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/mypy bench tests

demo: install
	PATH="$(CURDIR)/$(BIN):$$PATH" bash demo/demo.sh

bench: install
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) demo-out .bench .pytest_cache .mypy_cache .ruff_cache
