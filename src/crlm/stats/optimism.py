"""Bootstrap optimism-corrected concordance of a linear risk model (Harrell, Lee & Mark 1996, Stat Med
15:361-387; the optimism bootstrap of Efron 1983, JASA 78:316-331).

The apparent C of a model fitted on all n patients is optimistic: the model was fitted to them. For
each of B resamples of the n patients with replacement the model is refitted on the resample, and its
optimism is its C on that resample minus its C on the original patients. The corrected C is the
apparent C minus the mean optimism. Every C is that of one fit's linear predictor on one set of
patients: the predictions of different fits are never pooled, so their scales and ties never mix.

Resample b is row b of numpy.random.default_rng(seed).integers(0, n, size=(B, n)). A resample whose
fit is refused, or one of whose two C-indices is undefined, is left out of the mean and counted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from crlm.stats.result import Result

NAN = float("nan")

# fit(durations, events, x) -> the coefficient vector, or a str saying why no model was fitted
Fit = Callable[[np.ndarray, np.ndarray, np.ndarray], "np.ndarray | str"]
# concordance(durations, events, risk) -> C (higher risk = earlier event); NaN where undefined
Concordance = Callable[[np.ndarray, np.ndarray, np.ndarray], float]


@dataclass(frozen=True)
class OptimismResult(Result):
    apparent: float  # C of the model fitted on all patients, on all patients
    optimism: float  # mean over the used resamples of C(fit_b on resample b) - C(fit_b on all)
    optimism_se: float  # Monte Carlo SE of that mean: SD of the optimisms / sqrt(n_used)
    corrected: float  # apparent - optimism
    n_resamples: int  # B, as asked for
    n_used: int  # resamples whose fit and both C-indices are defined
    n_refused: int  # n_resamples - n_used
    reason: str = ""


def resample_indices(n: int, n_resamples: int, seed: int) -> np.ndarray:
    """(n_resamples, n) row indices, each row n draws with replacement."""
    return np.random.default_rng(seed).integers(0, n, size=(int(n_resamples), int(n)))


def optimism_corrected_c(
    durations, events, x, fit: Fit, concordance: Concordance, n_resamples: int, seed: int
) -> OptimismResult:
    """Harrell's optimism-corrected C of the linear predictor x @ fit(...); x is (n patients, p covariates)."""
    t = np.asarray(durations, dtype=float)
    e = np.asarray(events, dtype=float)
    x = np.asarray(x, dtype=float)
    if x.ndim == 1:
        x = x[:, None]
    if t.ndim != 1 or e.shape != t.shape or x.ndim != 2 or len(x) != len(t):
        raise ValueError(
            f"optimism_corrected_c: durations, events and the rows of x must agree, got shapes "
            f"{t.shape}, {e.shape}, {x.shape}"
        )
    if int(n_resamples) != n_resamples or n_resamples < 2:
        raise ValueError(f"optimism_corrected_c: n_resamples must be an integer >= 2, got {n_resamples}")
    n_resamples = int(n_resamples)
    beta = fit(t, e, x)
    if isinstance(beta, str):
        return OptimismResult(NAN, NAN, NAN, NAN, n_resamples, 0, n_resamples, reason=f"fit on all patients: {beta}")
    apparent = float(concordance(t, e, x @ beta))
    if not np.isfinite(apparent):
        return OptimismResult(
            NAN, NAN, NAN, NAN, n_resamples, 0, n_resamples, reason="the apparent C is undefined (no comparable pair)"
        )
    optimism = []
    for rows in resample_indices(len(t), n_resamples, seed):
        beta_b = fit(t[rows], e[rows], x[rows])
        if isinstance(beta_b, str):
            continue
        on_resample = concordance(t[rows], e[rows], x[rows] @ beta_b)
        on_original = concordance(t, e, x @ beta_b)
        if np.isfinite(on_resample) and np.isfinite(on_original):
            optimism.append(on_resample - on_original)
    used = len(optimism)
    if used == 0:
        return OptimismResult(
            apparent, NAN, NAN, NAN, n_resamples, 0, n_resamples, reason="no resample gave a fit with defined C-indices"
        )
    mean = float(np.mean(optimism))
    se = float(np.std(optimism, ddof=1) / np.sqrt(used)) if used > 1 else NAN
    return OptimismResult(apparent, mean, se, apparent - mean, n_resamples, used, n_resamples - used)
