# The one interface: `make help` lists the targets. CI calls these targets too.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
ONLINE_STORE ?= sqlite
FRAMEWORK ?= sklearn
MODEL_DIR ?= models/$(FRAMEWORK)
MODE ?= online
COLLOCATED ?=
BATCH_ARGS ?=
BENCH_USERS ?= 1000000
PYTEST_ARGS ?=

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-zA-Z0-9_.-]+:.*## ' $(MAKEFILE_LIST) | sort | \
	  awk 'BEGIN {FS = ":.*## "}; {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	@# bytecode for -O too: the servers run with PYTHONOPTIMIZE=1, as in the images (a few
	@# vendored files that do not compile make compileall exit 1; nothing we import)
	-@$(PY) -O -m compileall -q -j 0 $(VENV)/lib > /dev/null 2>&1
	@touch $(STAMP)

.PHONY: venv
venv: $(STAMP) ## Create .venv and install the project with its dev tools

.PHONY: data
data: $(STAMP) ## Generate synthetic data, feast apply and materialize (sqlite)
	$(PY) -c "from devtools.stack import FeatureEnv, prepare_features, ROOT; prepare_features(FeatureEnv(ROOT / 'feature_repo'), force=True)"

.PHONY: train
train: $(STAMP) ## Train both frameworks into models/sklearn and models/xgboost
	@test -f feature_repo/data/user_data.parquet || $(MAKE) data
	$(PY) -m predictor.jobs.train --framework sklearn --output models/sklearn
	$(PY) -m predictor.jobs.train --framework xgboost --output models/xgboost

.PHONY: batch
batch: $(STAMP) ## Precompute predictions for every user with Ray and write them to the online store
	@test -f $(MODEL_DIR)/metadata.json || $(MAKE) train
	$(PY) -m predictor.jobs.batch --model-dir $(MODEL_DIR) $(BATCH_ARGS)

.PHONY: bench-batch
bench-batch: $(STAMP) ## Ray batch job vs pandas + feast materialize on BENCH_USERS users (default 1M)
	@test -f $(MODEL_DIR)/metadata.json || $(MAKE) train
	$(PY) -m devtools.bench_batch --users $(BENCH_USERS) --model-dir $(MODEL_DIR)

.PHONY: run
run: $(STAMP) ## Run the local stack (ONLINE_STORE=sqlite|redis, FRAMEWORK=sklearn|xgboost, MODE=online|cached|precomputed, COLLOCATED=1)
	$(PY) -m devtools.stack --online-store $(ONLINE_STORE) --framework $(FRAMEWORK) --mode $(MODE) \
	  $(if $(filter 1 true yes,$(COLLOCATED)),--collocated)

.PHONY: test
test: $(STAMP) ## Unit, integration and local e2e tests (everything but the kind cluster)
	$(PY) -m pytest -m "not cluster" $(PYTEST_ARGS)

.PHONY: test-unit
test-unit: $(STAMP) ## Unit tests only (seconds)
	$(PY) -m pytest -m unit $(PYTEST_ARGS)

.PHONY: test-integration
test-integration: $(STAMP) ## Integration tests: real redis-server, Feast and model servers
	$(PY) -m pytest -m integration $(PYTEST_ARGS)

.PHONY: e2e-local
e2e-local: $(STAMP) ## The e2e suite against a local stack it starts (or E2E_BASE_URL)
	$(PY) -m pytest -m e2e $(PYTEST_ARGS)

.PHONY: lint
lint: $(STAMP) ## ruff lint and format check
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

.PHONY: typecheck
typecheck: $(STAMP) ## mypy on the packages
	$(PY) -m mypy predictor transformer devtools

.PHONY: clean
clean: ## Remove generated data, models and caches (keeps .venv)
	rm -rf feature_repo/data models .pytest_cache .ruff_cache

-include mk/*.mk
