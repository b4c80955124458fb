"""Calibration and decision curves (crlm.calibration), each pinned to an independent reference:
scikit-learn's brier_score_loss and calibration_curve, statsmodels' Logit and GLM (with an offset), and a
hand computation of net benefit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy.special import expit
from sklearn.calibration import calibration_curve
from sklearn.metrics import brier_score_loss

from crlm.archs import ARCHS
from crlm.calibration.decision import at_thresholds, net_benefit, threshold_grid
from crlm.calibration.figures import decision_curve_figure, reliability_figure
from crlm.calibration.measures import (EPS, brier, brier_ipcw, brier_reference, clipped_logit, recalibration,
                                       reliability)
from crlm.calibration.report import report_section
from crlm.calibration.run import calibration_metrics, calibration_of_archs
from crlm.config import ConfigError, params_from_dict
from tests.conftest import tiny_params_dict


def _sample(n: int, seed: int, confidence: float = 1.0):
    """Outcomes drawn from true probabilities expit(z); the model reports expit(confidence * z)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(-0.5, 1.5, n)
    y = (rng.random(n) < expit(z)).astype(float)
    return y, expit(confidence * z)


def _statsmodels_recalibration(y, p) -> tuple[float, float, tuple[float, float]]:
    """(intercept with logit(p) as offset, slope of the joint fit, the slope's 95% CI)."""
    z = clipped_logit(p)
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
    ours = recalibration(y, p)
    intercept, slope, (low, high) = _statsmodels_recalibration(y, p)
    assert ours.slope == pytest.approx(slope, abs=1e-6)
    assert ours.intercept == pytest.approx(intercept, abs=1e-6)
    assert low < 1 < high and abs(ours.slope - 1) < 0.1 and abs(ours.intercept) < 0.1
    assert (ours.n, ours.events, ours.reason) == (4000, int(y.sum()), "")


def test_recalibration_of_an_over_confident_sample_equals_statsmodels_with_slope_below_one():
    y, p = _sample(4000, 2, confidence=2.5)       # logits 2.5x too large: probabilities too extreme
    ours = recalibration(y, p)
    intercept, slope, (low, high) = _statsmodels_recalibration(y, p)
    assert ours.slope == pytest.approx(slope, abs=1e-6)
    assert ours.intercept == pytest.approx(intercept, abs=1e-6)
    assert high < 1 and ours.slope == pytest.approx(1 / 2.5, abs=0.05)


def test_recalibration_intercept_sees_a_shifted_risk():
    y, p = _sample(4000, 3)
    shifted = expit(clipped_logit(p) + 1.0)          # every risk overestimated by 1 on the logit scale
    ours = recalibration(y, shifted)
    assert ours.intercept == pytest.approx(_statsmodels_recalibration(y, shifted)[0], abs=1e-6)
    assert ours.intercept == pytest.approx(-1.0, abs=0.1) and ours.slope == pytest.approx(1.0, abs=0.1)


def test_recalibration_is_undefined_for_one_class_and_for_separated_outcomes():
    assert "one class" in recalibration([0, 0, 0], [0.1, 0.2, 0.3]).reason
    separated = recalibration([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9])
    assert np.isnan(separated.slope) and "separate" in separated.reason
    assert clipped_logit([0.0, 1.0]).tolist() == pytest.approx([np.log(EPS / (1 - EPS)), np.log((1 - EPS) / EPS)])


def test_reliability_is_sklearns_quantile_curve_with_counts():
    y, p = _sample(333, 4)
    ours = reliability(y, p, 10)
    prob_true, prob_pred = calibration_curve(y, p, n_bins=10, strategy="quantile")
    np.testing.assert_allclose(ours.prob_true, prob_true)
    np.testing.assert_allclose(ours.prob_pred, prob_pred)
    assert ours.count.sum() == 333 and set(ours.count) <= {33, 34}
    assert np.sum(ours.count * ours.prob_pred) == pytest.approx(p.sum())     # each point averages its count
    assert np.sum(ours.count * ours.prob_true) == pytest.approx(y.sum())
    assert ours.histogram.sum() == 333


def test_reliability_counts_with_tied_probabilities():
    y = np.array([0, 1, 0, 1, 0, 0, 1, 1, 1, 0], dtype=float)
    p = np.array([0.1] * 6 + [0.7, 0.8, 0.9, 0.95])
    ours = reliability(y, p, 5)
    _, prob_pred = calibration_curve(y, p, n_bins=5, strategy="quantile")
    assert len(ours.count) == len(prob_pred) and ours.count.sum() == 10


def test_ipcw_brier_without_censoring_before_the_horizon_is_the_binary_brier():
    rng = np.random.default_rng(5)
    months = rng.uniform(1, 60, 80)
    died = (months < 24) | (rng.random(80) < 0.5)       # everyone censored is censored after the horizon
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
    died = np.array([0, 1, 1, 1, 0, 1, 0, 1, 0, 1, 0, 0])   # after 24 months or alive: not an event
    event = (died == 1) & (months < 24)
    thresholds = [0.1, 0.2, 0.3, 0.5, 0.99]
    curves = net_benefit({"a": risk_a, "b": risk_b}, months, died, 24.0, thresholds)
    prevalence = event.mean()
    for name, risk in (("a", risk_a), ("b", risk_b)):
        curve = curves[name]
        for t, nb, all_, none in curve[["threshold", "net_benefit", "treat_all", "treat_none"]].itertuples(
                index=False):
            assert nb == pytest.approx(_hand_net_benefit(risk, event, t), abs=1e-12)
            assert all_ == pytest.approx(prevalence - (1 - prevalence) * t / (1 - t), abs=1e-12)
            assert none == 0
    assert curves["a"]["net_benefit"].iloc[-1] == 0       # nobody at or above 0.99
    picked = at_thresholds(curves["a"], [0.2])
    assert picked == {"0.2": {"model": pytest.approx(_hand_net_benefit(risk_a, event, 0.2)),
                              "treat_all": pytest.approx(prevalence - (1 - prevalence) * 0.25)}}


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
        images[arch] = pd.DataFrame({"image_id": [f"{i}-{j}" for j, i in enumerate(ids)], "patient_id": ids,
                                     "label": y, "prob": np.clip(0.6 * y + rng.random(len(ids)) * 0.4, 0, 1)})
        patients[arch] = pd.DataFrame({"patient_id": [f"q{i}" for i in range(40)],
                                       "overall_survival_months": months, "vital_status": died, "label": label,
                                       "prob": rng.random(40)})
    return images, patients


def test_every_arch_gets_metrics_curves_and_a_report_section(tiny_params):
    images, patients = _tables()
    results = calibration_of_archs(images, patients, tiny_params.calibration, tiny_params.stats, 24.0)
    metrics = calibration_metrics(results, tiny_params.model.arch, tiny_params.calibration, 24.0)
    assert list(results) == list(ARCHS) and metrics["candidate"] == tiny_params.model.arch
    for arch, result in results.items():
        m = metrics[arch]
        assert m["images"]["n"] == 80 and m["images"]["patients"] == 10
        assert m["images"]["brier"]["value"] == pytest.approx(brier(images[arch]["label"], images[arch]["prob"]))
        complete = patients[arch].dropna(subset=["label"])
        assert m["survival"]["n"] == len(complete) and m["survival"]["censored_before_horizon"] == 40 - len(complete)
        assert set(m["survival"]["decision_curve"]["net_benefit"]) == {"0.1", "0.2", "0.3"}
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
    patients[broken] = patients[broken].assign(prob=np.nan)      # the survival stage could not fit it
    results = calibration_of_archs(images, patients, tiny_params.calibration, tiny_params.stats, 24.0)
    metrics = calibration_metrics(results, tiny_params.model.arch, tiny_params.calibration, 24.0)
    survival = metrics[broken]["survival"]
    assert survival["n"] == 0 and survival["reason"] and survival["brier_ipcw"]["reason"]
    assert results[broken].curve["net_benefit"].isna().all() and results[broken].survival is None
    assert "None" not in "\n".join(report_section(tiny_params, metrics))
    reliability_figure(tmp_path / "r.png", {a: r.survival for a, r in results.items()}, {}, tiny_params.model.arch,
                       "heading", "x", "patients")
    decision_curve_figure(tmp_path / "d.png", {a: r.curve for a, r in results.items()}, tiny_params.model.arch, 24.0)
    assert (tmp_path / "r.png").stat().st_size and (tmp_path / "d.png").stat().st_size
