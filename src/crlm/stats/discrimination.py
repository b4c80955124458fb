"""Discrimination of survival risk scores, and the comparisons between them.

Higher risk means earlier death throughout. Time-dependent AUC and Uno's C weight by the inverse
probability of censoring (IPCW), the censoring distribution estimated by Kaplan-Meier on the same
patients: cumulative/dynamic AUC (Uno et al. 2007, JASA 102:1316-1325; Hung & Chiang 2010, Can J
Stat 38:8-26) by sksurv.metrics.cumulative_dynamic_auc, Uno's C (Uno et al. 2011, Stat Med
30:1105-1117) by concordance_index_ipcw, Harrell's C (Harrell et al. 1982, JAMA 247:2543-2546) by
concordance_index_censored. Undefined results are NaN with a `reason`; bad input raises ValueError.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import cast

import numpy as np
from scipy import stats
from sksurv.metrics import concordance_index_censored, concordance_index_ipcw, cumulative_dynamic_auc
from sksurv.util import Surv

from crlm.stats.result import Result

NAN = float("nan")
TIED_TOL = 1e-8  # sksurv's tolerance for tied risk scores


@dataclass(frozen=True)
class IPCWAUCResult(Result):
    value: float
    horizon: float
    n: int
    n_cases: int  # died at or before the horizon
    n_controls: int  # still under observation after the horizon
    reason: str = ""


@dataclass(frozen=True)
class CIndexResult(Result):
    value: float
    n: int
    n_events: int
    tau: float  # Uno's truncation time; NaN for none (and for Harrell's C)
    reason: str = ""


@dataclass(frozen=True)
class PairedCIndexResult(Result):
    c_a: float
    c_b: float
    diff: float  # c_a - c_b
    se: float  # SD of the bootstrap differences
    z: float
    p_value: float  # two-sided, normal
    ci_low: float  # percentile bootstrap CI of the difference
    ci_high: float
    ci_level: float
    n: int
    n_events: int
    n_boot_valid: int  # replicates with at least one comparable pair
    reason: str = ""


@dataclass(frozen=True)
class LRTResult(Result):
    statistic: float  # 2 (loglik_full - loglik_reduced)
    df: int
    p_value: float
    reason: str = ""


def normal_scores(values) -> np.ndarray:
    """van der Waerden scores Phi^-1(r / (n + 1)), r the mid-rank among the n non-NaN values; NaN stays NaN."""
    values = np.asarray(values, dtype=float)
    if values.ndim != 1:
        raise ValueError(f"normal_scores: values must be 1-D, got shape {values.shape}")
    out = np.full(values.shape, NAN)
    seen = ~np.isnan(values)
    out[seen] = stats.norm.ppf(stats.rankdata(values[seen]) / (seen.sum() + 1))
    return out


def ipcw_auc(durations, events, risk, horizon: float) -> IPCWAUCResult:
    """Cumulative/dynamic AUC at `horizon`: cases died by then (IPC-weighted), controls outlived it."""
    t, e, (risk,) = _inputs("ipcw_auc", durations, events, risk)
    horizon = float(horizon)
    n_cases, n_controls = int(np.sum(e & (t <= horizon))), int(np.sum(t > horizon))
    undefined = IPCWAUCResult(NAN, horizon, len(t), n_cases, n_controls)
    if not t.min() <= horizon < t.max():  # sksurv's range: [first, last) follow-up time
        return _why(undefined, f"horizon {horizon:g} outside the follow-up range [{t.min():g}, {t.max():g})")
    if n_cases == 0 or n_controls == 0:
        return _why(undefined, f"{n_cases} case(s) and {n_controls} control(s) at horizon {horizon:g}")
    y = Surv.from_arrays(e, t)
    try:
        auc, _ = cumulative_dynamic_auc(y, y, risk, horizon, tied_tol=TIED_TOL)
    except ValueError as exc:  # e.g. the censoring survival is zero at an event time
        return _why(undefined, f"scikit-survival: {exc}")
    return IPCWAUCResult(float(auc[0]), horizon, len(t), n_cases, n_controls)


def uno_c(durations, events, risk, tau: float | None = None) -> CIndexResult:
    """Uno's C over pairs whose earlier time is an event before `tau` (None: no truncation, all times)."""
    t, e, (risk,) = _inputs("uno_c", durations, events, risk)
    undefined = CIndexResult(NAN, len(t), int(e.sum()), NAN if tau is None else float(tau))
    if tau is not None and not np.sum(e & (t < tau)):
        return _why(undefined, f"no event before tau = {float(tau):g}")
    y = Surv.from_arrays(e, t)
    try:
        value = concordance_index_ipcw(y, y, risk, tau=tau, tied_tol=TIED_TOL)[0]
    except ValueError as exc:  # all censored, no comparable pair, zero censoring survival at an event time
        return _why(undefined, f"scikit-survival: {exc}")
    if not np.isfinite(value):
        return _why(undefined, "no comparable pair with an event before tau")
    return CIndexResult(float(value), len(t), int(e.sum()), undefined.tau)


def harrell_c(durations, events, risk) -> CIndexResult:
    """Harrell's C: concordant / comparable pairs, tied risks count 1/2."""
    t, e, (risk,) = _inputs("harrell_c", durations, events, risk)
    try:
        value = concordance_index_censored(e, t, risk, tied_tol=TIED_TOL)[0]
    except ValueError as exc:
        return _why(CIndexResult(NAN, len(t), int(e.sum()), NAN), f"scikit-survival: {exc}")
    return CIndexResult(float(value), len(t), int(e.sum()), NAN)


def paired_c_index_test(
    durations, events, risk_a, risk_b, n_boot: int, seed: int, ci_level: float = 0.95
) -> PairedCIndexResult:
    """Harrell's C of two risk scores on the same patients, compared by a paired patient-level bootstrap
    (patients resampled with replacement, both scores together; Efron & Tibshirani 1993, ch. 6 and 13).

    A resample that holds patient i w_i times has C = sum w_i w_j K_ij / sum w_i w_j P_ij over the
    pairwise kernel K and comparability P of the original patients (copies of one patient are never
    comparable: same time, same status), so every replicate is one matrix product, not a re-sort."""
    t, e, (a, b) = _inputs("paired_c_index_test", durations, events, risk_a, risk_b)
    if int(n_boot) != n_boot or n_boot < 2:
        raise ValueError(f"paired_c_index_test: n_boot must be an integer >= 2, got {n_boot}")
    if not 0.0 < ci_level < 1.0:
        raise ValueError(f"paired_c_index_test: ci_level must be in (0, 1), got {ci_level}")
    n, n_events = len(t), int(e.sum())
    # P_ij: i died first (j outlived i, or was censored at i's time), as in concordance_index_censored
    pairs = (e[:, None] & ((t[:, None] < t[None, :]) | ((t[:, None] == t[None, :]) & ~e[None, :]))).astype(float)
    kernel_a, kernel_b = (
        pairs * np.where(np.abs(r[:, None] - r[None, :]) <= TIED_TOL, 0.5, r[:, None] > r[None, :]) for r in (a, b)
    )
    # eight NaNs for the float fields c_a .. ci_high (nan[:5]: se .. ci_high); only unpacked and sliced
    nan = cast("tuple[float, float, float, float, float, float, float, float]", [NAN] * 8)
    if not pairs.any():
        return PairedCIndexResult(
            *nan, ci_level, n, n_events, 0, reason="no comparable pair (no event before another patient's time)"
        )
    c_a, c_b = kernel_a.sum() / pairs.sum(), kernel_b.sum() / pairs.sum()
    diff = float(c_a - c_b)
    index = np.random.default_rng(seed).integers(0, n, size=(int(n_boot), n))
    diffs: list[np.ndarray] | np.ndarray  # the chunks' differences, then all of them
    kernel_d, diffs = kernel_a - kernel_b, []
    for chunk in np.array_split(index, max(1, index.size // 1_000_000)):
        w = np.bincount((chunk + n * np.arange(len(chunk))[:, None]).ravel(), minlength=len(chunk) * n)
        w = w.reshape(len(chunk), n).astype(float)
        numerator, denominator = ((w @ kernel_d) * w).sum(axis=1), ((w @ pairs) * w).sum(axis=1)
        diffs.append(numerator[denominator > 0] / denominator[denominator > 0])
    diffs = np.concatenate(diffs)
    head = (float(c_a), float(c_b), diff)
    if len(diffs) < 2:
        return PairedCIndexResult(
            *head,
            *nan[:5],
            ci_level,
            n,
            n_events,
            len(diffs),
            reason=f"{len(diffs)} bootstrap replicate(s) with a comparable pair",
        )
    se = float(np.std(diffs, ddof=1))
    low, high = (float(q) for q in np.quantile(diffs, [(1 - ci_level) / 2, (1 + ci_level) / 2]))
    if se == 0.0:  # identical scores: no difference, p = 1; any other zero variance is undefined
        return PairedCIndexResult(
            *head,
            se,
            NAN if diff else 0.0,
            NAN if diff else 1.0,
            low,
            high,
            ci_level,
            n,
            n_events,
            len(diffs),
            reason="zero bootstrap variance" if diff else "",
        )
    z = diff / se
    return PairedCIndexResult(
        *head, se, z, float(2 * stats.norm.sf(abs(z))), low, high, ci_level, n, n_events, len(diffs)
    )


def likelihood_ratio_test(loglik_reduced: float, loglik_full: float, df: int) -> LRTResult:
    """Likelihood-ratio chi-square (Wilks 1938) for nested models fitted on the same rows."""
    if int(df) != df or df < 1:
        raise ValueError(f"likelihood_ratio_test: df must be a positive integer, got {df}")
    df = int(df)
    statistic = 2.0 * (float(loglik_full) - float(loglik_reduced))
    if not np.isfinite(statistic):
        return LRTResult(NAN, df, NAN, reason="a log-likelihood is not finite (a model was not fitted)")
    if statistic < -1e-6:
        return LRTResult(
            NAN,
            df,
            NAN,
            reason=f"the full model fits worse than the reduced (2 dLL = "
            f"{statistic:.3g}): not nested, other rows, or not converged",
        )
    statistic = max(statistic, 0.0)  # optimiser noise around an exact zero
    return LRTResult(statistic, df, float(stats.chi2.sf(statistic, df)))


def _inputs(name, durations, events, *risks):
    t = np.asarray(durations, dtype=float)
    e = np.asarray(events, dtype=float)
    risks = tuple(np.asarray(r, dtype=float) for r in risks)
    if t.ndim != 1 or any(x.shape != t.shape for x in (e, *risks)):
        raise ValueError(
            f"{name}: durations, events and risk must be 1-D of one length, got shapes "
            f"{[x.shape for x in (t, e, *risks)]}"
        )
    if len(t) < 2:
        raise ValueError(f"{name}: needs at least 2 patients, got {len(t)}")
    if not (np.all(np.isfinite(t)) and np.all(t >= 0)):
        raise ValueError(f"{name}: durations must be finite and >= 0")
    if not np.isin(e, (0.0, 1.0)).all():
        raise ValueError(f"{name}: events must be 0/1, got {sorted(set(e.tolist()) - {0.0, 1.0})}")
    for i, r in enumerate(risks):
        if not np.all(np.isfinite(r)):
            raise ValueError(f"{name}: risk{'_' + 'ab'[i] if len(risks) > 1 else ''} contains NaN or infinite values")
    return t, e.astype(bool), risks


def _why(result, reason: str):
    return replace(result, reason=reason)
