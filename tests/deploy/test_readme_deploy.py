"""The README's deploy sequence, executed as far as it goes without a cluster.

The block marked ``<!-- deploy-sequence -->`` in README.md runs line by line in bash, in a fresh
copy of the repository (the files git would check out: no ``charts/``, no ``models/``, no
``.venv``), with make, kubectl and helm replaced by tests/deploy/readme_shim.py: make targets
are dry-run (``helm-deps`` runs for real), ``helm upgrade --install`` becomes ``helm lint`` and
``helm template`` with exactly the documented flags (and the earlier values for
``--reset-then-reuse-values``), and every rendered object is validated against the Kubernetes
and KServe schemas and the stack invariants. The kustomize block runs the same way.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.deploy import validation as v

pytestmark = pytest.mark.unit

README = v.REPO / "README.md"
SHIM = Path(__file__).with_name("readme_shim.py")
MODEL_PVC = "PersistentVolumeClaim/click-model-models"  # made by make upload-model


def block(marker: str, text: str | None = None) -> str:
    """The ```bash block right after ``<!-- MARKER`` in the README."""
    text = README.read_text() if text is None else text
    m = re.search(rf"<!-- {re.escape(marker)}\b[^>]*-->\n```bash\n(.*?)\n```\n", text, re.S)
    assert m, f"README.md has no ```bash block after <!-- {marker} -->"
    return m.group(1) + "\n"


def fresh_copy(dest: Path) -> Path:
    """What a clone of the current tree holds: tracked and new, not ignored, files."""
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=v.REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for rel in filter(None, out.split("\0")):
        src = v.REPO / rel
        if src.is_file():  # deleted but not yet committed: a clone would not have it
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    return dest


@dataclass
class Run:
    root: Path
    state: Path
    proc: subprocess.CompletedProcess[str]

    @property
    def calls(self) -> list[dict]:
        path = self.state / "calls.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def output(self, n: int, suffix: str) -> str:
        return (self.state / f"{n}-{suffix}").read_text()

    def objects(self, n: int, tool: str) -> list[v.Obj]:
        return v.load_docs(self.output(n, f"{tool}.yaml"))


def run_block(script: str, root: Path, env_extra: dict[str, str] | None = None) -> Run:
    state = root.parent / f"{root.name}-state"
    state.mkdir(exist_ok=True)
    home = root.parent / f"{root.name}-helm-home"
    shim = f"{shlex.quote(sys.executable)} {shlex.quote(str(SHIM))}"
    prelude = "\n".join(
        [
            "set -euo pipefail",
            f'make() {{ {shim} make "$@"; }}',
            f'kubectl() {{ {shim} kubectl "$@"; }}',
            f'helm() {{ {shim} helm "$@"; }}',
            "docker() { echo 'docker is not expected outside make' >&2; return 97; }",
            "",
        ]
    )
    env = {
        **os.environ,
        "SHIM_STATE": str(state),
        "REAL_HELM": v.tool("helm"),
        "REAL_KUBECTL": v.tool("kubectl"),
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_DATA_HOME": str(home / "data"),
        "KUBECONFIG": str(home / "no-kubeconfig"),
        **(env_extra or {}),
    }
    for var in ("IMAGE_PREFIX", "IMAGE_TAG", "MAKEFLAGS", "MFLAGS"):
        if var not in (env_extra or {}):
            env.pop(var, None)
    proc = subprocess.run(
        ["bash", "-c", prelude + script],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return Run(root, state, proc)


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Run:
    root = fresh_copy(tmp_path_factory.mktemp("clone") / "feast-kserve-inference")
    assert not (root / "helm" / "feast-kserve" / "charts").exists(), "not a fresh clone"
    r = run_block(block("deploy-sequence"), root)
    assert r.proc.returncode == 0, f"the README's deploy block failed:\n{r.proc.stderr[-6000:]}"
    return r


# --------------------------------------------------------------------------- static checks


def test_every_line_of_the_block_parses() -> None:
    for marker in ("deploy-sequence", "deploy-kustomize"):
        proc = subprocess.run(["bash", "-n"], input=block(marker), capture_output=True, text=True)
        assert proc.returncode == 0, f"{marker}: {proc.stderr}"


def test_every_file_the_blocks_name_exists() -> None:
    text = block("deploy-sequence") + block("deploy-kustomize")
    paths = set(
        re.findall(r"(?<![\w./:-])((?:manifests|helm|scripts|docs|examples)/[\w./-]+)", text)
    )
    assert paths, "the blocks name no repository files?"
    missing = sorted(p for p in paths if not (v.REPO / p).exists())
    assert not missing, missing


def test_every_make_target_the_blocks_name_exists() -> None:
    targets = set()
    text = (block("deploy-sequence") + block("deploy-kustomize")).replace("\\\n", " ")
    for line in text.splitlines():
        if not re.search(r"\bmake\b", line):
            continue
        words = shlex.split(line, comments=True)
        for i, word in enumerate(words):
            if word == "make":
                for arg in words[i + 1 :]:
                    if arg in {"&&", "||", ";", "|"}:
                        break
                    if "=" not in arg and not arg.startswith("-"):
                        targets.add(arg)
    assert {"push", "train", "upload-model", "helm-deps"} <= targets, targets
    listed = subprocess.run(["make", "-qp"], cwd=v.REPO, capture_output=True, text=True).stdout
    defined = set(re.findall(r"^([\w.-]+):", listed, re.M))
    assert targets <= defined, sorted(targets - defined)


def test_helm_and_kustomize_are_separate_blocks() -> None:
    helm_block, kustomize_block = block("deploy-sequence"), block("deploy-kustomize")
    assert "kubectl apply -k" not in helm_block and "helm " not in kustomize_block
    text = README.read_text()
    between = text[text.index("<!-- deploy-sequence") : text.index("<!-- deploy-kustomize")]
    assert re.search(r"never both in one namespace", between), "say not to mix them"


# --------------------------------------------------------------------------- the run


def test_the_block_runs_in_order_from_a_fresh_clone(deployed: Run) -> None:
    steps = [(c["tool"], c["argv"][0]) for c in deployed.calls]
    assert steps == [
        ("make", "push"),
        ("kubectl", "apply"),
        ("make", "train"),
        ("make", "upload-model"),
        ("make", "upload-model"),
        ("make", "helm-deps"),
        ("helm", "upgrade"),
        ("helm", "test"),
        ("helm", "upgrade"),
        ("helm", "upgrade"),
    ], steps
    # helm-deps really built the sub-charts in the copy
    charts = {p.name for p in (deployed.root / "helm" / "feast-kserve" / "charts").iterdir()}
    assert len(charts) == 3, charts


def _helm_calls(r: Run) -> list[tuple[int, dict]]:
    return [
        (i + 1, c)
        for i, c in enumerate(r.calls)
        if c["tool"] == "helm" and c["argv"][0] == "upgrade"
    ]


def test_images_pushed_are_the_images_installed(deployed: Run) -> None:
    (n_push, _), *_ = [
        (i + 1, c) for i, c in enumerate(deployed.calls) if c["argv"][:1] == ["push"]
    ]
    pushed = set(re.findall(r"docker push (\S+)", deployed.output(n_push, "make-n.txt")))
    assert pushed and all(p.startswith("registry.example.com/ml/") for p in pushed), pushed
    n, _ = _helm_calls(deployed)[0]
    used = {
        c["image"]
        for s in v.pod_sources(deployed.objects(n, "helm"))
        for c in s.spec.get("containers") or []
        if "feast-kserve-" in c.get("image", "")
    }
    assert used and used <= pushed, (used, pushed)


def test_models_are_trained_and_both_uploaded_with_the_pushed_image(deployed: Run) -> None:
    calls = [(i + 1, c) for i, c in enumerate(deployed.calls) if c["argv"][:1] == ["upload-model"]]
    assert {a for _, c in calls for a in c["argv"] if a.startswith("MODEL=")} == {
        "MODEL=sklearn",
        "MODEL=xgboost",
    }
    n_train = next(i + 1 for i, c in enumerate(deployed.calls) if c["argv"][:1] == ["train"])
    trained = deployed.output(n_train, "make-n.txt")
    for n, _ in calls:
        dry = deployed.output(n, "make-n.txt")
        assert 'IMAGE="registry.example.com/ml/feast-kserve-predictor:0.1.0"' in dry, dry
        (model,) = re.findall(r'upload-model\.sh "(models/\w+)"', dry)
        assert f"--output {model}" in trained, f"make train does not write {model}"


def test_namespace_has_the_labels_the_stack_needs(deployed: Run) -> None:
    n = next(i + 1 for i, c in enumerate(deployed.calls) if c["tool"] == "kubectl")
    (ns,) = deployed.objects(n, "kubectl")
    assert ns["kind"] == "Namespace" and ns["metadata"]["name"] == v.NAMESPACE
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "baseline"
    assert not v.schema_errors(ns)


def test_install_waits_long_enough_for_the_bootstrap_job(deployed: Run) -> None:
    """The bootstrap Job is a post-install hook: helm's --timeout must cover it (kind: 10 min)."""
    for _, call in _helm_calls(deployed):
        timeout = call["cluster_flags"].get("--timeout", "5m")  # helm's default
        minutes = int(timeout[:-1]) / (60 if timeout.endswith("s") else 1)
        assert minutes >= 10, f"{call['argv']}: --timeout {timeout}"
    assert "--create-namespace" in _helm_calls(deployed)[0][1]["cluster_flags"]


def test_every_rendered_release_validates(deployed: Run) -> None:
    for n, call in _helm_calls(deployed):
        objs = deployed.objects(n, "helm")
        problems = [p for o in objs for p in v.schema_errors(o)]
        problems += v.check_stack(objs, external=[MODEL_PVC])
        assert not problems, f"{call['argv']}:\n" + "\n".join(problems)


def test_canary_then_promote_through_the_chart(deployed: Run) -> None:
    install, canary, promote = (deployed.objects(n, "helm") for n, _ in _helm_calls(deployed))

    def predictor(objs: list[v.Obj]) -> dict:
        return next(o for o in objs if o["kind"] == "InferenceService")["spec"]["predictor"]

    assert predictor(install)["model"]["storageUri"] == "pvc://click-model-models/sklearn"
    assert "canaryTrafficPercent" not in predictor(install)
    assert predictor(canary)["model"]["storageUri"] == "pvc://click-model-models/xgboost"
    assert predictor(canary)["canaryTrafficPercent"] == 20
    assert predictor(promote)["model"]["storageUri"] == "pvc://click-model-models/xgboost"
    assert "canaryTrafficPercent" not in predictor(promote)
    # --reset-then-reuse-values kept the install's images
    images = {
        c.get("image", "") for s in v.pod_sources(promote) for c in s.spec.get("containers") or []
    }
    assert "registry.example.com/ml/feast-kserve-transformer:0.1.0" in images


def test_the_kustomize_block_deploys_the_pushed_images(tmp_path: Path) -> None:
    root = fresh_copy(tmp_path / "clone")
    r = run_block(
        block("deploy-kustomize"),
        root,
        {"IMAGE_PREFIX": "registry.example.com/ml", "IMAGE_TAG": "0.1.0"},
    )
    assert r.proc.returncode == 0, r.proc.stderr[-4000:]
    *creates, (n, call) = list(enumerate(r.calls, 1))
    assert call["argv"][:2] == ["apply", "-k"]
    # The base commits no Secret: the block creates the two it needs, before applying.
    created = {}
    for _, c in creates:
        assert c["argv"][:5] == ["-n", v.NAMESPACE, "create", "secret", "generic"], c["argv"]
        literals = [a.removeprefix("--from-literal=") for a in c["argv"][6:]]
        assert all(x != a for x, a in zip(literals, c["argv"][6:], strict=True)), c["argv"]
        values = dict(x.split("=", 1) for x in literals)
        assert all(len(val) >= 32 for val in values.values()), "random, not empty"
        created[c["argv"][5]] = set(values)
    assert created == {
        "redis-auth": {"redis-password"},
        "click-model-transformer-auth": {"tokens", "infer-token", "write-token"},
    }, created
    objs = r.objects(n, "kubectl")
    assert not [o for o in objs if o["kind"] == "Secret"], "a Secret is committed"
    problems = [p for o in objs for p in v.schema_errors(o)] + v.check_stack(
        objs, external=[MODEL_PVC, *(f"Secret/{name}" for name in created)]
    )
    assert not problems, "\n".join(problems)
    images = {
        c.get("image", "") for s in v.pod_sources(objs) for c in s.spec.get("containers") or []
    }
    ours = {i for i in images if "feast-kserve-" in i}
    assert ours == {
        "registry.example.com/ml/feast-kserve-transformer:0.1.0",
        "registry.example.com/ml/feast-kserve-predictor:0.1.0",
    }, ours


# --------------------------------------------------------------------------- the test bites


def test_a_broken_block_is_caught(tmp_path: Path) -> None:
    """No --install on a first upgrade, a missing make target, a too-short timeout."""
    root = fresh_copy(tmp_path / "clone")
    good = block("deploy-sequence")
    for bad in (
        good.replace("helm upgrade --install", "helm upgrade", 1),
        good.replace("make helm-deps", "make helm-dependencies"),
        good.replace("make upload-model MODEL=sklearn", "kubectl cp models/sklearn x:/mnt"),
    ):
        assert bad != good
        r = run_block(bad, root)
        assert r.proc.returncode != 0, bad
    # and a block without chart dependencies fails where a user's would: at helm
    r = run_block(good.replace("make helm-deps", "true"), fresh_copy(tmp_path / "clone2"))
    # (helm names the sub-charts missing from charts/)
    assert r.proc.returncode != 0, r.proc.stderr[-2000:]
    missing = r"redis,\s*feast-feature-server,\s*inference-service"
    assert re.search(missing, r.proc.stderr), r.proc.stderr[-2000:]


# --------------------------------------------------------------------------- kind runs it too


def test_the_kind_deploy_runs_the_same_targets() -> None:
    """scripts/kind/deploy.sh (make deploy, the e2e workflow's deploy step) runs the README's
    steps with the same make targets and helm flags, against the kind context."""
    script = (v.REPO / "scripts" / "kind" / "deploy.sh").read_text()
    for step in (
        "manifests/base/namespace.yaml",
        'make -C "${REPO_ROOT}" train',
        "make_ upload-model MODEL=sklearn",
        "make_ upload-model MODEL=xgboost",
        "make_ helm-deps",
        "--create-namespace",
        '--timeout "${HELM_TIMEOUT:-15m}"',
        'h test "${RELEASE}"',
    ):
        assert step in script, step
    readme = block("deploy-sequence")
    for target in ("upload-model MODEL=sklearn", "upload-model MODEL=xgboost", "helm-deps"):
        assert f"make {target}" in readme, target
    assert "--timeout 15m" in readme
    workflow = (v.REPO / ".github" / "workflows" / "e2e-kind.yaml").read_text()
    assert "run: make deploy\n" in workflow and "run: make train\n" in workflow
