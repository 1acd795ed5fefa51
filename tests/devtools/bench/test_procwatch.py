"""/proc status parsing (devtools/bench/procwatch.py)."""

from __future__ import annotations

import pytest

from devtools.bench import procwatch as bench

pytestmark = pytest.mark.unit


def test_parse_proc_status_in_bytes():
    text = "Name:\tpython\nVmPeak:\t 2000 kB\nVmHWM:\t  300 kB\nVmRSS:\t  200 kB\nThreads:\t9\n"
    st = bench.parse_proc_status(text)
    assert st["VmHWM"] == 300 * 1024 and st["VmRSS"] == 200 * 1024 and "Threads" not in st
