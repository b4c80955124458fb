"""Every arch's evaluation, as the evaluate stage writes it: prediction tables, the fold ensembles' test
predictions, metrics/classification.json and segmentation.json, the test ROC/PR points and the masks of the
overlay figure's test images. One arch at a time, its tumour maps a block of images at a time."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from sklearn.metrics import precision_recall_curve, roc_curve

from crlm.archs import ARCHS

if TYPE_CHECKING:
    from crlm.params import Params
from crlm.data.dataset import ImageSet
from crlm.evaluation.overlay import overlay_rows
from crlm.evaluation.predictions import ensemble_file, fold_sources, manifest_rows, prediction_frame, write_ensemble
from crlm.evaluation.summary import classification_summary, segmentation_summary
from crlm.headline import candidate_keys
from crlm.models.folds import FoldModels


@dataclass(frozen=True)
class Curves:
    """An arch's test ROC and precision-recall points, and its test AUC (rounded, as in the metrics)."""

    fpr: np.ndarray
    tpr: np.ndarray
    recall: np.ndarray
    precision: np.ndarray
    auc: float


@dataclass
class Evaluation:
    classification: dict  # metrics/classification.json
    segmentation: dict  # metrics/segmentation.json
    frames: dict[str, pd.DataFrame] = field(default_factory=dict)  # arch -> data/predictions/<arch>.parquet
    reports: dict[str, dict] = field(default_factory=dict)  # arch -> scikit-learn classification report
    curves: dict[str, Curves] = field(default_factory=dict)  # archs whose test set has both classes
    # arch or "<arch>+crf" -> the masks of the overlay figure's test images (overlay_rows), in that order
    test_masks: dict[str, np.ndarray] = field(default_factory=dict)
    test: pd.DataFrame | None = None  # the test rows (every arch's ensemble predicts the same test images)
    # the overlay figure's test images: their positions in `test` and their rows in the image set
    overlay: tuple[np.ndarray, np.ndarray] = (np.zeros(0, int), np.zeros(0, int))


def test_curves(test: pd.DataFrame, auc: float) -> Curves | None:
    """ROC and precision-recall points of the test rows' probabilities; None where the test set has one class."""
    labels, probs = test["label"].to_numpy(), test["prob"].to_numpy()
    if len(np.unique(labels)) < 2:
        return None
    fpr, tpr, _ = roc_curve(labels, probs)
    precision, recall, _ = precision_recall_curve(labels, probs)
    return Curves(fpr, tpr, recall, precision, auc)


def evaluate_archs(
    params: Params, data: ImageSet, folds: list[str], model_dir: Path, predictions_dir: Path
) -> Evaluation:
    """Each arch of crlm.archs: its fold ensemble's test predictions written to predictions_dir
    (ensemble_file), and its prediction table from its fold models `folds` (crlm.data.splits.Splits's
    fold_names) under model_dir, summarised; the CRF-refined masks of an arch that asks for them
    (crf.enabled), as "<arch>+crf"; the candidate_* keys."""
    candidate = params.model.arch
    result = Evaluation({"candidate": candidate}, {"candidate": candidate})
    for arch, spec in ARCHS.items():
        refine = spec.crf and params.crf.enabled
        models = FoldModels.of(arch, folds, model_dir)
        path = ensemble_file(predictions_dir, arch)
        write_ensemble(path, models.streamed_test_ensemble())
        sources = fold_sources(models, ensemble=path)  # the test rows scored from the very file
        _, test_rows = manifest_rows(data, sources[-1].image_ids)
        result.overlay = overlay_rows(test_rows, data.manifest, params.evaluate.overlay_images)
        frame, masks = prediction_frame(
            arch, sources, data, params.evaluate.threshold, params.crf, refine, keep=result.overlay[0]
        )
        result.frames[arch] = frame
        summary = classification_summary(frame, params)
        result.reports[arch] = summary.pop("classification_report")
        result.classification[arch] = summary
        is_test = (frame["subset"] == "test").to_numpy()
        result.test = frame[is_test]
        if spec.segments:
            result.segmentation[arch] = segmentation_summary(frame, params)
            result.test_masks[arch] = masks["mask"]
            if refine:
                result.segmentation[spec.crf_name] = segmentation_summary(frame, params, suffix="_crf")
                result.test_masks[spec.crf_name] = masks["mask_crf"]
        curves = test_curves(result.test, summary["test"]["auc"]["value"])
        if curves is not None:
            result.curves[arch] = curves
    result.classification.update(candidate_keys("classification", result.classification, candidate))
    result.segmentation.update(candidate_keys("segmentation", result.segmentation, candidate))
    return result
