"""Static checks of docker/*.Dockerfile and .dockerignore (no Docker engine needed).

What is checked: multi-stage with a pinned base, non-root numeric USER, read-only-friendly
environment, the ENTRYPOINT of docs/CONTRACT.md, that every COPY source exists and is not
excluded by .dockerignore, and that the pip extras the images install exist in pyproject.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.deploy import validation as v

pytestmark = pytest.mark.unit

REPO = v.REPO
DOCKERFILES = {
    "transformer": REPO / "docker" / "transformer.Dockerfile",
    "predictor": REPO / "docker" / "predictor.Dockerfile",
}


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, op: str) -> list[str]:
        return [arg for o, arg in self.instructions if o == op]


@dataclass
class Dockerfile:
    args: dict[str, str]  # global ARGs (before the first FROM) with defaults
    stages: list[Stage]


def parse(path: Path) -> Dockerfile:
    """Instructions with continuation lines joined; comments and blank lines dropped."""
    logical: list[str] = []
    buf = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not buf and (not line or line.startswith("#")):
            continue
        if buf and line.startswith("#"):
            continue  # comment inside a continued instruction
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        logical.append(buf + line)
        buf = ""
    assert not buf, f"{path}: dangling line continuation"
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for instr in logical:
        op, _, rest = instr.partition(" ")
        op = op.upper()
        rest = rest.strip()
        if op == "FROM":
            m = re.fullmatch(r"(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?", rest, re.IGNORECASE)
            assert m, f"unparsable FROM {rest!r}"
            stages.append(Stage(m.group(1), m.group(2)))
        elif not stages:
            assert op == "ARG", f"{path}: {op} before the first FROM"
            name, _, default = rest.partition("=")
            args[name] = default
        else:
            stages[-1].instructions.append((op, rest))
    return Dockerfile(args, stages)


def resolve(ref: str, args: dict[str, str]) -> str:
    return re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), ref)


def dockerignore_patterns() -> list[str]:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.strip().startswith("#")]


def ignored(rel: str, patterns: list[str]) -> bool:
    """Docker's rule: the last matching pattern wins; a directory match covers its content."""
    result = False
    parts = rel.strip("/").split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pat in patterns:
        neg = pat.startswith("!")
        p = pat[1:] if neg else pat
        p = p.strip("/")
        for candidate in prefixes:
            if fnmatch.fnmatchcase(candidate, p) or (
                p.startswith("**/") and fnmatch.fnmatchcase(candidate.split("/")[-1], p[3:])
            ):
                result = not neg
                break
    return result


@pytest.fixture(scope="module", params=sorted(DOCKERFILES))
def image(request: pytest.FixtureRequest) -> tuple[str, Dockerfile]:
    path = DOCKERFILES[request.param]
    assert path.is_file(), f"{path} missing"
    return request.param, parse(path)


def test_multi_stage_with_the_same_pinned_python_311_slim_base(
    image: tuple[str, Dockerfile],
) -> None:
    name, df = image
    assert len(df.stages) >= 2, f"{name}: not multi-stage"
    bases = {resolve(s.base, df.args) for s in df.stages}
    assert len(bases) == 1, f"{name}: stages use different bases {bases}"
    (base,) = bases
    assert "$" not in base, f"{name}: base {base!r} depends on an ARG without default"
    digest = re.search(r"@sha256:[0-9a-f]{64}$", base)
    tag = (
        base.split("@")[0].rsplit(":", 1)[-1]
        if ":" in base.split("@")[0].rsplit("/", 1)[-1]
        else ""
    )
    assert digest or re.fullmatch(r"3\.11\.\d+-slim(-[a-z]+)?", tag), (
        f"{name}: base {base!r} is not pinned to an exact python 3.11.x slim tag or a digest"
    )
    assert base.split("@")[0].rsplit(":", 1)[0].endswith("python"), base
    assert df.stages[-1].name, "the final stage should be named (e.g. runtime)"


def test_runtime_stage_is_non_root_and_read_only_friendly(image: tuple[str, Dockerfile]) -> None:
    name, df = image
    final = df.stages[-1]
    users = final.all("USER")
    assert users, f"{name}: no USER in the final stage (would run as root)"
    assert users[-1].split(":")[0] == "10001", f"{name}: USER {users[-1]} (contract: 10001)"
    ops = [op for op, _ in final.instructions]
    assert ops.index("USER") > max(i for i, op in enumerate(ops) if op in ("RUN", "COPY")), (
        f"{name}: RUN/COPY after USER; switch user last"
    )
    env = " ".join(final.all("ENV"))
    settings = ("HOME=/tmp", "PYTHONDONTWRITEBYTECODE=1", "PYTHONUNBUFFERED=1", "PYTHONOPTIMIZE=1")
    for setting in settings:
        assert setting in env, f"{name}: ENV lacks {setting}"
    assert final.all("WORKDIR")[-1] == "/app", f"{name}: WORKDIR is not /app"
    for op, arg in final.instructions:
        if op == "RUN":
            assert not re.search(r"\b(pip|apt-get|apk)\b", arg), (
                f"{name}: the runtime stage installs packages ({arg!r}); build in the builder stage"
            )
    # PYTHONOPTIMIZE reads opt-1 bytecode: compiled in the builder, or every start compiles
    builder_runs = " ".join(df.stages[0].all("RUN"))
    assert "python -O -m compileall" in builder_runs, f"{name}: no -O bytecode in the builder"
    copies_from_builder = [a for a in final.all("COPY") if a.startswith("--from=")]
    assert any("/opt/venv" in a for a in copies_from_builder), (
        f"{name}: venv not copied from the builder"
    )


def test_entrypoint_is_the_contract_module(image: tuple[str, Dockerfile]) -> None:
    name, df = image
    (entry,) = df.stages[-1].all("ENTRYPOINT")[-1:]
    assert json.loads(entry) == ["python", "-m", name], f"{name}: ENTRYPOINT {entry}"
    assert not df.stages[-1].all("CMD"), "CMD would be appended to the contract's argv"
    assert (REPO / name / "__main__.py").is_file(), f"{name}/__main__.py (python -m {name}) missing"
    exposed = {p for e in df.stages[-1].all("EXPOSE") for p in e.split()}
    assert {"8080", "8081"} <= exposed, f"{name}: EXPOSE {exposed} (HTTP 8080, gRPC 8081)"


def test_copy_sources_exist_and_are_in_the_build_context(image: tuple[str, Dockerfile]) -> None:
    name, df = image
    patterns = dockerignore_patterns()
    for stage in df.stages:
        for arg in stage.all("COPY"):
            words = [w for w in shlex.split(arg) if not w.startswith("--")]
            if arg.startswith("--from="):
                continue
            *sources, _dest = words
            for src in sources:
                assert (REPO / src).exists(), f"{name}: COPY source {src} does not exist"
                assert not ignored(src, patterns), (
                    f"{name}: COPY {src} is excluded by .dockerignore"
                )
    if name == "transformer":
        copied = " ".join(df.stages[-1].all("COPY"))
        assert "feature_repo/ /app/feature_repo/" in copied, "feature repo not at /app/feature_repo"


def test_image_installs_its_pyproject_extra(image: tuple[str, Dockerfile]) -> None:
    name, df = image
    runs = " ".join(a for s in df.stages[:-1] for a in s.all("RUN"))
    args = [a for s in df.stages[:-1] for a in s.all("ARG")]
    # Either the extra itself, or a build arg (EXTRAS) whose default is the extra.
    assert f'pip install ".[{name}]"' in runs or (
        'pip install ".[${EXTRAS}]"' in runs and f"EXTRAS={name}" in args
    ), f"{name}: does not install the `{name}` extra by default"
    assert "-e " not in runs and "--editable" not in runs, (
        "editable installs need the source at runtime"
    )
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    extras = pyproject["project"].get("optional-dependencies", {})
    assert name in extras, f"pyproject.toml has no `{name}` extra"


def test_transformer_extra_can_run_the_feast_registry_server() -> None:
    """The charts run `feast serve_registry` from the transformer image; Feast's gRPC
    registry server imports grpc_health / grpc_reflection, which only `feast[grpcio]` pulls in.
    """
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    reqs = pyproject["project"]["optional-dependencies"]["transformer"]
    feast = [r for r in reqs if re.match(r"feast\b", r)]
    assert feast, f"the transformer extra has no feast requirement: {reqs}"
    extras = re.search(r"\[([^\]]*)\]", feast[0])
    names = {e.strip() for e in extras.group(1).split(",")} if extras else set()
    assert {"redis", "grpcio"} <= names, (
        f"transformer extra requires {feast[0]!r}; it needs feast[redis,grpcio]: the registry "
        "server (`feast serve_registry`) fails to import grpc_health without the grpcio extra"
    )


def test_dockerignore_keeps_local_state_out() -> None:
    patterns = dockerignore_patterns()
    for path in (
        ".git",
        ".venv",
        ".tools",
        "models/sklearn/model.joblib",
        "feature_repo/data/registry.db",
        "feature_repo/data/user_data.parquet",
        "predictor/__pycache__/x.pyc",
        "helm/feast-kserve/Chart.yaml",
    ):
        assert ignored(path, patterns), f".dockerignore does not exclude {path}"
    for path in (
        "pyproject.toml",
        "README.md",
        "predictor/__main__.py",
        "transformer/__main__.py",
        "feature_repo/features.py",
        "feature_repo/feature_store.yaml",
    ):
        assert not ignored(path, patterns), f".dockerignore excludes {path}, which the images need"


def test_dockerignore_matcher_itself() -> None:
    """The matcher above decides the two tests before it; pin its semantics."""
    pats = ["models", "**/*.pyc", "feature_repo/data", "docs", "!docs/keep.md"]
    assert ignored("models/a/b", pats) and ignored("x/y/z.pyc", pats)
    assert ignored("feature_repo/data/x.parquet", pats) and not ignored(
        "feature_repo/features.py", pats
    )
    assert ignored("docs/a.md", pats) and not ignored("docs/keep.md", pats)
