# Two commands on a fresh machine: `make test` and `make run`. Both call `make setup`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATA ?= data
CORES ?= all
STAMP := $(VENV)/.installed
# Rules call the `nnprune` CLI: put the venv first on PATH for snakemake and pytest.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: setup data run smoke test test-fast clean-results

setup: $(STAMP) data

# Rebuilt only when the pins or the package metadata change; otherwise a no-op.
$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

data: $(STAMP)
	$(BIN)/nnprune fetch-data --dataset fashion-mnist --root $(DATA)

run: setup
	$(BIN)/snakemake --cores $(CORES) --configfile config/config.yaml

smoke: setup
	$(BIN)/snakemake --cores $(CORES) --configfile config/smoke.yaml

test: setup
	$(BIN)/python -m pytest -ra --durations=15

test-fast: setup
	$(BIN)/python -m pytest -ra -m "not integration"
