"""Reading a server's Prometheus page (devtools/bench/servers.py)."""

from __future__ import annotations

import pytest

from devtools.bench import servers as bench

pytestmark = pytest.mark.unit


def test_prom_value_sums_labels_and_ignores_other_metrics():
    text = "\n".join(
        [
            "# HELP transformer_cache_hits_total Rows answered from a fresh cached prediction",
            "transformer_cache_hits_total 12.0",
            "transformer_cache_hits_created 1.7e9",
            'transformer_predictions_total{source="cache"} 5.0',
            'transformer_predictions_total{source="model"} 2.0',
        ]
    )
    assert bench.prom_value(text, "transformer_cache_hits_total") == 12.0
    assert bench.prom_value(text, "transformer_predictions_total") == 7.0
    with pytest.raises(KeyError):
        bench.prom_value(text, "transformer_cache_misses_total")
