"""Patient-level (cluster) bootstrap confidence intervals.

Images of one patient are correlated, so resampling images would give CIs
that are too narrow: each resample draws patients with replacement and takes
all their images. Percentile intervals; resamples where the metric is
undefined (e.g. one class only) are skipped and counted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class BootstrapCI:
    estimate: float | None
    low: float | None
    high: float | None
    n_valid: int          # resamples in which the metric was defined
    level: float

    def as_dict(self) -> dict:
        return {"value": self.estimate, "ci_low": self.low, "ci_high": self.high,
                "ci_level": self.level, "n_boot_valid": self.n_valid}


def patient_bootstrap(metric: Callable[[np.ndarray], float | None], patients: np.ndarray, n_boot: int,
                      seed: int, level: float = 0.95) -> BootstrapCI:
    """CI of metric(indices) where indices are image rows; `patients` gives each row's patient."""
    patients = np.asarray(patients)
    everything = np.arange(len(patients))
    estimate = metric(everything)
    unique, inverse = np.unique(patients, return_inverse=True)
    rows_of = [np.flatnonzero(inverse == k) for k in range(len(unique))]
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n_boot):
        drawn = rng.integers(0, len(unique), len(unique))
        value = metric(np.concatenate([rows_of[k] for k in drawn]))
        if value is not None and np.isfinite(value):
            values.append(value)
    if estimate is None or not values:
        return BootstrapCI(estimate, None, None, len(values), level)
    alpha = (1 - level) / 2
    low, high = np.quantile(values, [alpha, 1 - alpha])
    return BootstrapCI(float(estimate), float(low), float(high), len(values), level)
