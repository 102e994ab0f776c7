# Each target bootstraps .venv when missing and reinstalls only when pyproject.toml changed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: install demo test lint typecheck unit bench bench-deps bench-quick chromium clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --upgrade pip
	@$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/pmolens demo

lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

# mypy sees the installed names (pmolens.<folder>) through a tree of links to the card's folders.
typecheck: $(STAMP)
	@mkdir -p build/typecheck/pmolens
	@for p in api connectors pipeline reports simulator warehouse; do ln -sfn ../../../$$p build/typecheck/pmolens/$$p; done
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest

test: lint typecheck unit

# Headless Chromium for the report's browser test (Debian package; Playwright's own download
# does not work offline). Needs root or an existing install.
chromium:
	@command -v chromium >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)

# The benchmarks compare against the vendor SDKs (jira, azure-devops): the `bench` extra.
bench-deps: $(STAMP)
	@$(BIN)/python -m pip install -q -e '.[dev,bench]'

bench: bench-deps
	$(BIN)/python bench/sync_bench.py
	$(BIN)/python bench/analytics_bench.py
	$(BIN)/python bench/api_bench.py
	$(BIN)/python bench/web_bench.py
	$(BIN)/python bench/report_bench.py
	$(BIN)/python bench/fault_bench.py
	$(BIN)/python bench/lake_bench.py

bench-quick: bench-deps
	$(BIN)/python bench/sync_bench.py --quick
	$(BIN)/python bench/analytics_bench.py --quick
	$(BIN)/python bench/api_bench.py --quick
	$(BIN)/python bench/web_bench.py --quick
	$(BIN)/python bench/report_bench.py --quick
	$(BIN)/python bench/fault_bench.py --quick
	$(BIN)/python bench/lake_bench.py --quick

clean:
	rm -rf $(VENV) demo .pytest_cache .mypy_cache .ruff_cache *.egg-info
