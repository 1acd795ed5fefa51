#!/usr/bin/env bash
# Delete the kind cluster (idempotent: a missing cluster is not an error).
#
# Usage: scripts/kind/down.sh   (env: KIND_CLUSTER_NAME=feast-kserve)
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

require_tools kind
if kind get clusters 2>/dev/null | grep -x "${KIND_CLUSTER_NAME}" >/dev/null; then
  log "deleting kind cluster ${KIND_CLUSTER_NAME}"
  kind delete cluster --name "${KIND_CLUSTER_NAME}"
else
  log "no kind cluster named ${KIND_CLUSTER_NAME}; nothing to do"
fi
rm -f "${E2E_ENV_FILE}"
