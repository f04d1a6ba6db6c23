# Two commands do everything on a fresh machine: `make up` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: up test lint typecheck bench clean install services browser lint-deploy

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# cfn-lint, parliament, checkov and hadolint live in their own venv: their pins never meet the app's.
LINT_VENV := .venv-lint
LINT_STAMP := $(LINT_VENV)/.installed
$(LINT_STAMP): deploy/lint/requirements.txt
	test -x $(LINT_VENV)/bin/python || $(PY) -m venv $(LINT_VENV)
	$(LINT_VENV)/bin/pip install -q --upgrade pip
	$(LINT_VENV)/bin/pip install -q -r deploy/lint/requirements.txt
	touch $(LINT_STAMP)

# the generated CloudFormation templates, their IAM policies and the Dockerfiles
lint-deploy: $(STAMP) $(LINT_STAMP)
	bash deploy/lint/run.sh

up: $(STAMP)
	$(BIN)/ebbtide up

# Debian's chromium for the browser tests (Playwright drives it via executable_path).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver) \
	  || { echo "error: chromium is missing and could not be installed; hint: apt-get install chromium"; exit 1; }; }

services:
	@bash .ci/services

test: $(STAMP) browser services lint-deploy
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/pytest -n 2 --dist loadgroup

lint: $(STAMP)
	$(BIN)/ruff check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python bench/queue_bench.py
	$(BIN)/python bench/ladder_bench.py
	$(BIN)/python bench/sim_bench.py

clean:
	rm -rf $(VENV) $(LINT_VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
