"""Stand-ins for make, kubectl and helm while tests/deploy/test_readme_deploy.py runs the
README's deploy block in a fresh copy of the repository, without a cluster.

``python -m tests.deploy.readme_shim TOOL ARGS...`` (the test defines bash functions that call
it). Every call is appended to ``$SHIM_STATE/calls.jsonl``; what can run offline runs for real:

- ``make TARGET...``: ``make -n`` (the target must exist and its recipe expand); ``helm-deps``
  and ``push-check`` run for real (no Docker or cluster needed);
- ``kubectl apply -f FILE``: the file is read and recorded; ``kubectl apply -k DIR``:
  ``kubectl kustomize DIR``, recorded;
- ``helm upgrade [--install] RELEASE CHART FLAGS``: ``helm lint`` and ``helm template`` with the
  same chart and value flags, the release's earlier values prepended for
  ``--reuse-values`` / ``--reset-then-reuse-values`` (what Helm does with them); flags that only
  matter against a cluster (``--timeout``, ``--create-namespace``, ``--wait``) are checked for a
  value and dropped; ``helm test RELEASE``: the release must have been installed before.

Anything else fails, so a new kind of command in the README needs a decision here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

STATE = Path(os.environ.get("SHIM_STATE", "."))
REAL = {"make": "make", "helm": os.environ.get("REAL_HELM", "helm"),
        "kubectl": os.environ.get("REAL_KUBECTL", "kubectl")}  # fmt: skip
CLUSTER_ONLY_FLAGS = {"--create-namespace": False, "--wait": False, "--timeout": True}
REUSE_FLAGS = {"--reuse-values", "--reset-then-reuse-values"}
VALUE_FLAGS = {"--set", "--set-string", "--set-json", "-f", "--values", "-n", "--namespace"}
RUN_FOR_REAL = {"helm-deps", "push-check"}


def fail(msg: str) -> None:
    print(f"readme_shim: {msg}", file=sys.stderr)
    sys.exit(97)


def run(cmd: list[str], out: Path | None = None) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        fail(
            f"{' '.join(cmd)} failed ({proc.returncode}):\n"
            f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    if out is not None:
        out.write_text(proc.stdout)


def record(entry: dict) -> int:
    with (STATE / "calls.jsonl").open("a") as f:
        f.write(json.dumps(entry) + "\n")
    return sum(1 for _ in (STATE / "calls.jsonl").open())


def make(args: list[str]) -> None:
    targets = [a for a in args if not a.startswith("-") and "=" not in a]
    if not targets:
        fail(f"make {' '.join(args)}: name the target")
    variables = [a for a in args if "=" in a]
    n = record({"tool": "make", "argv": args})
    run([REAL["make"], "-n", *args], STATE / f"{n}-make-n.txt")
    for target in targets:
        if target in RUN_FOR_REAL:
            run(
                [
                    REAL["make"],
                    f"HELM={REAL['helm']}",
                    f"KUBECTL={REAL['kubectl']}",
                    *variables,
                    target,
                ]
            )
        if target == "push":
            run([REAL["make"], *variables, "push-check"])


def kubectl(args: list[str]) -> None:
    if args[:2] == ["apply", "-f"] and len(args) == 3:
        path = Path(args[2])
        if not path.is_file():
            fail(f"kubectl apply -f {path}: no such file")
        n = record({"tool": "kubectl", "argv": args, "file": str(path)})
        (STATE / f"{n}-kubectl.yaml").write_text(path.read_text())
    elif args[:2] == ["apply", "-k"] and len(args) == 3:
        n = record({"tool": "kubectl", "argv": args})
        run([REAL["kubectl"], "kustomize", args[2]], STATE / f"{n}-kubectl.yaml")
    elif args[2:5] == ["create", "secret", "generic"] and args[:1] == ["-n"] and len(args) > 5:
        record({"tool": "kubectl", "argv": args})  # the Secrets the kustomize base lacks
    else:
        fail(f"kubectl {' '.join(args)}: not a command the deploy sequence is expected to run")


def _split(args: list[str]) -> tuple[list[str], list[str], dict[str, str]]:
    """(positionals, value flags to pass on, cluster-only flags with their values)."""
    positionals, passed, cluster = [], [], {}
    i = 0
    while i < len(args):
        a = args[i]
        flag, eq, inline = a.partition("=")
        if flag in CLUSTER_ONLY_FLAGS:
            takes_value = CLUSTER_ONLY_FLAGS[flag]
            if takes_value and not eq:
                i += 1
                if i >= len(args):
                    fail(f"{flag} without a value")
                inline = args[i]
            cluster[flag] = inline
        elif flag in REUSE_FLAGS or flag == "--install":
            cluster[flag] = ""
        elif flag in VALUE_FLAGS:
            if eq:
                passed.append(a)
            else:
                passed += [a, args[i + 1]]
                i += 1
        elif a.startswith("-"):
            fail(f"helm flag {a} is not handled by the shim")
        else:
            positionals.append(a)
        i += 1
    return positionals, passed, cluster


def helm(args: list[str]) -> None:
    releases_file = STATE / "releases.json"
    releases = json.loads(releases_file.read_text()) if releases_file.exists() else {}
    if args and args[0] == "upgrade":
        positionals, passed, cluster = _split(args[1:])
        if len(positionals) != 2:
            fail(f"helm upgrade needs RELEASE CHART, got {positionals}")
        release, chart = positionals
        if "--timeout" in cluster and not cluster["--timeout"].rstrip("smh").isdigit():
            fail(f"--timeout {cluster['--timeout']!r} is not a duration")
        earlier = releases.get(release)
        if earlier is None and "--install" not in cluster:
            fail(f"helm upgrade {release}: no such release (install it first)")
        values = passed
        if earlier is not None and REUSE_FLAGS & set(cluster):
            values = earlier["values"] + passed
        n = record({"tool": "helm", "argv": args, "release": release, "cluster_flags": cluster})
        run([REAL["helm"], "lint", chart, *values])
        run([REAL["helm"], "template", release, chart, *values], STATE / f"{n}-helm.yaml")
        releases[release] = {"values": values, "chart": chart}
        releases_file.write_text(json.dumps(releases))
    elif args and args[0] == "test":
        positionals, passed, _ = _split(args[1:])
        if not positionals or positionals[0] not in releases:
            fail(f"helm test {positionals}: release not installed by an earlier command")
        record({"tool": "helm", "argv": args, "release": positionals[0]})
    else:
        fail(f"helm {' '.join(args)}: not a command the deploy sequence is expected to run")


def main() -> None:
    tool, args = sys.argv[1], sys.argv[2:]
    {"make": make, "kubectl": kubectl, "helm": helm}[tool](args)


if __name__ == "__main__":
    main()
