#!/usr/bin/env bash
# Copy one trained model version into the model store PVC (storageUri pvc://<PVC>/<version>).
#
#   scripts/upload-model.sh models/sklearn      (make upload-model MODEL=sklearn)
#
# env: NAMESPACE (feast-inference), MODEL_STORE_PVC (click-model-models), IMAGE (the predictor
# image the cluster pulls: IMAGE_PREFIX/feast-kserve-predictor:IMAGE_TAG), KUBE_CONTEXT (empty:
# the current context), KUBECTL (kubectl).
#
# 1. creates the PVC from manifests/tools/model-store-pvc.yaml if it does not exist (the
#    namespace must exist: kubectl apply -f manifests/base/namespace.yaml);
# 2. starts manifests/tools/model-uploader.yaml with IMAGE, streams the directory in with
#    `tar | python tarfile` (the image has python, no tar needed), prints its metadata.json;
# 3. deletes the pod.
# A version directory is immutable: if it already exists with the same metadata "version" the
# upload is skipped, with another version the script fails (a storageUri must always mean the
# same bytes). Object storage instead of a PVC: docs/deploy.md ("Object store").
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SRC="${1:?usage: scripts/upload-model.sh models/<version>}"
NAMESPACE="${NAMESPACE:-feast-inference}"
MODEL_STORE_PVC="${MODEL_STORE_PVC:-click-model-models}"
IMAGE="${IMAGE:?IMAGE (the predictor image, IMAGE_PREFIX/feast-kserve-predictor:IMAGE_TAG) is required}"
KUBECTL="${KUBECTL:-kubectl}"
POD=model-uploader
VERSION_DIR="$(basename "${SRC}")"

log() { printf 'upload-model: %s\n' "$*" >&2; }
die() {
  log "ERROR: $*"
  exit 1
}
kc() { "${KUBECTL}" ${KUBE_CONTEXT:+--context "${KUBE_CONTEXT}"} "$@"; }
k() { kc -n "${NAMESPACE}" "$@"; }

[[ -f "${SRC}/metadata.json" ]] || die "${SRC}/metadata.json not found: train first (make train)"
version="$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["version"])' "${SRC}/metadata.json")"

kc get namespace "${NAMESPACE}" >/dev/null ||
  die "namespace ${NAMESPACE} does not exist: kubectl apply -f manifests/base/namespace.yaml"
if ! k get pvc "${MODEL_STORE_PVC}" >/dev/null 2>&1; then
  log "creating PVC ${MODEL_STORE_PVC} in ${NAMESPACE}"
  sed "s/^  name: click-model-models$/  name: ${MODEL_STORE_PVC}/; s/^  namespace: .*/  namespace: ${NAMESPACE}/" \
    "${REPO_ROOT}/manifests/tools/model-store-pvc.yaml" | k apply -f -
fi

cleanup() { k delete pod "${POD}" --ignore-not-found --wait=false >/dev/null 2>&1 || true; }
trap cleanup EXIT
k delete pod "${POD}" --ignore-not-found --wait=true --timeout=120s
sed "s#^      image: .*#      image: ${IMAGE}#; s/^  namespace: .*/  namespace: ${NAMESPACE}/; s/claimName: click-model-models$/claimName: ${MODEL_STORE_PVC}/" \
  "${REPO_ROOT}/manifests/tools/model-uploader.yaml" | k apply -f -
k wait --for=condition=Ready "pod/${POD}" --timeout=300s

existing="$(k exec "${POD}" -- python -c '
import json, sys
try:
    print(json.load(open(sys.argv[1]))["version"])
except FileNotFoundError:
    pass
' "/mnt/models/${VERSION_DIR}/metadata.json")"
if [[ "${existing}" == "${version}" ]]; then
  log "pvc://${MODEL_STORE_PVC}/${VERSION_DIR} already holds version ${version}; nothing to do"
  exit 0
elif [[ -n "${existing}" ]]; then
  die "pvc://${MODEL_STORE_PVC}/${VERSION_DIR} holds version ${existing}, not ${version}: versions are immutable, upload under a new name"
fi

log "copying ${SRC} (version ${version}) to pvc://${MODEL_STORE_PVC}/${VERSION_DIR}"
tar -C "$(dirname "${SRC}")" -cf - "${VERSION_DIR}" |
  k exec -i "${POD}" -- python -c '
import sys, tarfile
with tarfile.open(fileobj=sys.stdin.buffer, mode="r|") as tar:
    tar.extractall("/mnt/models", filter="data")
'
uploaded="$(k exec "${POD}" -- python -c 'import json, sys; print(json.load(open(sys.argv[1]))["version"])' \
  "/mnt/models/${VERSION_DIR}/metadata.json")"
[[ "${uploaded}" == "${version}" ]] || die "uploaded metadata says ${uploaded}, expected ${version}"
log "storageUri pvc://${MODEL_STORE_PVC}/${VERSION_DIR}: version ${version}"
