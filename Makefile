# The two commands of the README: `make demo` and `make test`. Both set everything up themselves.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: demo test lint unit bench clean browser

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/vloop demo

lint: $(STAMP)
	$(BIN)/ruff check connector tests bench
	$(BIN)/mypy connector

# Headless Chromium and its driver for the browser tests, from Debian (installed when running as root).
browser:
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; \
	  else echo "chromium/chromedriver missing: the browser tests will be skipped (run as root to install)"; fi; \
	fi

test: lint browser
	$(BIN)/python -m pytest

unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit

bench: $(STAMP)
	$(BIN)/python bench/pull.py
	$(BIN)/python bench/surveys.py
	$(BIN)/python bench/page.py
	$(BIN)/python bench/writeback.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
