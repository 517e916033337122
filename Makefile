# sfbroker — the README's two commands are `make run` and `make test`.
# Each installs what it needs on first use: .venv (python3.13, our dependencies),
# .venv-sam (aws-sam-cli: its pins clash with ours) and local/node (DynamoDB Local).

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYENV_ROOT ?= $(shell pyenv root 2>/dev/null || echo $(HOME)/.pyenv)
PYTHON313 ?= $(firstword $(wildcard $(PYENV_ROOT)/versions/3.13*/bin/python3.13) $(shell command -v python3.13))
PYTHON_SAM ?= $(firstword $(wildcard $(PYENV_ROOT)/versions/3.11*/bin/python3.11) $(wildcard $(PYENV_ROOT)/versions/3.12*/bin/python3.12) $(PYTHON313))

VENV := .venv
SAM_VENV := .venv-sam
CHECKOV_VENV := .venv-checkov
PY := $(VENV)/bin/python
NODE_TOOLS := local/node/node_modules/.installed

PORT ?= 3000
# local/env.json (sam local) expects local AWS on 5000.
AWS_PORT ?= 5000
DB ?= moto
# TLS=1: the fake Salesforce over https (the Salesforce CLI speaks nothing else).
TLS ?=
# For `sam local` containers: BIND=172.17.0.1 (the docker bridge; Linux), or
# PUBLIC_HOST=host.docker.internal (Docker Desktop). README, "Running functions with SAM locally".
BIND ?=
PUBLIC_HOST ?=

.PHONY: help run test lint fmt typecheck unit integration e2e sam-local fuzz soak validate-template bench clean admin-token reencrypt

help: ## Show the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml layers/common/requirements.txt client/pyproject.toml
	@test -n "$(PYTHON313)" || { echo "python3.13 not found: install it (pyenv install 3.13) or set PYTHON313=" >&2; exit 1; }
	$(PYTHON313) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --upgrade 'pip>=25.1'
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --group dev -e 'client[iam]'
	@touch $@

$(SAM_VENV)/.installed:
	$(PYTHON_SAM) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --disable-pip-version-check aws-sam-cli
	@touch $@

# checkov (template posture), in its own virtualenv like SAM: its many pinned dependencies stay out of ours.
$(CHECKOV_VENV)/.installed:
	$(PYTHON_SAM) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --disable-pip-version-check 'checkov==3.3.30'
	@touch $@

$(NODE_TOOLS): local/node/package.json local/node/package-lock.json
	cd local/node && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# make forwards only SIGTERM to a recipe: on SIGINT, SIGHUP or SIGQUIT sent to make alone
# (not to the terminal's process group, as Ctrl-C is) it waits for the recipe to end.
# --stop-with-parent has the stack notice that, and stop.
run: $(VENV)/.installed $(NODE_TOOLS) ## Start the local stack on 127.0.0.1 (DB=moto|dynamodb-local, TLS=1, PORT=3000, AWS_PORT=5000, BIND=, PUBLIC_HOST=)
	exec $(PY) -m local.stack --port $(PORT) --aws-port $(AWS_PORT) --db $(DB) $(if $(filter 1,$(TLS)),--salesforce-tls) $(if $(BIND),--bind $(BIND)) $(if $(PUBLIC_HOST),--public-host $(PUBLIC_HOST)) --stop-with-parent

test: lint validate-template pytest ## Everything CI checks

lint: $(VENV)/.installed ## ruff (lint + format check), mypy --strict and the import contracts (lint-imports)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	PYTHONPATH=layers/common:. $(VENV)/bin/lint-imports --no-cache

fmt: $(VENV)/.installed ## Format and auto-fix
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

validate-template: $(SAM_VENV)/.installed $(VENV)/.installed $(CHECKOV_VENV)/.installed ## sam validate --lint, cfn-lint (also on the transformed template), checkov (offline)
	$(SAM_VENV)/bin/sam validate --lint --region us-east-1 --template template.yaml
	$(VENV)/bin/cfn-lint template.yaml
	@# And with the non-default values of the parameters that switch resources on and off.
	$(VENV)/bin/cfn-lint template.yaml --parameters SnapStart=true Tracing=off
	$(VENV)/bin/cfn-lint template.yaml --parameters SnapStart=true Tracing=lambda
	$(VENV)/bin/cfn-lint template.yaml --parameters AllowedSourceCidrs=203.0.113.0/24,2001:db8::/32
	@# cfn-lint alone checks SAM's schema, not what the transform generates: lint that too.
	@# W2001 (unused parameter) is checked above: the transform inlines the parameters the
	@# APIs' resource policies use (AllowedSourceCidrs), so they look unused after it.
	$(SAM_VENV)/bin/python scripts/transform_template.py template.yaml -o build/template.cfn.json
	$(VENV)/bin/cfn-lint build/template.cfn.json --ignore-checks W2001
	$(VENV)/bin/cfn-lint build/template.cfn.json --ignore-checks W2001 --parameters SnapStart=true Tracing=off
	@# Every skip is justified in template.yaml, next to its resource (Metadata.checkov).
	$(CHECKOV_VENV)/bin/checkov --file template.yaml --framework cloudformation --skip-download --compact --quiet

pytest: $(VENV)/.installed $(SAM_VENV)/.installed $(NODE_TOOLS) ## unit, integration (moto + DynamoDB Local), e2e and container tests with coverage
	$(VENV)/bin/pytest --cov --cov-report=term

unit: $(VENV)/.installed ## Unit tests only (no sockets)
	$(VENV)/bin/pytest tests/unit -q

integration: $(VENV)/.installed $(NODE_TOOLS) ## Integration tests only
	$(VENV)/bin/pytest tests/integration -q

e2e: $(VENV)/.installed $(NODE_TOOLS) ## End-to-end tests against the local stack
	$(VENV)/bin/pytest tests/e2e -q

sam-local: $(VENV)/.installed $(SAM_VENV)/.installed $(NODE_TOOLS) ## Every event through `sam local invoke` in a Lambda container, and a start-api smoke (tests/container)
	SFBROKER_SAM_INVOKE=cli $(VENV)/bin/pytest tests/container -v

fuzz: $(VENV)/.installed ## Long fuzz of both APIs (schemathesis, raw bodies, headers): FUZZ_EXAMPLES=100 per operation
	SFBROKER_FUZZ_EXAMPLES=$(or $(FUZZ_EXAMPLES),100) $(VENV)/bin/pytest tests/integration/test_fuzz_api.py -q

soak: $(VENV)/.installed ## 16 clients on the local stack for 5 minutes, random faults, heap by owner (SECONDS=300 CLIENTS=16 DB=moto|dynamodb-local [PORT= AWS_PORT=])
	PYTHONPATH=layers/common $(PY) -m tests.soak --seconds $(or $(SECONDS),300) --clients $(or $(CLIENTS),16) --db $(DB) $(if $(filter-out file,$(origin PORT)),--port $(PORT)) $(if $(filter-out file,$(origin AWS_PORT)),--aws-port $(AWS_PORT))

bench: $(VENV)/.installed $(NODE_TOOLS) ## One table of every performance figure beside its target; writes bench/results.json (BENCH_ARGS="--runs 3")
	PYTHONPATH=layers/common $(PY) -m tests.bench $(BENCH_ARGS)

admin-token: $(VENV)/.installed ## Mint an API token with your AWS credentials (TABLE=<table> [NAME=bootstrap SCOPES=admin ORGS=])
	PYTHONPATH=layers/common $(PY) -m sfbroker.admin_cli --table "$(TABLE)" create-token --name "$(or $(NAME),bootstrap)" --scopes "$(or $(SCOPES),admin)" --orgs "$(ORGS)"

reencrypt: $(VENV)/.installed ## After a key rotation, re-wrap every envelope under the key's current material (TABLE=<table> KEY=<key arn> [DRY_RUN=1] [RESUME=<cursor>])
	PYTHONPATH=layers/common $(PY) -m sfbroker.admin_cli --table "$(TABLE)" reencrypt $(if $(KEY),--key-id "$(KEY)") $(if $(filter 1,$(DRY_RUN)),--dry-run) $(if $(RESUME),--resume-from "$(RESUME)")

clean: ## Remove virtualenvs, caches and node tools
	rm -rf $(VENV) $(SAM_VENV) $(CHECKOV_VENV) local/node/node_modules .mypy_cache .ruff_cache .pytest_cache .coverage .aws-sam
