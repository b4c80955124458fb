"""Per-image overlap of predicted and true tumour masks: IoU (the paper's "matching rate") and Dice.

Convention for empty masks: both empty -> 1.0 (perfect agreement); the truth
empty but a prediction made -> 0.0. Summaries average over the images that
contain tumour, where the overlap measures delineation; the tumour-free
images are summarised separately by how many are predicted clean.
"""

from __future__ import annotations

import numpy as np


def _check(pred: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred, truth = np.asarray(pred, bool), np.asarray(truth, bool)
    if pred.shape != truth.shape:
        raise ValueError(f"predicted mask {pred.shape} and true mask {truth.shape} differ in shape")
    return pred.reshape(pred.shape[0], -1), truth.reshape(truth.shape[0], -1)


def iou_per_image(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """(N, H, W) boolean masks -> (N,) IoU."""
    pred, truth = _check(pred, truth)
    inter = (pred & truth).sum(1)
    union = (pred | truth).sum(1)
    return np.where(union > 0, inter / np.maximum(union, 1), 1.0)


def dice_per_image(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    pred, truth = _check(pred, truth)
    inter = (pred & truth).sum(1)
    total = pred.sum(1) + truth.sum(1)
    return np.where(total > 0, 2 * inter / np.maximum(total, 1), 1.0)
