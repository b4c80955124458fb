"""Decision curves (Vickers & Elkin 2006, Med Decis Making 26:565): the net benefit of acting on a risk.

Acting (treating, intensifying follow-up) on every patient whose predicted risk is at least a threshold
probability pt, the net benefit is

    NB(pt) = TP / n - FP / n * pt / (1 - pt)

true positives per patient less false positives weighted by the odds of pt: choosing pt = 0.2 says one
needless intervention costs a quarter of what one needed intervention gains. Treat-all (everyone
positive) and treat-none (NB = 0) are the strategies to beat; a model is useful at the thresholds where
its curve lies above both. Read as "net true positives per patient": NB = 0.05 is 5 more correctly
treated patients per 100 with no extra needless treatment.

For death before a horizon with censoring (Vickers et al. 2008, BMC Med Inform Decis Mak 8:53), the
true and false positives come from Kaplan-Meier: TP / n = P(risk >= pt) (1 - S+(horizon)) and
FP / n = P(risk >= pt) S+(horizon), S+ the Kaplan-Meier survival of the test-positive patients, so a
patient censored before the horizon still counts. dcurves.dca computes both (its `time` and
`time_to_outcome_col` arguments); where the Kaplan-Meier curve of the test positives ends before the
horizon dcurves leaves the value undefined (NaN here, None in the JSON).

`km_net_benefit` is the same computation in numpy, for the bootstrap: dcurves takes about a quarter of a
second per call (lifelines fits one Kaplan-Meier curve per threshold), too slow for stats.n_boot
resamples of every arch. It follows dcurves' rules (risk >= pt is positive; no positive: NB 0; the
Kaplan-Meier curve of the positives ending before the horizon: NaN; a death at the horizon counts) and
is pinned to dcurves.dca in the tests.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from dcurves import dca

RISK, TIME, EVENT = "risk_", "months", "died"


def threshold_grid(low: float, high: float, step: float, extra=()) -> np.ndarray:
    """low, low + step, ..., high (inclusive up to rounding) and the `extra` thresholds, sorted, 6 decimals."""
    grid = np.arange(round((high - low) / step) + 1) * step + low
    return np.unique(np.round(np.concatenate([grid, np.asarray(extra, dtype=float)]), 6))


def net_benefit(risks: dict[str, np.ndarray], months, died, horizon: float, thresholds) -> dict[str, pd.DataFrame]:
    """The decision curve of each risk in `risks` (name -> predicted probability of death by `horizon`, one
    per patient, the same patients for all) for the outcome death by the horizon, censoring handled by
    Kaplan-Meier (dcurves.dca, one call: treat-all and treat-none are computed once). Per name, one row per
    threshold: the model's net benefit, treat-all's and treat-none's."""
    names = [f"{RISK}{i}" for i in range(len(risks))]  # dcurves reserves "all" and "none"
    frame = pd.DataFrame({TIME: np.asarray(months, dtype=float), EVENT: np.asarray(died, dtype=float)})
    for name, values in zip(names, risks.values()):
        frame[name] = np.asarray(values, dtype=float)
    if frame.isna().any().any():
        raise ValueError("net_benefit: risks, months and died must have no missing values")
    frame[EVENT] = frame[EVENT].astype(int)
    thresholds = [float(t) for t in thresholds]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas' chained-assignment and dtype warnings inside dcurves
        curves = dca(
            data=frame,
            outcome=EVENT,
            modelnames=names,
            thresholds=thresholds,
            time=float(horizon),
            time_to_outcome_col=TIME,
        )
    by_model = {
        model: rows.set_index("threshold")["net_benefit"].astype(float).reindex(thresholds).to_numpy()
        for model, rows in curves.groupby("model")
    }
    return {
        key: pd.DataFrame(
            {
                "threshold": thresholds,
                "net_benefit": by_model[name],
                "treat_all": by_model["all"],
                "treat_none": by_model["none"],
            }
        )
        for key, name in zip(risks, names)
    }


def at_thresholds(curve: pd.DataFrame, thresholds) -> dict[str, dict[str, float]]:
    """{"0.1": {"model": NB, "treat_all": NB}, ...} at `thresholds` (which must be rows of `curve`)."""
    rows = curve.set_index(curve["threshold"].round(6))
    return {
        f"{t:g}": {
            "model": float(rows.at[round(t, 6), "net_benefit"]),
            "treat_all": float(rows.at[round(t, 6), "treat_all"]),
        }
        for t in thresholds
    }


def km_net_benefit(risk, months, died, horizon: float, thresholds) -> tuple[np.ndarray, np.ndarray]:
    """(model, treat_all): the net benefit of acting on risk >= pt and of treating everyone at each pt in
    `thresholds`, death by `horizon` from Kaplan-Meier, as dcurves.dca (module docstring). Rows may repeat
    (a bootstrap resample): a repeated patient counts as often as it appears."""
    risk, t, e = (np.asarray(v, dtype=float) for v in (risk, months, died))
    pt = np.asarray(thresholds, dtype=float)
    if not (risk.ndim == 1 and risk.shape == t.shape == e.shape and len(risk)):
        raise ValueError("km_net_benefit: risk, months and died must be 1-D of one non-zero length")
    if not (np.isfinite(risk).all() and np.isfinite(t).all() and np.isin(e, (0.0, 1.0)).all()):
        raise ValueError("km_net_benefit: risk and months must be finite and died 0/1")
    if not np.all((pt > 0) & (pt < 1)):
        raise ValueError(f"km_net_benefit: thresholds must lie in (0, 1), got {pt.tolist()}")
    groups = np.vstack([risk[None, :] >= pt[:, None], np.ones((1, len(risk)), dtype=bool)])  # last: all
    deaths_at = np.unique(t[(e == 1) & (t <= horizon)])
    at_risk = (t[None, :] >= deaths_at[:, None]).astype(float)  # (death times, patients)
    dying = ((t[None, :] == deaths_at[:, None]) & (e[None, :] == 1)).astype(float)
    n_at_risk, n_dying = groups @ at_risk.T, groups @ dying.T  # (groups, death times)
    survival = np.prod(1 - np.divide(n_dying, n_at_risk, out=np.zeros_like(n_dying), where=n_at_risk > 0), axis=1)
    positives = groups.sum(axis=1)
    last = np.max(np.where(groups, t[None, :], -np.inf), axis=1)  # the end of each KM curve
    risk_of_death = np.where(positives == 0, 0.0, np.where(last < horizon, np.nan, 1 - survival))
    if t.max() < horizon:
        risk_of_death[:] = np.nan
    positive_rate = positives / len(risk)
    odds = pt / (1 - pt)
    benefit = positive_rate * risk_of_death - positive_rate * (1 - risk_of_death) * np.append(odds, np.nan)
    treat_all = risk_of_death[-1] - (1 - risk_of_death[-1]) * odds
    return benefit[:-1], treat_all
