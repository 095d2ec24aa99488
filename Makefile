# A thin veneer over nox (noxfile.py). Every target installs what it needs.
PYTHON ?= python3
VENV := .venv
NOX := $(VENV)/bin/nox

.DEFAULT_GOAL := help

$(NOX):
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "kitt needs Python >= 3.11: set PYTHON=python3.11 (or newer)")'
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet 'nox>=2025.2.9'

.PHONY: help
help: ## Show this help
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

.PHONY: bench
bench: $(NOX) ## Run kitt's main job: the quick suite on the embedded llama.cpp engine, into results/
	$(NOX) -s bench

.PHONY: test
test: $(NOX) ## Install everything (Docker where possible, llama-server) and run the whole test suite
	tools/ensure_docker.sh
	$(NOX) -s tests

.PHONY: lint
lint: $(NOX) ## ruff
	$(NOX) -s lint

.PHONY: typecheck
typecheck: $(NOX) ## mypy
	$(NOX) -s typecheck

.PHONY: perf
perf: $(NOX) ## Accuracy and capacity of kitt's client against the simulated engine
	$(NOX) -s perf

.PHONY: docs
docs: $(NOX) ## Regenerate docs/cli.md from the commands' --help
	$(NOX) -s docs

.PHONY: all
all: $(NOX) ## What CI checks: lint, typecheck, tests
	$(NOX) -s lint typecheck tests

.PHONY: clean
clean: ## Remove virtual environments and caches
	rm -rf $(VENV) .nox build .pytest_cache .mypy_cache .ruff_cache
