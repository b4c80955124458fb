"""Calibration and decision curves of every arch, as the calibration stage writes them.

Image level: the test images' fold-ensemble probability of a metastasis (data/predictions/<arch>.parquet,
subset "test") against the image label. Survival: each patient's cross-fitted probability of death
before survival.horizon_months (data/survival/<arch>.parquet) against the binary endpoint (complete
cases: a patient censored before the horizon has no label), the IPCW Brier score (everyone), and the
decision curve at the horizon (everyone: Kaplan-Meier handles the censored).

Per block (images, survival), metrics/calibration.json holds: the Brier score; the recalibration
intercept and slope on logit(p), p clipped to [logit_clip, 1 - logit_clip] first (the clip chosen a
priori per block: crlm.calibration.measures.IMAGE_CLIP, forest_clip) with n_clipped the probabilities
it moved; `slope_lr_test` (slope = 1) and `intercept_lr_test` (intercept = 0, slope 1), likelihood-ratio
tests, {statistic, df, p_value}, which treat the rows as independent (one row per patient in the
survival block; the images of one patient are not independent, so there the tests are not valid and
the report's words follow the patient-bootstrap CIs). Per threshold in calibration.net_benefit_at, the
decision curve's net benefit of the model and of treat-all, the model's CI (which is also the CI of its
difference with treat-none, whose net benefit is 0) and the difference model - treat-all with its CI.
CIs: percentile patient bootstrap (crlm.evaluation.bootstrap); for the survival rows every patient is one
row, and the net benefit's resamples use crlm.calibration.decision.km_net_benefit, the function of the
point estimate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import numpy as np
import pandas as pd

from crlm.calibration.config import CalibrationConfig
from crlm.calibration.decision import at_thresholds, km_net_benefit, net_benefit, threshold_grid
from crlm.calibration.measures import (
    FINE_CLIP,
    LOESS_FRAC,
    Reliability,
    brier,
    brier_ipcw,
    brier_reference,
    lr_test,
    recalibration,
    reliability,
)
from crlm.core.io import rounded
from crlm.evaluation.bootstrap import patient_bootstrap
from crlm.stats.config import StatsConfig
from crlm.stats.result import plain
from crlm.survival.endpoint import DIED, MONTHS

BOOTSTRAP_COVERS = "patient sampling of the evaluation set, given the fitted models"
EXACT = ("logit_clip",)  # kept unrounded by rounded_metrics: float32's epsilon is 1.2e-7


@dataclass(frozen=True)
class ArchCalibration:
    metrics: dict  # metrics/calibration.json's entry for the arch
    images: Reliability | None  # reliability diagram of the test images
    survival: Reliability | None  # reliability diagram of the binary survival task
    curve: pd.DataFrame  # decision curve: threshold, net_benefit, treat_all, treat_none


def calibration_of_archs(
    images: dict[str, pd.DataFrame],
    patients: dict[str, pd.DataFrame],
    cfg: CalibrationConfig,
    stats_cfg: StatsConfig,
    horizon_months: float,
    *,
    image_clip: float,
    survival_clip: float,
) -> dict[str, ArchCalibration]:
    """images: arch -> test rows of its predictions table; patients: arch -> its survival table;
    image_clip, survival_clip: the logit clips of the two blocks' probabilities."""
    thresholds = threshold_grid(cfg.thresholds[0], cfg.thresholds[1], cfg.threshold_step, cfg.net_benefit_at)
    scored = {arch: patients[arch].dropna(subset=["prob", MONTHS, DIED]) for arch in images}
    curves = decision_curves(scored, horizon_months, thresholds)
    out = {}
    for arch in images:
        image_metrics, image_diagram = calibration_of(images[arch], "image_id", cfg.image_bins, stats_cfg, image_clip)
        survival_metrics, survival_diagram = survival_calibration(
            scored[arch], cfg, stats_cfg, horizon_months, survival_clip
        )
        survival_metrics["decision_curve"] = plain(
            {
                "patients": len(scored[arch]),
                "horizon_months": float(horizon_months),
                "net_benefit": net_benefit_at(
                    scored[arch], curves[arch], cfg.net_benefit_at, horizon_months, stats_cfg
                ),
            }
        )
        out[arch] = ArchCalibration(
            {"images": image_metrics, "survival": survival_metrics}, image_diagram, survival_diagram, curves[arch]
        )
    return out


def net_benefit_at(
    scored: pd.DataFrame, curve: pd.DataFrame, thresholds, horizon_months: float, stats_cfg: StatsConfig
) -> dict[str, dict]:
    """{"0.1": {"model", "treat_all", "model_ci": [low, high], "model_minus_treat_all": {value, ci_low,
    ci_high, ci_level, n_boot_valid}}, ...}: the net benefits at `thresholds` (km_net_benefit, checked
    against the dcurves curve the figure draws) with patient-bootstrap CIs of the model's net benefit
    (= its difference with treat-none) and of its difference with treat-all."""
    thresholds = [float(t) for t in thresholds]
    if not len(scored):
        return {
            f"{t:g}": {
                "model": None,
                "treat_all": None,
                "model_ci": [None, None],
                "model_minus_treat_all": {"value": None, "ci_low": None, "ci_high": None},
            }
            for t in thresholds
        }
    risk, months, died = (scored[c].to_numpy(float) for c in ("prob", MONTHS, DIED))
    cache: dict[bytes, tuple[np.ndarray, np.ndarray]] = {}  # one computation per resample, every metric

    def curve_of(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        key = idx.tobytes()
        if key not in cache:
            cache[key] = km_net_benefit(risk[idx], months[idx], died[idx], horizon_months, thresholds)
        return cache[key]

    model, treat_all = curve_of(np.arange(len(scored)))
    picked = at_thresholds(curve, thresholds)
    drawn = np.array([picked[f"{t:g}"][c] for c in ("model", "treat_all") for t in thresholds], dtype=float)
    if not np.allclose(np.concatenate([model, treat_all]), drawn, rtol=0, atol=1e-9, equal_nan=True):
        raise AssertionError(f"km_net_benefit {np.concatenate([model, treat_all])} differs from dcurves' {drawn}")
    groups = scored["patient_id"].to_numpy()

    def boot(metric) -> dict:
        return patient_bootstrap(metric, groups, stats_cfg.n_boot, stats_cfg.seed, stats_cfg.ci_level).to_dict()

    def finite(value: float) -> float | None:
        return float(value) if np.isfinite(value) else None

    out = {}
    for k, t in enumerate(thresholds):
        ci = boot(lambda idx, k=k: finite(cast(float, curve_of(idx)[0][k])))  # an element: a float64
        difference = boot(lambda idx, k=k: finite(curve_of(idx)[0][k] - curve_of(idx)[1][k]))
        below = risk < t
        deaths = int(np.sum(below & (died == 1) & (months <= horizon_months)))
        if below.any() and deaths in (0, int(below.sum())):
            # model - treat all = P(risk < pt) x [(1 - r) pt / (1 - pt) - r], r the risk of death below pt:
            # with r = 0 (or 1) in the data, every resample has the same sign, so the CI cannot hold 0
            difference["one_sided"] = (
                f"{'no' if deaths == 0 else 'every'} patient below pt ({int(below.sum())}) "
                f"died by the horizon: every resample's difference has the same sign"
            )
        out[f"{t:g}"] = {
            "model": finite(model[k]),
            "treat_all": finite(treat_all[k]),
            "model_ci": [ci["ci_low"], ci["ci_high"]],
            "model_minus_treat_all": difference,
        }
    return out


def decision_curves(
    scored: dict[str, pd.DataFrame], horizon_months: float, thresholds: np.ndarray
) -> dict[str, pd.DataFrame]:
    """Each arch's decision curve; archs that scored the same patients share one dcurves call (and so one
    treat-all curve), which halves the Kaplan-Meier fits."""
    by_patients: dict[tuple, list[str]] = {}
    for arch, table in scored.items():
        by_patients.setdefault(tuple(sorted(table["patient_id"])), []).append(arch)
    curves: dict[str, pd.DataFrame] = {}
    for key, archs in by_patients.items():
        if not key:  # no patient with a probability (the survival stage's reason says why)
            curves |= {
                arch: pd.DataFrame(
                    {"threshold": thresholds, "net_benefit": np.nan, "treat_all": np.nan, "treat_none": np.nan}
                )
                for arch in archs
            }
            continue
        tables = {arch: scored[arch].sort_values("patient_id") for arch in archs}
        first = tables[archs[0]]
        curves |= net_benefit(
            {arch: t["prob"].to_numpy() for arch, t in tables.items()},
            first[MONTHS],
            first[DIED],
            horizon_months,
            thresholds,
        )
    return {arch: curves[arch] for arch in scored}


def calibration_of(
    rows: pd.DataFrame, row_id: str, bins: int, stats_cfg: StatsConfig, clip: float
) -> tuple[dict, Reliability | None]:
    """Brier, recalibration intercept and slope on logit(p clipped to [clip, 1 - clip]) (each with a
    patient-bootstrap CI, and their likelihood-ratio tests) and the reliability diagram of rows' `prob`
    against their 0/1 `label`."""
    rows = rows.dropna(subset=["label", "prob"])
    y, p = rows["label"].to_numpy(float), rows["prob"].to_numpy(float)
    counts = {"n": len(rows), "patients": int(rows["patient_id"].nunique()), "events": int(y.sum())}
    if not len(rows):
        return {**counts, "logit_clip": float(clip), "reason": f"no {row_id} with a label and a probability"}, None
    groups = rows["patient_id"].to_numpy()

    def boot(metric):
        return patient_bootstrap(metric, groups, stats_cfg.n_boot, stats_cfg.seed, stats_cfg.ci_level).to_dict()

    fits: dict[bytes, object] = {}  # intercept and slope share each resample's fit (same draws)

    def fit(idx: np.ndarray):
        key = idx.tobytes()
        if key not in fits:
            fits[key] = recalibration(y[idx], p[idx], clip)
        return fits[key]

    def defined(value: float) -> float | None:
        return None if np.isnan(value) else value

    whole = recalibration(y, p, clip)
    metrics = {
        **counts,
        "mean_prob": float(p.mean()),
        "observed_rate": float(y.mean()),
        "brier": boot(lambda idx: brier(y[idx], p[idx])),
        "brier_reference": brier_reference(y),
        "logit_clip": float(clip),
        "n_clipped": whole.n_clipped,
        "intercept": boot(lambda idx: defined(fit(idx).intercept)),
        "intercept_lr_test": lr_test(whole.intercept_lr),
        "slope": boot(lambda idx: defined(fit(idx).slope)),
        "slope_lr_test": lr_test(whole.slope_lr),
        "ci_covers": BOOTSTRAP_COVERS,
        "reason": whole.reason,
    }
    return plain(metrics), reliability(y, p, bins)


def survival_calibration(
    scored: pd.DataFrame, cfg: CalibrationConfig, stats_cfg: StatsConfig, horizon_months: float, clip: float
) -> tuple[dict, Reliability | None]:
    """scored: the patients with a probability and survival data; the complete cases' calibration, and
    the IPCW Brier score over everyone."""
    metrics, diagram = calibration_of(scored, "patient_id", cfg.patient_bins, stats_cfg, clip)
    complete = scored.dropna(subset=["label", "prob"])
    if len(complete):
        # the clip's effect, shown rather than hidden: the slope at the previous, much finer clip
        fine = recalibration(complete["label"].to_numpy(float), complete["prob"].to_numpy(float), FINE_CLIP)
        metrics["slope_at_fine_clip"] = plain(
            {
                "logit_clip": FINE_CLIP,
                "n_clipped": fine.n_clipped,
                "slope": None if np.isnan(fine.slope) else fine.slope,
                "slope_lr_test": lr_test(fine.slope_lr),
            }
        )
    metrics["censored_before_horizon"] = int(scored["label"].isna().sum())
    metrics["brier_ipcw"] = brier_ipcw(scored[MONTHS], scored[DIED], scored["prob"], horizon_months).to_dict()
    return metrics, diagram


def calibration_metrics(
    results: dict[str, ArchCalibration], candidate: str, cfg: CalibrationConfig, horizon_months: float
) -> dict:
    """metrics/calibration.json (not yet rounded): the settings, then one entry per arch."""
    return {
        "candidate": candidate,
        "horizon_months": float(horizon_months),
        "image_bins": cfg.image_bins,
        "patient_bins": cfg.patient_bins,
        "loess_frac": LOESS_FRAC,
        **{arch: result.metrics for arch, result in results.items()},
    }


def rounded_metrics(tree, digits: int):
    """crlm.core.io.rounded, also inside lists (a CI [low, high]), except the EXACT keys, whose values stay as
    they are."""
    if isinstance(tree, dict):
        return {k: v if k in EXACT else rounded_metrics(v, digits) for k, v in tree.items()}
    if isinstance(tree, list):
        return [rounded_metrics(v, digits) for v in tree]
    return rounded(tree, digits)
