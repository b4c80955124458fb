"""Kaplan-Meier, log-rank and Cox proportional hazards on lifelines, as small result objects.

Ties: the log-rank test uses the hypergeometric variance (R's survdiff) and the
Cox model Efron's method (R's coxph default), so results match R's survival
package (pinned in tests/stats/test_survival.py). Where a result is undefined
(one group, too few events, no convergence) the values are NaN and `reason`
says why, instead of an exception in the middle of a pipeline.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, fields

import numpy as np
import pandas as pd
from lifelines import CoxPHFitter, KaplanMeierFitter
from lifelines.exceptions import ConvergenceError
from lifelines.statistics import logrank_test

from crlm.stats.result import Result, plain

NAN = float("nan")


@dataclass(frozen=True)
class KMResult:
    timeline: np.ndarray  # event/censoring times, starting at 0
    survival: np.ndarray  # S(t) just after each time
    ci_low: np.ndarray
    ci_high: np.ndarray
    median: float  # NaN where S(t) never reaches 0.5
    n: int
    n_events: int

    def at(self, times) -> np.ndarray:
        """S(t) at the given times (a step function, right-continuous)."""
        index = np.searchsorted(self.timeline, np.asarray(times, dtype=float), side="right") - 1
        return self.survival[np.clip(index, 0, None)]


@dataclass(frozen=True)
class LogRankResult(Result):
    chisq: float  # chi-square, 1 df
    p_value: float
    n: dict[str, int] = field(default_factory=dict)  # patients per group
    events: dict[str, int] = field(default_factory=dict)  # observed events per group
    reason: str = ""


@dataclass(frozen=True)
class CoxResult(Result):
    table: pd.DataFrame  # per covariate: coef, se, hr, hr_low, hr_high, p (Wald)
    concordance: float
    log_likelihood: float
    n: int
    n_events: int
    reason: str = ""

    def to_dict(self, digits: int | None = None) -> dict:
        """The table as "covariates" ({name: {coef, se, hr, hr_low, hr_high, p}}), then the other fields."""
        covariates = {name: dict(row) for name, row in self.table.iterrows()}
        rest = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "table"}
        return plain({"covariates": covariates, **rest}, digits)


def kaplan_meier(durations, events, ci_level: float = 0.95) -> KMResult:
    durations, events = _survival_arrays(durations, events)
    fitter = KaplanMeierFitter(alpha=1 - ci_level).fit(durations, events)
    ci = fitter.confidence_interval_survival_function_.to_numpy()
    median = float(fitter.median_survival_time_)  # lifelines: inf where S(t) stays above 0.5
    return KMResult(
        fitter.timeline.astype(float),
        fitter.survival_function_.iloc[:, 0].to_numpy(),
        ci[:, 0],
        ci[:, 1],
        median if np.isfinite(median) else NAN,
        len(durations),
        int(events.sum()),
    )


def at_risk(durations, times) -> np.ndarray:
    """Number still under observation (time >= t) at each of `times`: the KM at-risk table."""
    durations = np.asarray(durations, dtype=float)
    return np.array([(durations >= t).sum() for t in times], dtype=int)


def logrank(durations, events, groups) -> LogRankResult:
    """Two-group log-rank test; `groups` holds two distinct labels (e.g. 'high', 'low')."""
    if len(durations) == 0:
        return LogRankResult(NAN, NAN, reason="no patients")
    durations, events = _survival_arrays(durations, events)
    groups = np.asarray(groups).astype(str)
    labels = sorted(set(groups))
    n = {str(g): int((groups == g).sum()) for g in labels}
    observed = {str(g): int(events[groups == g].sum()) for g in labels}
    if len(labels) != 2:
        return LogRankResult(NAN, NAN, n, observed, reason=f"needs two groups, got {len(labels)} ({labels})")
    if events.sum() == 0:
        return LogRankResult(NAN, NAN, n, observed, reason="no events")
    a = groups == labels[0]
    result = logrank_test(durations[a], durations[~a], events[a], events[~a])
    return LogRankResult(float(result.test_statistic), float(result.p_value), n, observed)


def cox_fit(
    frame: pd.DataFrame,
    duration_col: str,
    event_col: str,
    covariates: list[str],
    penalizer: float = 0.0,
    min_events_per_covariate: float = 2.0,
    ci_level: float = 0.95,
) -> CoxResult:
    """Cox PH (Efron ties) on the rows with every covariate present; too few events -> NaNs + reason."""
    missing = [c for c in [duration_col, event_col, *covariates] if c not in frame.columns]
    if missing:
        raise KeyError(f"cox_fit: columns {missing} not in the table (has {list(frame.columns)})")
    data = frame[[duration_col, event_col, *covariates]].dropna().astype(float)
    n, n_events = len(data), int(data[event_col].sum())
    empty = pd.DataFrame(NAN, index=covariates, columns=["coef", "se", "hr", "hr_low", "hr_high", "p"])
    needed = max(2, int(np.ceil(min_events_per_covariate * len(covariates))))
    if n_events < needed:
        return CoxResult(
            empty,
            NAN,
            NAN,
            n,
            n_events,
            reason=f"{n_events} events for {len(covariates)} covariate(s); needs at least {needed}",
        )
    constant = [c for c in covariates if data[c].nunique() < 2]
    if constant:
        return CoxResult(empty, NAN, NAN, n, n_events, reason=f"covariate(s) {constant} constant in the data")
    fitter = CoxPHFitter(penalizer=penalizer, alpha=1 - ci_level)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # tight tolerances: with lifelines' defaults the estimates stop ~1e-6 short of the optimum
            fitter.fit(
                data,
                duration_col=duration_col,
                event_col=event_col,
                fit_options={"precision": 1e-14, "r_precision": 1e-15},
            )
    except ConvergenceError as exc:
        return CoxResult(empty, NAN, NAN, n, n_events, reason=f"did not converge: {str(exc).splitlines()[0]}")
    summary = fitter.summary
    level = f"{round(ci_level * 100)}%"
    table = pd.DataFrame(
        {
            "coef": summary["coef"],
            "se": summary["se(coef)"],
            "hr": summary["exp(coef)"],
            "hr_low": summary[f"exp(coef) lower {level}"],
            "hr_high": summary[f"exp(coef) upper {level}"],
            "p": summary["p"],
        }
    ).loc[covariates]
    return CoxResult(table, float(fitter.concordance_index_), float(fitter.log_likelihood_), n, n_events)


def _survival_arrays(durations, events) -> tuple[np.ndarray, np.ndarray]:
    durations = np.asarray(durations, dtype=float)
    events = np.asarray(events, dtype=float)
    if durations.shape != events.shape:
        raise ValueError(f"durations ({durations.shape}) and events ({events.shape}) differ in shape")
    if len(durations) == 0:
        raise ValueError("no patients: empty durations")
    if not (np.all(np.isfinite(durations)) and np.all(durations >= 0)):
        raise ValueError("durations must be finite and >= 0")
    if not np.isin(events, (0.0, 1.0)).all():
        raise ValueError(f"events must be 0/1, got {sorted(set(events.tolist()) - {0.0, 1.0})}")
    return durations, events.astype(int)
