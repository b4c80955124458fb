"""Survival stage logic: the binary endpoint, nested-CV classifiers, and the analysis on planted and null data."""

import dataclasses

import numpy as np
import pytest

from crlm.data import phantom
from crlm.data.clinical import normalise_clinical
from crlm.survival.analysis import analyse
from crlm.survival.classifiers import out_of_fold
from crlm.survival.endpoint import binary_endpoint
from tests.conftest import REPO


@pytest.fixture
def default_params():
    """The repository's defaults (not the tiny profile's 2-fold survival CV), logistic regression only:
    each nested-CV run then takes about a second."""
    from crlm.config import load_params

    params = load_params(REPO / "params.yaml")
    return dataclasses.replace(params, survival=dataclasses.replace(params.survival, classifiers=("logistic",)),
                               stats=dataclasses.replace(params.stats, n_boot=200))


def test_binary_endpoint_keeps_censored_before_horizon_out():
    months = [10.0, 30.0, 10.0, 30.0, 24.0, np.nan]
    died = [1, 0, 0, 1, 1, 1]
    label = binary_endpoint(months, died, 24.0)
    np.testing.assert_array_equal(label[[0, 1, 3, 4]], [1, 0, 0, 0])   # died at 24: not before the horizon
    assert np.isnan(label[2]) and np.isnan(label[5])                     # censored at 10; time missing


def _cohort(params, n, seed, survival_effect):
    """A phantom clinical table (the phantom's own survival model) and each patient's true burden."""
    cfg = dataclasses.replace(params.phantom, survival_effect=survival_effect, seed=seed, missing_rate=0.0)
    rng = np.random.default_rng(seed)
    volumes = np.exp(rng.uniform(np.log(0.5), np.log(400.0), size=n))
    cases = [phantom.PhantomCase(str(i), None, None, (1, 1, 1), 1, float(v), (20.0,), "")
             for i, v in enumerate(volumes)]
    clinical = normalise_clinical(phantom.clinical_table(cfg, cases), "phantom")
    burden = np.array([phantom.burden_z(v) for v in volumes])
    return clinical, [f"phantom-{i}" for i in range(n)], burden


def test_planted_signal_in_the_embeddings_separates_the_risk_groups(default_params):
    clinical, ids, burden = _cohort(default_params, 120, 3, survival_effect=0.8)
    rng = np.random.default_rng(0)
    vectors = np.hstack([burden[:, None] + 0.3 * rng.normal(size=(120, 1)), rng.normal(size=(120, 20))])
    result = analyse(ids, vectors, clinical, default_params.survival, default_params.stats)
    s = result.summary
    assert s["auc"]["value"] > 0.65 and s["auc"]["ci_low"] < s["auc"]["value"] < s["auc"]["ci_high"]
    assert s["logrank"]["p_value"] < 0.01
    assert s["cox_model"]["covariates"]["risk_score"]["hr"] > 1.0
    assert s["n_analysed"] == 120 == s["n_binary_task"] + s["n_censored_before_horizon"]
    # every patient gets an honest probability, also those censored before the horizon
    assert result.patients["prob"].notna().all()
    assert set(result.patients["risk_group"]) == {"high", "low"}


def test_null_data_gives_log_rank_p_below_005_in_at_most_10_percent_of_50_seeds(default_params):
    """phantom.survival_effect 0 and random embeddings (no CNN): the stage's analysis, 50 seeds.
    Logistic regression only, so that 50 nested-CV runs take about a minute."""
    stats = dataclasses.replace(default_params.stats, n_boot=20)
    p_values = []
    for seed in range(50):
        clinical, ids, _ = _cohort(default_params, 80, 100 + seed, survival_effect=0.0)
        vectors = np.random.default_rng(seed).normal(size=(80, 32))
        p_values.append(analyse(ids, vectors, clinical, default_params.survival, stats).summary["logrank"]["p_value"])
    defined = [p for p in p_values if p is not None]
    assert len(defined) >= 45      # two risk groups almost always: the test is not vacuous
    assert sum(p < 0.05 for p in defined) <= 5


def test_one_class_gives_a_reason_not_a_crash(tiny_params):
    oof = out_of_fold(np.zeros((6, 3)), np.array([0, 0, 0, 0, 0, 1]), tiny_params.survival)
    assert np.isnan(oof.prob).all() and "at least 2 of each" in oof.reason
    flat = out_of_fold(np.full((8, 3), 0.5), np.array([0, 1] * 4), tiny_params.survival)   # an untrained CNN
    assert np.isnan(flat.prob).all() and "no embedding feature has variance" in flat.reason
    clinical, ids, _ = _cohort(tiny_params, 12, 1, survival_effect=0.0)
    clinical["overall_survival_months"] = 100.0    # nobody dies before the horizon: one class
    clinical["vital_status"] = 0.0
    s = analyse(ids, np.random.default_rng(0).normal(size=(12, 4)), clinical, tiny_params.survival,
                tiny_params.stats).summary
    assert "at least 2 of each" in s["reason"] and s["auc"]["value"] is None
    assert s["logrank"]["p_value"] is None and s["logrank"]["reason"]
    assert s["cox_model"]["reason"]


def test_patients_without_images_or_survival_are_counted(default_params):
    clinical, ids, _ = _cohort(default_params, 30, 2, survival_effect=0.8)
    clinical.loc[0, "overall_survival_months"] = np.nan          # images, no survival data
    with_images = ids[:-2] + ["phantom-999"]                      # two without images, one unknown
    vectors = np.random.default_rng(0).normal(size=(len(with_images), 4))
    cfg, stats = default_params.survival, default_params.stats
    s = analyse(with_images, vectors, clinical, cfg, stats).summary
    assert s["n_clinical_without_images"] == 2
    assert s["n_without_survival_data"] == 2                      # phantom-0 and phantom-999
    assert s["n_analysed"] == 27
    with pytest.raises(ValueError, match="no patient has both images and survival data"):
        analyse(["x-1"], np.zeros((1, 4)), clinical, cfg, stats)


def test_too_few_events_for_cox_is_reported(default_params):
    clinical, ids, _ = _cohort(default_params, 40, 4, survival_effect=0.0)
    clinical["vital_status"] = 0.0
    clinical.loc[:8, ["vital_status", "overall_survival_months"]] = [1.0, 3.0]   # 9 early deaths only
    s = analyse(ids, np.random.default_rng(0).normal(size=(40, 4)), clinical, default_params.survival,
                default_params.stats).summary
    assert "events for 5 covariate(s)" in s["cox_model"]["reason"]
    assert s["cox_clinical"]["concordance"] is not None            # 4 covariates need 8 events
