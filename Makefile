# modelgate: every entry point a developer or CI needs. `make help` lists them.
SHELL := /bin/bash
PY := .venv/bin/python
export PATH := $(CURDIR)/.venv/bin:$(PATH)

.PHONY: help deps build peers cluster-up cluster-down prometheus-up prometheus-down crds manifests helm lint typecheck \
        test test-unit test-integration faults demo demo-down bench soak run clean

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

deps: ## Install the virtualenv and Debian's prometheus if missing
	@bash hack/deps.sh

build: ## Build the local control plane, Helm and gitops-health (Argo CD health, kstatus) from upstream Go modules (cached)
	@bash hack/build.sh >/dev/null
	@bash hack/build-helm.sh >/dev/null
	@bash hack/build-gitops.sh >/dev/null

helm: ## Build Helm from its Go module (cached) and print its path
	@bash hack/build-helm.sh

peers: ## Build the peers bench/peers.py compares with (Flagger, cached; not part of make test) and print their folder
	@bash hack/build-peers.sh

cluster-up: deps build ## Start (or reuse) the local control plane; kubeconfig in .cache/cluster/kubeconfig
	@$(PY) hack/cluster.py up

cluster-down: ## Stop the local control plane and remove its state
	@$(PY) hack/cluster.py down

prometheus-up: deps ## Start (or reuse) Prometheus on 127.0.0.1:29090
	@$(PY) hack/prometheus.py up

prometheus-down: ## Stop Prometheus
	@$(PY) hack/prometheus.py down

crds: deps ## Regenerate crds/ and charts/modelgate/crds/ from the pydantic models
	@$(PY) -m modelgate.api.crdgen crds charts/modelgate/crds

manifests: crds ## Render deploy/modelgate.yaml from charts/modelgate (default values, CRDs included)
	@$(PY) hack/manifests.py

lint: deps ## ruff, import-linter
	@ruff check operator tests hack bench
	@ruff format --check operator tests hack bench
	@lint-imports --no-cache

typecheck: deps ## mypy --strict on the package
	@mypy

test-unit: deps ## Pure unit tests, no I/O
	@$(PY) -m pytest tests/unit -q

test-integration: deps build ## Integration tests against the local control plane and Prometheus
	@$(PY) -m pytest tests/integration tests/e2e tests/hack -q

test: deps build lint typecheck ## Everything CI runs: lint, types, unit and integration tests
	@$(PY) -m pytest tests -q -n auto --dist loadfile --durations=25

faults: deps build ## The fault suite's long variants (tests/faults, MODELGATE_FAULTS_LONG=1; MODELGATE_FAULTS_SEED replays)
	@MODELGATE_FAULTS_LONG=1 $(PY) -m pytest tests/faults -q -s

demo: deps build ## The example scenario on the local control plane, with the operator running
	@$(PY) hack/demo.py

demo-down: ## Stop the demo's operator, Prometheus and control plane
	@$(PY) hack/demo.py down

bench: deps build ## Benchmarks at their default sizes, bench/peers.py (Flagger) as a smoke run (see BENCHMARKS.md for the full-size commands)
	@$(PY) bench/admission.py
	@$(PY) bench/monitoring.py --n 200
	@bash hack/build-peers.sh >/dev/null
	@$(PY) bench/peers.py --smoke

soak: deps build ## Soak: 1,000 models, 30 minutes of churn and idle phases (SOAK_ARGS="--models 50 --minutes 3"); not in make test
	@$(PY) bench/soak.py $(SOAK_ARGS)

clean: cluster-down prometheus-down ## Stop everything and remove caches in the tree
	rm -rf .cache .pytest_cache .mypy_cache .ruff_cache
