"""Confidence interval of a proportion of clustered units (images or lesions nested in patients).

Korn & Graubard (1998, Survey Methodology 24:193): the Clopper-Pearson (1934, Biometrika 26:404) exact
binomial interval with the sample size replaced by an effective one for the clustering,

    p = sum(y) / n                      (n units, y_i the successes of patient i out of m_i units)
    v = I / (I - 1) * sum_i (y_i - p m_i)^2 / n^2     (the between-patient variance of p, I patients)
    n_eff = min(n, p (1 - p) / v)       (n / design effect, the design effect at least 1)
    n_df = n_eff * (z / t_{I-1})^2      (their degrees-of-freedom adjustment)
    interval = Clopper-Pearson(p n_df successes of n_df)

Unlike a percentile bootstrap it can leave 0 and 1: where every unit scores the same, the bootstrap
interval collapses to a point. There the design effect cannot be estimated (v is 0) and is taken as 1,
the convention of Korn & Graubard and of the NCHS standards for proportions (Parker et al. 2017, Vital
Health Stat 2(175)); the interval then treats the units of a patient as independent, which understates
the uncertainty where a patient's units are alike. The interval is the same rule inside (0, 1) and at
its edges, so a perfect score never gets a narrower interval than a near-perfect one of the same design.
Pinned in the tests to statsmodels' proportion_confint(method="beta"), R's binom.test, and the formulas
above written as a loop.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import beta, norm, t

METHOD = (
    "Korn-Graubard: Clopper-Pearson with the effective sample size of the clustering (design effect "
    "from the between-patient variance, at least 1; 1 where every unit scores the same)"
)


def clopper_pearson(successes: float, n: float, level: float = 0.95) -> tuple[float, float]:
    """The exact two-sided interval of a binomial proportion; `successes` and `n` may be non-integer
    (an effective sample size)."""
    if n <= 0 or not 0 <= successes <= n:
        raise ValueError(f"clopper_pearson: need 0 <= successes <= n and n > 0, got {successes} of {n}")
    alpha = 1 - level
    low = 0.0 if successes == 0 else float(beta.ppf(alpha / 2, successes, n - successes + 1))
    high = 1.0 if successes == n else float(beta.ppf(1 - alpha / 2, successes + 1, n - successes))
    return low, high


def korn_graubard(values, patients, level: float = 0.95) -> dict:
    """The share of `values` (each unit's 0/1 outcome, or a share in [0, 1]) with its Korn-Graubard
    interval, the units nested in `patients`; in the layout of a bootstrap entry, plus the effective
    sample size, the design effect and the method."""
    values = np.asarray(values, dtype=float)
    if len(values) == 0:
        return {"value": None, "ci_low": None, "ci_high": None, "ci_level": level, "n_boot_valid": 0}
    if np.any((values < 0) | (values > 1)) or not np.all(np.isfinite(values)):
        raise ValueError("korn_graubard: each unit's outcome must lie in [0, 1]")
    _, patient = np.unique(np.asarray(patients), return_inverse=True)
    patient = patient.ravel()
    n, clusters = len(values), int(patient.max()) + 1
    p = float(values.mean())
    successes = np.bincount(patient, weights=values, minlength=clusters)
    units = np.bincount(patient, minlength=clusters)
    variance = clusters / (clusters - 1) * float(np.sum((successes - p * units) ** 2)) / n**2 if clusters > 1 else 0.0
    design_effect = max(1.0, variance / (p * (1 - p) / n)) if 0 < p < 1 and variance > 0 else 1.0
    effective = n / design_effect
    if clusters > 1:
        effective *= (norm.ppf(0.5 + level / 2) / t.ppf(0.5 + level / 2, clusters - 1)) ** 2
    low, high = clopper_pearson(p * effective, effective, level)
    return {
        "value": p,
        "ci_low": low,
        "ci_high": high,
        "ci_level": level,
        "n_boot_valid": 0,
        "effective_n": effective,
        "design_effect": design_effect,
        "ci_method": METHOD,
    }
