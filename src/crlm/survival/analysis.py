"""One arch's survival analysis: cross-fitted probabilities -> risk score, risk groups, discrimination, Cox.

Every patient with images and survival data gets one out-of-sample probability of
short-term survival (crlm.survival.crossfit). From it:
  risk score:  van der Waerden normal scores of the probability within its prediction group
               (one CV fold's validation patients, or the test patients): rank-based, so free of
               the scale of the classifier that produced it (logistic and random-forest
               probabilities, different folds) and without outliers. Its SD is below 1 (~0.8 in
               groups of a dozen), so the Cox models divide it by its SD over their patients.
  risk group:  fixed a priori, high risk = the upper half of the risk score within the prediction
               group (risk score > 0; a middle patient, score exactly 0, is low risk). A cut of the
               probability itself (survival.threshold) would put a different share of each group
               high, as the classifiers' scales differ; survival.threshold only gives the accuracy.
Discrimination of the risk score: the complete-case AUC at the horizon (patients censored
before it leave this one), the IPCW time-dependent AUC at the horizon and Uno's C truncated at
the horizon (which use censored patients correctly), Harrell's C over all follow-up; pooled over
all patients (the headline numbers) and in `by_set` for the development (cross-fitted, groups
fold<k>) and the untouched test patients apart (a set none of whose patients has survival data, e.g. an
external test set of an image-only source such as LiTS, gets the reason instead).
Cox: the clinical model and clinical + risk score (per SD) on the same patients, compared by a
likelihood-ratio test, the test of the score's added value. Each model's Harrell C is corrected for
optimism by the bootstrap (crlm.stats.optimism; OPTIMISM_RESAMPLES resamples, seed stats.seed);
the difference of the two corrected Cs is descriptive, not a test (Demler, Pencina & D'Agostino
2012, Stat Med 31:2577-2587). A fit with fewer than survival.min_events_per_covariate events per
covariate is refused with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, roc_auc_score

from crlm.evaluation.bootstrap import patient_bootstrap
from crlm.stats.config import StatsConfig
from crlm.stats.discrimination import harrell_c, ipcw_auc, likelihood_ratio_test, normal_scores, uno_c
from crlm.stats.optimism import optimism_corrected_c
from crlm.stats.survival import KMResult, cox_fit, kaplan_meier, logrank
from crlm.survival.config import SurvivalConfig
from crlm.survival.crossfit import TEST, CrossFit, cross_fit
from crlm.survival.endpoint import DIED, MONTHS, RISK_SCORE, binary_endpoint
from crlm.survival.risk_groups import RISK_GROUP_RULE, risk_group

AUC_COVERS = (
    "patient sampling of the evaluation, given the fitted CNNs and classifiers; not the variance of "
    "fitting them (the seed SD of `make stability` measures that)"
)
# Bootstrap resamples of the optimism correction: fixed, not stats.n_boot, as each one costs a Cox fit per
# model; the Monte Carlo SE of the mean optimism is reported beside it
OPTIMISM_RESAMPLES = 200
OPTIMISM_METHOD = (
    "Harrell, Lee & Mark 1996: Harrell's C of the Cox model fitted on all patients (apparent), "
    "minus the mean optimism over bootstrap resamples of the patients (C of the model refitted on "
    "a resample, on that resample, minus its C on the original patients); resample indices "
    "numpy.random.default_rng(stats.seed).integers(0, n, (n_resamples, n)); a resample whose fit is "
    "refused is counted in n_refused and left out"
)


@dataclass(frozen=True)
class SurvivalAnalysis:
    patients: pd.DataFrame  # one row per analysed patient
    summary: dict  # what metrics/survival.json holds for this arch
    km: dict[str, KMResult]  # risk group -> Kaplan-Meier
    classifiers: tuple = ()  # each fold's fitted classifier, in fold order (crlm.survival.crossfit.CrossFit.models)


def analyse(
    vectors: dict[str, pd.DataFrame],
    splits: dict,
    clinical: pd.DataFrame,
    cfg: SurvivalConfig,
    stats_cfg: StatsConfig,
    optimism_resamples: int = OPTIMISM_RESAMPLES,
) -> SurvivalAnalysis:
    """vectors: fold -> patient embedding matrix (crlm.embedding.table.fold_vectors); optimism_resamples:
    the bootstrap resamples of the Cox models' optimism correction (the pipeline's: OPTIMISM_RESAMPLES)."""
    imaged = next(iter(vectors.values())).index.to_numpy()
    table, counts = _join(imaged, clinical)
    table["label"] = binary_endpoint(table[MONTHS], table[DIED], cfg.horizon_months)
    fitted = cross_fit(vectors, splits, table.set_index("patient_id")["label"], cfg)
    table["group"] = fitted.group.loc[table["patient_id"]].to_numpy()
    table["prob"] = fitted.prob.loc[table["patient_id"]].to_numpy()
    has_prob = table["prob"].notna()
    table[RISK_SCORE] = np.nan
    for _, rows in table[has_prob].groupby("group"):
        table.loc[rows.index, RISK_SCORE] = normal_scores(rows["prob"].to_numpy())
    table["risk_group"] = np.where(~has_prob, "", risk_group(table[RISK_SCORE].to_numpy()))

    task = table["label"].notna()
    y = table.loc[task, "label"].to_numpy(int)
    summary = {
        "horizon_months": cfg.horizon_months,
        **counts,
        "n_binary_task": int(task.sum()),
        "n_short_term": int((y == 1).sum()),
        "n_long_term": int((y == 0).sum()),
        "n_censored_before_horizon": int((~task).sum()),
        "classifier": {"chosen_per_fold": fitted.chosen},
        "reason": fitted.reason,
    }
    development = sorted(set(imaged) - set(splits["test"]))
    if fitted.reason and not set(development) & set(table["patient_id"]):
        summary["reason"] += f" (development set: {no_survival_reason(development, clinical)})"
    summary.update(_binary_metrics(table[task & has_prob], cfg, stats_cfg))
    scored = table[has_prob]
    summary.update(_discrimination(scored, cfg))
    summary["by_set"] = _by_set(scored, cfg, stats_cfg, _empty_set_reasons(imaged, splits, table, clinical, fitted))
    summary["risk_groups"] = {
        "rule": RISK_GROUP_RULE,
        "high_share_per_group": {
            group: float((rows["risk_group"] == "high").mean()) for group, rows in scored.groupby("group")
        },
    }
    summary["logrank"] = logrank(scored[MONTHS], scored[DIED], scored["risk_group"]).to_dict()
    # the paper's grouping, for comparison only: a cut of the probability, whose scale differs between folds
    at_cut = np.where(scored["prob"].to_numpy() >= cfg.threshold, "high", "low")
    summary["logrank_probability_cut"] = logrank(scored[MONTHS], scored[DIED], at_cut).to_dict()
    km = {g: kaplan_meier(rows[MONTHS], rows[DIED]) for g, rows in scored.groupby("risk_group")}
    summary["median_survival_months"] = {g: (None if np.isnan(k.median) else k.median) for g, k in km.items()}
    summary.update(_cox_models(scored, cfg, stats_cfg.seed, optimism_resamples))
    columns = ["patient_id", MONTHS, DIED, "label", "group", "prob", "risk_group", RISK_SCORE]
    return SurvivalAnalysis(table[columns].reset_index(drop=True), summary, km, fitted.models)


def _join(patient_ids: np.ndarray, clinical: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """Patients with images and usable survival data; the others are counted, not dropped silently."""
    known = clinical.dropna(subset=[MONTHS, DIED])
    frame = pd.DataFrame({"patient_id": patient_ids})
    table = frame.merge(known, on="patient_id", how="inner").sort_values("patient_id").reset_index(drop=True)
    counts = {
        "n_patients_with_images": int(len(patient_ids)),
        "n_without_survival_data": int(len(set(patient_ids) - set(known["patient_id"]))),
        "n_clinical_without_images": int(len(set(clinical["patient_id"]) - set(patient_ids))),
        "n_analysed": int(len(table)),
    }
    if table.empty:
        raise ValueError(f"no patient has both images and survival data ({counts})")
    return table, counts


def _binary_metrics(task: pd.DataFrame, cfg: SurvivalConfig, stats_cfg: StatsConfig) -> dict:
    """Complete-case AUC of the risk score at the horizon (patient bootstrap CI) and the accuracy at the cut."""
    labels, score = task["label"].to_numpy(int), task[RISK_SCORE].to_numpy()
    if len(np.unique(labels)) < 2:
        return {"auc": {"value": None, "covers": AUC_COVERS}, "accuracy": None}

    def auc(rows: np.ndarray):
        return roc_auc_score(labels[rows], score[rows]) if len(np.unique(labels[rows])) == 2 else None

    ci = patient_bootstrap(auc, task["patient_id"].to_numpy(), stats_cfg.n_boot, stats_cfg.seed, stats_cfg.ci_level)
    return {
        "auc": {**ci.to_dict(), "covers": AUC_COVERS},
        "accuracy": float(accuracy_score(labels, task["prob"].to_numpy() >= cfg.threshold)),
    }


def _discrimination(scored: pd.DataFrame, cfg: SurvivalConfig) -> dict:
    """IPCW AUC at the horizon, Uno's C (truncated at the horizon) and Harrell's C of the risk score."""
    if scored.empty:
        return {
            "auc_ipcw": {"value": None, "reason": "no patient has a probability"},
            "c_index": {"harrell": None, "uno": None},
        }
    months, died, score = scored[MONTHS].to_numpy(), scored[DIED].to_numpy(), scored[RISK_SCORE].to_numpy()
    return {"auc_ipcw": ipcw_auc(months, died, score, cfg.horizon_months).to_dict(), "c_index": _c_indices(scored, cfg)}


def _c_indices(rows: pd.DataFrame, cfg: SurvivalConfig) -> dict:
    """Harrell's C (all follow-up) and Uno's C (truncated at the horizon) of the risk score; None where undefined."""
    if len(rows) < 2:
        return {"harrell": None, "uno": None, "reason": f"{len(rows)} patient(s)"}
    months, died, score = rows[MONTHS].to_numpy(), rows[DIED].to_numpy(), rows[RISK_SCORE].to_numpy()
    harrell, uno = harrell_c(months, died, score), uno_c(months, died, score, cfg.horizon_months)
    reason = "; ".join(f"{name}: {r.reason}" for name, r in (("Harrell", harrell), ("Uno", uno)) if r.reason)
    out = {"harrell": harrell.to_dict()["value"], "uno": uno.to_dict()["value"]}
    return {**out, "reason": reason} if reason else out


def _empty_set_reasons(
    imaged: np.ndarray, splits: dict, table: pd.DataFrame, clinical: pd.DataFrame, fitted: CrossFit
) -> dict[str, str]:
    """Why the development or the test set could have no scored patient: none of its patients with images
    has survival data (no_survival_reason), or the cross-fitting made no probability (its reason)."""
    test = sorted(set(imaged) & set(splits["test"]))
    reasons = {}
    for name, patients in (("development", sorted(set(imaged) - set(test))), ("test", test)):
        analysed = set(patients) & set(table["patient_id"])
        reasons[name] = (
            f"no patient has a probability: {fitted.reason}" if analysed else no_survival_reason(patients, clinical)
        )
    return reasons


def no_survival_reason(patients: list[str], clinical: pd.DataFrame) -> str:
    """Why none of `patients` (patients with images) could be analysed: how many have no clinical row (an
    image-only source has no clinical table), how many a row without survival data."""
    rows = clinical[clinical["patient_id"].isin(patients)]
    no_row = len(set(patients) - set(rows["patient_id"]))
    parts = (
        [f"{no_row} without a row in the clinical table, which an image-only source such as LiTS lacks"]
        if no_row
        else []
    )
    parts += [f"{len(rows)} with a row lacking overall survival months or vital status"] if len(rows) else []
    return f"none of its {len(patients)} patients with images has survival data ({'; '.join(parts)})"


def _by_set(scored: pd.DataFrame, cfg: SurvivalConfig, stats_cfg: StatsConfig, reasons: dict[str, str]) -> dict:
    """The development (cross-fitted, groups fold<k>) and the untouched test patients apart: counts, the
    complete-case AUC with its patient-bootstrap CI, Harrell's and Uno's C of the risk score; a set with no
    patient analysed gets its `reasons` entry (no_survival_reason) as `reason`."""
    out = {}
    for name, rows in (("development", scored[scored["group"] != TEST]), ("test", scored[scored["group"] == TEST])):
        task = rows[rows["label"].notna()]
        out[name] = {
            "n": int(len(rows)),
            "n_events": int(rows[DIED].sum()),
            "n_binary_task": int(len(task)),
            "n_short_term": int((task["label"] == 1).sum()),
            "auc": _binary_metrics(task, cfg, stats_cfg)["auc"],
            "c_index": _c_indices(rows, cfg),
        }
        if rows.empty:
            out[name]["reason"] = reasons[name]
    return out


def covariate_columns(table: pd.DataFrame, cfg: SurvivalConfig) -> list[str]:
    """survival.covariates as Cox columns (log1p_<name> for survival.log_covariates, added to `table`)."""
    missing = [c for c in cfg.covariates if c not in table.columns]
    if missing:
        raise KeyError(f"survival.covariates {missing} are not columns of the clinical table")
    names = []
    for column in cfg.covariates:
        if column in cfg.log_covariates:
            table[f"log1p_{column}"] = np.log1p(table[column])
            column = f"log1p_{column}"
        names.append(column)
    return names


def _cox_models(
    scored: pd.DataFrame, cfg: SurvivalConfig, seed: int, optimism_resamples: int = OPTIMISM_RESAMPLES
) -> dict:
    """Clinical Cox vs clinical + risk score on the same patients: LR test and optimism-corrected C-indices.
    The risk score enters divided by its SD over these patients (ddof=1), so its HR is per SD."""
    table = scored.copy()
    clinical = covariate_columns(table, cfg)
    full = [RISK_SCORE, *clinical]
    table = table.dropna(subset=full)
    sd = float(table[RISK_SCORE].std(ddof=1)) if len(table) > 1 else float("nan")
    if np.isfinite(sd) and sd > 0:
        table[RISK_SCORE] = table[RISK_SCORE] / sd
    fits = {
        name: cox_fit(table, MONTHS, DIED, cols, min_events_per_covariate=cfg.min_events_per_covariate)
        for name, cols in (("cox_model", full), ("cox_clinical", clinical))
    }
    out: dict[str, Any] = {name: fit.to_dict() for name, fit in fits.items()}
    out["cox_risk_score_sd"] = sd if np.isfinite(sd) else None
    reason = fits["cox_model"].reason or fits["cox_clinical"].reason
    lr = likelihood_ratio_test(fits["cox_clinical"].log_likelihood, fits["cox_model"].log_likelihood, df=1)
    out["cox_lr_test"] = (
        {**lr.to_dict(), "reason": reason}
        if not reason
        else {"statistic": None, "df": 1, "p_value": None, "reason": reason}
    )
    out["cox_concordance_optimism_corrected"] = {
        **{
            name: _optimism_corrected(table, cols, cfg, seed, optimism_resamples)
            for name, cols in (("clinical", clinical), ("clinical_plus_image", full))
        },
        "method": OPTIMISM_METHOD,
    }
    return out


def _optimism_corrected(
    table: pd.DataFrame, covariates: list[str], cfg: SurvivalConfig, seed: int, n_resamples: int
) -> dict:
    """Harrell's C of the Cox model on `covariates`, apparent and corrected for optimism by the bootstrap."""

    def fit(months: np.ndarray, died: np.ndarray, x: np.ndarray):
        frame = pd.DataFrame(x, columns=covariates).assign(**{MONTHS: months, DIED: died})
        result = cox_fit(frame, MONTHS, DIED, covariates, min_events_per_covariate=cfg.min_events_per_covariate)
        return result.reason or result.table["coef"].to_numpy()

    def concordance(months: np.ndarray, died: np.ndarray, risk: np.ndarray) -> float:
        return harrell_c(months, died, risk).value

    return optimism_corrected_c(
        table[MONTHS].to_numpy(),
        table[DIED].to_numpy(),
        table[covariates].to_numpy(float),
        fit,
        concordance,
        n_resamples,
        seed,
    ).to_dict()
