"""Feature transforms pickled inside scikit-learn pipelines.

Kept in a module of their own with nothing but numpy, so that loading a model needs only
what serving needs (the pickle refers to these functions by module path).
"""

from __future__ import annotations

import numpy as np


def signed_log1p(x: np.ndarray) -> np.ndarray:
    """Signed log1p on every column: counts and ratios are heavy-tailed."""
    return np.sign(x) * np.log1p(np.abs(x))
