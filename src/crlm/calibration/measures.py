"""How well predicted probabilities of a binary outcome agree with what happened: pure functions.

- `brier(y, p)`: the mean squared difference between the probability and the 0/1 outcome (Brier 1950,
  Mon Weather Rev 78:1); 0 is perfect, and predicting the prevalence pi for everyone scores pi (1 - pi)
  (`brier_reference`), the scale to read it against. Pinned to sklearn.metrics.brier_score_loss.
- `recalibration(y, p, clip)`: logistic recalibration on the logit of p (Cox 1958, Biometrika 45:562;
  Van Calster et al. 2019, BMC Med 17:230, "Calibration: the Achilles heel of predictive analytics").
  The *slope* b of logit P(y = 1) = a + b logit(p): 1 is perfect, below 1 the probabilities are too
  extreme (over-confident: too close to 0 and 1), above 1 too timid. The *intercept* (calibration-in-the-
  large) a' of logit P(y = 1) = a' + logit(p), the slope fixed at 1 (logit(p) as an offset): 0 is perfect,
  below 0 the model predicts too high a risk on average, above 0 too low. Maximum likelihood without a
  penalty (Newton-Raphson with step halving); pinned to statsmodels' Logit and GLM in the tests.
  Two likelihood-ratio tests, each chi-square with 1 df (`lr_test`): slope = 1, 2 (loglik(a + b z) -
  loglik(a' + z)) with z = logit(p) as an offset in the second fit; and intercept = 0 given slope 1,
  2 (loglik(a' + z) - loglik(z)). They treat the rows as independent: right for one row per patient,
  not a valid test where a patient has several rows (images: their outcomes are correlated).
  p is clipped to [clip, 1 - clip] before the logit, `clip` an explicit argument chosen a priori at the
  resolution of the probabilities: a probability of exactly 0 or 1 has an infinite logit, and how far out
  the clip puts it moves the slope. `IMAGE_CLIP` for a network's float32 sigmoid, `forest_clip(trees)`
  for the survival classifiers (see each).
- `loess_calibration(y, p, frac)`: the flexible calibration curve (Van Calster et al. 2016, J Clin
  Epidemiol 74:167, "A calibration hierarchy for risk models was defined"; Austin & Steyerberg 2014, Stat
  Med 33:517): lowess of the 0/1 outcome on the probability, local linear with tricube weights over the
  nearest frac x n points, no robustness iterations (it=0: robustness weights would down-weight the
  "outlying" 0s and 1s of a binary outcome), as rms::val.prob's lowess(p, y, iter=0). frac is fixed a
  priori at `LOESS_FRAC` = 2/3, the default span of R's lowess and statsmodels' lowess. The diagonal is
  perfect calibration; pinned to statsmodels' lowess and to a loop written from the formula.
- `reliability(y, p, bins)`: the reliability diagram, sklearn.calibration.calibration_curve with
  quantile bins (each bin holds about n / bins predictions), how many predictions each point averages,
  and the loess curve drawn beside the points.
- `brier_ipcw(months, died, risk, horizon)`: the Brier score of a risk of death by `horizon` that keeps
  the patients censored before it, weighting by the inverse probability of censoring (Graf et al. 1999,
  Stat Med 18:2529; scikit-survival's brier_score).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy.special import expit, logit
from scipy.stats import chi2
from sklearn.calibration import calibration_curve
from sksurv.metrics import brier_score
from sksurv.util import Surv
from statsmodels.nonparametric.smoothers_lowess import lowess

from crlm.stats.result import Result

# A network's probability is a float32 sigmoid: just below 1 float32 steps by 2**-24 and the sigmoid
# rounds to exactly 1 once the logit passes ~17, so 1 - p is not resolved below float32's spacing there.
# The clip is float32's machine epsilon (2**-23, two steps below 1), at both ends so that the clipped
# logit stays symmetric (logit(1 - p) = -logit(p)): |logit| <= 15.9.
IMAGE_CLIP = float(np.finfo(np.float32).eps)
FINE_CLIP = 1e-6  # a clip far below any classifier's resolution: the survival slope is also given at it
LOESS_FRAC = 2 / 3  # the loess span, fixed a priori: R's and statsmodels' lowess default
LR_DF = 1  # each likelihood-ratio test frees one parameter
NAN = float("nan")
MAX_ITER = 100
TOL = 1e-10
HISTOGRAM_BINS = 20  # the spread of the predictions under a reliability diagram
MAX_COEF = 1e3  # a coefficient beyond this: the outcome is (quasi-)separated, the MLE does not exist


@dataclass(frozen=True)
class Recalibration(Result):
    intercept: float  # calibration-in-the-large: logit P(y) = a + logit(p); 0 is perfect
    slope: float  # logit P(y) = a + b logit(p); 1 is perfect, < 1 over-confident
    slope_lr: float  # 2 (loglik(a + b z) - loglik(a' + z)): chi-square 1 df under slope = 1
    intercept_lr: float  # 2 (loglik(a' + z) - loglik(z)): chi-square 1 df under intercept = 0 (slope 1)
    logit_clip: float  # z = logit(p clipped to [logit_clip, 1 - logit_clip])
    n: int
    events: int
    n_clipped: int  # probabilities outside [logit_clip, 1 - logit_clip], moved to its ends
    reason: str = ""

    @property
    def slope_p(self) -> float:
        return chi2.sf(self.slope_lr, LR_DF) if np.isfinite(self.slope_lr) else NAN

    @property
    def intercept_p(self) -> float:
        return chi2.sf(self.intercept_lr, LR_DF) if np.isfinite(self.intercept_lr) else NAN


@dataclass(frozen=True)
class Reliability:
    prob_pred: np.ndarray  # mean predicted probability per non-empty bin
    prob_true: np.ndarray  # observed share of outcomes per bin
    count: np.ndarray  # predictions per bin
    bins: int  # bins asked for (tied probabilities can leave some empty)
    histogram: np.ndarray  # predictions in each of HISTOGRAM_BINS equal-width bins over [0, 1]
    loess: Loess  # the flexible calibration curve over every prediction


@dataclass(frozen=True)
class Loess:
    prob: np.ndarray  # the predictions, sorted
    observed: np.ndarray  # lowess estimate of P(y = 1) at each
    frac: float  # the span: share of the points in each local fit


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


def forest_clip(trees) -> float:
    """The logit clip of the survival probabilities: 1 / (2 T), T the fewest trees in survival.rf_trees.

    The coarsest classifier the survival stage can choose is a random forest of T trees: where its leaves
    are pure each tree votes 0 or 1, so its probability moves in steps of 1/T, and a test patient's mean of
    the folds' forests is 0 or 1 only where every forest is. An observed 0 or 1 thus means "fewer than
    half a vote" the other way, and the clip puts it half a vote in. Fixed by survival.rf_trees, not by
    the family the inner CV picks in a fold (a logistic regression has no such step), so it is chosen
    before looking at the probabilities."""
    trees = [int(t) for t in trees]
    if not trees or min(trees) < 1:
        raise ValueError(f"forest_clip: needs at least one positive number of trees, got {trees}")
    return 1 / (2 * min(trees))


def clipped_logit(p, clip: float) -> np.ndarray:
    """logit(p) of p clipped to [clip, 1 - clip]."""
    if not 0 < clip < 0.5:
        raise ValueError(f"clipped_logit: clip must lie in (0, 0.5), got {clip}")
    return logit(np.clip(np.asarray(p, dtype=float), clip, 1 - clip))


def _loglik(y: np.ndarray, eta: np.ndarray) -> float:
    """Bernoulli log-likelihood of y under logit P(y = 1) = eta."""
    return float(np.sum(y * eta - np.logaddexp(0.0, eta)))


def lr_test(statistic: float) -> dict:
    """{statistic, df, p_value} of a likelihood-ratio statistic, chi-square with LR_DF df (None undefined)."""
    defined = statistic is not None and np.isfinite(statistic)
    return {
        "statistic": float(statistic) if defined else None,
        "df": LR_DF,
        "p_value": float(chi2.sf(statistic, LR_DF)) if defined else None,
    }


def _newton(x: np.ndarray, y: np.ndarray, offset: np.ndarray) -> tuple[np.ndarray, float] | None:
    """Unpenalised logistic regression of y on the columns of x with an offset: (coefficients, maximised
    log-likelihood); None where it diverges."""
    beta = np.zeros(x.shape[1])

    def loglik(b: np.ndarray) -> float:
        return _loglik(y, x @ b + offset)

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
            return beta, current
    return None


def recalibration(y, p, clip: float) -> Recalibration:
    """Intercept, slope and their likelihood-ratio statistics of y on z = logit(p clipped to [clip, 1 - clip])."""
    y, p = _binary("recalibration", y, p)
    events = int(y.sum())
    z = clipped_logit(p, clip)
    n_clipped = int(np.sum((p < clip) | (p > 1 - clip)))

    def undefined(reason: str) -> Recalibration:
        return Recalibration(NAN, NAN, NAN, NAN, float(clip), len(y), events, n_clipped, reason=reason)

    if events in (0, len(y)):
        return undefined(f"{events} event(s) in {len(y)}: one class only")
    ones = np.ones((len(y), 1))
    intercept = _newton(ones, y, z)
    joint = _newton(np.column_stack([ones[:, 0], z]), y, np.zeros(len(y)))
    if joint is None or intercept is None or np.ptp(z) == 0:
        return undefined(
            "the probabilities separate the outcomes (or are all equal): the logistic "
            "recalibration has no finite maximum-likelihood fit"
        )
    (a, loglik_offset), (coef, loglik_joint) = intercept, joint
    # the nested fits' log-likelihoods can cross by rounding where the statistic is ~0
    slope_lr = max(2 * (loglik_joint - loglik_offset), 0.0)
    intercept_lr = max(2 * (loglik_offset - _loglik(y, z)), 0.0)
    return Recalibration(float(a[0]), float(coef[1]), slope_lr, intercept_lr, float(clip), len(y), events, n_clipped)


def loess_calibration(y, p, frac: float = LOESS_FRAC) -> Loess:
    """Lowess of the 0/1 outcome on the probability (local linear, tricube weights, the nearest frac x n
    points, it=0: no robustness iterations), at every prediction, sorted by the prediction."""
    y, p = _binary("loess_calibration", y, p)
    if not 0 < frac <= 1:
        raise ValueError(f"loess_calibration: frac must lie in (0, 1], got {frac}")
    # where frac x n or more predictions tie, the nearest points are all ties and the tricube's bandwidth
    # is 0: statsmodels then divides by it (a RuntimeWarning and a wrong value); the local fit there is
    # the observed share of the tied predictions (as R's clowess gives)
    k = int(frac * len(p) + 1e-10)  # statsmodels' neighbourhood size
    values, counts = np.unique(p, return_counts=True)
    crowded = values[counts >= max(k, 2)]
    with warnings.catch_warnings():
        if len(crowded):
            warnings.simplefilter("ignore", RuntimeWarning)
        fitted = lowess(y, p, frac=frac, it=0, delta=0.0, return_sorted=True)
    for value in crowded:
        fitted[fitted[:, 0] == value, 1] = y[p == value].mean()
    return Loess(fitted[:, 0], fitted[:, 1], float(frac))


def reliability(y, p, bins: int, frac: float = LOESS_FRAC) -> Reliability:
    y, p = _binary("reliability", y, p)
    prob_true, prob_pred = calibration_curve(y, p, n_bins=bins, strategy="quantile")
    edges = np.percentile(p, np.linspace(0, 100, bins + 1))  # sklearn's quantile bins, for the counts
    count = np.bincount(np.searchsorted(edges[1:-1], p), minlength=bins)
    count = count[count > 0]
    if len(count) != len(prob_pred):
        raise AssertionError(f"reliability: {len(count)} counts for {len(prob_pred)} points of calibration_curve")
    return Reliability(
        prob_pred, prob_true, count, bins, np.histogram(p, HISTOGRAM_BINS, (0.0, 1.0))[0], loess_calibration(y, p, frac)
    )


def brier_ipcw(months, died, risk, horizon: float) -> BrierIPCW:
    """risk: the predicted probability of death by `horizon`; censored patients stay in, IPC-weighted."""
    t, e, r = (np.asarray(v, dtype=float) for v in (months, died, risk))
    undefined = BrierIPCW(NAN, float(horizon), len(t))
    if len(t) < 2:
        return BrierIPCW(NAN, float(horizon), len(t), reason=f"{len(t)} patient(s)")
    if not t.min() <= horizon < t.max():
        return BrierIPCW(
            NAN,
            float(horizon),
            len(t),
            reason=f"horizon {horizon:g} outside the follow-up range [{t.min():g}, {t.max():g})",
        )
    y = Surv.from_arrays(e.astype(bool), t)
    try:
        _, score = brier_score(y, y, (1 - r)[:, None], [horizon])
    except ValueError as exc:  # e.g. the censoring survival reaches zero before the horizon
        return BrierIPCW(undefined.value, undefined.horizon, len(t), reason=f"scikit-survival: {exc}")
    return BrierIPCW(float(score[0]), float(horizon), len(t))
