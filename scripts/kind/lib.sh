# shellcheck shell=bash disable=SC2034 # settings here are used by the sourcing scripts
# Shared by scripts/kind/*.sh (sourced, never run): settings, logging, tool checks, waits and
# the trap that dumps cluster state when a script fails. Every kubectl/helm call goes through
# k/h, which pin the kube context to the kind cluster so a stray current-context is never used.

KIND_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "${KIND_DIR}/../.." && pwd)"
SCRIPT_NAME="$(basename "${BASH_SOURCE[1]:-${0}}")"
# shellcheck source-path=SCRIPTDIR source=versions.env
source "${KIND_DIR}/versions.env"

KIND_CLUSTER_NAME="${KIND_CLUSTER_NAME:-feast-kserve}"
KUBE_CONTEXT="${KUBE_CONTEXT:-kind-${KIND_CLUSTER_NAME}}"
ISVC_NAME="${ISVC_NAME:-click-model}"
ISVC_NAMESPACE="${ISVC_NAMESPACE:-feast-inference}"
# Host port that reaches Kourier's NodePort (see up.sh: kind extraPortMappings).
KIND_HTTP_PORT="${KIND_HTTP_PORT:-31080}"
KOURIER_NODE_PORT=31080
DUMP_DIR="${DUMP_DIR:-${REPO_ROOT}/build/kind-state}"
E2E_ENV_FILE="${E2E_ENV_FILE:-${REPO_ROOT}/build/kind-e2e.env}"

# helm/kubectl installed by scripts/install-k8s-tools.sh take precedence.
if [[ -d "${REPO_ROOT}/.tools/bin" ]]; then
  PATH="${REPO_ROOT}/.tools/bin:${PATH}"
fi

log() { printf '%s [%s] %s\n' "$(date -u +%H:%M:%S)" "${SCRIPT_NAME}" "$*" >&2; }
die() {
  log "ERROR: $*"
  exit 1
}

k() { kubectl --context "${KUBE_CONTEXT}" "$@"; }
h() { helm --kube-context "${KUBE_CONTEXT}" "$@"; }

require_tools() {
  local tool
  for tool in "$@"; do
    command -v "${tool}" >/dev/null 2>&1 ||
      die "'${tool}' not found on PATH (helm/kubectl: scripts/install-k8s-tools.sh; kind: https://kind.sigs.k8s.io, ${KIND_VERSION})"
  done
}

require_cluster() {
  k cluster-info >/dev/null 2>&1 ||
    die "kube context '${KUBE_CONTEXT}' is not reachable; run scripts/kind/up.sh (make kind-up) first"
}

# retry ATTEMPTS DELAY_SECONDS CMD...: for steps racing a webhook that is not serving yet.
retry() {
  local attempts="$1" delay="$2" n=1
  shift 2
  until "$@"; do
    if ((n >= attempts)); then
      log "giving up after ${attempts} attempts: $*"
      return 1
    fi
    log "attempt ${n}/${attempts} failed, retrying in ${delay}s: $*"
    sleep "${delay}"
    n=$((n + 1))
  done
}

# wait_deployments NAMESPACE TIMEOUT: every Deployment of the namespace Available.
wait_deployments() {
  local ns="$1" timeout="$2"
  if [[ -z "$(k get deployment -n "${ns}" -o name 2>/dev/null)" ]]; then
    log "no Deployments in namespace ${ns} yet; waiting for them to be created"
    local waited=0
    until [[ -n "$(k get deployment -n "${ns}" -o name 2>/dev/null)" ]]; do
      ((waited >= 120)) && die "no Deployment appeared in namespace ${ns} within 120s"
      sleep 5
      waited=$((waited + 5))
    done
  fi
  log "waiting up to ${timeout} for the Deployments in ${ns} to be Available"
  k wait --for=condition=Available deployment --all -n "${ns}" --timeout="${timeout}"
}

# Run dump-state.sh when the calling script exits non-zero (KIND_DUMP_ON_FAILURE=0 disables).
_dump_on_exit() {
  local rc="$1"
  if ((rc != 0)) && [[ "${KIND_DUMP_ON_FAILURE:-1}" == "1" ]]; then
    log "failed with exit code ${rc}; dumping cluster state to ${DUMP_DIR}"
    "${KIND_DIR}/dump-state.sh" "${SCRIPT_NAME%.sh}-failed" || log "dump-state.sh failed too"
  fi
}
dump_state_on_failure() {
  trap '_dump_on_exit $?' EXIT
}
