# mintplane — the two commands a newcomer needs are `make up` and `make test` (see README.md).
SHELL := /bin/bash
PY := .venv/bin/python
MINTPLANE := .venv/bin/mintplane

.PHONY: help install up down wipe status env migrate test test-unit test-e2e kind-e2e chart-crds gateway-schema lint typecheck check-generated proto contracts

help:  ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

install:  ## install Debian packages, .venv, node_modules and the Go-built tools (idempotent)
	@bash scripts/install.sh

up: install  ## install, then start the whole platform on loopback and print where everything listens
	@$(MINTPLANE) dev up

down:  ## stop what `make up` started (data kept)
	@$(MINTPLANE) dev down

wipe:  ## stop everything and delete the dev stack's data, certs and kubeconfig
	@$(MINTPLANE) dev down --wipe

status:  ## probe every piece for real; non-zero exit if any is down
	@$(MINTPLANE) dev status

env:  ## print exports for KUBECONFIG and PATH: eval "$$(make -s env)"
	@$(MINTPLANE) dev env

migrate:  ## apply database migrations (forward-only, re-runnable)
	@$(MINTPLANE) migrate

lint:  ## ruff and shellcheck
	@.venv/bin/ruff check .
	@.venv/bin/shellcheck scripts/*.sh .ci/run

typecheck:  ## mypy --strict over every Python package
	@.venv/bin/mypy services $(wildcard operator/mintplane/operator)

check-generated:  ## fail if proto stubs or contract artifacts are stale
	@bash scripts/gen-proto.sh --check
	@node scripts/build-contracts.mjs --check
	@node tests/fixtures/auth/build-contracts.mjs --check

gateway-schema:  ## regenerate the gateway's committed GraphQL SDL (a unit test checks it is fresh)
	@$(PY) -m mintplane.gateway.sdl > services/mintplane/gateway/schema.graphql

proto:  ## regenerate gRPC stubs from proto/
	@bash scripts/gen-proto.sh

contracts:  ## recompile contracts/src into contracts/build (and the shared ERC-6492 validator and auth test wallets)
	@node scripts/build-contracts.mjs
	@node tests/fixtures/auth/build-contracts.mjs

kind-e2e:  ## build the image, create a kind cluster, helm install, run tests/e2e there (needs Docker)
	@bash scripts/kind-e2e.sh

chart-crds:  ## copy crds/ into charts/mintplane/crds (a unit test checks they are the same)
	@bash scripts/sync-chart-crds.sh

test-e2e:  ## end-to-end tests only (custom resources, operator, chart, gateway) against the running stack
	@$(PY) -m pytest -m e2e

test-unit:  ## unit tests only (need nothing running)
	@$(PY) -m pytest -m unit

test: lint typecheck check-generated  ## the whole suite against the running dev stack (make up first)
	@$(MINTPLANE) dev status >/dev/null || { echo "dev stack is not up: run 'make up' first" >&2; $(MINTPLANE) dev status; exit 1; }
	@$(PY) -m pytest
