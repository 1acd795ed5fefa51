#!/usr/bin/env bash
# Create a kind cluster and install the serving stack, all at pinned versions
# (scripts/kind/versions.env):
#
#   kind ${KIND_VERSION} node ${KIND_NODE_IMAGE}
#   cert-manager ${CERT_MANAGER_VERSION}            (KServe webhook certificates)
#   Knative Serving ${KNATIVE_SERVING_VERSION} + net-kourier ${KNATIVE_NET_KOURIER_VERSION}
#   KServe ${KSERVE_VERSION}                        (Helm charts kserve-crd + kserve-resources,
#                                                    Knative deployment mode, no Istio)
#
# KSERVE_VERSION defaults to the newest KServe release (v0.20.0); KSERVE_VERSION=v0.17.0
# (KSERVE_MIN_VERSION, the oldest we support) installs the other entry of the e2e matrix.
#
# Networking: Kourier is Knative's ingress; KServe's Istio VirtualService is disabled
# (disableIstioVirtualHost), so requests go to the component hosts Knative routes, e.g.
# Host: click-model-transformer.feast-inference.example.com. A NodePort Service
# (kourier-nodeport, port ${KOURIER_NODE_PORT}) plus a kind extraPortMapping makes Kourier
# reachable at http://127.0.0.1:${KIND_HTTP_PORT} on the host: no port-forward to babysit.
#
# Knative config for kind: domain example.com (the default svc.cluster.local is not exposed
# through the ingress) and no tag-to-digest resolution for images from "kind.local/" (they are
# `kind load`ed, there is no registry to ask; see load.sh for why not "localhost/").
#
# Idempotent: an existing cluster of the same name is reused and the manifests re-applied.
# Every wait is a `kubectl wait --timeout`; on failure the EXIT trap runs dump-state.sh.
#
# Usage: scripts/kind/up.sh   (env: KIND_CLUSTER_NAME=feast-kserve KIND_HTTP_PORT=31080)
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

require_tools docker kind kubectl helm
dump_state_on_failure

# The stack requests ~3.1 CPUs at the canary test's peak (docs/kind-e2e.md): on fewer than
# KIND_MIN_CPUS the pods would stay Pending and the run would fail only at a timeout.
cpus="$(docker info --format '{{.NCPU}}' 2>/dev/null || nproc)"
if ((cpus < ${KIND_MIN_CPUS:-4})); then
  die "Docker has ${cpus} CPUs; the stack needs ${KIND_MIN_CPUS:-4} (e.g. GitHub's standard runner of a" \
    "public repository, or a larger runner for private ones). KIND_MIN_CPUS=${cpus} tries anyway."
fi

have_kind="$(kind version 2>/dev/null | awk '{print $2}')"
if [[ "${have_kind}" != "${KIND_VERSION}" ]]; then
  log "warning: kind ${have_kind:-?} on PATH, ${KIND_VERSION} pinned; node image ${KIND_NODE_IMAGE} is built for ${KIND_VERSION}"
fi

# ---------------------------------------------------------------- cluster
if kind get clusters 2>/dev/null | grep -x "${KIND_CLUSTER_NAME}" >/dev/null; then
  log "kind cluster ${KIND_CLUSTER_NAME} exists, reusing it"
else
  log "creating kind cluster ${KIND_CLUSTER_NAME} (${KIND_NODE_IMAGE})"
  kind create cluster --name "${KIND_CLUSTER_NAME}" --image "${KIND_NODE_IMAGE}" --wait 180s --config - <<EOF
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
nodes:
  - role: control-plane
    extraPortMappings:
      - containerPort: ${KOURIER_NODE_PORT}
        hostPort: ${KIND_HTTP_PORT}
        listenAddress: "127.0.0.1"
        protocol: TCP
EOF
fi
k wait --for=condition=Ready node --all --timeout=180s

# ---------------------------------------------------------------- cert-manager
log "installing cert-manager ${CERT_MANAGER_VERSION}"
k apply -f "https://github.com/cert-manager/cert-manager/releases/download/${CERT_MANAGER_VERSION}/cert-manager.yaml"
wait_deployments cert-manager 300s

# ---------------------------------------------------------------- Knative Serving + Kourier
log "installing Knative Serving ${KNATIVE_SERVING_VERSION}"
k apply -f "https://github.com/knative/serving/releases/download/${KNATIVE_SERVING_VERSION}/serving-crds.yaml"
k wait --for=condition=Established crd -l knative.dev/crd-install=true --timeout=120s
k apply -f "https://github.com/knative/serving/releases/download/${KNATIVE_SERVING_VERSION}/serving-core.yaml"

log "installing net-kourier ${KNATIVE_NET_KOURIER_VERSION}"
# ConfigMaps in knative-serving are validated by Knative's webhook, which may not be serving
# yet right after serving-core.yaml: these idempotent steps are retried.
retry 5 10 k apply -f "https://github.com/knative-extensions/net-kourier/releases/download/${KNATIVE_NET_KOURIER_VERSION}/kourier.yaml"
retry 5 10 k patch configmap/config-network -n knative-serving --type merge \
  -p '{"data":{"ingress-class":"kourier.ingress.networking.knative.dev"}}'
retry 5 10 k patch configmap/config-domain -n knative-serving --type merge \
  -p '{"data":{"example.com":""}}'
retry 5 10 k patch configmap/config-deployment -n knative-serving --type merge \
  -p '{"data":{"registries-skipping-tag-resolving":"kind.local,ko.local,dev.local"}}'

k apply -f - <<EOF
apiVersion: v1
kind: Service
metadata:
  name: kourier-nodeport
  namespace: kourier-system
  labels:
    app.kubernetes.io/part-of: feast-kserve-e2e
spec:
  type: NodePort
  selector:
    app: 3scale-kourier-gateway
  ports:
    - name: http2
      port: 80
      targetPort: 8080
      nodePort: ${KOURIER_NODE_PORT}
EOF
wait_deployments knative-serving 300s
wait_deployments kourier-system 300s

# ---------------------------------------------------------------- KServe
log "installing KServe ${KSERVE_VERSION} (Knative mode, Kourier, no Istio)"
retry 3 20 h upgrade --install kserve-crd oci://ghcr.io/kserve/charts/kserve-crd \
  --version "${KSERVE_VERSION}" --namespace kserve --create-namespace --wait --timeout 5m
# The first install races two webhooks: cert-manager's (the chart's Certificate/Issuer) and
# KServe's own, whose controller the same release creates ("failed calling webhook ...
# connection refused", kserve/kserve#4844). After a failed attempt, wait for the controller
# to be rolled out before the next one; an upgrade over a failed first install is fine.
install_kserve_resources() {
  h upgrade --install kserve-resources oci://ghcr.io/kserve/charts/kserve-resources \
    --version "${KSERVE_VERSION}" --namespace kserve --wait --timeout 10m \
    --set kserve.controller.deploymentMode=Knative \
    --set kserve.controller.gateway.disableIstioVirtualHost=true \
    --set-string kserve.inferenceservice.resources.requests.cpu=100m \
    --set-string kserve.inferenceservice.resources.requests.memory=256Mi && return 0
  if k get deployment kserve-controller-manager -n kserve >/dev/null 2>&1; then
    log "waiting for kserve-controller-manager (its webhook) before retrying"
    k rollout status deployment/kserve-controller-manager -n kserve --timeout=300s || true
  fi
  return 1
}
retry 4 15 install_kserve_resources
wait_deployments kserve 300s

log "stack ready: kind ${KIND_CLUSTER_NAME} (context ${KUBE_CONTEXT}), Kourier at http://127.0.0.1:${KIND_HTTP_PORT}"
k get pods -n kserve -o wide
k get pods -n knative-serving -o wide
k get pods -n kourier-system -o wide
