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


def net_benefit(risks: dict[str, np.ndarray], months, died, horizon: float,
                thresholds) -> dict[str, pd.DataFrame]:
    """The decision curve of each risk in `risks` (name -> predicted probability of death by `horizon`, one
    per patient, the same patients for all) for the outcome death by the horizon, censoring handled by
    Kaplan-Meier (dcurves.dca, one call: treat-all and treat-none are computed once). Per name, one row per
    threshold: the model's net benefit, treat-all's and treat-none's."""
    names = [f"{RISK}{i}" for i in range(len(risks))]    # dcurves reserves "all" and "none"
    frame = pd.DataFrame({TIME: np.asarray(months, dtype=float), EVENT: np.asarray(died, dtype=float)})
    for name, values in zip(names, risks.values()):
        frame[name] = np.asarray(values, dtype=float)
    if frame.isna().any().any():
        raise ValueError("net_benefit: risks, months and died must have no missing values")
    frame[EVENT] = frame[EVENT].astype(int)
    thresholds = [float(t) for t in thresholds]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")     # pandas' chained-assignment and dtype warnings inside dcurves
        curves = dca(data=frame, outcome=EVENT, modelnames=names, thresholds=thresholds, time=float(horizon),
                     time_to_outcome_col=TIME)
    by_model = {model: rows.set_index("threshold")["net_benefit"].astype(float).reindex(thresholds).to_numpy()
                for model, rows in curves.groupby("model")}
    return {key: pd.DataFrame({"threshold": thresholds, "net_benefit": by_model[name],
                               "treat_all": by_model["all"], "treat_none": by_model["none"]})
            for key, name in zip(risks, names)}


def at_thresholds(curve: pd.DataFrame, thresholds) -> dict[str, dict[str, float]]:
    """{"0.1": {"model": NB, "treat_all": NB}, ...} at `thresholds` (which must be rows of `curve`)."""
    rows = curve.set_index(curve["threshold"].round(6))
    return {f"{t:g}": {"model": float(rows.at[round(t, 6), "net_benefit"]),
                       "treat_all": float(rows.at[round(t, 6), "treat_all"])} for t in thresholds}
