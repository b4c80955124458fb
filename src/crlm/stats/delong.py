"""DeLong's test for two correlated ROC AUCs (paired: both scores on the same cases).

DeLong, DeLong & Clarke-Pearson (1988), Biometrics 44:837-845, computed with the
fast algorithm of Sun & Xu (2014), IEEE Signal Processing Letters 21:1389-1393:
the placement values come from midranks, O(N log N) instead of O(n_pos * n_neg).
Ties count one half, as in the Mann-Whitney form of the AUC.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from crlm.stats.inputs import paired_scores
from crlm.stats.result import Result


@dataclass(frozen=True)
class DeLongResult(Result):
    auc_a: float
    auc_b: float
    diff: float  # auc_a - auc_b
    se: float  # standard error of the difference
    z: float
    p_value: float  # two-sided
    ci_low: float  # CI of the difference
    ci_high: float
    ci_level: float
    n_pos: int
    n_neg: int
    reason: str = ""  # why the test is undefined (values are NaN), else ""


def placement_values(y_true: np.ndarray, scores: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """AUC and the DeLong placement values V10 (per positive) and V01 (per negative).

    Sun & Xu: V10 = (midrank among all - midrank among positives) / n_neg, and
    V01 = 1 - (midrank among all - midrank among negatives) / n_pos. Both differences
    are counts over tie groups of the sorted scores (negatives below + half the tied
    negatives, and so on), so one sort per score vector gives them all.
    """
    y_true = np.asarray(y_true).astype(bool)
    scores = np.asarray(scores, dtype=np.float64)
    m, n = int(y_true.sum()), int((~y_true).sum())
    order = np.argsort(scores, kind="stable")
    ordered = scores[order]
    starts = np.empty(len(ordered), dtype=bool)
    starts[:1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=starts[1:])
    group = np.cumsum(starts) - 1  # tie group of each sorted score
    pos_in = np.bincount(group, weights=y_true[order])  # positives per tie group
    neg_in = np.bincount(group) - pos_in
    neg_below = np.cumsum(neg_in) - neg_in
    pos_below = np.cumsum(pos_in) - pos_in
    placed = np.empty(len(scores))
    placed[order] = (neg_below + neg_in / 2)[group]  # negatives below each score, ties count 1/2
    v10 = placed[y_true] / n
    placed[order] = (m - pos_below - pos_in / 2)[group]  # positives above each score, ties count 1/2
    v01 = placed[~y_true] / m
    return float(v10.mean()), v10, v01


def delong_test(y_true, scores_a, scores_b, ci_level: float = 0.95) -> DeLongResult:
    """Two-sided test of AUC(a) = AUC(b) for paired scores; NaNs with a reason where undefined."""
    y_true, scores_a, scores_b = paired_scores("delong_test", y_true, scores_a, scores_b, ci_level=ci_level)
    n_pos = int(np.sum(y_true == 1))
    n_neg = len(y_true) - n_pos
    nan = float("nan")
    if n_pos == 0 or n_neg == 0:
        return DeLongResult(
            nan,
            nan,
            nan,
            nan,
            nan,
            nan,
            nan,
            nan,
            ci_level,
            n_pos,
            n_neg,
            reason=f"one class only ({n_pos} positive, {n_neg} negative): AUC undefined",
        )
    auc_a, v10_a, v01_a = placement_values(y_true, scores_a)
    auc_b, v10_b, v01_b = placement_values(y_true, scores_b)
    diff = auc_a - auc_b
    # var(A - B) = [var(V10a - V10b)] / m + [var(V01a - V01b)] / n  (sample variances, ddof=1)
    var10 = np.var(v10_a - v10_b, ddof=1) if n_pos > 1 else 0.0
    var01 = np.var(v01_a - v01_b, ddof=1) if n_neg > 1 else 0.0
    se = float(np.sqrt(var10 / n_pos + var01 / n_neg))
    half = stats.norm.ppf(0.5 + ci_level / 2) * se
    if se == 0.0:
        reason = "" if diff == 0.0 else "zero variance of the difference"
        p_value = 1.0 if diff == 0.0 else nan
        return DeLongResult(
            auc_a, auc_b, diff, se, nan if diff else 0.0, p_value, diff, diff, ci_level, n_pos, n_neg, reason=reason
        )
    z = diff / se
    return DeLongResult(
        auc_a,
        auc_b,
        diff,
        se,
        float(z),
        float(2 * stats.norm.sf(abs(z))),
        diff - half,
        diff + half,
        ci_level,
        n_pos,
        n_neg,
    )
