"""One arch's survival analysis: cross-fitted probabilities -> risk score, risk groups, discrimination, Cox.

Every patient with images and survival data gets one out-of-sample probability of
short-term survival (crlm.survival.crossfit). From it:
  risk group:  probability >= survival.threshold is high risk (the paper's 0.5 cut);
  risk score:  van der Waerden normal scores of the probability within its prediction group
               (one CV fold's validation patients, or the test patients): rank-based, so free of
               the scale of the classifier that produced it (logistic and random-forest
               probabilities, different folds) and without outliers; SD ~1, so "HR per SD".
Discrimination of the risk score: the complete-case AUC at the horizon (patients censored
before it leave this one), the IPCW time-dependent AUC at the horizon and Uno's C (which use
censored patients correctly), Harrell's C. Cox: the clinical model and clinical + risk score,
compared by a likelihood-ratio test, with out-of-sample C-indices (each prediction group's
linear predictor from a fit on the others); a fit with fewer than
survival.min_events_per_covariate events per covariate is refused with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, roc_auc_score

from crlm.config import StatsConfig, SurvivalConfig
from crlm.evaluation.bootstrap import patient_bootstrap
from crlm.stats.discrimination import harrell_c, ipcw_auc, likelihood_ratio_test, normal_scores, uno_c
from crlm.stats.survival import KMResult, cox_fit, kaplan_meier, logrank
from crlm.survival.crossfit import cross_fit
from crlm.survival.endpoint import binary_endpoint

MONTHS, DIED = "overall_survival_months", "vital_status"
RISK_SCORE = "risk_score"
AUC_COVERS = ("patient sampling of the evaluation, given the fitted CNNs and classifiers; not the variance of "
              "fitting them (the seed SD of `make stability` measures that)")


@dataclass(frozen=True)
class SurvivalAnalysis:
    patients: pd.DataFrame          # one row per analysed patient
    summary: dict                   # what metrics/survival.json holds for this arch
    km: dict[str, KMResult]         # risk group -> Kaplan-Meier


def analyse(vectors: dict[str, pd.DataFrame], splits: dict, clinical: pd.DataFrame, cfg: SurvivalConfig,
            stats_cfg: StatsConfig) -> SurvivalAnalysis:
    """vectors: fold -> patient embedding matrix (crlm.survival.embeddings.fold_vectors)."""
    table, counts = _join(next(iter(vectors.values())).index.to_numpy(), clinical)
    table["label"] = binary_endpoint(table[MONTHS], table[DIED], cfg.horizon_months)
    fitted = cross_fit(vectors, splits, table.set_index("patient_id")["label"], cfg)
    table["group"] = fitted.group.loc[table["patient_id"]].to_numpy()
    table["prob"] = fitted.prob.loc[table["patient_id"]].to_numpy()
    has_prob = table["prob"].notna()
    table["risk_group"] = np.where(~has_prob, "", np.where(table["prob"] >= cfg.threshold, "high", "low"))
    table[RISK_SCORE] = np.nan
    for _, rows in table[has_prob].groupby("group"):
        table.loc[rows.index, RISK_SCORE] = normal_scores(rows["prob"].to_numpy())

    task = table["label"].notna()
    y = table.loc[task, "label"].to_numpy(int)
    summary = {"horizon_months": cfg.horizon_months, **counts, "n_binary_task": int(task.sum()),
               "n_short_term": int((y == 1).sum()), "n_long_term": int((y == 0).sum()),
               "n_censored_before_horizon": int((~task).sum()),
               "classifier": {"chosen_per_fold": fitted.chosen}, "reason": fitted.reason}
    summary.update(_binary_metrics(table[task & has_prob], cfg, stats_cfg))
    scored = table[has_prob]
    summary.update(_discrimination(scored, cfg))
    summary["logrank"] = logrank(scored[MONTHS], scored[DIED], scored["risk_group"]).to_dict()
    km = {g: kaplan_meier(rows[MONTHS], rows[DIED]) for g, rows in scored.groupby("risk_group")}
    summary["median_survival_months"] = {g: (None if np.isnan(k.median) else k.median) for g, k in km.items()}
    summary.update(_cox_models(scored, cfg))
    columns = ["patient_id", MONTHS, DIED, "label", "group", "prob", "risk_group", RISK_SCORE]
    return SurvivalAnalysis(table[columns].reset_index(drop=True), summary, km)


def _join(patient_ids: np.ndarray, clinical: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """Patients with images and usable survival data; the others are counted, not dropped silently."""
    known = clinical.dropna(subset=[MONTHS, DIED])
    frame = pd.DataFrame({"patient_id": patient_ids})
    table = frame.merge(known, on="patient_id", how="inner").sort_values("patient_id").reset_index(drop=True)
    counts = {"n_patients_with_images": int(len(patient_ids)),
              "n_without_survival_data": int(len(set(patient_ids) - set(known["patient_id"]))),
              "n_clinical_without_images": int(len(set(clinical["patient_id"]) - set(patient_ids))),
              "n_analysed": int(len(table))}
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
    return {"auc": {**ci.to_dict(), "covers": AUC_COVERS},
            "accuracy": float(accuracy_score(labels, task["prob"].to_numpy() >= cfg.threshold))}


def _discrimination(scored: pd.DataFrame, cfg: SurvivalConfig) -> dict:
    """IPCW AUC at the horizon, Uno's C (truncated at the horizon) and Harrell's C of the risk score."""
    if scored.empty:
        return {"auc_ipcw": {"value": None, "reason": "no patient has a probability"},
                "c_index": {"harrell": None, "uno": None}}
    months, died, score = scored[MONTHS].to_numpy(), scored[DIED].to_numpy(), scored[RISK_SCORE].to_numpy()
    return {"auc_ipcw": ipcw_auc(months, died, score, cfg.horizon_months).to_dict(),
            "c_index": {"harrell": harrell_c(months, died, score).to_dict()["value"],
                        "uno": uno_c(months, died, score, cfg.horizon_months).to_dict()["value"]}}


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


def _cox_models(scored: pd.DataFrame, cfg: SurvivalConfig) -> dict:
    """Clinical Cox vs clinical + risk score on the same patients: LR test and out-of-sample C-indices."""
    table = scored.copy()
    clinical = covariate_columns(table, cfg)
    full = [RISK_SCORE, *clinical]
    table = table.dropna(subset=full)
    fits = {name: cox_fit(table, MONTHS, DIED, cols, min_events_per_covariate=cfg.min_events_per_covariate)
            for name, cols in (("cox_model", full), ("cox_clinical", clinical))}
    out = {name: fit.to_dict() for name, fit in fits.items()}
    reason = fits["cox_model"].reason or fits["cox_clinical"].reason
    lr = likelihood_ratio_test(fits["cox_clinical"].log_likelihood, fits["cox_model"].log_likelihood, df=1)
    out["cox_lr_test"] = {**lr.to_dict(), "reason": reason} if not reason else \
        {"statistic": None, "df": 1, "p_value": None, "reason": reason}
    out["cox_concordance_out_of_sample"] = {
        name: _cv_concordance(table, cols, cfg) for name, cols in (("clinical", clinical), ("clinical_plus_image", full))}
    return out


def _cv_concordance(table: pd.DataFrame, covariates: list[str], cfg: SurvivalConfig) -> dict:
    """Harrell's and Uno's C of each prediction group's Cox linear predictor fitted on the other groups."""
    if table[DIED].sum() == 0:
        return {"harrell": None, "uno": None, "reason": "no events among the patients with a risk score"}
    predictor = pd.Series(np.nan, index=table.index)
    for group in sorted(table["group"].unique()):
        held_out = table["group"] == group
        fit = cox_fit(table[~held_out], MONTHS, DIED, covariates, min_events_per_covariate=cfg.min_events_per_covariate)
        if fit.reason:
            return {"harrell": None, "uno": None, "reason": f"fit without group {group}: {fit.reason}"}
        predictor[held_out] = table.loc[held_out, covariates].to_numpy(float) @ fit.table["coef"].to_numpy()
    months, died = table[MONTHS].to_numpy(), table[DIED].to_numpy()
    return {"harrell": harrell_c(months, died, predictor.to_numpy()).to_dict()["value"],
            "uno": uno_c(months, died, predictor.to_numpy(), cfg.horizon_months).to_dict()["value"], "reason": ""}
