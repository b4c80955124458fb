"""Calibration and decision curves (crlm.calibration), each pinned to an independent reference:
scikit-learn's brier_score_loss and calibration_curve, statsmodels' Logit and GLM (with an offset, also for
the likelihood-ratio tests), statsmodels' lowess and a lowess loop written from Cleveland's formula, dcurves
(the Kaplan-Meier net benefit, also inside the bootstrap), and a hand computation of net benefit."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats
from scipy.special import expit, logit
from sklearn.calibration import calibration_curve
from sklearn.metrics import brier_score_loss
from statsmodels.nonparametric.smoothers_lowess import lowess

from crlm.archs import ARCHS
from crlm.calibration.decision import at_thresholds, km_net_benefit, net_benefit, threshold_grid
from crlm.calibration.figures import decision_curve_figure, reliability_figure
from crlm.calibration.measures import (
    IMAGE_CLIP,
    LOESS_FRAC,
    brier,
    brier_ipcw,
    brier_reference,
    clipped_logit,
    forest_clip,
    loess_calibration,
    lr_test,
    recalibration,
    reliability,
)
from crlm.calibration.report import report_section
from crlm.calibration.run import calibration_metrics, calibration_of_archs, net_benefit_at, rounded_metrics
from crlm.core.config import ConfigError
from crlm.evaluation.bootstrap import patient_bootstrap
from crlm.params import params_from_dict
from tests.conftest import tiny_params_dict

CLIP = IMAGE_CLIP
SURVIVAL_CLIP = 0.005  # forest_clip((100,)): the shipped survival.rf_trees


def _sample(n: int, seed: int, confidence: float = 1.0):
    """Outcomes drawn from true probabilities expit(z); the model reports expit(confidence * z)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(-0.5, 1.5, n)
    y = (rng.random(n) < expit(z)).astype(float)
    return y, expit(confidence * z)


def _statsmodels_recalibration(y, p, clip: float = CLIP) -> tuple[float, float, tuple[float, float]]:
    """(intercept with logit(p) as offset, slope of the joint fit, the slope's 95% CI)."""
    z = clipped_logit(p, clip)
    joint = sm.Logit(y, sm.add_constant(z)).fit(disp=0)
    offset = sm.GLM(y, np.ones(len(y)), family=sm.families.Binomial(), offset=z).fit()
    return float(offset.params[0]), float(joint.params[1]), tuple(joint.conf_int()[1])


def test_brier_equals_sklearn():
    y, p = _sample(500, 0)
    assert brier(y, p) == pytest.approx(brier_score_loss(y, p), abs=1e-12)
    assert brier(y, np.full(len(y), y.mean())) == pytest.approx(brier_reference(y), abs=1e-12)
    with pytest.raises(ValueError, match="0/1"):
        brier([0, 2], [0.1, 0.2])


def test_recalibration_of_a_well_calibrated_sample_equals_statsmodels_with_slope_one():
    y, p = _sample(4000, 1)
    ours = recalibration(y, p, CLIP)
    intercept, slope, (low, high) = _statsmodels_recalibration(y, p)
    assert ours.slope == pytest.approx(slope, abs=1e-6)
    assert ours.intercept == pytest.approx(intercept, abs=1e-6)
    assert low < 1 < high and abs(ours.slope - 1) < 0.1 and abs(ours.intercept) < 0.1
    assert (ours.n, ours.events, ours.reason, ours.logit_clip, ours.n_clipped) == (4000, int(y.sum()), "", CLIP, 0)


def test_recalibration_of_an_over_confident_sample_equals_statsmodels_with_slope_below_one():
    y, p = _sample(4000, 2, confidence=2.5)  # logits 2.5x too large: probabilities too extreme
    ours = recalibration(y, p, CLIP)
    intercept, slope, (low, high) = _statsmodels_recalibration(y, p)
    assert ours.slope == pytest.approx(slope, abs=1e-6)
    assert ours.intercept == pytest.approx(intercept, abs=1e-6)
    assert high < 1 and ours.slope == pytest.approx(1 / 2.5, abs=0.05)


def test_recalibration_intercept_sees_a_shifted_risk():
    y, p = _sample(4000, 3)
    shifted = expit(clipped_logit(p, CLIP) + 1.0)  # every risk overestimated by 1 on the logit scale
    ours = recalibration(y, shifted, CLIP)
    assert ours.intercept == pytest.approx(_statsmodels_recalibration(y, shifted)[0], abs=1e-6)
    assert ours.intercept == pytest.approx(-1.0, abs=0.1) and ours.slope == pytest.approx(1.0, abs=0.1)


def test_recalibration_is_undefined_for_one_class_and_for_separated_outcomes():
    assert "one class" in recalibration([0, 0, 0], [0.1, 0.2, 0.3], CLIP).reason
    separated = recalibration([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9], CLIP)
    assert np.isnan(separated.slope) and np.isnan(separated.slope_lr) and "separate" in separated.reason
    assert lr_test(separated.slope_lr) == {"statistic": None, "df": 1, "p_value": None}


def test_the_logit_clip_is_an_explicit_argument_fixed_a_priori():
    assert forest_clip((100,)) == SURVIVAL_CLIP and forest_clip([300, 100, 500]) == 0.005  # the fewest trees
    assert IMAGE_CLIP == np.finfo(np.float32).eps == 2.0**-23
    for clip in (IMAGE_CLIP, SURVIVAL_CLIP):
        assert clipped_logit([0.0, 1.0], clip).tolist() == pytest.approx([logit(clip), logit(1 - clip)])
    with pytest.raises(ValueError, match="clip"):
        clipped_logit([0.5], 0.0)
    with pytest.raises(ValueError, match="trees"):
        forest_clip([])
    # one probability of exactly 1 for a survivor: how far out the clip puts it moves the slope
    y, p = _sample(300, 7)
    y, p = y.copy(), p.copy()
    y[0], p[0] = 0.0, 1.0
    tight, loose = recalibration(y, p, IMAGE_CLIP), recalibration(y, p, SURVIVAL_CLIP)
    assert tight.slope < loose.slope - 0.05
    assert (tight.logit_clip, loose.logit_clip) == (IMAGE_CLIP, SURVIVAL_CLIP)
    assert loose.slope == pytest.approx(_statsmodels_recalibration(y, p, SURVIVAL_CLIP)[1], abs=1e-6)
    assert tight.n_clipped == 1 and loose.n_clipped == int(np.sum((p < 0.005) | (p > 0.995))) > 1


@pytest.mark.parametrize("confidence, shift", [(1.0, 0.0), (2.5, 0.0), (0.5, 0.8)])
def test_likelihood_ratio_tests_equal_statsmodels_glm_with_an_offset(confidence, shift):
    """slope = 1: 2 (llf of logit P = a + b z - llf of a + z, z an offset); intercept = 0 given slope 1:
    2 (llf of a + z - loglik of z alone); chi-square 1 df."""
    y, p = _sample(600, 8, confidence)
    p = expit(logit(p) + shift)
    ours = recalibration(y, p, CLIP)
    z = clipped_logit(p, CLIP)
    binomial = sm.families.Binomial()
    joint = sm.GLM(y, sm.add_constant(z), family=binomial).fit()
    offset = sm.GLM(y, np.ones(len(y)), family=binomial, offset=z).fit()
    fixed = binomial.loglike(y, expit(z))  # no free parameter: logit P(y = 1) = z
    slope_statistic, intercept_statistic = 2 * (joint.llf - offset.llf), 2 * (offset.llf - fixed)
    assert ours.slope_lr == pytest.approx(slope_statistic, rel=1e-6, abs=1e-8)
    assert ours.intercept_lr == pytest.approx(intercept_statistic, rel=1e-6, abs=1e-8)
    test = lr_test(ours.slope_lr)
    assert test["df"] == 1 and test["p_value"] == pytest.approx(stats.chi2.sf(slope_statistic, 1), rel=1e-6)
    assert ours.slope_p == pytest.approx(test["p_value"]) and ours.intercept_p == pytest.approx(
        stats.chi2.sf(intercept_statistic, 1), rel=1e-6
    )
    if confidence == 1.0:
        assert ours.slope_p > 0.05 and ours.intercept_p > 0.05
    else:  # too extreme / too timid and shifted
        assert ours.slope_p < 1e-4
    if shift:
        assert ours.intercept_p < 1e-4


def test_the_slope_test_holds_its_level_on_calibrated_probabilities():
    """400 samples of 150 with y ~ Bernoulli(p): the LR test of slope = 1 rejects at 0.05 inside the 99%
    binomial interval and its p-values pass a KS test of uniformity at 0.01."""
    n = 400
    p_values = []
    for seed in range(n):
        y, p = _sample(150, 100 + seed)
        p_values.append(recalibration(y, p, CLIP).slope_p)
    p_values = np.array(p_values)
    low, high = stats.binom.ppf([0.005, 0.995], n, 0.05)
    assert low <= np.sum(p_values < 0.05) <= high
    assert stats.kstest(p_values, "uniform").pvalue > 0.01


def _lowess_by_hand(y, p, frac):
    """Cleveland's (1979) lowess without robustness iterations, from the formula: at each x0 the nearest
    int(frac n) points, tricube weights on distance / the k-th distance, a weighted straight line."""
    k = int(frac * len(p) + 1e-10)
    fitted = []
    for x0 in p:
        distance = np.abs(p - x0)
        weight = np.clip(1 - (distance / np.sort(distance)[k - 1]) ** 3, 0, None) ** 3
        x = np.column_stack([np.ones_like(p), p - x0])
        fitted.append(np.linalg.solve(x.T @ (weight[:, None] * x), x.T @ (weight * y))[0])
    return np.array(fitted)


def test_loess_curve_is_lowess_of_the_outcome_without_robustness_iterations():
    rng = np.random.default_rng(10)
    p = rng.random(60)
    y = (rng.random(60) < p).astype(float)
    ours = loess_calibration(y, p)
    order = np.argsort(p)
    assert ours.frac == LOESS_FRAC == pytest.approx(2 / 3)
    np.testing.assert_array_equal(ours.prob, p[order])
    np.testing.assert_allclose(ours.observed, lowess(y, p, frac=2 / 3, it=0)[:, 1], atol=1e-12)
    np.testing.assert_allclose(ours.observed, _lowess_by_hand(y, p, 2 / 3)[order], atol=1e-10)
    # robustness iterations (statsmodels' default it=3) would down-weight the binary outcome's "outliers"
    assert np.abs(ours.observed - lowess(y, p, frac=2 / 3, it=3)[:, 1]).max() > 0.01
    with pytest.raises(ValueError, match="frac"):
        loess_calibration(y, p, 0.0)


def test_loess_curve_follows_the_diagonal_only_for_calibrated_probabilities():
    """5000 outcomes y ~ Bernoulli(p): the loess curve of p stays within 0.05 of the diagonal everywhere;
    that of the over-confident p' = expit(2 logit p) leaves it by more than 0.10 (0.05 on average)."""
    rng = np.random.default_rng(11)
    p = expit(rng.normal(-0.5, 1.5, 5000))
    y = (rng.random(5000) < p).astype(float)
    calibrated = loess_calibration(y, p)
    assert np.abs(calibrated.observed - calibrated.prob).max() < 0.05
    over = loess_calibration(y, expit(2 * logit(p)))
    assert np.abs(over.observed - over.prob).max() > 0.10 and np.abs(over.observed - over.prob).mean() > 0.05
    # above the middle the over-confident model predicts too high, below it too low
    high, low = over.prob > 0.8, over.prob < 0.2
    assert np.all(over.observed[high] < over.prob[high]) and np.all(over.observed[low] > over.prob[low])


def test_reliability_is_sklearns_quantile_curve_with_counts():
    y, p = _sample(333, 4)
    ours = reliability(y, p, 10)
    prob_true, prob_pred = calibration_curve(y, p, n_bins=10, strategy="quantile")
    np.testing.assert_allclose(ours.prob_true, prob_true)
    np.testing.assert_allclose(ours.prob_pred, prob_pred)
    assert ours.count.sum() == 333 and set(ours.count) <= {33, 34}
    assert np.sum(ours.count * ours.prob_pred) == pytest.approx(p.sum())  # each point averages its count
    assert np.sum(ours.count * ours.prob_true) == pytest.approx(y.sum())
    assert ours.histogram.sum() == 333
    np.testing.assert_array_equal(ours.loess.observed, loess_calibration(y, p).observed)


def test_reliability_counts_with_tied_probabilities():
    y = np.array([0, 1, 0, 1, 0, 0, 1, 1, 1, 0], dtype=float)
    p = np.array([0.1] * 6 + [0.7, 0.8, 0.9, 0.95])
    ours = reliability(y, p, 5)
    _, prob_pred = calibration_curve(y, p, n_bins=5, strategy="quantile")
    assert len(ours.count) == len(prob_pred) and ours.count.sum() == 10
    # 6 of 10 tie at 0.1, as many as lowess' neighbourhood (int(2/3 x 10)): the local fit there is their share
    assert ours.loess.observed[:6].tolist() == pytest.approx([2 / 6] * 6)
    with np.errstate(divide="ignore", invalid="ignore"):  # the hand loop's zero bandwidth at the ties
        by_hand = _lowess_by_hand(y, p, LOESS_FRAC)
    np.testing.assert_allclose(ours.loess.observed[6:], by_hand[6:], atol=1e-10)


def test_ipcw_brier_without_censoring_before_the_horizon_is_the_binary_brier():
    rng = np.random.default_rng(5)
    months = rng.uniform(1, 60, 80)
    died = (months < 24) | (rng.random(80) < 0.5)  # everyone censored is censored after the horizon
    risk = rng.random(80)
    label = (died & (months < 24)).astype(float)
    result = brier_ipcw(months, died, risk, 24.0)
    assert result.value == pytest.approx(brier(label, risk), abs=1e-10) and result.reason == ""
    assert "outside" in brier_ipcw(months, died, risk, 100.0).reason


def _hand_net_benefit(risk, event, pt) -> float:
    positive = risk >= pt
    n = len(risk)
    return np.sum(positive & event) / n - np.sum(positive & ~event) / n * pt / (1 - pt)


def test_net_benefit_equals_a_hand_computation_without_censoring():
    """dcurves' time-to-event mode, with no one censored before the horizon, is the binary net benefit."""
    risk_a = np.array([0.05, 0.15, 0.25, 0.35, 0.45, 0.55, 0.65, 0.75, 0.85, 0.95, 0.12, 0.40])
    risk_b = np.array([0.50, 0.10, 0.30, 0.20, 0.60, 0.40, 0.35, 0.90, 0.70, 0.80, 0.25, 0.05])
    months = np.array([30, 10, 40, 5, 50, 20, 36, 8, 60, 48, 25, 30], dtype=float)
    died = np.array([0, 1, 1, 1, 0, 1, 0, 1, 0, 1, 0, 0])  # after 24 months or alive: not an event
    event = (died == 1) & (months < 24)
    thresholds = [0.1, 0.2, 0.3, 0.5, 0.99]
    curves = net_benefit({"a": risk_a, "b": risk_b}, months, died, 24.0, thresholds)
    prevalence = event.mean()
    for name, risk in (("a", risk_a), ("b", risk_b)):
        curve = curves[name]
        for t, nb, all_, none in curve[["threshold", "net_benefit", "treat_all", "treat_none"]].itertuples(index=False):
            assert nb == pytest.approx(_hand_net_benefit(risk, event, t), abs=1e-12)
            assert all_ == pytest.approx(prevalence - (1 - prevalence) * t / (1 - t), abs=1e-12)
            assert none == 0
    assert curves["a"]["net_benefit"].iloc[-1] == 0  # nobody at or above 0.99
    picked = at_thresholds(curves["a"], [0.2])
    assert picked == {
        "0.2": {
            "model": pytest.approx(_hand_net_benefit(risk_a, event, 0.2)),
            "treat_all": pytest.approx(prevalence - (1 - prevalence) * 0.25),
        }
    }


def test_km_net_benefit_equals_dcurves_with_censoring_ties_and_repeated_patients():
    rng = np.random.default_rng(12)
    thresholds = threshold_grid(0.05, 0.6, 0.05, [0.1, 0.2, 0.3])
    for _ in range(5):
        months = np.round(rng.uniform(1, 48, 50))  # ties; some deaths at exactly the horizon
        months[:4] = 24.0
        died = (rng.random(50) < 0.6).astype(int)
        risk = np.round(rng.random(50), 2)  # ties with the thresholds: risk >= pt is positive
        idx = rng.integers(0, 50, 50)  # a bootstrap resample: repeated patients
        reference = net_benefit({"m": risk[idx]}, months[idx], died[idx], 24.0, thresholds)["m"]
        model, treat_all = km_net_benefit(risk[idx], months[idx], died[idx], 24.0, thresholds)
        np.testing.assert_allclose(model, reference["net_benefit"], rtol=0, atol=1e-12)
        np.testing.assert_allclose(treat_all, reference["treat_all"], rtol=0, atol=1e-12)
    # the positives' Kaplan-Meier curve ends before the horizon: undefined in both; nobody positive: 0
    months, died = np.array([5, 10, 30, 40, 12, 8.0]), np.array([0, 1, 0, 1, 0, 1])
    risk = np.array([0.9, 0.8, 0.1, 0.2, 0.85, 0.3])
    reference = net_benefit({"m": risk}, months, died, 24.0, [0.1, 0.5, 0.95])["m"]
    model, treat_all = km_net_benefit(risk, months, died, 24.0, [0.1, 0.5, 0.95])
    assert np.isnan(model[1]) and reference["net_benefit"].isna().tolist() == [False, True, False]
    np.testing.assert_allclose(model, reference["net_benefit"], atol=1e-12)
    np.testing.assert_allclose(treat_all, reference["treat_all"], atol=1e-12)
    assert model[2] == 0


def _survival_table(n: int = 40, seed: int = 13) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    months = np.round(rng.uniform(2, 70, n), 1)
    died = (rng.random(n) < 0.6).astype(float)
    return pd.DataFrame(
        {
            "patient_id": [f"q{i:02d}" for i in range(n)],
            "overall_survival_months": months,
            "vital_status": died,
            "prob": np.clip(0.8 - months / 80 + rng.normal(0, 0.15, n), 0, 1),
        }
    )


def test_net_benefit_cis_are_the_patient_bootstrap_of_dcurves(tiny_params):
    """The CIs from km_net_benefit equal patient_bootstrap over dcurves itself (same draws)."""
    table = _survival_table()
    stats_cfg = dataclasses.replace(tiny_params.stats, n_boot=20)
    at = [0.1, 0.2, 0.3]
    risk, months, died = (table[c].to_numpy() for c in ("prob", "overall_survival_months", "vital_status"))
    curve = net_benefit({"m": risk}, months, died, 24.0, threshold_grid(0.05, 0.6, 0.01, at))["m"]
    ours = net_benefit_at(table, curve, at, 24.0, stats_cfg)
    cache = {}

    def dcurves_of(idx):
        if idx.tobytes() not in cache:
            cache[idx.tobytes()] = net_benefit({"m": risk[idx]}, months[idx], died[idx], 24.0, at)["m"]
        return cache[idx.tobytes()]

    ids = table["patient_id"].to_numpy()
    for k, t in enumerate(at):
        model = patient_bootstrap(
            lambda idx, k=k: dcurves_of(idx)["net_benefit"].iloc[k], ids, 20, stats_cfg.seed, stats_cfg.ci_level
        )
        difference = patient_bootstrap(
            lambda idx, k=k: (dcurves_of(idx)["net_benefit"] - dcurves_of(idx)["treat_all"]).iloc[k],
            ids,
            20,
            stats_cfg.seed,
            stats_cfg.ci_level,
        )
        entry = ours[f"{t:g}"]
        assert entry["model"] == pytest.approx(curve.set_index(curve["threshold"].round(6)).at[t, "net_benefit"])
        assert entry["model_ci"] == pytest.approx([model.ci_low, model.ci_high], abs=1e-12)
        got = entry["model_minus_treat_all"]
        assert got["value"] == pytest.approx(entry["model"] - entry["treat_all"], abs=1e-12)
        assert [got["ci_low"], got["ci_high"]] == pytest.approx([difference.ci_low, difference.ci_high], abs=1e-12)
        assert got["n_boot_valid"] == difference.n_boot_valid and got["ci_level"] == stats_cfg.ci_level
        assert got["ci_low"] < got["value"] < got["ci_high"]


def test_net_benefit_at_refuses_a_curve_that_disagrees_with_its_point_estimate(tiny_params):
    table = _survival_table()
    risk, months, died = (table[c].to_numpy() for c in ("prob", "overall_survival_months", "vital_status"))
    curve = net_benefit({"m": risk}, months, died, 24.0, [0.1, 0.2])["m"]
    curve["net_benefit"] += 0.01
    with pytest.raises(AssertionError, match="differs from dcurves"):
        net_benefit_at(table, curve, [0.1, 0.2], 24.0, tiny_params.stats)


def test_a_difference_with_treat_all_that_cannot_change_sign_is_flagged_one_sided(tiny_params):
    table = _survival_table()
    low = table["prob"] < 0.2
    table.loc[low, "vital_status"] = 0.0  # nobody below pt = 0.2 dies: r = 0 in every resample
    stats_cfg = dataclasses.replace(tiny_params.stats, n_boot=50)
    risk, months, died = (table[c].to_numpy() for c in ("prob", "overall_survival_months", "vital_status"))
    curve = net_benefit({"m": risk}, months, died, 24.0, [0.2, 0.5])["m"]
    out = net_benefit_at(table, curve, [0.2, 0.5], 24.0, stats_cfg)
    flagged = out["0.2"]["model_minus_treat_all"]
    assert f"no patient below pt ({int(low.sum())}) died by the horizon" in flagged["one_sided"]
    assert flagged["ci_low"] >= 0  # every resample's difference is >= 0, as the flag says
    assert "one_sided" not in out["0.5"]["model_minus_treat_all"]


def test_threshold_grid_includes_the_ends_and_the_extra_thresholds():
    grid = threshold_grid(0.05, 0.6, 0.01, [0.1, 0.125])
    assert grid[0] == 0.05 and grid[-1] == 0.6 and 0.125 in grid and 0.1 in grid
    assert len(grid) == 57 and np.all(np.diff(grid) > 0)


def _tables(seed: int = 6):
    rng = np.random.default_rng(seed)
    images, patients = {}, {}
    ids = np.repeat([f"p{i}" for i in range(10)], 8)
    months = rng.uniform(2, 70, 40)
    died = (rng.random(40) < 0.6).astype(float)
    label = np.where(months >= 24, 0.0, np.where(died == 1, 1.0, np.nan))
    for k, arch in enumerate(ARCHS):
        y = (rng.random(len(ids)) < 0.3).astype(int)
        images[arch] = pd.DataFrame(
            {
                "image_id": [f"{i}-{j}" for j, i in enumerate(ids)],
                "patient_id": ids,
                "label": y,
                "prob": np.clip(0.6 * y + rng.random(len(ids)) * 0.4, 0, 1),
            }
        )
        patients[arch] = pd.DataFrame(
            {
                "patient_id": [f"q{i}" for i in range(40)],
                "overall_survival_months": months,
                "vital_status": died,
                "label": label,
                "prob": rng.random(40),
            }
        )
    return images, patients


def test_every_arch_gets_metrics_curves_and_a_report_section(tiny_params):
    images, patients = _tables()
    results = calibration_of_archs(
        images, patients, tiny_params.calibration, tiny_params.stats, 24.0, image_clip=CLIP, survival_clip=SURVIVAL_CLIP
    )
    metrics = calibration_metrics(results, tiny_params.model.arch, tiny_params.calibration, 24.0)
    assert list(results) == list(ARCHS) and metrics["candidate"] == tiny_params.model.arch
    assert metrics["loess_frac"] == LOESS_FRAC
    for arch, result in results.items():
        m = metrics[arch]
        assert m["images"]["n"] == 80 and m["images"]["patients"] == 10
        assert m["images"]["brier"]["value"] == pytest.approx(brier(images[arch]["label"], images[arch]["prob"]))
        complete = patients[arch].dropna(subset=["label"])
        assert m["survival"]["n"] == len(complete) and m["survival"]["censored_before_horizon"] == 40 - len(complete)
        assert set(m["survival"]["decision_curve"]["net_benefit"]) == {"0.1", "0.2", "0.3"}
        assert (m["images"]["logit_clip"], m["survival"]["logit_clip"]) == (CLIP, SURVIVAL_CLIP)
        for block, rows in (("images", images[arch]), ("survival", complete)):
            fit = recalibration(rows["label"], rows["prob"], m[block]["logit_clip"])
            if fit.reason:  # the toy image probabilities separate the labels
                assert m[block]["slope"]["value"] is None and m[block]["slope_lr_test"]["p_value"] is None
                continue
            assert m[block]["slope"]["value"] == pytest.approx(fit.slope)
            assert m[block]["slope_lr_test"] == {
                "statistic": pytest.approx(fit.slope_lr),
                "df": 1,
                "p_value": pytest.approx(fit.slope_p),
            }
            assert m[block]["intercept_lr_test"]["p_value"] == pytest.approx(fit.intercept_p)
        for entry in m["survival"]["decision_curve"]["net_benefit"].values():
            assert set(entry) == {"model", "treat_all", "model_ci", "model_minus_treat_all"}
            assert entry["model_minus_treat_all"]["value"] == pytest.approx(entry["model"] - entry["treat_all"])
            assert entry["model_ci"][0] <= entry["model"] <= entry["model_ci"][1]
        assert len(result.survival.loess.prob) == len(complete) and len(result.images.loess.prob) == 80
        assert m["survival"]["reason"] == ""  # the survival block is pinned above
        assert list(result.curve.columns) == ["threshold", "net_benefit", "treat_all", "treat_none"]
    lines = report_section(tiny_params, metrics)
    text = "\n".join(lines)
    assert "calibration" in text.lower() and "None" not in text and "nan" not in text
    assert all(arch.title in text for arch in ARCHS.values())
    assert "../plots/calibration/decision_curve.png" in text


def test_calibration_params_are_checked():
    with pytest.raises(ConfigError, match="calibration.thresholds"):
        params_from_dict(tiny_params_dict(calibration={"thresholds": [0.6, 0.05]}))
    with pytest.raises(ConfigError, match="calibration.image_bins"):
        params_from_dict(tiny_params_dict(calibration={"image_bins": 1}))


def test_an_arch_without_survival_probabilities_gets_reasons_not_a_crash(tiny_params, tmp_path):
    images, patients = _tables()
    broken = next(iter(ARCHS))
    patients[broken] = patients[broken].assign(prob=np.nan)  # the survival stage could not fit it
    results = calibration_of_archs(
        images, patients, tiny_params.calibration, tiny_params.stats, 24.0, image_clip=CLIP, survival_clip=SURVIVAL_CLIP
    )
    metrics = calibration_metrics(results, tiny_params.model.arch, tiny_params.calibration, 24.0)
    survival = metrics[broken]["survival"]
    assert survival["decision_curve"]["net_benefit"]["0.1"]["model_ci"] == [None, None]
    assert survival["n"] == 0 and survival["reason"] and survival["brier_ipcw"]["reason"]
    assert results[broken].curve["net_benefit"].isna().all() and results[broken].survival is None
    assert "None" not in "\n".join(report_section(tiny_params, metrics))
    reliability_figure(
        tmp_path / "r.png",
        {a: r.survival for a, r in results.items()},
        {},
        tiny_params.model.arch,
        "heading",
        "x",
        "patients",
    )
    decision_curve_figure(tmp_path / "d.png", {a: r.curve for a, r in results.items()}, tiny_params.model.arch, 24.0)
    assert (tmp_path / "r.png").stat().st_size and (tmp_path / "d.png").stat().st_size


_REPORT_METRICS: dict = {}


def _report_metrics(tiny_params) -> dict:
    """metrics/calibration.json of the toy tables (computed once: a copy per test, to edit)."""
    if not _REPORT_METRICS:
        images, patients = _tables()
        results = calibration_of_archs(
            images,
            patients,
            tiny_params.calibration,
            tiny_params.stats,
            24.0,
            image_clip=CLIP,
            survival_clip=SURVIVAL_CLIP,
        )
        _REPORT_METRICS.update(
            rounded_metrics(calibration_metrics(results, tiny_params.model.arch, tiny_params.calibration, 24.0), 4)
        )
    return copy.deepcopy(_REPORT_METRICS)


def _boot(value, low, high) -> dict:
    return {"value": value, "ci_low": low, "ci_high": high, "ci_level": 0.95, "n_boot_valid": 1000}


def _lr(p) -> dict:
    return {"statistic": float(stats.chi2.isf(p, 1)), "df": 1, "p_value": p}


def test_rounded_metrics_keep_the_clip_exact(tiny_params):
    metrics = _report_metrics(tiny_params)
    arch = tiny_params.model.arch
    assert metrics[arch]["images"]["logit_clip"] == IMAGE_CLIP != 0
    assert metrics[arch]["images"]["brier"]["value"] == round(metrics[arch]["images"]["brier"]["value"], 4)
    low, high = metrics[arch]["survival"]["decision_curve"]["net_benefit"]["0.1"]["model_ci"]
    assert (low, high) == (round(low, 4), round(high, 4))
    assert rounded_metrics({"a": [0.123456, None], "logit_clip": 1e-7}, 4) == {"a": [0.1235, None], "logit_clip": 1e-7}


@pytest.mark.parametrize(
    "slope, slope_p, words, overfitting",
    [
        (
            _boot(0.34, 0.10, 1.69),
            0.0015,
            "is over-confident (probabilities too extreme), by the likelihood-ratio tests",
            "The slope is below 1 (0.34), the usual sign of overfitting",
        ),
        (
            _boot(0.70, 0.35, 1.20),
            0.2,
            "shows no miscalibration that the likelihood-ratio tests resolve at the 0.05 level",
            "here the likelihood-ratio test does not resolve it from 1 (p = 0.200)",
        ),
        (
            _boot(1.60, 0.90, 2.50),
            0.01,
            "is too timid (probabilities too close to the mean), by the likelihood-ratio",
            None,
        ),
    ],
)
def test_the_survival_words_follow_the_likelihood_ratio_tests(tiny_params, slope, slope_p, words, overfitting):
    metrics = _report_metrics(tiny_params)
    arch = tiny_params.model.arch
    metrics[arch]["survival"].update(
        slope=slope, slope_lr_test=_lr(slope_p), intercept=_boot(-0.3, -1.1, 0.4), intercept_lr_test=_lr(0.4)
    )
    text = "\n".join(report_section(tiny_params, metrics))
    assert f"For the survival risk {ARCHS[arch].title} {words}" in text
    covers = "covers" if slope["ci_low"] <= 1 <= slope["ci_high"] else "excludes"
    assert (
        f"percentile bootstrap CI, [{slope['ci_low']:.2f}, {slope['ci_high']:.2f}], {covers} 1; the words follow "
        "the likelihood-ratio test"
    ) in text
    assert f"slope = 1: p = {slope_p:.4f}" in text or f"slope = 1: p = {slope_p:.3f}" in text
    assert ("overfitting" in text) == (overfitting is not None)
    if overfitting:
        assert overfitting in text
    # the intercept's test decides its words too
    metrics[arch]["survival"]["intercept_lr_test"] = _lr(0.001)
    assert "predicts too high a risk on average" in "\n".join(report_section(tiny_params, metrics))


def test_the_image_words_follow_the_patient_bootstrap_cis(tiny_params):
    metrics = _report_metrics(tiny_params)
    arch = tiny_params.model.arch
    metrics[arch]["images"].update(
        slope=_boot(1.23, 1.02, 1.77),
        slope_lr_test=_lr(0.3),
        intercept=_boot(-0.2, -0.9, 0.5),
        intercept_lr_test=_lr(1e-6),
    )
    text = "\n".join(report_section(tiny_params, metrics))
    assert (
        f"On the test images {ARCHS[arch].title} is too timid (probabilities too close to the mean), by its "
        "patient-bootstrap CIs"
    ) in text
    assert "images of 10 patients as independent" in text and "<0.0001" in text


def _net_benefit(model, treat_all, model_ci, difference_ci) -> dict:
    return {
        "model": model,
        "treat_all": treat_all,
        "model_ci": list(model_ci),
        "model_minus_treat_all": _boot(round(model - treat_all, 4), *difference_ci),
    }


def test_the_net_benefit_sentence_says_which_cis_exclude_zero(tiny_params):
    metrics = _report_metrics(tiny_params)
    arch = tiny_params.model.arch
    nb = metrics[arch]["survival"]["decision_curve"]["net_benefit"]
    nb["0.1"] = _net_benefit(0.196, 0.177, (-0.02, 0.30), (-0.03, 0.06))
    nb["0.2"] = _net_benefit(0.136, 0.075, (0.01, 0.25), (-0.01, 0.14))
    nb["0.3"] = _net_benefit(0.092, -0.058, (0.02, 0.20), (0.05, 0.26))
    text = "\n".join(report_section(tiny_params, metrics))
    title = ARCHS[arch].title
    assert (
        f"{title} beats both at pt = 0.1, 0.2, 0.3 (point estimates; CI of the difference with treat-all excludes "
        "0 at 0.3, and includes 0 at 0.1, 0.2; CI of the net benefit, the difference with treat-none, excludes 0 "
        "at 0.2, 0.3). Both CIs exclude 0 at pt = 0.3."
    ) in text
    assert "0.092 [0.020, 0.200] | +0.150 [0.050, 0.260]" in text
    nb["0.3"] = _net_benefit(0.092, -0.058, (-0.01, 0.20), (-0.02, 0.26))
    text = "\n".join(report_section(tiny_params, metrics))
    assert (
        "CI of the difference with treat-all excludes 0 at none of them; CI of the net benefit, the difference "
        "with treat-none, excludes 0 at 0.2). At no threshold do both CIs exclude 0."
    ) in text
    for t in nb:
        nb[t] = _net_benefit(0.01, 0.05, (-0.05, 0.07), (-0.1, 0.02))
    assert f"{title} beats both at none of pt = 0.1, 0.2, 0.3" in "\n".join(report_section(tiny_params, metrics))
