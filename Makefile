# Two commands on a fresh machine: `make test` and `make run`. Both call `make setup`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATA ?= data
CORES ?= all
STAMP := $(VENV)/.installed
# The venv first on PATH for the tests' fixtures, which look up `snakemake` there (the rules find
# their `nnprune` command beside the Python that runs Snakemake, without it).
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: setup data run leaderboard smoke test test-fast lint clean-results

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

# check-config first: Snakemake reads a --configfile before the workflow's checks and names no
# line for a YAML error. --scheduler greedy: Snakemake's default ILP scheduler solves a MILP (a CBC process) each time it
# picks jobs; with a hundred ready jobs on two cores that is CPU taken from the jobs.
run: setup
	$(BIN)/nnprune check-config config/config.yaml
	$(BIN)/snakemake --cores $(CORES) --scheduler greedy --configfile config/config.yaml

# The leaderboard study reuses the default study's baselines, scores and shared runs (config
# `reuse:`): run `make run` first (its *.pt files are not committed).
leaderboard: setup
	$(BIN)/nnprune check-config config/leaderboard.yaml
	$(BIN)/snakemake --cores $(CORES) --scheduler greedy --configfile config/leaderboard.yaml

smoke: setup
	$(BIN)/nnprune check-config config/smoke.yaml
	$(BIN)/snakemake --cores $(CORES) --scheduler greedy --configfile config/smoke.yaml

test: setup
	$(BIN)/python -m pytest -ra --durations=15

test-fast: setup
	$(BIN)/python -m pytest -ra -m "not integration and not gpu"

# ruff (pyproject.toml [tool.ruff]), snakefmt (pyproject.toml [tool.snakefmt]) and snakemake --lint of the
# default study, where a lint passes only when fixed or justified beside its rule (scripts/lint_workflow.py).
# All three run; the target fails if any of them does.
lint: setup
	status=0; \
	$(BIN)/ruff check . || status=1; \
	$(BIN)/snakefmt --check Snakefile workflow || status=1; \
	$(BIN)/python scripts/lint_workflow.py --configfile config/config.yaml || status=1; \
	exit $$status
