#!/usr/bin/env bash
# Build the two images with docker and `kind load` them into the cluster:
#
#   ${IMAGE_PREFIX}/feast-kserve-predictor:${IMAGE_TAG}
#   ${IMAGE_PREFIX}/feast-kserve-transformer:${IMAGE_TAG}     (defaults: kind.local/...:dev)
#
# Dockerfiles (docker/, owned by the packaging): PREDICTOR_DOCKERFILE / TRANSFORMER_DOCKERFILE
# if set, else the first that exists of docker/<name>.Dockerfile, docker/Dockerfile.<name>,
# docker/<name>/Dockerfile; failing those, a multi-stage docker/Dockerfile with a stage named
# <name> (built with --target <name>). The build context is the repository root.
# SKIP_BUILD=1 only loads images that already exist locally.
#
# The "kind.local/" prefix matters: Knative resolves every image tag to a digest by asking
# its registry, except for registries in config-deployment's registries-skipping-tag-resolving
# (kind.local, ko.local, dev.local by default). Knative reads image names the way
# go-containerregistry does: a first path part without "." or ":" is *not* a registry, so
# "localhost/x:dev" would be looked up on Docker Hub and the revision would fail. A tag other
# than :latest keeps imagePullPolicy at IfNotPresent, so kubelet uses the loaded image.
#
# Usage: scripts/kind/load.sh   (env: KIND_CLUSTER_NAME IMAGE_PREFIX IMAGE_TAG SKIP_BUILD)
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

IMAGE_PREFIX="${IMAGE_PREFIX:-kind.local}"
IMAGE_TAG="${IMAGE_TAG:-dev}"
SKIP_BUILD="${SKIP_BUILD:-0}"

require_tools docker kind
kind get clusters 2>/dev/null | grep -x "${KIND_CLUSTER_NAME}" >/dev/null ||
  die "kind cluster ${KIND_CLUSTER_NAME} does not exist; run scripts/kind/up.sh (make kind-up) first"
dump_state_on_failure

# build_args NAME: prints "-f FILE [--target NAME]" for the component's Dockerfile.
build_args() {
  local name="$1" override_var candidate
  override_var="$(tr '[:lower:]' '[:upper:]' <<<"${name}")_DOCKERFILE"
  if [[ -n "${!override_var:-}" ]]; then
    [[ -f "${!override_var}" ]] || die "${override_var}=${!override_var} does not exist"
    printf '%s\n' "-f" "${!override_var}"
    return
  fi
  for candidate in "docker/${name}.Dockerfile" "docker/Dockerfile.${name}" "docker/${name}/Dockerfile"; do
    if [[ -f "${REPO_ROOT}/${candidate}" ]]; then
      printf '%s\n' "-f" "${REPO_ROOT}/${candidate}"
      return
    fi
  done
  if [[ -f "${REPO_ROOT}/docker/Dockerfile" ]] &&
    grep -Eiq "^FROM[[:space:]].*[[:space:]]AS[[:space:]]+${name}[[:space:]]*$" "${REPO_ROOT}/docker/Dockerfile"; then
    printf '%s\n' "-f" "${REPO_ROOT}/docker/Dockerfile" "--target" "${name}"
    return
  fi
  die "no Dockerfile for ${name} under docker/ (set ${override_var}=path)"
}

# load_image IMAGE: `kind load docker-image`, or, when that fails, a single-platform archive.
# With Docker's containerd image store (the default from Docker 29 on), `docker save` of an
# image can reference content of other platforms that is not on the host, and kind's
# `ctr images import --all-platforms` stops at "content digest ... not found"
# (kubernetes-sigs/kind#3795); saving only the node's platform avoids it.
load_image() {
  local image="$1" archive platform
  if kind load docker-image "${image}" --name "${KIND_CLUSTER_NAME}"; then
    return 0
  fi
  platform="$(docker version --format '{{.Server.Os}}/{{.Server.Arch}}')"
  log "kind load docker-image failed; retrying with a ${platform} archive (kind#3795)"
  archive="$(mktemp "${TMPDIR:-/tmp}/kind-load.XXXXXX")"
  if docker image save --platform "${platform}" -o "${archive}" "${image}" &&
    kind load image-archive "${archive}" --name "${KIND_CLUSTER_NAME}"; then
    rm -f "${archive}"
    return 0
  fi
  rm -f "${archive}"
  return 1
}

for name in predictor transformer; do
  image="${IMAGE_PREFIX}/feast-kserve-${name}:${IMAGE_TAG}"
  if [[ "${SKIP_BUILD}" == "1" ]]; then
    docker image inspect "${image}" >/dev/null 2>&1 || die "SKIP_BUILD=1 but ${image} is not a local image"
  else
    spec="$(build_args "${name}")" # a die inside the substitution fails this assignment
    mapfile -t args <<<"${spec}"
    log "building ${image} (${args[*]})"
    docker build "${args[@]}" -t "${image}" "${REPO_ROOT}"
  fi
  log "loading ${image} into kind cluster ${KIND_CLUSTER_NAME}"
  load_image "${image}"
done

# Check the node really has them (crictl lists them under docker.io/ for bare names).
node="$(kind get nodes --name "${KIND_CLUSTER_NAME}" | head -n 1)"
for name in predictor transformer; do
  docker exec "${node}" crictl images | grep "feast-kserve-${name}[[:space:]]\+${IMAGE_TAG}[[:space:]]" >/dev/null ||
    die "feast-kserve-${name}:${IMAGE_TAG} not found on node ${node} after kind load"
done
log "images loaded: ${IMAGE_PREFIX}/feast-kserve-{predictor,transformer}:${IMAGE_TAG}"
