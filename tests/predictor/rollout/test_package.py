"""The rollout package as a whole: cheap to import, nothing but definitions at module level."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from predictor import rollout

pytestmark = pytest.mark.unit


MODULES = sorted(Path(rollout.__file__).parent.glob("*.py"))


def test_the_package_has_the_modules_checked_below() -> None:
    assert [m.name for m in MODULES] == [
        "__init__.py",
        "__main__.py",
        "cli.py",
        "kube.py",
        "plan.py",
        "status.py",
    ]


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.name)
def test_module_import_is_cheap_and_side_effect_free(module: Path) -> None:
    """No kubernetes import and no work at module level: only imports, constants, defs and
    the ``if __name__ == "__main__"`` guard."""
    tree = ast.parse(module.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
            assert not any(n.split(".")[0] == "kubernetes" for n in names), ast.dump(node)
        elif isinstance(node, ast.If):
            assert ast.unparse(node.test) == "__name__ == '__main__'"
        elif isinstance(node, ast.Expr):
            assert isinstance(node.value, ast.Constant)  # the docstring
        else:
            assert isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.Assign, ast.AnnAssign)), (
                ast.dump(node)
            )
            if isinstance(node, (ast.Assign, ast.AnnAssign)):
                assert node.value is not None
                assert not any(isinstance(n, ast.Call) for n in ast.walk(node.value))
