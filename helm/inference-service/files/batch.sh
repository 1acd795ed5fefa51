#!/bin/sh
# Scheduled batch predictions: `python -m predictor.jobs.batch` (docs/serving-approaches.md, 3.).
#
#   FEAST_FS_YAML_FILE_PATH the cluster feature_store.yaml (remote registry + Redis)
#   FEAST_REPO_SRC          feature repo baked into the image     (default /app/feature_repo)
#   FEAST_WORK_DIR          writable scratch dir, an emptyDir      (default /work)
#   GENERATE_DEMO_DATA      "true": write the synthetic offline data first, as the Feast
#                           bootstrap/materialize jobs do (the demo's FileSources read
#                           data/*.parquet inside the repo)
#   BATCH_MODEL_DIR         the model version (default /mnt/models)
#   BATCH_RAY_ADDRESS       "auto" inside a KubeRay RayJob; empty: an embedded local Ray
#   BATCH_WORKERS, BATCH_SIZE, BATCH_WRITE_CHUNK, BATCH_CONTEXT: predictor.jobs.batch's flags
#   BATCH_PUSHGATEWAY_URL   read by predictor.jobs.batch itself (empty: the summary line only)
#
# A run that fails or is killed commits nothing: the transformer keeps serving the last
# committed generation (predictor/protocol/generation.py).
set -eu

src="${FEAST_REPO_SRC:-/app/feature_repo}"
work="${FEAST_WORK_DIR:-/work}"
repo="${work}/feature_repo"
: "${FEAST_FS_YAML_FILE_PATH:?must point at the cluster feature_store.yaml}"

log() { printf '%s batch: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*"; }

# The image's repo is read-only; work on a copy (offline data is written next to it).
rm -rf "${repo}"
mkdir -p "${repo}"
cp -R "${src}/." "${repo}/"

if [ "${GENERATE_DEMO_DATA:-false}" = "true" ]; then
  log "generating synthetic offline data in ${repo}/data"
  python -m predictor.jobs.datagen --repo "${repo}"
fi

set -- --repo "${repo}" --model-dir "${BATCH_MODEL_DIR:-/mnt/models}" \
  --workers "${BATCH_WORKERS:-2}" --batch-size "${BATCH_SIZE:-20000}" \
  --write-chunk "${BATCH_WRITE_CHUNK:-50000}" \
  --context "${BATCH_CONTEXT:-session_duration_s=30,hour_of_day=12}"
if [ -n "${BATCH_RAY_ADDRESS:-}" ]; then
  set -- "$@" --address "${BATCH_RAY_ADDRESS}"
fi
log "python -m predictor.jobs.batch $*"
exec python -m predictor.jobs.batch "$@"
