#!/bin/sh
# Feast bootstrap: register the feature definitions and load the online store.
#
#   FEAST_BOOTSTRAP_STEPS   "apply materialize" (Job) or "materialize" (CronJob)
#   FEAST_FS_YAML_FILE_PATH the cluster feature_store.yaml (remote registry + Redis)
#   FEAST_REPO_SRC          feature repo baked into the image     (default /app/feature_repo)
#   FEAST_WORK_DIR          writable scratch dir, an emptyDir      (default /work)
#   FEAST_WAIT_FOR          "host:port ..." that must accept TCP before starting
#   GENERATE_DEMO_DATA      "true": write the synthetic offline data with
#                           `python -m predictor.jobs.datagen` (the demo's FileSources point
#                           at data/*.parquet inside the repo); "false": the offline
#                           sources must already be reachable (e.g. s3:// paths).
#
# Idempotent: `feast apply` converges the registry to the definitions in the image and
# `feast materialize-incremental` only loads rows newer than the last run, so the Job
# and the CronJob can be re-run at any time.
set -eu

steps="${FEAST_BOOTSTRAP_STEPS:-apply materialize}"
src="${FEAST_REPO_SRC:-/app/feature_repo}"
work="${FEAST_WORK_DIR:-/work}"
repo="${work}/feature_repo"
: "${FEAST_FS_YAML_FILE_PATH:?must point at the cluster feature_store.yaml}"

log() { printf '%s feast-bootstrap: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*"; }

# Redis and the registry server may still be starting (first install): wait up to 5 min.
for target in ${FEAST_WAIT_FOR:-}; do
  log "waiting for ${target}"
  python - "${target}" <<'PY'
import socket, sys, time
host, port = sys.argv[1].rsplit(":", 1)
deadline = time.monotonic() + 300
while True:
    try:
        socket.create_connection((host, int(port)), timeout=3).close()
        break
    except OSError as exc:
        if time.monotonic() > deadline:
            sys.exit(f"{host}:{port} not reachable after 300 s: {exc}")
        time.sleep(3)
PY
done

# The image's repo is read-only; work on a copy (offline data is written next to it).
rm -rf "${repo}"
mkdir -p "${repo}"
cp -R "${src}/." "${repo}/"
cd "${repo}"

if [ "${GENERATE_DEMO_DATA:-false}" = "true" ]; then
  log "generating synthetic offline data in ${repo}/data"
  python -m predictor.jobs.datagen --repo "${repo}"
fi

for step in ${steps}; do
  case "${step}" in
    apply)
      log "feast apply"
      feast apply
      ;;
    materialize)
      end="$(date -u +%Y-%m-%dT%H:%M:%S)"
      log "feast materialize-incremental ${end}"
      feast materialize-incremental "${end}"
      ;;
    *)
      log "unknown step '${step}' (expected apply, materialize)"
      exit 2
      ;;
  esac
done
log "done (${steps})"
