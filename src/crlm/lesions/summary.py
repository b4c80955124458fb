"""The lesion summaries of metrics/lesions.json: detection (counts, sensitivity, false positives per patient,
the lesions' mean Dice) and, per size band, the lesions' sensitivity and Dice and the slice-level ROC AUC, each
with a patient-level bootstrap CI (crlm.evaluation.bootstrap: a patient's rows are resampled together), but
a sensitivity, a proportion of lesions, with Korn and Graubard's exact interval clustered by patient
(crlm.stats.proportion), which, unlike the bootstrap, can leave 0 and 1."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from crlm.evaluation.bootstrap import BootstrapCI, patient_bootstrap
from crlm.lesions.matching import Detection
from crlm.lesions.size import band_names, equivalent_diameter_mm, size_band
from crlm.stats.config import StatsConfig
from crlm.stats.proportion import korn_graubard


def rank_auc(labels: np.ndarray, scores: np.ndarray) -> float | None:
    """The ROC AUC (ties count one half) from the ranks of the scores (Mann-Whitney U / (n_pos n_neg)); the
    same number as scikit-learn's roc_auc_score without its per-call checks, for thousands of resamples. None
    where one class is missing."""
    labels = np.asarray(labels).astype(bool)
    n_pos = int(labels.sum())
    n_neg = len(labels) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = rankdata(np.asarray(scores, dtype=float))
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def bootstrap_mean(values: np.ndarray, patients: np.ndarray, stats: StatsConfig) -> dict:
    """The mean of `values` with its patient-bootstrap CI (rows of one patient resampled together)."""
    values = np.asarray(values, dtype=float)
    if len(values) == 0:
        return BootstrapCI(None, None, None, ci_level=stats.ci_level, n_boot_valid=0).to_dict()
    return patient_bootstrap(
        lambda idx: float(values[idx].mean()), patients, stats.n_boot, stats.seed, stats.ci_level
    ).to_dict()


def bootstrap_auc(labels: np.ndarray, scores: np.ndarray, patients: np.ndarray, stats: StatsConfig) -> dict:
    """The ROC AUC of `scores` for `labels` with its patient-bootstrap CI (None where one class only)."""
    if len(labels) == 0:
        return BootstrapCI(None, None, None, ci_level=stats.ci_level, n_boot_valid=0).to_dict()
    return patient_bootstrap(
        lambda idx: rank_auc(labels[idx], scores[idx]), patients, stats.n_boot, stats.seed, stats.ci_level
    ).to_dict()


def sensitivity_ci(detected: np.ndarray, patients: np.ndarray, stats: StatsConfig) -> dict:
    """The share of lesions detected, with its exact clustered (Korn-Graubard) interval."""
    return korn_graubard(detected, patients, stats.ci_level)


def detection_summary(found: Detection, stats: StatsConfig) -> dict:
    """Counts, sensitivity, false positives per patient and the lesions' mean Dice, with CIs."""
    lesions, fp = found.lesions, found.fp_by_patient
    patients = lesions["patient_id"].to_numpy()
    return {
        "lesions": int(len(lesions)),
        "detected": int(lesions["detected"].sum()),
        "false_positives": int(fp.sum()),
        "patients": int(len(fp)),
        "patients_with_lesions": int(lesions["patient_id"].nunique()),
        "sensitivity": sensitivity_ci(lesions["detected"].to_numpy(), patients, stats),
        "fp_per_patient": bootstrap_mean(fp.to_numpy(), fp.index.to_numpy(), stats),
        "dice": bootstrap_mean(lesions["dice"].to_numpy(), patients, stats),
    }


def band_lesions(lesions: pd.DataFrame, band: np.ndarray, edges: tuple[float, ...], stats: StatsConfig) -> dict:
    """Per size band (band: each lesion's band index): the lesions, their patients, and the lesions'
    sensitivity and mean Dice with CIs."""
    out = {}
    for k, name in enumerate(band_names(edges)):
        mine = lesions[band == k]
        patients = mine["patient_id"].to_numpy()
        out[name] = {
            "lesions": int(len(mine)),
            "detected": int(mine["detected"].sum()),
            "patients": int(mine["patient_id"].nunique()),
            "sensitivity": sensitivity_ci(mine["detected"].to_numpy(), patients, stats),
            "dice": bootstrap_mean(mine["dice"].to_numpy(), patients, stats),
        }
    return out


def band_summary(
    found: Detection,
    pixel_area_mm2: np.ndarray,
    tumour_free: np.ndarray,
    patients: np.ndarray,
    prob: np.ndarray,
    edges: tuple[float, ...],
    stats: StatsConfig,
) -> dict:
    """Per size band: the per-slice lesions (by equivalent diameter), their sensitivity and mean Dice
    (band_lesions), and the ROC AUC of the image probability for the slices whose largest lesion is in the
    band against the tumour-free slices. found: the per-slice lesions (unit = image position); the other
    arrays by image position: the prepared pixel's area, no tumour in the original slice, patient,
    probability."""
    lesions = found.lesions
    units = lesions["unit"].to_numpy()
    diameter = equivalent_diameter_mm(lesions["area_px"].to_numpy(), pixel_area_mm2[units])
    out = band_lesions(lesions, size_band(diameter, edges), edges, stats)
    largest = pd.Series(diameter).groupby(units).max()  # each slice with a lesion: its largest
    slice_band = pd.Series(size_band(largest.to_numpy(), edges), index=largest.index)
    negatives = np.flatnonzero(tumour_free)
    for k, name in enumerate(band_names(edges)):
        positives = slice_band.index[slice_band == k].to_numpy()
        chosen = np.concatenate([positives, negatives])
        labels = np.r_[np.ones(len(positives)), np.zeros(len(negatives))]
        out[name] |= {
            "slices": int(len(positives)),
            "tumour_free_slices": int(len(negatives)),
            "auc": bootstrap_auc(labels, prob[chosen], patients[chosen], stats),
        }
    return out
