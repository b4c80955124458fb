"""Accuracy, precision, recall, F1 and ROC AUC of image-level predictions.

Pure functions over numpy arrays. Counts-based metrics are computed from the
confusion matrix here (fast enough for thousands of bootstrap resamples; the
tests check them against scikit-learn); the AUC is scikit-learn's. A metric
that is undefined for the data (an AUC with one class, a precision with no
positive prediction) is None, with the reason in `undefined`.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score

METRICS = ("accuracy", "precision", "recall", "f1", "auc")


def roc_auc_or_none(labels: np.ndarray, scores: np.ndarray) -> float | None:
    labels = np.asarray(labels)
    if len(np.unique(labels)) < 2:
        return None
    return float(roc_auc_score(labels, scores))


def classification_metrics(labels: np.ndarray, probs: np.ndarray, threshold: float = 0.5, auc: bool = True) -> dict:
    """{metric: value or None, ..., "undefined": {metric: reason}} for binary labels 0/1.

    auc=False leaves the AUC (the one costly metric) out, for bootstraps of the others.
    """
    labels = np.asarray(labels).astype(int)
    probs = np.asarray(probs, dtype=float)
    if labels.shape != probs.shape:
        raise ValueError(f"labels {labels.shape} and probabilities {probs.shape} differ in shape")
    if not np.isfinite(probs).all():
        raise ValueError("probabilities contain NaN or inf")
    predicted = probs >= threshold
    positive = labels == 1
    tp = int(np.sum(predicted & positive))
    fp = int(np.sum(predicted & ~positive))
    fn = int(np.sum(~predicted & positive))
    n = len(labels)
    out: dict = {"n": n, "accuracy": (n - fp - fn) / n if n else None}
    undefined: dict = {}
    out["precision"] = tp / (tp + fp) if tp + fp else None
    if out["precision"] is None:
        undefined["precision"] = "no image predicted positive"
    out["recall"] = tp / (tp + fn) if tp + fn else None
    if out["recall"] is None:
        undefined["recall"] = "no positive image"
    out["f1"] = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else None
    if out["f1"] is None:
        undefined["f1"] = "no positive image and none predicted positive"
    out["auc"] = roc_auc_or_none(labels, probs) if auc else None
    if auc and out["auc"] is None:
        undefined["auc"] = f"only one class ({'metastasis' if positive.any() else 'no metastasis'}) present"
    if n == 0:
        undefined["accuracy"] = "no images"
    out["undefined"] = undefined
    return out
