"""Reading an InferenceService's revisions and split, and printing them."""

from __future__ import annotations

import pytest

from predictor.rollout.plan import (
    rollout_progress,
)
from predictor.rollout.status import format_status, summarize
from tests.predictor.rollout.isvcs import (
    CANARY_20,
    NAME,
    NS,
    V2_URI,
    make_isvc,
)

pytestmark = pytest.mark.unit


def test_summarize_reads_revisions_and_traffic() -> None:
    st = summarize(make_isvc(CANARY_20, canary=20, uri=V2_URI))
    assert (st.name, st.namespace, st.ready, st.canary_percent) == (NAME, NS, "True", 20)
    assert st.storage_uri == V2_URI
    pred = st.component("predictor")
    assert pred is not None
    assert pred.latest_rolled_out == "click-model-predictor-00001"
    assert pred.latest_percent() == 20
    assert [(t.revision, t.percent, t.latest, t.tag) for t in pred.traffic] == [
        ("click-model-predictor-00002", 20, True, ""),
        ("click-model-predictor-00001", 80, False, "prev"),
    ]
    assert [c.name for c in st.components] == ["predictor", "transformer"]


def test_summarize_tolerates_an_isvc_without_status() -> None:
    st = summarize({"metadata": {"name": NAME, "namespace": NS}, "spec": {}})
    assert st.ready == "Unknown" and st.components == () and st.canary_percent is None
    assert "no traffic" not in format_status(st)  # no component, no table
    assert rollout_progress(st, 100) == (False, "no predictor status yet")


def test_format_status_prints_the_split_table() -> None:
    text = format_status(summarize(make_isvc(CANARY_20, canary=20, uri=V2_URI)))
    lines = text.splitlines()
    assert lines[0] == f"InferenceService {NS}/{NAME}  Ready=True"
    assert f"predictor storageUri: {V2_URI}  canaryTrafficPercent: 20" in lines
    header = next(
        i
        for i, line in enumerate(lines)
        if line.split() == ["REVISION", "TAG", "LATEST", "PERCENT"]
    )
    assert lines[header + 1].split() == ["click-model-predictor-00002", "-", "yes", "20%"]
    assert lines[header + 2].split() == ["click-model-predictor-00001", "prev", "no", "80%"]
    assert "latestRolledout=click-model-predictor-00001" in text
