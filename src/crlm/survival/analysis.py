"""One arch's survival analysis: embeddings + clinical table -> risk groups, KM, log-rank, Cox.

Every patient with both images and survival data is analysed. The classifier is
trained on the binary task only (patients whose class at the horizon is known)
and its probabilities are out of fold; patients censored before the horizon get
the probability of a model fitted on the whole binary task, which never saw them.
Risk groups (probability >= threshold: high risk) then cover everyone, and the
Kaplan-Meier curves, the log-rank test and the Cox models use everyone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, roc_auc_score

from crlm.config import StatsConfig, SurvivalConfig
from crlm.evaluation.bootstrap import patient_bootstrap
from crlm.stats.survival import KMResult, cox_fit, kaplan_meier, logrank
from crlm.survival.classifiers import fit_tuned, out_of_fold
from crlm.survival.endpoint import binary_endpoint

MONTHS, DIED = "overall_survival_months", "vital_status"
RISK_SCORE = "risk_score"


@dataclass(frozen=True)
class SurvivalAnalysis:
    patients: pd.DataFrame          # one row per analysed patient
    summary: dict                   # what metrics/survival.json holds for this arch
    km: dict[str, KMResult]         # risk group -> Kaplan-Meier


def analyse(patient_ids, vectors: np.ndarray, clinical: pd.DataFrame, cfg: SurvivalConfig,
            stats_cfg: StatsConfig) -> SurvivalAnalysis:
    table, counts = _join(np.asarray(patient_ids), clinical)
    x = vectors[table["row"].to_numpy()]
    table["label"] = binary_endpoint(table[MONTHS], table[DIED], cfg.horizon_months)
    task = table["label"].notna().to_numpy()
    y = table.loc[task, "label"].to_numpy(int)
    oof = out_of_fold(x[task], y, cfg)
    table["prob"] = np.nan
    table.loc[task, "prob"] = oof.prob
    if not oof.reason and (~task).any():
        model, _ = fit_tuned(x[task], y, cfg)
        table.loc[~task, "prob"] = model.predict_proba(x[~task])[:, 1]
    has_prob = table["prob"].notna()
    table["risk_group"] = np.where(~has_prob, "", np.where(table["prob"] >= cfg.threshold, "high", "low"))
    table[RISK_SCORE] = _standardised_logit(table["prob"].to_numpy())

    summary = {"horizon_months": cfg.horizon_months, **counts, "n_binary_task": int(task.sum()),
               "n_short_term": int((y == 1).sum()), "n_long_term": int((y == 0).sum()),
               "n_censored_before_horizon": int((~task).sum()),
               "classifier": {"outer_folds": oof.n_folds, "chosen": oof.chosen}, "reason": oof.reason}
    summary.update(_binary_metrics(table[task], cfg, stats_cfg))
    covariates = _covariate_columns(table, cfg)
    grouped = table[has_prob]
    test = logrank(grouped[MONTHS], grouped[DIED], grouped["risk_group"])
    summary["logrank"] = test.as_dict()
    km = {g: kaplan_meier(rows[MONTHS], rows[DIED]) for g, rows in grouped.groupby("risk_group")}
    summary["median_survival_months"] = {g: (None if np.isnan(k.median) else k.median) for g, k in km.items()}
    summary["cox_model"] = cox_fit(grouped, MONTHS, DIED, [RISK_SCORE, *covariates]).as_dict()
    summary["cox_clinical"] = cox_fit(grouped.dropna(subset=[RISK_SCORE]), MONTHS, DIED, covariates).as_dict()
    columns = ["patient_id", MONTHS, DIED, "label", "prob", "risk_group", RISK_SCORE]
    return SurvivalAnalysis(table[columns].reset_index(drop=True), summary, km)


def _join(patient_ids: np.ndarray, clinical: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """Patients with images and usable survival data; the others are counted, not dropped silently."""
    known = clinical.dropna(subset=[MONTHS, DIED])
    frame = pd.DataFrame({"patient_id": patient_ids, "row": np.arange(len(patient_ids))})
    table = frame.merge(known, on="patient_id", how="inner").sort_values("patient_id").reset_index(drop=True)
    counts = {"n_patients_with_images": int(len(patient_ids)),
              "n_without_survival_data": int(len(set(patient_ids) - set(known["patient_id"]))),
              "n_clinical_without_images": int(len(set(clinical["patient_id"]) - set(patient_ids))),
              "n_analysed": int(len(table))}
    if table.empty:
        raise ValueError(f"no patient has both images and survival data ({counts})")
    return table, counts


def _binary_metrics(task: pd.DataFrame, cfg: SurvivalConfig, stats_cfg: StatsConfig) -> dict:
    labels, prob = task["label"].to_numpy(int), task["prob"].to_numpy()
    if np.isnan(prob).all() or len(np.unique(labels)) < 2:
        return {"auc": {"value": None}, "accuracy": None}

    def auc(rows: np.ndarray):
        return roc_auc_score(labels[rows], prob[rows]) if len(np.unique(labels[rows])) == 2 else None

    ci = patient_bootstrap(auc, task["patient_id"].to_numpy(), stats_cfg.n_boot, stats_cfg.seed, stats_cfg.ci_level)
    return {"auc": ci.as_dict(), "accuracy": float(accuracy_score(labels, prob >= cfg.threshold))}


def _covariate_columns(table: pd.DataFrame, cfg: SurvivalConfig) -> list[str]:
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


def _standardised_logit(prob: np.ndarray) -> np.ndarray:
    """The Cox risk score: logit of P(short-term), in SDs over the patients (HR per SD)."""
    if np.isnan(prob).all():
        return prob
    logit = np.log(np.clip(prob, 1e-6, 1 - 1e-6) / np.clip(1 - prob, 1e-6, 1))
    sd = np.nanstd(logit)
    return (logit - np.nanmean(logit)) / sd if sd > 0 else np.zeros_like(logit)
