"""A small model spec, feature rows and their expected input matrix, for the encoding tests."""

import numpy as np

from mlray.runtimes.model_spec import ModelSpec

SPEC = ModelSpec(
    numeric=["u__ctr", "i__pop"],
    categorical=["c__category", "r__hour"],
    vocab={"c__category": ["books", "toys"], "r__hour": ["0", "13", "7"]},
    means=[0.1, 100.0],
    stds=[0.05, 50.0],
    fills=[0.1, 100.0],
)
ROWS = [
    {"u__ctr": 0.2, "i__pop": 40, "c__category": "toys", "r__hour": 13, "extra": "ignored"},
    {"u__ctr": None, "i__pop": 7.5, "c__category": None, "r__hour": 7},
    {"u__ctr": 0.05, "i__pop": None, "c__category": "garden", "r__hour": 22},
]
EXPECTED = np.array([[0.2, 40, 2, 2], [np.nan, 7.5, 0, 3], [0.05, np.nan, 0, 0]], dtype=np.float32)
