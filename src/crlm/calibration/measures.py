"""How well predicted probabilities of a binary outcome agree with what happened: pure functions.

- `brier(y, p)`: the mean squared difference between the probability and the 0/1 outcome (Brier 1950,
  Mon Weather Rev 78:1); 0 is perfect, and predicting the prevalence pi for everyone scores pi (1 - pi)
  (`brier_reference`), the scale to read it against. Pinned to sklearn.metrics.brier_score_loss.
- `recalibration(y, p)`: logistic recalibration on the logit of p (Cox 1958, Biometrika 45:562;
  Van Calster et al. 2019, BMC Med 17:230, "Calibration: the Achilles heel of predictive analytics").
  The *slope* b of logit P(y = 1) = a + b logit(p): 1 is perfect, below 1 the probabilities are too
  extreme (over-confident: too close to 0 and 1), above 1 too timid. The *intercept* (calibration-in-the-
  large) a' of logit P(y = 1) = a' + logit(p), the slope fixed at 1 (logit(p) as an offset): 0 is perfect,
  below 0 the model predicts too high a risk on average, above 0 too low. Maximum likelihood without a
  penalty (Newton-Raphson with step halving); pinned to statsmodels' Logit and GLM in the tests.
  p is clipped to [EPS, 1 - EPS] before the logit (a network's float32 sigmoid reaches 0 and 1 exactly).
- `reliability(y, p, bins)`: the reliability diagram, sklearn.calibration.calibration_curve with
  quantile bins (each bin holds about n / bins predictions), and how many predictions each point averages.
- `brier_ipcw(months, died, risk, horizon)`: the Brier score of a risk of death by `horizon` that keeps
  the patients censored before it, weighting by the inverse probability of censoring (Graf et al. 1999,
  Stat Med 18:2529; scikit-survival's brier_score).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit, logit
from sklearn.calibration import calibration_curve
from sksurv.metrics import brier_score
from sksurv.util import Surv

from crlm.stats.result import Result

EPS = 1e-6          # probabilities are clipped to [EPS, 1 - EPS] before the logit
NAN = float("nan")
MAX_ITER = 100
TOL = 1e-10
HISTOGRAM_BINS = 20  # the spread of the predictions under a reliability diagram
MAX_COEF = 1e3      # a coefficient beyond this: the outcome is (quasi-)separated, the MLE does not exist


@dataclass(frozen=True)
class Recalibration(Result):
    intercept: float    # calibration-in-the-large: logit P(y) = a + logit(p); 0 is perfect
    slope: float        # logit P(y) = a + b logit(p); 1 is perfect, < 1 over-confident
    n: int
    events: int
    reason: str = ""


@dataclass(frozen=True)
class Reliability:
    prob_pred: np.ndarray    # mean predicted probability per non-empty bin
    prob_true: np.ndarray    # observed share of outcomes per bin
    count: np.ndarray        # predictions per bin
    bins: int                # bins asked for (tied probabilities can leave some empty)
    histogram: np.ndarray    # predictions in each of HISTOGRAM_BINS equal-width bins over [0, 1]


@dataclass(frozen=True)
class BrierIPCW(Result):
    value: float
    horizon: float
    n: int
    reason: str = ""


def _binary(name: str, y, p) -> tuple[np.ndarray, np.ndarray]:
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    if y.ndim != 1 or y.shape != p.shape or not len(y):
        raise ValueError(f"{name}: y and p must be 1-D of one non-zero length, got shapes {y.shape}, {p.shape}")
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError(f"{name}: y must be 0/1, got {sorted(set(y.tolist()) - {0.0, 1.0})[:5]}")
    if not (np.all(np.isfinite(p)) and p.min() >= 0 and p.max() <= 1):
        raise ValueError(f"{name}: p must be probabilities in [0, 1]")
    return y, p


def brier(y, p) -> float:
    y, p = _binary("brier", y, p)
    return float(np.mean((p - y) ** 2))


def brier_reference(y) -> float:
    """The Brier score of predicting the observed prevalence for everyone: pi (1 - pi)."""
    prevalence = float(np.mean(np.asarray(y, dtype=float)))
    return prevalence * (1 - prevalence)


def clipped_logit(p) -> np.ndarray:
    return logit(np.clip(np.asarray(p, dtype=float), EPS, 1 - EPS))


def _newton(x: np.ndarray, y: np.ndarray, offset: np.ndarray) -> np.ndarray | None:
    """Unpenalised logistic regression of y on the columns of x with an offset; None where it diverges."""
    beta = np.zeros(x.shape[1])

    def loglik(b: np.ndarray) -> float:
        eta = x @ b + offset
        return float(np.sum(y * eta - np.logaddexp(0.0, eta)))

    current = loglik(beta)
    for _ in range(MAX_ITER):
        mu = expit(x @ beta + offset)
        gradient = x.T @ (y - mu)
        hessian = (x * (mu * (1 - mu))[:, None]).T @ x
        try:
            step = np.linalg.solve(hessian, gradient)
        except np.linalg.LinAlgError:
            return None
        scale = 1.0
        while scale > 1e-8:
            proposal = beta + scale * step
            value = loglik(proposal)
            if value >= current - 1e-12:
                break
            scale /= 2
        beta, current = proposal, value
        if np.max(np.abs(beta)) > MAX_COEF:
            return None
        if np.max(np.abs(scale * step)) < TOL:
            return beta
    return None


def recalibration(y, p) -> Recalibration:
    y, p = _binary("recalibration", y, p)
    events = int(y.sum())
    undefined = Recalibration(NAN, NAN, len(y), events)
    if events in (0, len(y)):
        return Recalibration(NAN, NAN, len(y), events, reason=f"{events} event(s) in {len(y)}: one class only")
    z = clipped_logit(p)
    ones = np.ones((len(y), 1))
    intercept = _newton(ones, y, z)
    joint = _newton(np.column_stack([ones[:, 0], z]), y, np.zeros(len(y)))
    if joint is None or intercept is None or np.ptp(z) == 0:
        return Recalibration(undefined.intercept, undefined.slope, len(y), events,
                             reason="the probabilities separate the outcomes (or are all equal): the logistic "
                                    "recalibration has no finite maximum-likelihood fit")
    return Recalibration(float(intercept[0]), float(joint[1]), len(y), events)


def reliability(y, p, bins: int) -> Reliability:
    y, p = _binary("reliability", y, p)
    prob_true, prob_pred = calibration_curve(y, p, n_bins=bins, strategy="quantile")
    edges = np.percentile(p, np.linspace(0, 100, bins + 1))      # sklearn's quantile bins, for the counts
    count = np.bincount(np.searchsorted(edges[1:-1], p), minlength=bins)
    count = count[count > 0]
    if len(count) != len(prob_pred):
        raise AssertionError(f"reliability: {len(count)} counts for {len(prob_pred)} points of calibration_curve")
    return Reliability(prob_pred, prob_true, count, bins, np.histogram(p, HISTOGRAM_BINS, (0.0, 1.0))[0])


def brier_ipcw(months, died, risk, horizon: float) -> BrierIPCW:
    """risk: the predicted probability of death by `horizon`; censored patients stay in, IPC-weighted."""
    t, e, r = (np.asarray(v, dtype=float) for v in (months, died, risk))
    undefined = BrierIPCW(NAN, float(horizon), len(t))
    if len(t) < 2:
        return BrierIPCW(NAN, float(horizon), len(t), reason=f"{len(t)} patient(s)")
    if not t.min() <= horizon < t.max():
        return BrierIPCW(NAN, float(horizon), len(t),
                         reason=f"horizon {horizon:g} outside the follow-up range [{t.min():g}, {t.max():g})")
    y = Surv.from_arrays(e.astype(bool), t)
    try:
        _, score = brier_score(y, y, (1 - r)[:, None], [horizon])
    except ValueError as exc:     # e.g. the censoring survival reaches zero before the horizon
        return BrierIPCW(undefined.value, undefined.horizon, len(t), reason=f"scikit-survival: {exc}")
    return BrierIPCW(float(score[0]), float(horizon), len(t))
