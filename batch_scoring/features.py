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
from numpy.lib.stride_tricks import sliding_window_view

FEATURE_SETS = {"value": ("value",), "context": ("value", "resid15", "std10")}
RESID_WINDOW, STD_WINDOW = 15, 10


def compute(values: np.ndarray, feature_set: str) -> np.ndarray:
    """Features as a float32 matrix [n, k] (ONNX Runtime's SVM kernels are float32)."""
    if feature_set not in FEATURE_SETS:
        raise ValueError(f"unknown feature set {feature_set!r}; choose from {sorted(FEATURE_SETS)}")
    v = np.asarray(values, dtype=np.float64)
    if feature_set == "value":
        return v.astype(np.float32)[:, None]
    n = len(v)
    if n <= RESID_WINDOW:
        raise ValueError(f"context features need more than {RESID_WINDOW} readings, got {n}")
    # Median of the *previous* 15 readings, so a spike is compared with what came before it.
    med = np.empty(n)
    med[RESID_WINDOW:] = np.median(sliding_window_view(v[:-1], RESID_WINDOW), axis=1)
    med[:RESID_WINDOW] = med[RESID_WINDOW]  # the first readings borrow the first full window
    # Spread of the last 10 readings, computed per window (0 up to rounding for a stuck sensor; a
    # reading's value never depends on readings far in the past, unlike running sums).
    std = np.empty(n)
    std[STD_WINDOW - 1 :] = sliding_window_view(v, STD_WINDOW).std(axis=1, ddof=1)
    std[: STD_WINDOW - 1] = std[STD_WINDOW - 1]
    return np.column_stack([v, v - med, std]).astype(np.float32)


def n_features(feature_set: str) -> int:
    return len(FEATURE_SETS[feature_set])
