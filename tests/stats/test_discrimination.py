"""Survival discrimination: the wrappers against scikit-survival, orientation and complete-case checks
by hand, the paired bootstrap against lifelines on explicit resamples, the LR test against R."""

import time

import numpy as np
import pytest
from lifelines import CoxPHFitter
from lifelines.datasets import load_rossi
from lifelines.utils import concordance_index
from scipy import stats
from sksurv.metrics import concordance_index_censored, concordance_index_ipcw, cumulative_dynamic_auc
from sksurv.util import Surv

from crlm.stats.discrimination import (
    harrell_c,
    ipcw_auc,
    likelihood_ratio_test,
    normal_scores,
    paired_c_index_test,
    uno_c,
)


def censored_data(seed, n=120, rounding=None):
    rng = np.random.default_rng(seed)
    marker = rng.normal(size=n)
    death = rng.exponential(np.exp(-0.8 * marker) * 24)
    censor = rng.uniform(6, 60, size=n)
    t, e = np.minimum(death, censor), death <= censor
    risk = marker + rng.normal(scale=0.7, size=n)
    if rounding is not None:  # tied times and tied risks
        t, risk = np.round(t, rounding), np.round(risk, rounding)
    return t, e, risk


def test_normal_scores_are_van_der_waerden_with_mid_ranks():
    values = np.array([3.0, 1.0, np.nan, 1.0, 2.5, 7.0, np.nan, 2.5, 2.5])
    seen = ~np.isnan(values)
    expected = stats.norm.ppf(stats.rankdata(values[seen]) / (seen.sum() + 1))
    scores = normal_scores(values)
    assert np.isnan(scores[~seen]).all()
    np.testing.assert_allclose(scores[seen], expected, rtol=0, atol=1e-15)
    assert scores[1] == scores[3] and scores[4] == scores[7] == scores[8]
    np.testing.assert_allclose(normal_scores(values * 1000 - 5), scores, equal_nan=True)  # scale-free


@pytest.mark.parametrize("seed, rounding", [(0, None), (1, 0), (2, 1)])
def test_wrappers_equal_scikit_survival(seed, rounding):
    t, e, risk = censored_data(seed, rounding=rounding)
    y = Surv.from_arrays(e, t)
    for horizon in (6.0, 12.0, 24.0):
        result = ipcw_auc(t, e, risk, horizon)
        assert result.value == pytest.approx(cumulative_dynamic_auc(y, y, risk, horizon)[0][0], abs=1e-12)
        assert result.n_cases == np.sum(e & (t <= horizon)) and result.n_controls == np.sum(t > horizon)
        assert uno_c(t, e, risk, horizon).value == pytest.approx(
            concordance_index_ipcw(y, y, risk, tau=horizon)[0], abs=1e-12
        )
    assert uno_c(t, e, risk).value == pytest.approx(concordance_index_ipcw(y, y, risk)[0], abs=1e-12)
    assert harrell_c(t, e, risk).value == pytest.approx(concordance_index_censored(e, t, risk)[0], abs=1e-12)


def test_orientation_higher_risk_is_earlier_death():
    rng = np.random.default_rng(3)
    t, e = rng.exponential(20, size=50), np.ones(50, dtype=bool)
    assert ipcw_auc(t, e, -t, np.median(t)).value == pytest.approx(1.0)
    assert uno_c(t, e, -t).value == pytest.approx(1.0)
    assert harrell_c(t, e, -t).value == pytest.approx(1.0)
    assert ipcw_auc(t, e, t, np.median(t)).value == pytest.approx(0.0)
    assert harrell_c(t, e, t).value == pytest.approx(0.0)


def test_without_censoring_before_the_horizon_the_ipcw_auc_is_the_complete_case_auc():
    rng = np.random.default_rng(4)
    n, horizon = 150, 12.0
    death = rng.exponential(15, size=n)
    censor = rng.uniform(horizon + 0.5, 40, size=n)  # nobody censored before the horizon
    t, e = np.minimum(death, censor), death <= censor
    risk = np.round(-np.log(death) + rng.normal(size=n), 1)  # with ties
    cases, controls = risk[e & (t <= horizon)], risk[t > horizon]
    by_hand = np.mean([[1.0 if a > b else 0.5 if a == b else 0.0 for b in controls] for a in cases])
    assert ipcw_auc(t, e, risk, horizon).value == pytest.approx(by_hand, abs=1e-12)


def test_without_any_censoring_uno_c_is_harrell_c_by_hand():
    rng = np.random.default_rng(5)
    t = rng.exponential(10, size=70)
    e = np.ones(70, dtype=bool)
    risk = np.round(rng.normal(size=70) - 0.1 * t, 1)
    num = den = 0.0
    for i in range(70):
        for j in range(70):
            if t[i] < t[j]:  # i died first: comparable
                den += 1
                num += 1.0 if risk[i] > risk[j] else 0.5 if risk[i] == risk[j] else 0.0
    assert uno_c(t, e, risk).value == pytest.approx(num / den, abs=1e-12)
    assert harrell_c(t, e, risk).value == pytest.approx(num / den, abs=1e-12)


def test_undefined_cases_give_a_reason():
    t, e, risk = censored_data(6, n=40)
    assert "outside the follow-up range" in ipcw_auc(t, e, risk, t.max()).reason
    assert "outside the follow-up range" in ipcw_auc(t, e, risk, t.min() - 1).reason
    early = np.array([1.0, 2.0, 3.0, 10.0, 11.0])
    no_cases = ipcw_auc(early, [0, 0, 0, 1, 1], [1, 2, 3, 4, 5], 5.0)
    assert np.isnan(no_cases.value) and "0 case(s)" in no_cases.reason and no_cases.to_dict()["value"] is None
    assert "no event before tau" in uno_c(early, [0, 0, 0, 1, 1], [1, 2, 3, 4, 5], tau=5.0).reason
    assert "censored" in harrell_c(early, [0, 0, 0, 0, 0], [1, 2, 3, 4, 5]).reason
    assert "no comparable pair" in paired_c_index_test(early, [0] * 5, [1, 2, 3, 4, 5], [5, 4, 3, 2, 1], 50, 0).reason
    with pytest.raises(ValueError, match="risk_b contains NaN"):
        paired_c_index_test(early, [1] * 5, [1, 2, 3, 4, 5], [1, 2, np.nan, 4, 5], 50, 0)
    with pytest.raises(ValueError, match="events must be 0/1"):
        harrell_c(early, [0, 2, 0, 1, 1], [1, 2, 3, 4, 5])


@pytest.mark.parametrize("seed", [7, 8])
def test_paired_c_equals_lifelines_and_its_bootstrap_equals_explicit_resamples(seed):
    t, e, risk_a = censored_data(seed, n=50)
    risk_b = np.random.default_rng(seed + 100).normal(size=50) + 0.3 * risk_a
    result = paired_c_index_test(t, e, risk_a, risk_b, n_boot=150, seed=seed)
    assert result.c_a == pytest.approx(concordance_index(t, -risk_a, e), abs=1e-12)  # lifelines: predicted times
    assert result.c_b == pytest.approx(concordance_index(t, -risk_b, e), abs=1e-12)
    assert result.c_a == pytest.approx(harrell_c(t, e, risk_a).value, abs=1e-12)
    # the same resamples drawn explicitly, each scored by lifelines on the resampled patients
    index = np.random.default_rng(seed).integers(0, 50, size=(150, 50))
    diffs = np.array(
        [concordance_index(t[i], -risk_a[i], e[i]) - concordance_index(t[i], -risk_b[i], e[i]) for i in index]
    )
    assert result.n_boot_valid == 150
    assert result.se == pytest.approx(np.std(diffs, ddof=1), abs=1e-12)
    assert (result.ci_low, result.ci_high) == pytest.approx(tuple(np.quantile(diffs, [0.025, 0.975])), abs=1e-12)
    assert result.p_value == pytest.approx(2 * stats.norm.sf(abs(result.diff / np.std(diffs, ddof=1))))


def test_identical_scores_differ_by_nothing():
    t, e, risk = censored_data(9, n=60, rounding=0)
    result = paired_c_index_test(t, e, risk, risk, n_boot=100, seed=1)
    assert result.diff == 0.0 and result.se == 0.0 and result.p_value == 1.0 and result.reason == ""


def test_null_simulation_rejection_rate_is_nominal():
    start = time.perf_counter()
    rng = np.random.default_rng(2025)
    reps, rejected = 300, 0
    for replicate in range(reps):
        death, censor = rng.exponential(10, size=60), rng.exponential(15, size=60)
        t, e = np.minimum(death, censor), death <= censor
        result = paired_c_index_test(t, e, rng.normal(size=60), rng.normal(size=60), n_boot=200, seed=replicate)
        rejected += result.p_value < 0.05
    low, high = stats.binom.interval(0.99, reps, 0.05)
    print(f"paired bootstrap C test under the null: {rejected}/{reps} rejected, 99% interval [{low}, {high}]")
    assert low <= rejected <= high
    assert time.perf_counter() - start < 20


def test_likelihood_ratio_test_on_rossi_matches_lifelines_and_r():
    rossi = load_rossi()
    full = CoxPHFitter().fit(rossi, "week", "arrest")
    reduced = CoxPHFitter().fit(rossi[["week", "arrest", "fin", "age", "prio"]], "week", "arrest")
    nested = likelihood_ratio_test(reduced.log_likelihood_, full.log_likelihood_, df=4)
    by_hand = 2 * (full.log_likelihood_ - reduced.log_likelihood_)
    assert nested.statistic == pytest.approx(by_hand) and nested.p_value == pytest.approx(stats.chi2.sf(by_hand, 4))
    # null model (beta = 0), Efron's partial likelihood by hand: -sum_t sum_{k<d_t} log(n_at_risk(t) - k)
    deaths = rossi[rossi.arrest == 1].groupby("week").size()
    null_ll = -sum(np.log((rossi.week >= week).sum() - np.arange(d)).sum() for week, d in deaths.items())
    overall = likelihood_ratio_test(null_ll, full.log_likelihood_, df=7)
    lifelines_lrt = full.log_likelihood_ratio_test()
    assert overall.statistic == pytest.approx(lifelines_lrt.test_statistic, rel=1e-8)
    assert overall.p_value == pytest.approx(lifelines_lrt.p_value, rel=1e-6)
    # R survival::coxph(Surv(week, arrest) ~ fin + age + race + wexp + mar + paro + prio, data = Rossi):
    # "Likelihood ratio test=33.27 on 7 df, p=2.362e-05" (Fox & Weisberg's Cox appendix to An R Companion
    # to Applied Regression; reproduced in the concurve package's survival vignette)
    assert overall.statistic == pytest.approx(33.27, abs=0.005)
    assert overall.p_value == pytest.approx(2.362e-05, abs=0.0005e-05)


def test_likelihood_ratio_test_edge_cases():
    assert likelihood_ratio_test(-10.0, -10.0 + 1e-9, 1).p_value == pytest.approx(1.0, abs=1e-4)
    assert "fits worse" in likelihood_ratio_test(-10.0, -12.0, 1).reason
    assert "not finite" in likelihood_ratio_test(float("nan"), -12.0, 1).reason
    assert likelihood_ratio_test(float("nan"), -12.0, 1).to_dict()["p_value"] is None
    with pytest.raises(ValueError, match="df must be a positive integer"):
        likelihood_ratio_test(-10.0, -9.0, 0)
