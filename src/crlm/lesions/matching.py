"""Connected components of predicted and true tumour masks, matched by overlap.

Components are scipy.ndimage.label's with full connectivity: 8-connectivity in a 2-D slice (pixels that
touch at a corner are one lesion, as one would outline it), 26-connectivity in a 3-D stack of slices.

A true lesion T is *detected* when the predicted components that overlap it (P_T, taken together) reach
IoU(T, P_T) >= min_iou; min_iou = 0 means any overlap (one shared pixel). A predicted component that
takes part in no detection is a *false positive*: one on no true lesion, or (min_iou > 0) one that only
touches a lesion it does not localise, which is then both a miss and a false positive. So two predicted
pieces on one detected lesion detect it once and are no false positive, and one predicted component
across two lesions detects both. A detected lesion's Dice is Dice(T, P_T): how well the predicted pieces
on it delineate it; a missed lesion's is 0. False positives elsewhere in the slice do not lower it (they
are counted as false positives instead).

Sensitivity = detected / true lesions; false positives per patient = false positives / patients (every
test patient, with or without lesions), as seed 002 reports them. Pure functions over numpy arrays.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import ndimage


@dataclass(frozen=True)
class LesionMatch:
    """The true lesions of one mask (in scipy.ndimage.label's order) and the predicted components."""

    area_px: np.ndarray  # pixels (voxels) of each true lesion
    detected: np.ndarray  # bool, each true lesion
    dice: np.ndarray  # each true lesion against the predicted components on it; 0 when missed
    false_positives: int  # predicted components that take part in no detection
    predicted: int  # predicted components


def components(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """Connected components of a 2-D or 3-D mask with full connectivity (8 in 2-D, 26 in 3-D)."""
    mask = np.asarray(mask, dtype=bool)
    return ndimage.label(mask, structure=ndimage.generate_binary_structure(mask.ndim, mask.ndim))


def match_lesions(predicted: np.ndarray, truth: np.ndarray, min_iou: float = 0.0) -> LesionMatch:
    """Match the components of a predicted mask to those of the true mask (see the module docstring)."""
    if np.shape(predicted) != np.shape(truth):
        raise ValueError(f"predicted mask {np.shape(predicted)} and true mask {np.shape(truth)} differ in shape")
    return match_components(components(predicted), components(truth), min_iou)


def match_components(
    predicted: tuple[np.ndarray, int], truth: tuple[np.ndarray, int], min_iou: float = 0.0
) -> LesionMatch:
    """match_lesions from the masks' components (components() of each: labels and their number)."""
    (pred_labels, n_pred), (true_labels, n_true) = predicted, truth
    # pairs[t, p]: pixels in true lesion t and predicted component p (0 = background), counted over the
    # pixels in either (pairs[0, 0], the background of both, is never read)
    either = (true_labels > 0) | (pred_labels > 0)
    pairs = np.bincount(
        true_labels[either] * (n_pred + 1) + pred_labels[either], minlength=(n_true + 1) * (n_pred + 1)
    ).reshape(n_true + 1, n_pred + 1)
    true_area = pairs[1:, :].sum(axis=1)
    pred_area = pairs[:, 1:].sum(axis=0)
    touching = pairs[1:, 1:] > 0  # (true lesion, predicted component) overlap
    inter = pairs[1:, 1:].sum(axis=1)  # the lesion's pixels inside any prediction
    pred_on = (touching * pred_area).sum(axis=1)  # pixels of the predicted components on it
    union = true_area + pred_on - inter
    iou = np.divide(inter, union, out=np.zeros(n_true), where=union > 0)
    detected = (inter > 0) & (iou >= min_iou)
    dice = np.divide(2 * inter, true_area + pred_on, out=np.zeros(n_true), where=detected)
    false_positives = int(n_pred - touching[detected].any(axis=0).sum())
    return LesionMatch(true_area, detected, dice, false_positives, n_pred)


Criterion = tuple[float, float]  # (probability cut, min_iou): the mask prob >= cut, matched at min_iou


def match_criteria(prob: np.ndarray, truth: np.ndarray, criteria: Iterable[Criterion]) -> dict[Criterion, LesionMatch]:
    """match_lesions(prob >= cut, truth, min_iou) for each (cut, min_iou) of `criteria`, the true mask's
    components found once and each cut's mask's once (one cut's labels in memory at a time)."""
    if np.shape(prob) != np.shape(truth):
        raise ValueError(f"predicted map {np.shape(prob)} and true mask {np.shape(truth)} differ in shape")
    true = components(truth)
    by_cut: dict[float, list[float]] = {}
    for cut, min_iou in criteria:
        by_cut.setdefault(cut, []).append(min_iou)
    out = {}
    for cut, ious in by_cut.items():
        predicted = components(prob >= cut)
        for min_iou in ious:
            out[(cut, min_iou)] = match_components(predicted, true, min_iou)
    return out


@dataclass(frozen=True)
class Detection:
    """Every true lesion of a set of masks (one row each) and the false positives of each patient."""

    lesions: pd.DataFrame  # unit (index of the mask), patient_id, area_px, detected, dice
    fp_by_patient: pd.Series  # false positives per patient, every patient (0 where none)

    @property
    def sensitivity(self) -> float | None:
        return float(self.lesions["detected"].mean()) if len(self.lesions) else None

    @property
    def fp_per_patient(self) -> float | None:
        return float(self.fp_by_patient.mean()) if len(self.fp_by_patient) else None


class DetectionTally:
    """A Detection built one unit (a slice, a patient's volume) at a time: detect's, unit for unit."""

    def __init__(self) -> None:
        self._rows: list[tuple[int, str, int, bool, float]] = []
        self._fp: dict[str, int] = {}

    def add(self, unit: int, patient: str, match: LesionMatch) -> None:
        """The unit's true lesions and false positives (match: match_lesions of its masks), of `patient`."""
        self._fp[patient] = self._fp.get(patient, 0) + match.false_positives
        self._rows += [
            (unit, patient, int(a), bool(d), float(s)) for a, d, s in zip(match.area_px, match.detected, match.dice)
        ]

    def detection(self) -> Detection:
        """Every unit added so far, in the order added."""
        lesions = pd.DataFrame(self._rows, columns=["unit", "patient_id", "area_px", "detected", "dice"])
        return Detection(
            lesions.astype({"unit": int, "area_px": int, "detected": bool, "dice": float}),
            pd.Series(self._fp, dtype=int).sort_index(),
        )


def detect(
    predicted: Iterable[np.ndarray], truth: Iterable[np.ndarray], patients: Iterable[str], min_iou: float = 0.0
) -> Detection:
    """match_lesions on each (predicted, true) pair of masks (a slice or a patient's volume: a unit), with
    the unit's patient. Every patient listed counts in the false positives per patient."""
    tally = DetectionTally()
    for unit, (pred, true, patient) in enumerate(zip(predicted, truth, list(patients), strict=True)):
        tally.add(unit, patient, match_lesions(pred, true, min_iou))
    return tally.detection()


def froc_frame(found: Iterable[tuple[float, Detection]]) -> pd.DataFrame:
    """The FROC points of the detections at each probability cut ((cut, detection) pairs, ascending cuts):
    one row per cut: threshold, sensitivity, fp_per_patient."""
    rows = [(float(cut), at.sensitivity, at.fp_per_patient) for cut, at in found]
    return pd.DataFrame(rows, columns=["threshold", "sensitivity", "fp_per_patient"])


def froc(
    prob_maps: Sequence[np.ndarray] | np.ndarray,
    truth: Sequence[np.ndarray] | np.ndarray,
    patients: list[str],
    cuts: Iterable[float],
    min_iou: float = 0.0,
) -> pd.DataFrame:
    """The FROC points: for each probability cut, the lesion sensitivity and the mean false positives per
    patient of the masks prob_map >= cut. One row per cut: threshold, sensitivity, fp_per_patient."""
    return froc_frame((cut, detect((p >= cut for p in prob_maps), truth, patients, min_iou)) for cut in cuts)
