"""The summaries of an arch's prediction table (crlm.evaluation.predictions) written to metrics/.

Cross-validation: each fold's model predicts its validation patients; the
metrics are computed per fold and summarised as mean and SD over folds, and
the AUC also over every fold's validation images together (`out_of_fold`:
each development image predicted once, by the model that did not train on
it), with a patient-level bootstrap CI, the internal estimate that the
report sets beside the test set's.
Independent test: the ensemble of the k fold models predicts the test set;
each metric gets a patient-level bootstrap CI. Every float is rounded to
DIGITS decimals (crlm.core.io.rounded).

Both are scored on every image of their patients, at the natural prevalence
(only the training images are sampled). The label is the slices stage's
(tumour area >= slices.min_tumor_px), so an ambiguous slice (a smaller tumour)
counts as non-metastasis in the metrics (the target condition is "tumour >=
min_tumor_px"); `groups` reports the test images of each kind on their own:
metastasis, ambiguous and tumour-free, and the test AUC is also given with the
ambiguous slices left out and with them as metastasis ("any tumour"), since the
reading of those slices moves it (STARD 2015 asks for the target condition).
A proportion of images (accuracy, precision, recall) gets Korn and Graubard's
exact interval clustered by patient (crlm.stats.proportion), F1 and the AUC
a patient bootstrap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

import numpy as np
import pandas as pd
from sklearn.metrics import classification_report

if TYPE_CHECKING:
    from collections.abc import Callable

    from crlm.params import Params

    Metric = Callable[[np.ndarray], float | None]  # patient_bootstrap's metric
from crlm.core.io import rounded
from crlm.data.labels import is_ambiguous
from crlm.evaluation.bootstrap import patient_bootstrap
from crlm.evaluation.classification import METRICS, classification_metrics, roc_auc_or_none
from crlm.stats.proportion import korn_graubard

SEG_METRICS = ("iou", "dice")
GROUPS = ("metastasis", "ambiguous", "tumour_free")
DIGITS = 4  # decimals of every float in metrics/classification.json and segmentation.json


def classification_summary(frame: pd.DataFrame, params: Params) -> dict:
    threshold = params.evaluate.threshold
    cv = frame[frame["subset"] == "cv"]
    per_fold = {
        fold: classification_metrics(rows["label"].to_numpy(), rows["prob"].to_numpy(), threshold)
        for fold, rows in cv.groupby("fold", sort=True)
    }
    cv_summary = {}
    for metric in METRICS:
        values = [m[metric] for m in per_fold.values() if m[metric] is not None]
        cv_summary[metric] = {
            "mean": np.mean(values) if values else None,
            "sd": np.std(values, ddof=1) if len(values) > 1 else None,
            "folds": len(values),
        }
    cv_summary["out_of_fold"] = out_of_fold(cv, params)
    test = frame[frame["subset"] == "test"]
    labels, probs = test["label"].to_numpy(), test["prob"].to_numpy()
    point = classification_metrics(labels, probs, threshold)
    test_summary = {
        "images": int(len(test)),
        "patients": int(test["patient_id"].nunique()),
        "prevalence": labels.mean() if len(test) else None,
    }
    patients = test["patient_id"].to_numpy()
    for metric in METRICS:
        units = proportion_units(metric, labels, probs >= threshold)
        if units is not None:  # a proportion of images: the exact clustered interval
            test_summary[metric] = korn_graubard(units[0], patients[units[1]], params.stats.ci_level)
            continue
        ci = patient_bootstrap(
            cast(
                "Metric",
                lambda idx, m=metric: classification_metrics(labels[idx], probs[idx], threshold, auc=m == "auc")[m],
            ),
            patients,
            params.stats.n_boot,
            params.stats.seed,
            params.stats.ci_level,
        )
        test_summary[metric] = ci.to_dict()
    test_summary.update(reference_standards(test, params))
    if point["undefined"]:
        test_summary["undefined"] = point["undefined"]
    test_summary["groups"] = image_groups(test, threshold)
    report = classification_report(
        labels,
        test["pred"].to_numpy(),
        labels=[0, 1],
        target_names=["no metastasis", "metastasis"],
        output_dict=True,
        zero_division=0,
    )
    return rounded({"cv": cv_summary, "test": test_summary, "classification_report": report}, DIGITS)


def out_of_fold(cv: pd.DataFrame, params: Params) -> dict:
    """The AUC of the cross-validation rows pooled over folds (each development image once, from the model
    that did not train on it), with its patient-bootstrap CI, and their images and patients."""
    labels, probs = cv["label"].to_numpy(), cv["prob"].to_numpy()
    stats = params.stats
    auc = patient_bootstrap(
        cast("Metric", lambda idx: roc_auc_or_none(labels[idx], probs[idx])),
        cv["patient_id"].to_numpy(),
        stats.n_boot,
        stats.seed,
        stats.ci_level,
    )
    return {"images": int(len(cv)), "patients": int(cv["patient_id"].nunique()), "auc": auc.to_dict()}


def proportion_units(metric: str, labels: np.ndarray, called: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """For a metric that is a proportion of images: each unit's 0/1 outcome and which images are the units
    (recall: the metastasis images, called or not; precision: the images called metastasis, right or not;
    accuracy: every image, right or not); None for the others (F1, AUC)."""
    positive = labels == 1
    units = {"recall": positive, "precision": called, "accuracy": np.ones(len(labels), bool)}.get(metric)
    if units is None:
        return None
    outcome = {"recall": called, "precision": positive, "accuracy": called == positive}[metric]
    return outcome[units].astype(float), units


def reference_standards(test: pd.DataFrame, params: Params) -> dict:
    """The test AUC under the two other readings of an ambiguous slice (a tumour below slices.min_tumor_px,
    labelled no metastasis): left out, and counted as metastasis (the target condition "any tumour"), each
    with its patient-bootstrap CI; the reported AUC's target condition is "tumour >= min_tumor_px"."""
    probs, patients = test["prob"].to_numpy(), test["patient_id"].to_numpy()
    ambiguous = is_ambiguous(test).to_numpy()
    readings = {
        "auc_without_ambiguous": (test["label"].to_numpy()[~ambiguous], probs[~ambiguous], patients[~ambiguous]),
        "auc_any_tumour": ((test["tumour_area_px"].to_numpy() > 0).astype(int), probs, patients),
    }
    stats = params.stats
    intervals = {
        name: patient_bootstrap(
            cast("Metric", lambda idx, y=y, p=p: roc_auc_or_none(y[idx], p[idx])),
            groups,
            stats.n_boot,
            stats.seed,
            stats.ci_level,
        ).to_dict()
        for name, (y, p, groups) in readings.items()
    }
    return {"target_condition": f"tumour >= {params.slices.min_tumor_px} px", **intervals}


def image_groups(frame: pd.DataFrame, threshold: float) -> dict:
    """For the metastasis, ambiguous and tumour-free images of `frame`: how many (images, patients), their
    mean probability and the fraction called metastasis (prob >= threshold): the sensitivity, how often a
    lesion below slices.min_tumor_px is flagged, and the false-positive rate. Floats rounded to DIGITS."""
    ambiguous = is_ambiguous(frame)
    members = {
        "metastasis": frame["label"] == 1,
        "ambiguous": ambiguous,
        "tumour_free": (frame["label"] == 0) & ~ambiguous,
    }
    out = {}
    for name in GROUPS:
        rows = frame[members[name]]
        prob = rows["prob"].to_numpy()
        out[name] = {
            "images": int(len(rows)),
            "patients": int(rows["patient_id"].nunique()),
            "mean_prob": prob.mean() if len(rows) else None,
            "called_metastasis": (prob >= threshold).mean() if len(rows) else None,
        }
    return rounded(out, DIGITS)


def segmentation_summary(frame: pd.DataFrame, params: Params, suffix: str = "") -> dict:
    """Mean IoU/Dice over images that contain tumour; the share of tumour-free images left clean."""
    out = {}
    for subset in ("cv", "test"):
        rows = frame[frame["subset"] == subset]
        tumour = rows[rows["tumour_area_px"] > 0]
        clean = rows[rows["tumour_area_px"] == 0]
        entry: dict = {
            "tumour_images": int(len(tumour)),
            "tumour_free_images_predicted_clean": clean[f"iou{suffix}"].mean() if len(clean) else None,
        }
        for metric in SEG_METRICS:
            values = tumour[f"{metric}{suffix}"].to_numpy()
            if subset == "cv":
                by_fold = tumour.groupby("fold")[f"{metric}{suffix}"].mean()
                entry[metric] = {
                    "mean": values.mean() if len(values) else None,
                    "fold_sd": by_fold.std(ddof=1) if len(by_fold) > 1 else None,
                }
            else:
                ci = patient_bootstrap(
                    cast("Metric", lambda idx, v=values: float(v[idx].mean()) if len(idx) else None),
                    tumour["patient_id"].to_numpy(),
                    params.stats.n_boot,
                    params.stats.seed,
                    params.stats.ci_level,
                )
                entry[metric] = ci.to_dict()
        out[subset] = entry
    return rounded(out, DIGITS)
