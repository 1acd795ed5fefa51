"""The GitHub workflows and composite actions are valid and honest.

* every ``.github/workflows/*.y*ml`` validates against SchemaStore's ``github-workflow.json`` and
  every ``.github/actions/*/action.y*ml`` against ``github-action.json``;
* third-party actions are pinned by full commit SHA with a ``# vX.Y.Z`` comment, local actions
  exist;
* the ``make`` targets the workflows and actions call are defined in the Makefile or mk/*.mk,
  and the scripts they name exist and are executable;
* scripts/kind/versions.env pins exact versions (the kind node image by digest).

Schemas: SchemaStore's ``github-workflow.json`` / ``github-action.json`` (Apache-2.0,
https://github.com/SchemaStore/schemastore), read from the copy that the ``check-jsonschema``
package vendors (``check_jsonschema/builtin_schemas/vendor/github-workflows.json`` and
``github-actions.json``, next to SchemaStore's licence file). They are not copied into this
repository: the pinned check-jsonschema version pins the schemas, and bumping it refreshes them.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterable, Iterator
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.y*ml"))
ACTIONS = sorted((REPO / ".github" / "actions").glob("*/action.y*ml"))
SHA_PIN = re.compile(r"^(?P<repo>[\w.-]+/[\w.-]+)(?P<path>/[\w./-]+)?@(?P<ref>[0-9a-f]{40})$")
VERSION_COMMENT = re.compile(r"#\s*v\d+(\.\d+){0,2}\b")


# --------------------------------------------------------------------------- loading


class _YamlLoader(yaml.SafeLoader):
    """YAML 1.2 booleans only: ``on:`` stays the string "on" (PyYAML's 1.1 rules make it
    True), which is what GitHub reads and what the schema expects."""


_YamlLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


def load_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_YamlLoader)  # a SafeLoader subclass: safe


@cache
def schema(name: str) -> dict[str, Any]:
    vendor = resources.files("check_jsonschema.builtin_schemas.vendor")
    loaded: dict[str, Any] = json.loads((vendor / name).read_text(encoding="utf-8"))
    return loaded


def workflow_schema() -> dict[str, Any]:
    return schema("github-workflows.json")


def action_schema() -> dict[str, Any]:
    return schema("github-actions.json")


def schema_errors(doc: Any, sch: dict[str, Any]) -> list[str]:
    """Readable validation errors; for oneOf/anyOf failures, also the closest sub-error."""
    validator = jsonschema.Draft7Validator(sch)
    out = []
    for e in sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path)):
        where = "/".join(map(str, e.absolute_path)) or "<root>"
        msg = f"{where}: {e.message}"
        if e.context:
            best = jsonschema.exceptions.best_match(e.context)
            msg += f" [closest: {'/'.join(map(str, best.absolute_path))}: {best.message}]"
        out.append(msg)
    return out


def rel(path: Path) -> str:
    return str(path.relative_to(REPO))


# --------------------------------------------------------------------------- walking


def steps_of(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Steps of a workflow's jobs or of a composite action."""
    for job in (doc.get("jobs") or {}).values():
        yield from job.get("steps") or []
    runs = doc.get("runs") or {}
    if isinstance(runs, dict):
        yield from runs.get("steps") or []


def uses_of(doc: dict[str, Any]) -> list[str]:
    refs = [s["uses"] for s in steps_of(doc) if "uses" in s]
    refs += [job["uses"] for job in (doc.get("jobs") or {}).values() if "uses" in job]
    return refs


def run_scripts(doc: dict[str, Any]) -> list[str]:
    return [s["run"] for s in steps_of(doc) if "run" in s]


MAKE_CALL = re.compile(r"(?:^|[;&|(]\s*|&&\s*|\|\|\s*)make\s+(?P<args>[^;&|#\n]*)")
MAKE_OPTS_WITH_ARG = {"-C", "-f", "-j", "-l", "-o", "-W", "-I"}


def make_targets_called(script: str) -> list[str]:
    """Targets named by ``make ...`` commands in a shell script (variables and options skipped)."""
    targets = []
    for raw in script.splitlines():
        line = raw.strip()
        if line.startswith("#"):
            continue
        for m in MAKE_CALL.finditer(line):
            tokens = shlex.split(m.group("args"), comments=True)
            skip_next = False
            for tok in tokens:
                if skip_next:
                    skip_next = False
                elif tok in MAKE_OPTS_WITH_ARG:
                    skip_next = True
                elif tok.startswith("-") or "=" in tok:
                    continue
                else:
                    targets.append(tok)
    return targets


RULE = re.compile(
    r"^(?P<targets>[A-Za-z0-9_.%/-]+(?:[ \t]+[A-Za-z0-9_.%/-]+)*)[ \t]*(?:::|:)(?![:=])"
)


def make_targets_defined(*makefiles: Path) -> set[str]:
    defined: set[str] = set()
    for mf in makefiles:
        for line in mf.read_text(encoding="utf-8").splitlines():
            m = RULE.match(line)
            if m:
                defined.update(t for t in m.group("targets").split() if not t.startswith("."))
    return defined


def project_makefiles() -> list[Path]:
    files = sorted((REPO / "mk").glob("*.mk"))
    if (REPO / "Makefile").exists():
        files.insert(0, REPO / "Makefile")
    return files


# --------------------------------------------------------------------------- schema checks


def test_the_expected_workflows_and_actions_exist() -> None:
    assert {p.name for p in WORKFLOWS} >= {"ci.yaml", "e2e-kind.yaml"}
    assert {p.parent.name for p in ACTIONS} >= {"setup-python-project", "kind-cluster"}


def test_schemas_are_the_schemastore_ones() -> None:
    assert workflow_schema()["$id"] == "https://json.schemastore.org/github-workflow.json"
    assert action_schema()["$id"] == "https://json.schemastore.org/github-action.json"
    vendor = resources.files("check_jsonschema.builtin_schemas.vendor")
    licence = (vendor / "licenses" / "LICENSE.schemastore").read_text(encoding="utf-8")
    assert "Apache License" in licence


@pytest.mark.parametrize("path", WORKFLOWS, ids=rel)
def test_workflow_is_valid(path: Path) -> None:
    doc = load_yaml(path.read_text(encoding="utf-8"))
    assert schema_errors(doc, workflow_schema()) == []
    assert "permissions" in doc, "set least-privilege top-level permissions"


@pytest.mark.parametrize("path", ACTIONS, ids=rel)
def test_composite_action_is_valid(path: Path) -> None:
    doc = load_yaml(path.read_text(encoding="utf-8"))
    assert schema_errors(doc, action_schema()) == []
    assert doc["runs"]["using"] == "composite"


def test_schemas_reject_broken_documents() -> None:
    """The check has teeth: typical mistakes are reported."""
    broken_workflow = load_yaml(
        """
on: push
jobs:
  build:
    steps:
      - run: make test
        shel: bash
"""
    )
    errors = schema_errors(broken_workflow, workflow_schema())
    assert errors, "a job without runs-on and a misspelled step key must not validate"
    assert load_yaml("on: push")["on"] == "push"  # not True

    broken_action = load_yaml(
        """
name: x
description: y
runs:
  using: composite
  steps:
    - run: echo missing shell
"""
    )
    assert schema_errors(broken_action, action_schema()), "composite run steps need a shell"


# --------------------------------------------------------------------------- pins


@pytest.mark.parametrize("path", WORKFLOWS + ACTIONS, ids=rel)
def test_actions_are_pinned_by_sha_with_a_version_comment(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    refs = uses_of(load_yaml(text))
    assert refs or path.name == "action.yml", f"{rel(path)} uses no action at all?"
    for ref in refs:
        if ref.startswith("./"):
            target = REPO / ref
            assert (target / "action.yml").exists() or (target / "action.yaml").exists(), ref
        elif ref.startswith("docker://"):
            assert "@sha256:" in ref, f"{ref}: pin docker actions by digest"
        else:
            assert SHA_PIN.match(ref), f"{ref}: pin third-party actions by full commit SHA"
            lines = [line for line in text.splitlines() if ref in line]
            assert lines and all(VERSION_COMMENT.search(line) for line in lines), (
                f"{ref}: add a '# vX.Y.Z' comment naming the pinned release"
            )


def test_pin_check_rejects_tags_and_short_shas() -> None:
    assert SHA_PIN.match("actions/checkout@08c6903cd8c0fde910a37f88322edcfb5dd907a8")
    assert SHA_PIN.match("github/codeql-action/init@" + "a" * 40)
    for bad in ("actions/checkout@v5", "actions/checkout@08c6903", "actions/checkout@main"):
        assert not SHA_PIN.match(bad)


# --------------------------------------------------------------------------- make targets


@pytest.mark.parametrize("path", WORKFLOWS + ACTIONS, ids=rel)
def test_make_targets_called_are_defined(path: Path) -> None:
    doc = load_yaml(path.read_text(encoding="utf-8"))
    called = [t for script in run_scripts(doc) for t in make_targets_called(script)]
    dynamic = [t for t in called if "$" in t]
    assert not dynamic, f"cannot check make targets chosen at run time: {dynamic}"
    defined = make_targets_defined(*project_makefiles())
    missing = sorted(set(called) - defined)
    assert not missing, (
        f"{rel(path)} calls make targets defined in neither Makefile nor mk/*.mk: {missing}"
    )


def test_make_target_parsing() -> None:
    script = """
set -euo pipefail
make lint && make -C . test PYTEST_ARGS="-k x"
# make not-this
echo make-believe; make e2e-kind E2E_KIND_ARGS="-rA --junitxml=a.xml"
"""
    assert make_targets_called(script) == ["lint", "test", "e2e-kind"]


def test_make_rule_parsing(tmp_path: Path) -> None:
    mk = tmp_path / "x.mk"
    mk.write_text(
        "A ?= 1\nB := 2\n.PHONY: one two\none two: ## both\n\techo\nthree:: dep\n$(STAMP): x\n"
        "pat%: ; @true\nC::=3\n",
        encoding="utf-8",
    )
    assert make_targets_defined(mk) == {"one", "two", "three", "pat%"}


REQUIRED_KIND_TARGETS = (
    "kind-up kind-load deploy deploy-kustomize kind-down e2e-kind canary promote rollback "
    "rollout-status workflows-check"
).split()


def test_kind_mk_defines_and_documents_its_targets() -> None:
    text = (REPO / "mk" / "kind.mk").read_text(encoding="utf-8")
    for target in REQUIRED_KIND_TARGETS:
        rule = re.search(rf"^{re.escape(target)}:[^\n]*## \S", text, re.MULTILINE)
        assert rule, f"mk/kind.mk: no '{target}: ... ## description' rule"


# --------------------------------------------------------------------------- scripts


def _scripts_named(text: str) -> set[str]:
    return set(re.findall(r"(?<![\w/.])(scripts/[\w./-]+\.sh)\b", text))


def test_scripts_called_exist_and_are_executable() -> None:
    sources = [*WORKFLOWS, *ACTIONS, REPO / "mk" / "kind.mk"]
    named = set().union(*(_scripts_named(p.read_text(encoding="utf-8")) for p in sources))
    assert "scripts/kind/up.sh" in named
    for script in sorted(named):
        path = REPO / script
        assert path.is_file(), f"{script} is called but does not exist"
        assert path.stat().st_mode & 0o111, f"{script} is not executable"
        assert path.read_text(encoding="utf-8").startswith("#!/usr/bin/env bash\n")


def test_kind_scripts_are_strict_and_pinned() -> None:
    for name in ("up", "load", "deploy", "down", "dump-state"):
        text = (REPO / "scripts" / "kind" / f"{name}.sh").read_text(encoding="utf-8")
        assert "\nset -euo pipefail\n" in text, f"{name}.sh: set -euo pipefail"
        assert 'source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"' in text
    for name in ("up", "load", "deploy"):
        text = (REPO / "scripts" / "kind" / f"{name}.sh").read_text(encoding="utf-8")
        assert "\ndump_state_on_failure\n" in text, f"{name}.sh: dump state when it fails"
    # every wait is bounded
    for path in (REPO / "scripts" / "kind").glob("*.sh"):
        joined = path.read_text(encoding="utf-8").replace("\\\n", " ")  # continuation lines
        for line in joined.splitlines():
            if re.search(r"\bk(ubectl)? wait\b", line) and "--timeout" not in line:
                pytest.fail(f"{rel(path)}: kubectl wait without --timeout: {line.strip()}")


def versions_env() -> dict[str, str]:
    text = (REPO / "scripts" / "kind" / "versions.env").read_text(encoding="utf-8")
    pins = dict(re.findall(r'^([A-Z_]+)="\$\{\1:-([^}]*)\}"$', text, re.MULTILINE))
    assert pins, 'no NAME="${NAME:-value}" pins found'
    return pins


def test_versions_env_pins_exact_versions() -> None:
    pins = versions_env()
    assert set(pins) >= {
        "KIND_VERSION", "KIND_NODE_IMAGE", "KUBECTL_VERSION", "HELM_VERSION",
        "CERT_MANAGER_VERSION", "KNATIVE_SERVING_VERSION", "KNATIVE_NET_KOURIER_VERSION",
        "KSERVE_VERSION",
    }  # fmt: skip
    for name, value in pins.items():
        if name == "KIND_NODE_IMAGE":
            assert re.fullmatch(r"kindest/node:v\d+\.\d+\.\d+@sha256:[0-9a-f]{64}", value), value
        else:
            assert re.fullmatch(r"(knative-)?v\d+\.\d+\.\d+", value), f"{name}={value}"
    node_minor = int(pins["KIND_NODE_IMAGE"].split(":v")[1].split(".")[1])
    kubectl_minor = int(pins["KUBECTL_VERSION"].split(".")[1])
    assert abs(node_minor - kubectl_minor) <= 1, "kubectl must be within one minor of the node"


def test_tool_pins_match_install_k8s_tools() -> None:
    """CI installs the same helm/kubectl that scripts/install-k8s-tools.sh gives developers."""
    text = (REPO / "scripts" / "install-k8s-tools.sh").read_text(encoding="utf-8")
    expect = dict(re.findall(r'^EXPECT_(HELM|KUBECTL)="([^"]+)"$', text, re.MULTILINE))
    pins = versions_env()
    assert expect == {"HELM": pins["HELM_VERSION"], "KUBECTL": pins["KUBECTL_VERSION"]}


# --------------------------------------------------------------------------- chart release


def test_release_charts_publishes_on_a_tag_and_dry_runs_otherwise() -> None:
    """Packages + pushes OCI charts on `charts-v*` tags only; pull requests that touch the
    charts run the same make targets against a throwaway registry (the dry run)."""
    doc = load_yaml((REPO / ".github" / "workflows" / "release-charts.yaml").read_text())
    assert doc["on"]["push"] == {"tags": ["charts-v*"]}
    assert "helm/**" in doc["on"]["pull_request"]["paths"]
    assert doc["permissions"] == {"contents": "read"}
    dry, publish = doc["jobs"]["dry-run"], doc["jobs"]["publish"]
    assert dry["if"] == "github.event_name != 'push'"
    assert "startsWith(github.ref, 'refs/tags/charts-v')" in publish["if"]
    assert publish["permissions"]["packages"] == "write", "pushing to ghcr.io needs packages: write"
    assert "registry" in dry["services"]
    dry_runs = "\n".join(s.get("run", "") for s in dry["steps"])
    pub_runs = "\n".join(s.get("run", "") for s in publish["steps"])
    for script in (dry_runs, pub_runs):
        assert make_targets_called(script)[:3] == ["k8s-tools", "helm-package", "helm-push"]
    assert "HELM_OCI_REPO=oci://localhost:5000/charts" in dry_runs and "--plain-http" in dry_runs
    assert "oci://localhost:5000/charts/feast-kserve" in dry_runs, "pull the pushed chart back"
    assert 'CHART_VERSION="$version"' in pub_runs, "the tag must be checked against Chart.yaml"
    assert "oci://ghcr.io/" in pub_runs
    # Secrets reach the shell through env, never interpolated into the script.
    assert "secrets." not in pub_runs


# --------------------------------------------------------------------------- action runtimes

#: ``runs.using`` of each pinned third-party action at its pinned commit, read from that
#: commit's action.yml. A pin missing here fails the test: record the runtime when bumping.
ACTION_RUNTIMES = {
    "actions/checkout@08c6903cd8c0fde910a37f88322edcfb5dd907a8": "node24",  # v5.0.0
    "actions/setup-python@ece7cb06caefa5fff74198d8649806c4678c61a1": "node24",  # v6.3.0
    "actions/upload-artifact@b7c566a772e6b6bfb58ed0dc250532a479d7789f": "node24",  # v6.0.0
    "helm/kind-action@ef37e7f390d99f746eb8b610417061a60e82a6cc": "node24",  # v1.14.0
    "azure/setup-helm@9bc31f4ebc9c6b171d7bfbaa5d006ae7abdb4310": "node24",  # v5.0.1
    # the Node 20 pins these replaced (GitHub removes Node 20 from its runners)
    "actions/setup-python@a26af69be951a213d495a4c3e4e4022e16d87065": "node20",  # v5.6.0
    "actions/upload-artifact@ea165f8d65b6e75b540449e92b4886f43607fa02": "node20",  # v4.6.2
    "helm/kind-action@a1b0e391336a6ee6713a0583f8c6240d70863de3": "node20",  # v1.12.0
    "azure/setup-helm@b9e51907a09c216f16ebe8536097933489208112": "node20",  # v4.3.0
}


def runtime_problems(refs: Iterable[str]) -> list[str]:
    problems = []
    for ref in refs:
        if ref.startswith(("./", "docker://")):
            continue
        using = ACTION_RUNTIMES.get(ref)
        if using is None:
            problems.append(f"{ref}: runtime unknown; record its action.yml runs.using")
        elif using != "node24":
            problems.append(f"{ref}: runs on {using}, not node24")
    return problems


@pytest.mark.parametrize("path", WORKFLOWS + ACTIONS, ids=rel)
def test_pinned_actions_run_on_node24(path: Path) -> None:
    assert runtime_problems(uses_of(load_yaml(path.read_text(encoding="utf-8")))) == []


def test_runtime_check_rejects_node20_and_unknown_pins() -> None:
    old = "actions/setup-python@a26af69be951a213d495a4c3e4e4022e16d87065"
    assert runtime_problems([old]) == [f"{old}: runs on node20, not node24"]
    assert "runtime unknown" in runtime_problems(["actions/cache@" + "b" * 40])[0]


# --------------------------------------------------------------------------- e2e matrix + budget

E2E = REPO / ".github" / "workflows" / "e2e-kind.yaml"
KIND_DOC = REPO / "docs" / "kind-e2e.md"
DUMP_RESERVE_MIN = 5  # runner set-up and post steps, beyond the steps' own slices


def e2e_job() -> dict[str, Any]:
    return load_yaml(E2E.read_text(encoding="utf-8"))["jobs"]["e2e"]


def step_label(step: dict[str, Any]) -> str:
    return str(step.get("name") or step["uses"].split("@")[0])


def budget_problems(job: dict[str, Any]) -> tuple[int, list[str]]:
    """The worst case of ``job`` in minutes (steps with ``if: inputs.deploy ...`` are
    alternatives: the longest counts) and what breaks the budget."""
    problems = []
    total = alternatives = 0
    for step in job["steps"]:
        minutes = step.get("timeout-minutes")
        if not isinstance(minutes, int) or minutes <= 0:
            problems.append(f"step '{step_label(step)}' has no timeout-minutes")
            continue
        if "inputs.deploy" in str(step.get("if", "")):
            alternatives = max(alternatives, minutes)
        else:
            total += minutes
    total += alternatives
    limit = job.get("timeout-minutes")
    if not isinstance(limit, int) or total + DUMP_RESERVE_MIN > limit:
        problems.append(f"steps sum to {total} min; job limit {limit} leaves < {DUMP_RESERVE_MIN}")
    dumps = [s for s in job["steps"] if "kind-dump" in str(s.get("run", ""))]
    if len(dumps) != 1 or dumps[0].get("if") != "always()":
        problems.append("the state dump must be one step of its own with if: always()")
    return total, problems


def test_e2e_job_worst_case_fits_its_limit_with_the_dump_guaranteed() -> None:
    total, problems = budget_problems(e2e_job())
    assert problems == []
    assert f"**sum** | **{total}**" in KIND_DOC.read_text(encoding="utf-8")


def test_budget_check_detects_an_overrun_and_a_conditional_dump() -> None:
    job = e2e_job()
    assert budget_problems({**job, "timeout-minutes": budget_problems(job)[0]})[1]
    steps = [
        {**s, "if": "failure()"} if "kind-dump" in str(s.get("run", "")) else s
        for s in job["steps"]
    ]
    assert budget_problems({**job, "steps": steps})[1]
    no_timeout = [{k: v for k, v in s.items() if k != "timeout-minutes"} for s in job["steps"]]
    assert budget_problems({**job, "steps": no_timeout})[1]


def _doc_rows(section: str) -> list[list[str]]:
    text = KIND_DOC.read_text(encoding="utf-8")
    body = text.split(f"### {section}", 1)[1].split("\n### ", 1)[0]
    return [
        [c.strip() for c in line.strip().strip("|").split("|")]
        for line in body.splitlines()
        if line.startswith("|") and not line.startswith("| ---")
    ]


def test_the_docs_list_every_steps_timeout() -> None:
    rows = {r[0]: r[1] for r in _doc_rows("Time budget") if len(r) == 2}
    for step in e2e_job()["steps"]:
        label = step_label(step)
        match = [k for k in rows if k.split(" (")[0] == label or label in k.split(" / ")[0]]
        if "inputs.deploy" in str(step.get("if", "")):
            match = [k for k in rows if k.startswith("Deploy with helm / Deploy with kustomize")]
        assert match, f"docs/kind-e2e.md: no row for step '{label}'"
        assert rows[match[0]] == str(step["timeout-minutes"]), label


SCRIPT_WAIT = re.compile(
    r"--timeout[= ]\"?(?:\$\{\w+:-)?(?P<a>\d+[sm])\b|--wait (?P<b>\d+[sm])\b"
    r"|wait_deployments \S+ (?P<c>\d+s)|SECONDS \+ (?P<d>\d+)\)|ISVC_TIMEOUT:-(?P<e>\d+s)"
)


def script_waits() -> list[tuple[str, str]]:
    """(script, timeout) of every wait in scripts/**/*.sh with a literal timeout or default
    (``--timeout "${HELM_TIMEOUT:-15m}"``); comments skipped."""
    out = []
    for path in sorted((REPO / "scripts").rglob("*.sh")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.lstrip().startswith("#"):
                continue
            for m in SCRIPT_WAIT.finditer(line):
                value = next(v for v in m.groups() if v)
                out.append((path.name, value if value[-1] in "sm" else f"{value}s"))
    return out


def test_every_script_wait_is_in_the_budget_table() -> None:
    waits = script_waits()
    assert ("up.sh", "10m") in waits and ("deploy.sh", "900s") in waits  # the parser works
    line = 'h test x --timeout "${HELM_TIMEOUT:-15m}" --logs'
    assert [m.group("a") for m in SCRIPT_WAIT.finditer(line)] == ["15m"]
    rows = [r for r in _doc_rows("Time budget") if len(r) == 3]
    for script, value in set(waits):
        wanted = waits.count((script, value))
        have = sum(1 for r in rows if r[0].startswith(script) and value in r[2])
        assert have >= wanted, (
            f"docs/kind-e2e.md lists {have} of {wanted} {value} waits of {script}"
        )


def test_e2e_matrix_runs_the_newest_always_and_the_minimum_on_schedule_and_dispatch() -> None:
    doc = load_yaml(E2E.read_text(encoding="utf-8"))
    assert "schedule" in doc["on"] and "workflow_dispatch" in doc["on"] and "push" in doc["on"]
    matrix = e2e_job()["strategy"]["matrix"]["kserve"]
    both, newest = '\'["newest", "minimum"]\'', "'[\"newest\"]'"
    assert both in matrix and newest in matrix, matrix
    condition = matrix.split("&&")[0]
    assert "schedule" in condition and "workflow_dispatch" in condition
    assert matrix.index(both) < matrix.rindex("||") < matrix.index(newest)
    pins = versions_env()
    newest_v, minimum_v = (
        tuple(int(x) for x in pins[k].lstrip("v").split("."))
        for k in ("KSERVE_VERSION", "KSERVE_MIN_VERSION")
    )
    assert minimum_v == (0, 17, 0) and newest_v > minimum_v
    select = next(s for s in e2e_job()["steps"] if "KSERVE_MIN_VERSION" in str(s.get("run", "")))
    assert "GITHUB_ENV" in select["run"] and select["env"]["ENTRY"] == "${{ matrix.kserve }}"
