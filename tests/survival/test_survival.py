"""Survival stage logic: the binary endpoint, cross-fitting, and the analysis on planted and null data."""

import dataclasses

import numpy as np
import pandas as pd
import pytest
from joblib import Parallel, delayed
from lifelines import CoxPHFitter
from scipy import stats
from sklearn.metrics import roc_auc_score
from sksurv.metrics import concordance_index_censored, concordance_index_ipcw
from sksurv.util import Surv

from crlm.data import phantom
from crlm.data.clinical import normalise_clinical
from crlm.stats.discrimination import normal_scores
from crlm.survival import analysis
from crlm.survival.analysis import DIED, MONTHS, OPTIMISM_RESAMPLES, RISK_SCORE, _cox_models, analyse
from crlm.survival.crossfit import cross_fit
from crlm.survival.endpoint import binary_endpoint
from tests.conftest import BASE_PARAMS


@pytest.fixture
def default_params():
    """The default params (tests/params_base.yaml), logistic regression only: an analysis takes about a second."""
    from crlm.params import load_params

    params = load_params(BASE_PARAMS)
    return dataclasses.replace(
        params,
        survival=dataclasses.replace(params.survival, classifiers=("logistic",)),
        stats=dataclasses.replace(params.stats, n_boot=200),
    )


def test_binary_endpoint_keeps_censored_before_horizon_out():
    months = [10.0, 30.0, 10.0, 30.0, 24.0, np.nan]
    died = [1, 0, 0, 1, 1, 1]
    label = binary_endpoint(months, died, 24.0)
    np.testing.assert_array_equal(label[[0, 1, 3, 4]], [1, 0, 0, 0])  # died at 24: not before the horizon
    assert np.isnan(label[2]) and np.isnan(label[5])  # censored at 10; time missing


def _cohort(params, n, seed, survival_effect):
    """A phantom clinical table (the phantom's own survival model) and each patient's true burden."""
    cfg = dataclasses.replace(params.phantom, survival_effect=survival_effect, seed=seed, missing_rate=0.0)
    rng = np.random.default_rng(seed)
    volumes = np.exp(rng.uniform(np.log(0.5), np.log(400.0), size=n))
    cases = [phantom.CaseSummary(str(i), 1, float(v), (20.0,), "") for i, v in enumerate(volumes)]
    clinical = normalise_clinical(phantom.clinical_table(cfg, cases), "phantom")
    burden = np.array([phantom.burden_z(v) for v in volumes])
    return clinical, [f"phantom-{i}" for i in range(n)], burden


def _splits(ids, seed, n_folds=5, test_fraction=0.15):
    """splits.json's shape: a test set, then folds whose validation sets partition the rest."""
    order = np.random.default_rng(seed).permutation(ids)
    n_test = int(round(test_fraction * len(ids)))
    test, development = sorted(order[:n_test]), order[n_test:]
    val = [sorted(development[k::n_folds]) for k in range(n_folds)]
    folds = [{"train": sorted(set(development) - set(v)), "val": v} for v in val]
    return {"test": test, "folds": folds}


def _fold_vectors(ids, signal, seed, n_folds=5, dim=16):
    """Each fold's "CNN" sees the same signal in its own coordinates (a random rotation, its own noise)."""
    rng = np.random.default_rng(seed)
    out = {}
    for k in range(n_folds):
        features = np.hstack(
            [signal[:, None] + 0.3 * rng.normal(size=(len(ids), 1)), rng.normal(size=(len(ids), dim - 1))]
        )
        rotation, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
        out[str(k)] = pd.DataFrame(5.0 * features @ rotation, index=pd.Index(ids, name="patient_id"))
    return out


def test_planted_signal_gives_an_out_of_sample_risk_score_that_ranks_the_burden(default_params):
    clinical, ids, burden = _cohort(default_params, 120, 3, survival_effect=0.8)
    result = analyse(
        _fold_vectors(ids, burden, 0), _splits(ids, 0), clinical, default_params.survival, default_params.stats
    )
    s, patients = result.summary, result.patients
    assert s["auc"]["value"] > 0.65 and s["auc"]["ci_low"] < s["auc"]["value"] < s["auc"]["ci_high"]
    assert s["auc_ipcw"]["value"] > 0.65 and s["c_index"]["harrell"] > 0.6 and s["c_index"]["uno"] > 0.6
    assert s["logrank"]["p_value"] < 0.01
    assert s["cox_model"]["covariates"][RISK_SCORE]["hr"] > 1.0 and s["cox_lr_test"]["p_value"] < 0.05
    optimism = s["cox_concordance_optimism_corrected"]
    assert optimism["clinical_plus_image"]["corrected"] > optimism["clinical"]["corrected"]
    assert all(optimism[m]["n_used"] == OPTIMISM_RESAMPLES for m in ("clinical", "clinical_plus_image"))
    assert optimism["clinical_plus_image"]["corrected"] < optimism["clinical_plus_image"]["apparent"]
    assert s["n_analysed"] == 120 == s["n_binary_task"] + s["n_censored_before_horizon"]
    # every patient gets one out-of-sample probability, also those censored before the horizon
    assert patients["prob"].notna().all() and set(patients["risk_group"]) == {"high", "low"}
    rho = stats.spearmanr(patients[RISK_SCORE], burden[[ids.index(p) for p in patients["patient_id"]]])
    assert rho.statistic > 0.3 and rho.pvalue < 0.05
    # the risk score: normal scores within each prediction group, so bounded and SD ~1 in each
    for _, rows in patients.groupby("group"):
        assert abs(rows[RISK_SCORE].mean()) < 1e-12 and rows[RISK_SCORE].abs().max() < 2.5
    # development (cross-fitted) and test patients apart, each by hand
    assert s["by_set"]["development"]["n"] + s["by_set"]["test"]["n"] == 120
    for name, rows in (
        ("development", patients[patients["group"] != "test"]),
        ("test", patients[patients["group"] == "test"]),
    ):
        b, task = s["by_set"][name], rows.dropna(subset=["label"])
        assert (b["n"], b["n_events"], b["n_binary_task"]) == (len(rows), rows[DIED].sum(), len(task))
        assert b["auc"]["value"] == pytest.approx(roc_auc_score(task["label"], task[RISK_SCORE]), abs=1e-12)
        assert b["auc"]["ci_low"] < b["auc"]["value"] < b["auc"]["ci_high"]
        assert b["c_index"]["harrell"] == pytest.approx(
            concordance_index_censored(rows[DIED].astype(bool), rows[MONTHS], rows[RISK_SCORE])[0], abs=1e-12
        )
        y = Surv.from_arrays(rows[DIED].astype(bool), rows[MONTHS])
        assert b["c_index"]["uno"] == pytest.approx(
            concordance_index_ipcw(y, y, rows[RISK_SCORE], tau=24.0)[0], abs=1e-12
        )


def test_cross_fitting_predicts_each_patient_with_the_cnn_that_never_saw_it(default_params):
    """A fold's classifier sees only its training patients, through its own CNN's coordinates: a fold
    whose embedding of its validation patients is scrambled predicts them at chance, the others do not."""
    clinical, ids, burden = _cohort(default_params, 120, 5, survival_effect=0.8)
    splits = _splits(ids, 1)
    vectors = _fold_vectors(ids, burden, 2)
    label = pd.Series(
        binary_endpoint(clinical["overall_survival_months"], clinical["vital_status"], 24.0),
        index=clinical["patient_id"],
    )
    fitted = cross_fit(vectors, splits, label, default_params.survival)
    assert fitted.reason == "" and len(fitted.chosen) == 5 and fitted.prob.notna().all()
    for k, fold in enumerate(splits["folds"]):
        assert set(fitted.group[fitted.group == f"fold{k}"].index) == set(fold["val"])
    assert set(fitted.group[fitted.group == "test"].index) == set(splits["test"])
    # the test patients' probability is the mean of the 5 pairs: moving one fold's test embeddings moves it
    moved = {**vectors, "0": vectors["0"].copy()}
    moved["0"].loc[splits["test"]] = 0.0
    again = cross_fit(moved, splits, label, default_params.survival)
    val = [p for f in splits["folds"] for p in f["val"]]
    np.testing.assert_array_equal(again.prob[val], fitted.prob[val])
    assert not np.allclose(again.prob[splits["test"]], fitted.prob[splits["test"]])


def _null_p_values(params, seed):
    clinical, ids, _ = _cohort(params, 80, 1000 + seed, survival_effect=0.0)
    rng = np.random.default_rng(seed)
    vectors = {str(k): pd.DataFrame(rng.normal(size=(80, 8)), index=pd.Index(ids, name="patient_id")) for k in range(5)}
    s = analyse(vectors, _splits(ids, seed), clinical, params.survival, params.stats, optimism_resamples=2).summary
    return s["logrank"]["p_value"], s["cox_lr_test"]["p_value"], s["classifier"]["chosen_per_fold"]


@pytest.mark.slow
@pytest.mark.parametrize("classifiers, n", [("logistic C=1", 500), ("shipped", 100)])
def test_null_survival_effect_gives_uniform_p_values(default_params, classifiers, n):
    """phantom.survival_effect 0 and random embeddings: n analyses. The log-rank p of the risk groups and
    the LR test of the risk score must be uniform: rejection rate at 0.05 inside its 99% binomial interval
    and a KS test of uniformity not rejected at 0.01.

    "logistic C=1": one logistic regression, 500 analyses (about a second each). "shipped": the survival
    section of tests/params_base.yaml as the pipeline runs it, fit_tuned's inner CV choosing per fold
    between logistic regression over survival.lr_c and random forests over survival.rf_trees x
    survival.rf_depth; 100 analyses (about 10 s each), and both families must be chosen somewhere."""
    from crlm.params import load_params

    survival = (
        load_params(BASE_PARAMS).survival
        if classifiers == "shipped"
        else dataclasses.replace(default_params.survival, lr_c=(1.0,))
    )
    assert classifiers != "shipped" or set(survival.classifiers) == {"logistic", "random_forest"}
    params = dataclasses.replace(
        default_params, survival=survival, stats=dataclasses.replace(default_params.stats, n_boot=1)
    )
    results = Parallel(n_jobs=2)(delayed(_null_p_values)(params, seed) for seed in range(n))
    chosen = {description.split()[0] for _, _, per_fold in results for description in per_fold}
    print(f"{classifiers}: families chosen {sorted(chosen)}")
    assert chosen == set(survival.classifiers)
    low, high = stats.binom.ppf([0.005, 0.995], n, 0.05)
    for name, values in zip(("log-rank", "LR test"), list(zip(*results))[:2]):
        defined = np.array([p for p in values if p is not None])
        assert len(defined) >= 0.95 * n, f"{name}: only {len(defined)} defined"
        rejected = int((defined < 0.05).sum())
        print(f"{name}: {rejected} of {len(defined)} below 0.05; KS p {stats.kstest(defined, 'uniform').pvalue:.3f}")
        assert low <= rejected * n / len(defined) <= high, f"{name}: {rejected} of {len(defined)} below 0.05"
        assert stats.kstest(defined, "uniform").pvalue > 0.01


def test_one_class_gives_a_reason_not_a_crash(default_params):
    clinical, ids, _ = _cohort(default_params, 30, 1, survival_effect=0.0)
    clinical["overall_survival_months"] = 100.0  # nobody dies before the horizon: one class
    clinical["vital_status"] = 0.0
    vectors = {str(k): pd.DataFrame(np.random.default_rng(k).normal(size=(30, 4)), index=ids) for k in range(5)}
    s = analyse(vectors, _splits(ids, 0), clinical, default_params.survival, default_params.stats).summary
    assert "needs at least 2 of each" in s["reason"] and s["auc"]["value"] is None
    assert s["logrank"]["p_value"] is None and s["logrank"]["reason"]
    flat = {k: v * 0.0 for k, v in vectors.items()}  # an untrained CNN
    clinical, ids, _ = _cohort(default_params, 30, 1, survival_effect=0.8)
    s = analyse(flat, _splits(ids, 0), clinical, default_params.survival, default_params.stats).summary
    assert "every embedding feature is constant" in s["reason"]


def test_patients_without_images_or_survival_are_counted(default_params):
    clinical, ids, _ = _cohort(default_params, 40, 2, survival_effect=0.8)
    clinical.loc[0, "overall_survival_months"] = np.nan  # images, no survival data
    with_images = ids[:-2] + ["phantom-999"]  # two without images, one unknown
    vectors = {
        str(k): pd.DataFrame(np.random.default_rng(k).normal(size=(len(with_images), 4)), index=with_images)
        for k in range(5)
    }
    cfg, stats_cfg = default_params.survival, default_params.stats
    s = analyse(vectors, _splits(with_images, 0), clinical, cfg, stats_cfg, optimism_resamples=2).summary
    assert s["n_clinical_without_images"] == 2
    assert s["n_without_survival_data"] == 2  # phantom-0 and phantom-999
    assert s["n_analysed"] == 37
    with pytest.raises(ValueError, match="no patient has both images and survival data"):
        analyse({"0": pd.DataFrame(np.zeros((1, 4)), index=["x-1"])}, _splits(["x-1"], 0, 1), clinical, cfg, stats_cfg)


def test_an_external_test_set_without_survival_data_gets_the_reason_and_the_development_set_its_numbers(
    default_params,
):
    """An image-only external test source (LiTS: no clinical table): its patients have images, no clinical row."""
    clinical, ids, _ = _cohort(default_params, 40, 2, survival_effect=0.8)
    lits = [f"lits-{i}" for i in range(6)]
    clinical = pd.concat([clinical, clinical.iloc[:1].assign(patient_id="tcia-2")], ignore_index=True)
    clinical.loc[clinical["patient_id"] == "tcia-2", "vital_status"] = np.nan  # a row without survival data
    with_images = ids + lits + ["tcia-2"]
    vectors = {
        str(k): pd.DataFrame(np.random.default_rng(k).normal(size=(len(with_images), 4)), index=with_images)
        for k in range(5)
    }
    development = _splits(ids, 0, test_fraction=0.0)
    splits = {"test": sorted([*lits, "tcia-2"]), "folds": development["folds"]}
    cfg, stats_cfg = default_params.survival, default_params.stats
    by_set = analyse(vectors, splits, clinical, cfg, stats_cfg, optimism_resamples=2).summary["by_set"]
    assert by_set["test"]["n"] == 0 and by_set["test"]["auc"]["value"] is None
    assert by_set["test"]["reason"] == (
        "none of its 7 patients with images has survival data (6 without a row in the clinical table, which an "
        "image-only source such as LiTS lacks; 1 with a row lacking overall survival months or vital status)"
    )
    assert by_set["development"]["n"] == 40 and "reason" not in by_set["development"]
    assert by_set["development"]["auc"]["value"] is not None


def test_cox_with_too_few_events_per_covariate_is_refused(default_params):
    clinical, ids, burden = _cohort(default_params, 60, 4, survival_effect=0.8)
    clinical["vital_status"] = 0.0
    early = clinical.index[:15]
    clinical.loc[early, ["vital_status", "overall_survival_months"]] = [1.0, 3.0]  # 15 deaths
    cfg = dataclasses.replace(default_params.survival, covariates=("clinrisk_score",))
    s = analyse(
        _fold_vectors(ids, burden, 0), _splits(ids, 0), clinical, cfg, default_params.stats, optimism_resamples=2
    ).summary
    assert "15 events for 2 covariate(s); needs at least 20" in s["cox_model"]["reason"]
    assert s["cox_lr_test"]["p_value"] is None and "needs at least 20" in s["cox_lr_test"]["reason"]
    assert s["cox_clinical"]["reason"] == ""  # 1 covariate needs 10 events


def test_risk_groups_are_the_upper_half_of_each_prediction_group_whatever_the_classifiers_scale(
    default_params, monkeypatch
):
    """One fold's probabilities shrunk tenfold (all below survival.threshold, as a classifier on another scale
    gives): each group's high-risk share stays 50% (+-1 patient) and the groups do not move."""
    clinical, ids, burden = _cohort(default_params, 120, 6, survival_effect=0.8)
    args = (_fold_vectors(ids, burden, 1), _splits(ids, 2), clinical, default_params.survival, default_params.stats)
    plain = analyse(*args, optimism_resamples=2)

    def shrunk(*a, **k):
        fitted = cross_fit(*a, **k)
        fold0 = fitted.group == "fold0"
        return dataclasses.replace(fitted, prob=fitted.prob.where(~fold0, fitted.prob * 0.1))

    monkeypatch.setattr(analysis, "cross_fit", shrunk)
    scaled = analyse(*args, optimism_resamples=2)
    patients = scaled.patients
    assert (patients.loc[patients["group"] == "fold0", "prob"] < default_params.survival.threshold).all()
    shares = scaled.summary["risk_groups"]["high_share_per_group"]
    assert set(shares) == {"fold0", "fold1", "fold2", "fold3", "fold4", "test"}
    for group, rows in patients.groupby("group"):
        high = int((rows["risk_group"] == "high").sum())
        assert abs(high - len(rows) / 2) <= 1 and shares[group] == pytest.approx(high / len(rows))
        # the upper half by the probability's rank within the group
        assert set(rows.loc[rows["risk_group"] == "high", "patient_id"]) == set(
            rows.nlargest(len(rows) // 2, "prob")["patient_id"]
        )
    pd.testing.assert_series_equal(patients["risk_group"], plain.patients["risk_group"])
    assert scaled.summary["logrank"] == plain.summary["logrank"]


def _pipeline_like(seed):
    """74 patients as the pipeline's: five folds' validation patients and 11 test patients, an integer clinical
    score 0-5 (clinrisk_score) and the risk score (normal scores within each group) of a noisy image signal."""
    rng = np.random.default_rng(seed)
    groups = np.repeat(["fold0", "fold1", "fold2", "fold3", "fold4", "test"], [13, 11, 13, 13, 13, 11])
    clinrisk = rng.integers(0, 6, size=len(groups)).astype(float)
    image = rng.normal(size=len(groups))
    death = rng.exponential(40.0 * np.exp(-0.5 * (clinrisk - 2.5) - 0.6 * image))
    censor = rng.uniform(12, 90, size=len(groups))
    table = pd.DataFrame(
        {
            "group": groups,
            "clinrisk_score": clinrisk,
            MONTHS: np.minimum(death, censor),
            DIED: (death <= censor).astype(float),
        }
    )
    table[RISK_SCORE] = np.nan
    for _, rows in table.groupby("group"):
        table.loc[rows.index, RISK_SCORE] = normal_scores(image[rows.index] + rng.normal(size=len(rows)))
    return table


def test_the_clinical_models_corrected_c_is_not_above_its_apparent_c_on_a_pipeline_like_table(default_params):
    """One integer covariate: its ranking depends on the sign of the coefficient only, so no fit can rank the
    patients better than the apparent fit; the corrected C may exceed the apparent C by Monte Carlo error only."""
    cfg = dataclasses.replace(default_params.survival, covariates=("clinrisk_score",), log_covariates=())
    table = _pipeline_like(0)
    c = _cox_models(table, cfg, seed=0)["cox_concordance_optimism_corrected"]["clinical"]
    assert c["n_resamples"] == OPTIMISM_RESAMPLES and c["n_used"] + c["n_refused"] == OPTIMISM_RESAMPLES
    assert c["corrected"] <= c["apparent"] + 3 * c["optimism_se"], c
    assert c["apparent"] == pytest.approx(
        concordance_index_censored(table[DIED].astype(bool), table[MONTHS], table["clinrisk_score"])[0], abs=1e-12
    )


def test_the_cox_hr_of_the_risk_score_is_per_sd(default_params):
    """exp(coef) of lifelines' Cox fit on the score divided by its SD (ddof=1) and the clinical score."""
    cfg = dataclasses.replace(default_params.survival, covariates=("clinrisk_score",), log_covariates=())
    table = _pipeline_like(3)
    out = _cox_models(table, cfg, seed=0, optimism_resamples=2)
    sd = table[RISK_SCORE].std(ddof=1)
    assert out["cox_risk_score_sd"] == pytest.approx(sd, rel=1e-12) and 0.75 < sd < 0.9
    frame = table[[MONTHS, DIED, "clinrisk_score"]].assign(z=table[RISK_SCORE] / sd)
    reference = CoxPHFitter().fit(frame, MONTHS, DIED).summary
    risk = out["cox_model"]["covariates"][RISK_SCORE]
    assert risk["hr"] == pytest.approx(reference.loc["z", "exp(coef)"], rel=1e-5)
    assert risk["hr_low"] == pytest.approx(reference.loc["z", "exp(coef) lower 95%"], rel=1e-5)
    assert table[RISK_SCORE].std(ddof=1) == sd  # the table's own column is not rescaled
