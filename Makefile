# Two commands do everything on a fresh machine: `make up` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: up test lint typecheck bench clean install services browser smoke docs bullmq lint-deploy

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

.PHONY: images
# build the three images with podman from an mmdebstrap Debian base and run them (root; slow;
# not part of `make test`; see docs/deploy.md "Images")
images:
	bash deploy/images/build.sh all

up: $(STAMP)
	$(BIN)/ebbtide up

# Debian's chromium for the browser tests (Playwright drives it via executable_path), nginx for
# the X-Accel-Redirect hand-off tests, wrk for bench/serve_bench.py.
SYSTEM_PKGS := chromium chromium-driver nginx-light wrk
browser:
	@{ command -v chromium && test -x /usr/sbin/nginx && command -v wrk; } >/dev/null 2>&1 || { \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(SYSTEM_PKGS)) \
	  || { echo "error: $(SYSTEM_PKGS) are missing and could not be installed; hint: apt-get install $(SYSTEM_PKGS)"; exit 1; }; }

services:
	@bash .ci/services

# The real BullMQ (npm) for the depth-source tests, one folder per supported major version.
BULLMQ5 := 5.81.5
BULLMQ6 := 6.7.0
bullmq:
	@for v in $(BULLMQ5) $(BULLMQ6); do d=.cache/node/bullmq$${v%%.*}; \
	  test -f $$d/node_modules/bullmq/package.json && grep -q "\"version\": \"$$v\"" $$d/node_modules/bullmq/package.json \
	  || { mkdir -p $$d && echo '{"private": true}' > $$d/package.json && \
	       npm install --prefix $$d --no-audit --no-fund --silent bullmq@$$v ioredis >/dev/null \
	       || { echo "error: npm could not install bullmq@$$v; hint: apt-get install nodejs npm"; exit 1; }; }; done

test: $(STAMP) browser services bullmq lint-deploy
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/pytest -n 2 --dist loadgroup

# A plain `pip install` (no extras) into a fresh venv must serve; also part of `make test`.
smoke: $(STAMP)
	$(BIN)/pytest -n 0 tests/packaging

# docs/config.md is generated from the config schema (src/ebbtide/config/).
docs: $(STAMP)
	PYTHONPATH=src $(BIN)/ebbtide config reference --write docs/config.md

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
