#!/usr/bin/env bash
# Dump what is needed to diagnose a red run from its log and artifacts: nodes, pods, events,
# the InferenceService and its Knative objects (yaml), describe of our pods, logs of every
# container of our pods (current and previous) and of the KServe / Knative / Kourier /
# cert-manager controllers, and the config maps that shape routing.
#
# A summary goes to stdout (so it is in the CI log); everything goes to files under
# ${DUMP_DIR}/<UTC time>-<LABEL>/ (uploaded as a workflow artifact on failure).
# Best effort by design: a failing kubectl call is noted and the dump goes on; exits 0.
#
# Usage: scripts/kind/dump-state.sh [LABEL]   (env: DUMP_DIR KIND_CLUSTER_NAME ISVC_NAMESPACE)
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

LABEL="${1:-manual}"
OUT="${DUMP_DIR}/$(date -u +%Y%m%dT%H%M%SZ)-${LABEL}"
mkdir -p "${OUT}/logs"

# save FILE CMD...: run CMD (stdout+stderr) into ${OUT}/FILE; never fails.
save() {
  local file="$1"
  shift
  if ! "$@" >"${OUT}/${file}" 2>&1; then
    echo "(command failed: $*)" >>"${OUT}/${file}"
  fi
}

# show TITLE CMD...: like save, but also print it (bounded) to stdout.
show() {
  local title="$1" file="$2"
  shift 2
  save "${file}" "$@"
  echo "===== ${title} (${OUT}/${file})"
  head -n "${SHOW_LINES:-80}" "${OUT}/${file}"
}

if ! command -v kubectl >/dev/null 2>&1 || ! k cluster-info >"${OUT}/cluster-info.txt" 2>&1; then
  echo "dump-state: kube context ${KUBE_CONTEXT} not reachable (no cluster yet?); see ${OUT}/cluster-info.txt"
  exit 0
fi

echo "dump-state: writing to ${OUT}"
save version.txt k version
show "nodes" nodes.txt k get nodes -o wide
save nodes-describe.txt k describe nodes
show "pods (all namespaces)" pods.txt k get pods -A -o wide
SHOW_LINES=60 show "recent events (all namespaces)" events.txt \
  bash -c "kubectl --context '${KUBE_CONTEXT}' get events -A --sort-by=.lastTimestamp | tail -n 200"
show "InferenceServices" isvc.txt k get inferenceservice -A
save isvc.yaml k get inferenceservice -A -o yaml
save servingruntimes.yaml k get servingruntime,clusterservingruntime -A -o yaml
show "Knative revisions in ${ISVC_NAMESPACE}" revisions.txt k get revisions -n "${ISVC_NAMESPACE}" -o wide
save knative-objects.yaml k get ksvc,configurations,revisions,routes,ingresses.networking.internal.knative.dev \
  -n "${ISVC_NAMESPACE}" -o yaml
save namespace-objects.txt k get all,pvc,configmap,secret,job -n "${ISVC_NAMESPACE}" -o wide
save pods-describe.txt k describe pods -n "${ISVC_NAMESPACE}"
save config-maps.yaml bash -c "
  kubectl --context '${KUBE_CONTEXT}' get configmap inferenceservice-config -n kserve -o yaml
  kubectl --context '${KUBE_CONTEXT}' get configmap config-network config-domain config-deployment config-autoscaler \
    -n knative-serving -o yaml"

# Logs of every container (init containers too) of every pod in our namespace.
echo "===== container logs of ${ISVC_NAMESPACE} (last ${LOG_TAIL_LINES:-30} lines each; full logs in ${OUT}/logs)"
for pod in $(k get pods -n "${ISVC_NAMESPACE}" -o jsonpath='{.items[*].metadata.name}' 2>/dev/null); do
  for c in $(k get pod "${pod}" -n "${ISVC_NAMESPACE}" \
    -o jsonpath='{.spec.initContainers[*].name} {.spec.containers[*].name}' 2>/dev/null); do
    save "logs/${pod}_${c}.log" k logs "${pod}" -c "${c}" -n "${ISVC_NAMESPACE}" --timestamps
    if k logs "${pod}" -c "${c}" -n "${ISVC_NAMESPACE}" --previous >"${OUT}/logs/${pod}_${c}.previous.log" 2>/dev/null; then
      echo "----- ${pod}/${c} restarted; previous log: ${OUT}/logs/${pod}_${c}.previous.log"
    else
      rm -f "${OUT}/logs/${pod}_${c}.previous.log"
    fi
    echo "----- ${pod}/${c}"
    tail -n "${LOG_TAIL_LINES:-30}" "${OUT}/logs/${pod}_${c}.log"
  done
done

# Controllers: the usual suspects when an InferenceService does not become Ready.
for spec in \
  kserve:deploy/kserve-controller-manager \
  knative-serving:deploy/controller \
  knative-serving:deploy/activator \
  knative-serving:deploy/autoscaler \
  knative-serving:deploy/webhook \
  knative-serving:deploy/net-kourier-controller \
  kourier-system:deploy/3scale-kourier-gateway \
  cert-manager:deploy/cert-manager \
  cert-manager:deploy/cert-manager-webhook; do
  ns="${spec%%:*}"
  obj="${spec#*:}"
  save "logs/${ns}_${obj#deploy/}.log" k logs "${obj}" -n "${ns}" --all-containers --tail=2000 --timestamps
done
echo "===== KServe controller (last 40 lines)"
tail -n 40 "${OUT}/logs/kserve_kserve-controller-manager.log"
echo "dump-state: done, ${OUT}"
