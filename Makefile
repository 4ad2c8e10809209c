# Every command a person or CI needs; the README names them. A fresh machine needs only Python 3.11
# with venv and pip, and (for `make test`) apt-get for Chromium.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint types format bench system-deps clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Stamps: reinstall when pyproject.toml changes, not on every run.
$(VENV)/.runtime: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.runtime

$(VENV)/.bench: pyproject.toml $(VENV)/.dev
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	touch $@

## demo: set up, then post a sample incident update on the embedded defaults (journal ./var, mirror ./public);
## its fixed idempotency key makes a second `make demo` say it was already journaled rather than open another
demo: $(VENV)/.runtime
	$(BIN)/broadcaster send --title "Elevated API error rates" --status investigating \
		--component "API=degraded_performance" --next-update 30m --idempotency-key make-demo \
		--message "Some API requests fail with 502 errors. We are investigating and will update within 30 minutes."
	@echo "The status site is in ./public: open public/index.html, or serve the folder with any web server."
	@echo "To post from a browser: $(BIN)/broadcaster serve, then open the one-time login link it prints."

## test: set up with test dependencies (pip, and Chromium from apt), then lint, types and the whole suite
test: $(VENV)/.dev system-deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy
	$(BIN)/pytest

system-deps:
	bash .ci/system-deps

## lint: ruff, and the architecture's import contracts (import-linter, in pyproject.toml)
lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

types: $(VENV)/.dev
	$(BIN)/mypy

format: $(VENV)/.dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## bench: the benchmarks in tests/bench at full size (figures go in the README)
bench: $(VENV)/.bench
	$(BIN)/python -m tests.bench.bench_send
	$(BIN)/python -m tests.bench.bench_email
	$(BIN)/python -m tests.bench.bench_webhook
	$(BIN)/python -m tests.bench.bench_webhook_updates --sender broadcaster
	$(BIN)/python -m tests.bench.bench_webhook_updates --sender channel
	$(BIN)/python -m tests.bench.bench_webhook_updates --sender raw
	$(BIN)/python -m tests.bench.bench_lane
	$(BIN)/python -m tests.bench.bench_journal
	$(BIN)/python -m tests.bench.bench_x
	$(BIN)/python -m tests.bench.bench_scrubber
	$(BIN)/python -m tests.bench.bench_intake
	$(BIN)/python -m tests.bench.bench_pickup
	$(BIN)/python -m tests.bench.bench_render
	$(BIN)/python -m tests.bench.bench_subscribers
	$(BIN)/python -m tests.bench.bench_failover

clean:
	rm -rf $(VENV) var public .mypy_cache .ruff_cache .pytest_cache
