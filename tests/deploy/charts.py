"""The charts under test and helm on a private copy of them (isolated home, no repositories,
no network): shared by the deploy tests that render a chart."""

from __future__ import annotations

import os
from pathlib import Path

from tests.deploy import validation as v

HELM_SRC = v.REPO / "helm"
CHARTS = ("redis", "feast-feature-server", "inference-service", "feast-kserve")
UMBRELLA = "feast-kserve"
RELEASE = "feast-kserve"
SUBCHART_KEYS = {
    "redis": "redis",
    "feast-feature-server": "feast",
    "inference-service": "inferenceService",
}


# Charts with required values (image registry/tag, model URI) render only with a values file;
# test_required_values_are_refused_with_their_names checks the defaults fail.
REQUIRED_VALUES = {"feast-feature-server", "inference-service", UMBRELLA}
# The documented minimum: the three required values, every other value a default.
MINIMAL = "minimal-values.yaml"


class Helm:
    """helm with an isolated home, operating on a private copy of helm/."""

    def __init__(self, root: Path) -> None:
        self.bin = v.tool("helm")
        self.charts = root / "helm"
        home = root / "helm-home"
        self.env = {
            **os.environ,
            "HELM_CACHE_HOME": str(home / "cache"),
            "HELM_CONFIG_HOME": str(home / "config"),
            "HELM_DATA_HOME": str(home / "data"),
            "HELM_NO_PLUGINS": "1",
            "KUBECONFIG": str(home / "no-kubeconfig"),
        }
        self._renders: dict[tuple[str, str | None], list[v.Obj]] = {}

    def run(self, *args: str, expect_ok: bool = True):
        return v.run([self.bin, *args], env=self.env, expect_ok=expect_ok)

    def values_args(self, chart: str, values: str | None) -> list[str]:
        return ["-f", str(self.charts / chart / "ci" / values)] if values else []

    def render(self, chart: str, values: str | None = None, *extra: str) -> list[v.Obj]:
        key = (chart, values) if not extra else None
        if key and key in self._renders:
            return self._renders[key]
        out = self.run(
            "template",
            RELEASE,
            str(self.charts / chart),
            "--namespace",
            v.NAMESPACE,
            "--kube-version",
            f"{v.K8S_VERSIONS[0]}.0",
            *self.values_args(chart, values),
            *extra,
        ).stdout
        objs = v.load_docs(out)
        if key:
            self._renders[key] = objs
        return objs

    def refused(self, chart: str, values: str | None, *args: str) -> str:
        """``helm template`` of the chart with the values file and ``args``, which must fail:
        its stderr (the schema's or the templates' message)."""
        proc = self.run(
            "template",
            RELEASE,
            str(self.charts / chart),
            "--namespace",
            v.NAMESPACE,
            *self.values_args(chart, values),
            *args,
            expect_ok=False,
        )
        assert proc.returncode != 0, f"accepted: {args}"
        return proc.stderr
