"""The feature fetch: online features (and cached predictions) for a batch of users.

- ``layout``: the feature service resolved once from the registry (``FeatureLayout``), the data
  a read produces (``Fetched`` → ``FeatureBatch``), the on-demand transformations;
- ``reader``: ``FeatureReader``, what the transformer calls: picks the fetcher once at start,
  runs every store operation through the breaker, writes, refreshes the registry;
- ``redis_direct``: the fetcher on Redis (Feast's hashes read directly, one round trip);
- ``sdk``: the fetcher through Feast's SDK (any online store);
- ``store_health``: time bounds and the circuit breaker of the online store.
"""

from transformer.features.layout import (
    CachedPredictions,
    FeatureBatch,
    FeatureConfigError,
    FeatureLayout,
    Fetched,
    v2_type,
)
from transformer.features.reader import FeatureReader, open_store, wait_for_feature_service

__all__ = [
    "CachedPredictions",
    "FeatureBatch",
    "FeatureConfigError",
    "FeatureLayout",
    "FeatureReader",
    "Fetched",
    "open_store",
    "v2_type",
    "wait_for_feature_service",
]
