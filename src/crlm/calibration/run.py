"""Calibration and decision curves of every arch, as the calibration stage writes them.

Image level: the test images' fold-ensemble probability of a metastasis (data/predictions/<arch>.parquet,
subset "test") against the image label. Survival: each patient's cross-fitted probability of death
before survival.horizon_months (data/survival/<arch>.parquet) against the binary endpoint (complete
cases: a patient censored before the horizon has no label), the IPCW Brier score (everyone), and the
decision curve at the horizon (everyone: Kaplan-Meier handles the censored). CIs: patient bootstrap
(crlm.evaluation.bootstrap); for the survival rows every patient is one row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from crlm.calibration.decision import at_thresholds, net_benefit, threshold_grid
from crlm.calibration.measures import (Reliability, brier, brier_ipcw, brier_reference, recalibration,
                                       reliability)
from crlm.config import StatsConfig
from crlm.config.beyond import CalibrationConfig
from crlm.evaluation.bootstrap import patient_bootstrap
from crlm.stats.result import plain
from crlm.survival.analysis import DIED, MONTHS

BOOTSTRAP_COVERS = "patient sampling of the evaluation set, given the fitted models"


@dataclass(frozen=True)
class ArchCalibration:
    metrics: dict                  # metrics/calibration.json's entry for the arch
    images: Reliability | None     # reliability diagram of the test images
    survival: Reliability | None   # reliability diagram of the binary survival task
    curve: pd.DataFrame            # decision curve: threshold, net_benefit, treat_all, treat_none


def calibration_of_archs(images: dict[str, pd.DataFrame], patients: dict[str, pd.DataFrame],
                         cfg: CalibrationConfig, stats_cfg: StatsConfig,
                         horizon_months: float) -> dict[str, ArchCalibration]:
    """images: arch -> test rows of its predictions table; patients: arch -> its survival table."""
    thresholds = threshold_grid(cfg.thresholds[0], cfg.thresholds[1], cfg.threshold_step, cfg.net_benefit_at)
    scored = {arch: patients[arch].dropna(subset=["prob", MONTHS, DIED]) for arch in images}
    curves = decision_curves(scored, horizon_months, thresholds)
    out = {}
    for arch in images:
        image_metrics, image_diagram = calibration_of(images[arch], "image_id", cfg.image_bins, stats_cfg)
        survival_metrics, survival_diagram = survival_calibration(scored[arch], cfg, stats_cfg, horizon_months)
        survival_metrics["decision_curve"] = plain({
            "patients": len(scored[arch]), "horizon_months": float(horizon_months),
            "net_benefit": at_thresholds(curves[arch], cfg.net_benefit_at)})
        out[arch] = ArchCalibration({"images": image_metrics, "survival": survival_metrics}, image_diagram,
                                    survival_diagram, curves[arch])
    return out


def decision_curves(scored: dict[str, pd.DataFrame], horizon_months: float,
                    thresholds: np.ndarray) -> dict[str, pd.DataFrame]:
    """Each arch's decision curve; archs that scored the same patients share one dcurves call (and so one
    treat-all curve), which halves the Kaplan-Meier fits."""
    by_patients: dict[tuple, list[str]] = {}
    for arch, table in scored.items():
        by_patients.setdefault(tuple(sorted(table["patient_id"])), []).append(arch)
    curves = {}
    for key, archs in by_patients.items():
        if not key:     # no patient with a probability (the survival stage's reason says why)
            curves |= {arch: pd.DataFrame({"threshold": thresholds, "net_benefit": np.nan, "treat_all": np.nan,
                                           "treat_none": np.nan}) for arch in archs}
            continue
        tables = {arch: scored[arch].sort_values("patient_id") for arch in archs}
        first = tables[archs[0]]
        curves |= net_benefit({arch: t["prob"].to_numpy() for arch, t in tables.items()}, first[MONTHS],
                              first[DIED], horizon_months, thresholds)
    return {arch: curves[arch] for arch in scored}


def calibration_of(rows: pd.DataFrame, row_id: str, bins: int,
                   stats_cfg: StatsConfig) -> tuple[dict, Reliability | None]:
    """Brier, recalibration intercept and slope (each with a patient-bootstrap CI) and the reliability
    diagram of rows' `prob` against their 0/1 `label`."""
    rows = rows.dropna(subset=["label", "prob"])
    y, p = rows["label"].to_numpy(float), rows["prob"].to_numpy(float)
    counts = {"n": len(rows), "patients": int(rows["patient_id"].nunique()), "events": int(y.sum())}
    if not len(rows):
        return {**counts, "reason": f"no {row_id} with a label and a probability"}, None
    groups = rows["patient_id"].to_numpy()

    def boot(metric):
        return patient_bootstrap(metric, groups, stats_cfg.n_boot, stats_cfg.seed, stats_cfg.ci_level).to_dict()

    fits: dict[bytes, object] = {}      # intercept and slope share each resample's fit (same draws)

    def fit(idx: np.ndarray):
        key = idx.tobytes()
        if key not in fits:
            fits[key] = recalibration(y[idx], p[idx])
        return fits[key]

    def defined(value: float) -> float | None:
        return None if np.isnan(value) else value

    whole = recalibration(y, p)
    metrics = {**counts, "mean_prob": float(p.mean()), "observed_rate": float(y.mean()),
               "brier": boot(lambda idx: brier(y[idx], p[idx])),
               "brier_reference": brier_reference(y),
               "intercept": boot(lambda idx: defined(fit(idx).intercept)),
               "slope": boot(lambda idx: defined(fit(idx).slope)),
               "ci_covers": BOOTSTRAP_COVERS,
               "reason": whole.reason}
    return plain(metrics), reliability(y, p, bins)


def survival_calibration(scored: pd.DataFrame, cfg: CalibrationConfig, stats_cfg: StatsConfig,
                         horizon_months: float) -> tuple[dict, Reliability | None]:
    """scored: the patients with a probability and survival data; the complete cases' calibration, and
    the IPCW Brier score over everyone."""
    metrics, diagram = calibration_of(scored, "patient_id", cfg.patient_bins, stats_cfg)
    metrics["censored_before_horizon"] = int(scored["label"].isna().sum())
    metrics["brier_ipcw"] = brier_ipcw(scored[MONTHS], scored[DIED], scored["prob"], horizon_months).to_dict()
    return metrics, diagram


def calibration_metrics(results: dict[str, ArchCalibration], candidate: str, cfg: CalibrationConfig,
                        horizon_months: float) -> dict:
    """metrics/calibration.json (not yet rounded): the settings, then one entry per arch."""
    return {"candidate": candidate, "horizon_months": float(horizon_months),
            "image_bins": cfg.image_bins, "patient_bins": cfg.patient_bins,
            **{arch: result.metrics for arch, result in results.items()}}
