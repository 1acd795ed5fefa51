"""The machine description (devtools/bench/machine.py)."""

from __future__ import annotations

import pytest

from devtools.bench import machine as bench

pytestmark = pytest.mark.unit


def test_cpu_model_from_cpuinfo():
    assert bench.cpu_model("processor\t: 0\nmodel name\t: AMD EPYC 7B13\n") == "AMD EPYC 7B13"
