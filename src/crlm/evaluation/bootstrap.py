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

from crlm.stats.result import Result


@dataclass(frozen=True)
class BootstrapCI(Result):
    value: float | None  # the metric on every row
    ci_low: float | None
    ci_high: float | None
    ci_level: float
    n_boot_valid: int  # resamples in which the metric was defined


def patient_bootstrap(
    metric: Callable[[np.ndarray], float | None], patients: np.ndarray, n_boot: int, seed: int, level: float = 0.95
) -> BootstrapCI:
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
        return BootstrapCI(estimate, None, None, ci_level=level, n_boot_valid=len(values))
    alpha = (1 - level) / 2
    low, high = np.quantile(values, [alpha, 1 - alpha])
    return BootstrapCI(float(estimate), float(low), float(high), ci_level=level, n_boot_valid=len(values))
