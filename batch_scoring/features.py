"""Feature sets computed from one series; training and scoring call the same function.

* `value`: the reading alone, as in the original architecture. A one-class SVM on the value
  only sees readings outside the normal range, so it cannot see a stuck sensor or a spike that
  stays inside the daily range.
* `context` (default): the value, its residual against the median of the previous 15 readings
  (spikes, fast drifts) and the standard deviation of the last 10 readings (a stuck sensor has
  none). Windows are trailing, so a reading's features depend only on the past: the same code
  works when new readings arrive hourly with the previous window's tail as context.

Features are computed in NumPy/pandas and the ONNX graph holds only scaler + SVM, which keeps
the exported model small and the feature code testable on its own.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

FEATURE_SETS = {"value": ("value",), "context": ("value", "resid15", "std10")}
RESID_WINDOW, STD_WINDOW = 15, 10


def compute(values: np.ndarray, feature_set: str) -> np.ndarray:
    """Features as a float32 matrix [n, k] (ONNX Runtime's SVM kernels are float32)."""
    if feature_set not in FEATURE_SETS:
        raise ValueError(f"unknown feature set {feature_set!r}; choose from {sorted(FEATURE_SETS)}")
    v = np.asarray(values, dtype=np.float64)
    if feature_set == "value":
        return v.astype(np.float32)[:, None]
    s = pd.Series(v)
    # Median of the *previous* readings, so a spike is compared with what came before it.
    med = s.shift(1).rolling(RESID_WINDOW, min_periods=1).median().bfill().to_numpy()
    std = s.rolling(STD_WINDOW, min_periods=2).std().bfill().fillna(0.0).to_numpy()
    resid = np.nan_to_num(v - med)
    return np.column_stack([v, resid, std]).astype(np.float32)


def n_features(feature_set: str) -> int:
    return len(FEATURE_SETS[feature_set])
