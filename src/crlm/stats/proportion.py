"""Exact (Clopper-Pearson) confidence interval of a proportion, with the patient as the unit at a boundary.

A percentile bootstrap cannot leave 0 or 1: where every image (or lesion) scores the same, every resample
does too, and the interval collapses to a point. There the interval is Clopper-Pearson's (1934, Biometrika
26:404), the exact binomial interval, with an effective sample size for the clustering (Korn & Graubard
1998, Survey Methodology 24:193: n / design effect). The design effect cannot be estimated where every
outcome is the same (the within-patient variance is 0/0), so it is set to its upper bound, the mean number
of units per patient: the effective sample size is the number of patients, as if each patient's units were
one observation. Pinned to statsmodels' proportion_confint(method="beta") and R's binom.test in the tests.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import beta

BOUNDARY_METHOD = ("Clopper-Pearson exact interval with the patient as the unit (effective n = patients): every "
                   "unit scores {value:g}, where a percentile bootstrap cannot leave the boundary")


def clopper_pearson(successes: float, n: float, level: float = 0.95) -> tuple[float, float]:
    """The exact two-sided interval of a binomial proportion; `successes` and `n` may be non-integer
    (an effective sample size)."""
    if n <= 0 or not 0 <= successes <= n:
        raise ValueError(f"clopper_pearson: need 0 <= successes <= n and n > 0, got {successes} of {n}")
    alpha = 1 - level
    low = 0.0 if successes == 0 else float(beta.ppf(alpha / 2, successes, n - successes + 1))
    high = 1.0 if successes == n else float(beta.ppf(1 - alpha / 2, successes + 1, n - successes))
    return low, high


def at_boundary(values) -> bool:
    """Every value is 0, or every value is 1 (a proportion a percentile bootstrap cannot bound)."""
    values = np.asarray(values, dtype=float)
    return bool(len(values)) and (bool(np.all(values == 0)) or bool(np.all(values == 1)))


def boundary_interval(values, patients, level: float = 0.95) -> dict:
    """For 0/1 `values` that are all 0 or all 1: the estimate and its Clopper-Pearson interval with the
    number of distinct `patients` as the sample size, in the layout of a bootstrap entry."""
    values = np.asarray(values, dtype=float)
    if not at_boundary(values):
        raise ValueError("boundary_interval: the values are not all 0 or all 1")
    value = float(values[0])
    n = len(np.unique(np.asarray(patients)))
    low, high = clopper_pearson(value * n, n, level)
    return {"value": value, "ci_low": low, "ci_high": high, "ci_level": level, "n_boot_valid": 0,
            "ci_method": BOUNDARY_METHOD.format(value=value), "effective_n": n}
