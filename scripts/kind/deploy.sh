#!/usr/bin/env bash
# Deploy the stack into the kind cluster made by up.sh and wait until the InferenceService
# answers through Kourier.
#
#   scripts/kind/deploy.sh [--helm] [--values FILE] [--release NAME]   (default)
#   scripts/kind/deploy.sh --kustomize OVERLAY       (manifests/overlays/OVERLAY)
#   common: [--skip-models]
#
# --helm: `helm upgrade --install` of the umbrella chart helm/feast-kserve with a values file
# (default helm/feast-kserve/ci/serverless-values.yaml); HELM_EXTRA_ARGS is appended
# (e.g. HELM_EXTRA_ARGS="--set-string foo=bar").
# Sized for one kind node (KIND_FIT=0 turns this off): the CPU *requests* of the two
# InferenceService containers go from 500m to 100m (limits unchanged) and the hourly
# materialize CronJob is off. kube-system, Knative + Kourier, KServe, Redis and Feast already
# request ~2.5 CPUs; the canary test needs the transformer and two predictor revisions at
# once (3 x 525m with queue-proxy), which does not fit the 4 CPUs of a GitHub runner.
# --kustomize OVERLAY: `kubectl apply -k manifests/overlays/OVERLAY`
# (serverless | standard | canary).
#
# How the models reach the cluster (kind has no object store):
#   1. models/sklearn and models/xgboost are trained on the host if missing (`make train`:
#      synthetic data, Feast, both frameworks; each metadata.json carries a content-derived
#      version, e.g. sklearn-4c93a1bee4fb / xgboost-..., which the transformer returns as
#      `model_version`);
#   2. `make upload-model MODEL=sklearn` and `MODEL=xgboost` (scripts/upload-model.sh, the
#      README's commands): the PVC `click-model-models` (RWO, kind's local-path StorageClass)
#      is created if missing and a short-lived pod of the predictor image (already
#      `kind load`ed, no pull) receives each directory, then is deleted;
#   3. the InferenceService uses storageUri pvc://click-model-models/sklearn (version 1);
#      the canary test and `make canary` switch to pvc://click-model-models/xgboost — a
#      second model version with a different `model_version`, so the share of requests each
#      revision answers can be counted. KServe mounts pvc:// URIs directly at /mnt/models.
#   The chart / overlay must therefore point storageUri at pvc://click-model-models/sklearn.
#
# At the end it writes build/kind-e2e.env (E2E_BASE_URL, E2E_HOST_HEADER, E2E_NAMESPACE,
# E2E_MODEL_NAME, E2E_CANARY_MODEL_URI, E2E_GRPC_PORT_FORWARD, E2E_KUBE_CONTEXT, and
# E2E_REDIS_SECRET: the stream test publishes events through a port-forward to Redis) for
# `make e2e-kind`. gRPC has no Knative route (one port per component, REST here): the suite
# port-forwards to the transformer pod's :8081 instead (tests/e2e/conftest.py).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MODE=helm
OVERLAY=""
RELEASE="${HELM_RELEASE:-feast-kserve}"
CHART="${REPO_ROOT}/helm/feast-kserve"
VALUES="${HELM_VALUES:-${CHART}/ci/serverless-values.yaml}"
SKIP_MODELS=0
MODEL_PVC="${MODEL_PVC:-click-model-models}"
MODELS_DIR="${MODELS_DIR:-${REPO_ROOT}/models}"
ISVC_TIMEOUT="${ISVC_TIMEOUT:-900s}"

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"; }

while (($#)); do
  case "$1" in
    --helm) MODE=helm ;;
    --kustomize)
      MODE=kustomize
      OVERLAY="${2:-}"
      [[ -n "${OVERLAY}" ]] || die "--kustomize needs an overlay name (serverless|standard|canary)"
      shift
      ;;
    --values)
      VALUES="${2:-}"
      shift
      ;;
    --release)
      RELEASE="${2:-}"
      shift
      ;;
    --skip-models) SKIP_MODELS=1 ;;
    -h | --help)
      usage
      exit 0
      ;;
    *)
      usage >&2
      die "unknown argument: $1"
      ;;
  esac
  shift
done

require_tools kubectl curl tar
if [[ "${MODE}" == helm ]]; then
  require_tools helm
fi
require_cluster
dump_state_on_failure

ensure_namespace() {
  if [[ -f "${REPO_ROOT}/manifests/base/namespace.yaml" ]]; then
    k apply -f "${REPO_ROOT}/manifests/base/namespace.yaml"
  elif ! k get namespace "${ISVC_NAMESPACE}" >/dev/null 2>&1; then
    k create namespace "${ISVC_NAMESPACE}"
  fi
}

ensure_local_models() {
  local fw missing=0
  for fw in sklearn xgboost; do
    [[ -f "${MODELS_DIR}/${fw}/metadata.json" ]] || missing=1
  done
  if ((missing)); then
    log "training models into ${MODELS_DIR} (make train)"
    make -C "${REPO_ROOT}" train
  fi
  for fw in sklearn xgboost; do
    [[ -f "${MODELS_DIR}/${fw}/metadata.json" ]] || die "${MODELS_DIR}/${fw}/metadata.json missing after training"
  done
}

# The README's sequence (same make targets), against the kind context: models into the PVC
# with the kind-loaded predictor image, chart dependencies.
make_() { make -C "${REPO_ROOT}" HELM=helm KUBECTL=kubectl KUBE_CONTEXT="${KUBE_CONTEXT}" HELM_NAMESPACE="${ISVC_NAMESPACE}" \
  MODEL_STORE_PVC="${MODEL_PVC}" IMAGE_PREFIX="${IMAGE_PREFIX:-kind.local}" IMAGE_TAG="${IMAGE_TAG:-dev}" "$@"; }

load_models_into_pvc() {
  log "uploading models/{sklearn,xgboost} into PVC ${MODEL_PVC} (make upload-model)"
  make_ upload-model MODEL=sklearn
  make_ upload-model MODEL=xgboost
}

deploy_helm() {
  [[ -f "${CHART}/Chart.yaml" ]] || die "chart ${CHART} not found"
  [[ -f "${VALUES}" ]] || die "values file ${VALUES} not found"
  make_ helm-deps
  local fit=()
  if [[ "${KIND_FIT:-1}" == "1" ]]; then
    fit=(
      --set-string inferenceService.predictor.resources.requests.cpu=100m
      --set-string inferenceService.transformer.resources.requests.cpu=100m
      --set feast.materialize.enabled=false
    )
  fi
  local canary
  canary="$(k get inferenceservice "${ISVC_NAME}" -n "${ISVC_NAMESPACE}" \
    -o jsonpath='{.spec.predictor.canaryTrafficPercent}' 2>/dev/null || true)"
  if [[ -n "${canary}" ]]; then
    log "warning: a canary rollout is in progress (canaryTrafficPercent=${canary}, set by the rollout CLI);" \
      "the chart does not own that field, so the chart's storageUri becomes the canary at ${canary}%." \
      "Finish it first (make promote / make rollback) to deploy the chart's model to 100%."
  fi
  # Helm 4 applies server-side: fields the rollout CLI patched since the last deploy
  # (storageUri) belong to another field manager, and the chart's values win over them.
  local helm_version
  helm_version="$(helm version --template '{{.Version}}')"
  if [[ "${helm_version}" == v4.* ]]; then
    fit+=(--force-conflicts)
  fi
  log "helm upgrade --install ${RELEASE} ${CHART} -f ${VALUES} ${fit[*]} ${HELM_EXTRA_ARGS:-}"
  # shellcheck disable=SC2086 # HELM_EXTRA_ARGS is a list of flags on purpose
  h upgrade --install "${RELEASE}" "${CHART}" --namespace "${ISVC_NAMESPACE}" \
    --create-namespace -f "${VALUES}" "${fit[@]}" --timeout "${HELM_TIMEOUT:-15m}" ${HELM_EXTRA_ARGS:-}
}

# The kustomize base commits no secret: create the Redis password and the transformer's
# tokens with random values (kept if they exist, so a redeploy rotates nothing).
random_hex() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }

ensure_kustomize_secrets() {
  if ! k get secret redis-auth -n "${ISVC_NAMESPACE}" >/dev/null 2>&1; then
    log "creating secret/redis-auth (random password)"
    k create secret generic redis-auth -n "${ISVC_NAMESPACE}" \
      --from-literal=redis-password="$(random_hex)" >/dev/null
  fi
  k get secret click-model-transformer-auth -n "${ISVC_NAMESPACE}" >/dev/null 2>&1 && return
  local infer write
  infer="$(random_hex)"
  write="$(random_hex)"
  log "creating secret/click-model-transformer-auth (random infer and write tokens)"
  k create secret generic click-model-transformer-auth -n "${ISVC_NAMESPACE}" \
    --from-literal=infer-token="${infer}" --from-literal=write-token="${write}" \
    --from-literal=tokens="$(printf 'infer:%s\nwrite:%s' "${infer}" "${write}")" >/dev/null
}

# e2e tokens: from the Secret the deployment mounts (helm: <name>-transformer-auth)
auth_token() {
  k get secret "${ISVC_NAME}-transformer-auth" -n "${ISVC_NAMESPACE}" -o jsonpath="{.data.$1}" 2>/dev/null | base64 -d
}

deploy_kustomize() {
  local dir="${REPO_ROOT}/manifests/overlays/${OVERLAY}"
  [[ -f "${dir}/kustomization.yaml" ]] || die "overlay ${dir} has no kustomization.yaml"
  ensure_kustomize_secrets
  log "kubectl apply -k ${dir}"
  k apply -k "${dir}"
  # Helm waits for its bootstrap hook; kubectl does not. Until the Job has applied and
  # materialized, the service answers with default scores.
  if k get job feast-bootstrap -n "${ISVC_NAMESPACE}" >/dev/null 2>&1; then
    log "waiting for job/feast-bootstrap (feast apply + first materialization)"
    local deadline=$((SECONDS + 600)) succeeded failed job_failed
    while true; do
      IFS=/ read -r succeeded failed job_failed < <(k get job feast-bootstrap -n "${ISVC_NAMESPACE}" \
        -o jsonpath='{.status.succeeded}/{.status.failed}/{.status.conditions[?(@.type=="Failed")].status}{"\n"}' \
        2>/dev/null || echo "//")
      [[ "${succeeded}" == 1 ]] && break
      [[ -z "${job_failed}" ]] ||
        die "job/feast-bootstrap failed (${failed:-0} failed pods); see its logs in the state dump"
      ((SECONDS < deadline)) || die "job/feast-bootstrap not complete after 600s"
      sleep 5
    done
  fi
}

# startup_failure: why the InferenceService's newest revisions cannot start, if that will not
# change by waiting; empty otherwise. Only each component's latestCreatedRevision counts
# (Knative keeps older, failed revisions around), and container exits do not (they can be
# transient on a first install). Image pull errors are read from the pods: Knative copies them
# onto the revision only at its progress deadline.
startup_failure() {
  local revisions rev pulls
  revisions="$(k get inferenceservice "${ISVC_NAME}" -n "${ISVC_NAMESPACE}" \
    -o jsonpath='{.status.components.predictor.latestCreatedRevision} {.status.components.transformer.latestCreatedRevision}' \
    2>/dev/null || true)"
  for rev in ${revisions}; do
    k get revision "${rev}" -n "${ISVC_NAMESPACE}" \
      -o jsonpath='{.metadata.name}{": "}{range .status.conditions[?(@.status=="False")]}{.reason}: {.message}{"; "}{end}' \
      2>/dev/null | grep -E 'ContainerMissing|ProgressDeadline' || true
    pulls="$(k get pods -n "${ISVC_NAMESPACE}" -l "serving.knative.dev/revision=${rev}" \
      -o jsonpath='{range .items[*]}{range .status.containerStatuses[*]}{.image}{" "}{.state.waiting.reason}{"\n"}{end}{end}' \
      2>/dev/null | grep -E 'ErrImagePull|ImagePullBackOff|InvalidImageName|ErrImageNeverPull' || true)"
    [[ -z "${pulls}" ]] || echo "${rev}: image pull: ${pulls}"
  done
}

wait_for_isvc() {
  local deadline=$((SECONDS + 120))
  until k get inferenceservice "${ISVC_NAME}" -n "${ISVC_NAMESPACE}" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || die "InferenceService ${ISVC_NAMESPACE}/${ISVC_NAME} was not created"
    sleep 3
  done
  # Redis, Feast, and the stream worker: it is Ready once Redis answers and its group exists,
  # never waiting for the predictor (still being created here, or cold), whose metadata it
  # retries in the background (docs/stream.md#operations).
  if [[ -n "$(k get deployment -n "${ISVC_NAMESPACE}" -l '!serving.knative.dev/revision' -o name 2>/dev/null)" ]]; then
    log "waiting for the supporting Deployments (redis, feast, stream worker, ...) in ${ISVC_NAMESPACE}"
    k wait --for=condition=Available deployment -l '!serving.knative.dev/revision' \
      -n "${ISVC_NAMESPACE}" --timeout=300s
  fi
  log "waiting up to ${ISVC_TIMEOUT} for InferenceService ${ISVC_NAMESPACE}/${ISVC_NAME} to be Ready"
  local timeout_s="${ISVC_TIMEOUT%s}" limit failed=""
  [[ "${timeout_s}" =~ ^[0-9]+$ ]] || die "ISVC_TIMEOUT must be in seconds (e.g. 900s), not ${ISVC_TIMEOUT}"
  limit=$((SECONDS + timeout_s))
  until k wait --for=condition=Ready "inferenceservice/${ISVC_NAME}" -n "${ISVC_NAMESPACE}" \
    --timeout=15s >/dev/null 2>&1; do
    failed="$(startup_failure)"
    [[ -z "${failed}" ]] || die "InferenceService ${ISVC_NAME} cannot start: ${failed}"
    ((SECONDS < limit)) || die "InferenceService ${ISVC_NAMESPACE}/${ISVC_NAME} not Ready after ${ISVC_TIMEOUT}"
  done
  log "InferenceService ${ISVC_NAMESPACE}/${ISVC_NAME} is Ready"
}

smoke_and_write_env() {
  local url host base ready_path code="" n
  url="$(k get inferenceservice "${ISVC_NAME}" -n "${ISVC_NAMESPACE}" -o jsonpath='{.status.url}')"
  host="${url#*://}"
  host="${host%%/*}"
  [[ -n "${host}" ]] || die "InferenceService has no status.url"
  base="http://127.0.0.1:${KIND_HTTP_PORT}"
  ready_path="/v2/models/${ISVC_NAME}/ready"
  # Ready can precede Kourier programming the route by a few seconds.
  for n in $(seq 1 30); do
    code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 60 -H "Host: ${host}" "${base}${ready_path}" || true)"
    [[ "${code}" == 200 ]] && break
    log "GET ${ready_path} (Host: ${host}) -> ${code:-no answer}, retry ${n}/30"
    sleep 5
  done
  [[ "${code}" == 200 ]] || die "${base}${ready_path} with Host: ${host} never answered 200"
  mkdir -p "$(dirname "${E2E_ENV_FILE}")"
  cat >"${E2E_ENV_FILE}" <<EOF
E2E_BASE_URL=${base}
E2E_HOST_HEADER=${host}
E2E_NAMESPACE=${ISVC_NAMESPACE}
E2E_MODEL_NAME=${ISVC_NAME}
E2E_CANARY_MODEL_URI=pvc://${MODEL_PVC}/xgboost
E2E_GRPC_PORT_FORWARD=1
E2E_KUBE_CONTEXT=${KUBE_CONTEXT}
E2E_REDIS_SECRET=$(if [[ "${MODE}" == helm ]]; then echo "${RELEASE}-redis-auth"; else echo redis-auth; fi)
E2E_TOKEN=$(auth_token infer-token)
E2E_WRITE_TOKEN=$(auth_token write-token)
EOF
  log "deployed; ${ready_path} answers 200. Environment for the e2e suite (${E2E_ENV_FILE}):"
  grep -v TOKEN= "${E2E_ENV_FILE}" >&2  # tokens stay out of the log
}

ensure_namespace
if ((SKIP_MODELS == 0)); then
  ensure_local_models
  load_models_into_pvc
fi
case "${MODE}" in
  helm) deploy_helm ;;
  kustomize) deploy_kustomize ;;
esac
wait_for_isvc
if [[ "${MODE}" == helm ]]; then
  log "helm test ${RELEASE} (one v2 inference through the transformer)"
  h test "${RELEASE}" --namespace "${ISVC_NAMESPACE}" --timeout "${HELM_TIMEOUT:-15m}" --logs
fi
smoke_and_write_env
k get inferenceservice "${ISVC_NAME}" -n "${ISVC_NAMESPACE}"
