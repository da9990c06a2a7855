# The two README commands. Each one sets up .venv on first use (a stamp
# file makes it idempotent), then runs.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: quickstart test lint install clean bench

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

quickstart: $(STAMP)
	$(BIN)/python -m mlray.quickstart

# Lint and types first (seconds), then the suite.
test: lint
	$(BIN)/python -m pytest tests -q

lint: $(STAMP)
	$(BIN)/ruff check mlray jobs benchmarks tests
	$(BIN)/ruff format --check mlray jobs benchmarks tests
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python benchmarks/pit_join.py --size small

clean:
	rm -rf mlray-data .pytest_cache

# cluster/kuberay-rayservice.yaml from serve_configs/production.yaml and the RayCluster's spec.
.PHONY: cluster-manifests
cluster-manifests: $(STAMP)
	$(BIN)/mlray cluster rayservice
