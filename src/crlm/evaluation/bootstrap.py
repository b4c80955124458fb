"""Patient-level (cluster) bootstrap confidence intervals.

Images of one patient are correlated, so resampling images would give CIs
that are too narrow: each resample draws patients with replacement and takes
all their images. Percentile intervals; resamples where the metric is
undefined (e.g. one class only) are skipped and counted. A proportion whose
units all score 0 or all 1 gets an exact interval instead (`proportion_ci`;
crlm.stats.proportion), since no resample can leave that boundary.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from crlm.stats.proportion import at_boundary, boundary_interval
from crlm.stats.result import Result


@dataclass(frozen=True)
class BootstrapCI(Result):
    value: float | None   # the metric on every row
    ci_low: float | None
    ci_high: float | None
    ci_level: float
    n_boot_valid: int     # resamples in which the metric was defined


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
        return BootstrapCI(estimate, None, None, ci_level=level, n_boot_valid=len(values))
    alpha = (1 - level) / 2
    low, high = np.quantile(values, [alpha, 1 - alpha])
    return BootstrapCI(float(estimate), float(low), float(high), ci_level=level, n_boot_valid=len(values))


def proportion_ci(values, patients, n_boot: int, seed: int, level: float = 0.95) -> dict:
    """The mean of per-unit 0/1 outcomes (or shares in [0, 1]) with its patient-bootstrap CI; where every
    unit scores 0 or every unit 1, the exact interval with the patient as the unit (ci_method says so)."""
    values = np.asarray(values, dtype=float)
    if len(values) == 0:
        return BootstrapCI(None, None, None, ci_level=level, n_boot_valid=0).to_dict()
    if at_boundary(values):
        return boundary_interval(values, patients, level)
    return patient_bootstrap(lambda idx: float(values[idx].mean()), patients, n_boot, seed, level).to_dict()
