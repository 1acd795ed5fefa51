# kind cluster, deployment, cluster e2e suite and canary rollout (included by the Makefile).
# Scripts: scripts/kind/*.sh (pinned versions in scripts/kind/versions.env); rollout CLI:
# predictor/rollout/ (python -m predictor.rollout). Walkthroughs: docs/kind-e2e.md, docs/canary.md.

KIND_CLUSTER_NAME ?= feast-kserve
KIND_HTTP_PORT ?= 31080
KIND_NAMESPACE ?= feast-inference
KIND_ISVC ?= click-model
KIND_HELM_VALUES ?= helm/feast-kserve/ci/serverless-values.yaml
KIND_OVERLAY ?= kind
KIND_E2E_ENV ?= build/kind-e2e.env
E2E_KIND_ARGS ?=
# Canary rollout (make canary CANARY_PERCENT=50; make promote MODEL_URI=pvc://...).
CANARY_MODEL_URI ?= pvc://click-model-models/xgboost
CANARY_PERCENT ?= 20
MODEL_URI ?=
# kube context of the rollout targets; empty: the current one (kubectl config current-context).
# The kind workflow sets it to kind-$(KIND_CLUSTER_NAME).
ROLLOUT_CONTEXT ?= $(KUBE_CONTEXT)
# The rollout CLI needs only the `kubernetes` client (predictor/rollout/ imports nothing
# else): an existing dev venv is used as it is (kserve brings kubernetes), else the rollout
# targets make a lean venv with just the pyproject extra `rollout`; never the dev install.
ROLLOUT_VENV ?= .venv-rollout
ROLLOUT_PY := $(if $(wildcard $(STAMP)),$(PY),$(ROLLOUT_VENV)/bin/python)
ROLLOUT_STAMP := $(if $(wildcard $(STAMP)),,$(ROLLOUT_VENV)/.installed)

KIND_ENV = KIND_CLUSTER_NAME=$(KIND_CLUSTER_NAME) KIND_HTTP_PORT=$(KIND_HTTP_PORT) \
	ISVC_NAMESPACE=$(KIND_NAMESPACE) ISVC_NAME=$(KIND_ISVC) E2E_ENV_FILE=$(KIND_E2E_ENV)
ROLLOUT_ARGS = --name $(KIND_ISVC) --namespace $(KIND_NAMESPACE) \
	$(if $(ROLLOUT_CONTEXT),--context $(ROLLOUT_CONTEXT))

$(ROLLOUT_VENV)/.installed: pyproject.toml
	@test -x $(ROLLOUT_VENV)/bin/python || $(PYTHON) -m venv $(ROLLOUT_VENV)
	$(ROLLOUT_VENV)/bin/python -m pip install --quiet $$($(ROLLOUT_VENV)/bin/python -c \
	  "import tomllib; print(*tomllib.load(open('pyproject.toml', 'rb'))['project']['optional-dependencies']['rollout'])")
	@touch $@

.PHONY: kind-up kind-load deploy deploy-kustomize kind-down kind-dump e2e-kind \
	canary promote rollback rollout-status workflows-check

kind-up: ## Create the kind cluster with cert-manager, Knative Serving + Kourier and KServe (pinned)
	$(KIND_ENV) scripts/kind/up.sh

kind-load: ## Build the predictor/transformer images and kind-load them (kind.local/...:dev)
	$(KIND_ENV) scripts/kind/load.sh

deploy: ## helm upgrade --install the umbrella chart into kind (KIND_HELM_VALUES=...), models on a PVC
	$(KIND_ENV) scripts/kind/deploy.sh --helm --values $(KIND_HELM_VALUES)

deploy-kustomize: ## Deploy with kubectl apply -k manifests/overlays/KIND_OVERLAY (serverless) instead of helm
	$(KIND_ENV) scripts/kind/deploy.sh --kustomize $(KIND_OVERLAY)

kind-down: ## Delete the kind cluster
	$(KIND_ENV) scripts/kind/down.sh

kind-dump: ## Dump pods, events, InferenceService and logs of the kind cluster to build/kind-state
	$(KIND_ENV) scripts/kind/dump-state.sh manual

e2e-kind: $(STAMP) ## Run the e2e suite with the cluster tests (canary, autoscaling) against kind
	@test -f $(KIND_E2E_ENV) || { echo "$(KIND_E2E_ENV) missing: run make kind-up kind-load deploy" >&2; exit 1; }
	set -a && . "$(abspath $(KIND_E2E_ENV))" && set +a && E2E_REQUIRE_CLUSTER=1 \
		$(PY) -m pytest -m "e2e or cluster" tests/e2e $(E2E_KIND_ARGS)

canary: $(ROLLOUT_STAMP) ## Canary CANARY_MODEL_URI at CANARY_PERCENT% of traffic and wait for the split
	$(ROLLOUT_PY) -m predictor.rollout canary $(ROLLOUT_ARGS) --model-uri $(CANARY_MODEL_URI) --percent $(CANARY_PERCENT)

promote: $(ROLLOUT_STAMP) ## Give the canary 100% (MODEL_URI=... rolls forward to that model instead)
	$(ROLLOUT_PY) -m predictor.rollout promote $(ROLLOUT_ARGS) $(if $(MODEL_URI),--model-uri $(MODEL_URI))

rollback: $(ROLLOUT_STAMP) ## Send all traffic back to the last rolled-out revision (canary at 0%)
	$(ROLLOUT_PY) -m predictor.rollout rollback $(ROLLOUT_ARGS)

rollout-status: $(ROLLOUT_STAMP) ## Print the InferenceService traffic split per revision
	$(ROLLOUT_PY) -m predictor.rollout status $(ROLLOUT_ARGS)

workflows-check: $(STAMP) ## Schema-check the GitHub workflows/actions, pins and the make targets they call
	$(PY) -m pytest -p no:cacheprovider -q tests/ci
