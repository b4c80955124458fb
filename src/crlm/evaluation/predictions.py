"""One arch's prediction table: what its fold models predicted, joined to the manifest, thresholded, and
scored for mask overlap (optionally after dense-CRF refinement).

Cross-validation rows come from each fold's model (its validation patients); test rows from the
ensemble of the k fold models (the mean of their probabilities and of their tumour maps, as nnU-Net
does: crlm.models.folds). The table is data/predictions/<arch>.parquet; crlm.evaluation.summary summarises it.
The ensemble's test predictions themselves are data/predictions/<arch>/test_ensemble.npz (write_ensemble):
image_id (str), prob (float64) and, for an arch that segments, seg_prob (float32), the very arrays the table's
test rows were scored from, for the stages after evaluate (lesions) to read rather than average the folds again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from crlm.core.io import load_npz
from crlm.core.logs import progress
from crlm.data.dataset import ImageSet
from crlm.evaluation.segmentation import dice_per_image, iou_per_image
from crlm.models.crf import CRFConfig, crf_refine
from crlm.models.folds import FoldModels, Predictions

ENSEMBLE = "ensemble"  # the fold column of the test rows
MANIFEST_COLUMNS = ["image_id", "patient_id", "label", "tumour_area_px"]
TEST_ENSEMBLE = "test_ensemble.npz"


class PredictionSource(NamedTuple):
    """The predictions of one model (a fold's) or of the fold ensemble, for one subset of images."""

    subset: str  # "cv" (a fold's validation patients) or "test"
    fold: str  # the fold, or ENSEMBLE
    image_ids: np.ndarray
    prob: np.ndarray  # image probability of metastasis
    seg: np.ndarray | None  # tumour probability maps (N, H, W); None for an arch that does not segment


def fold_sources(models: FoldModels) -> list[PredictionSource]:
    """Each fold model's predictions of its validation patients, then the fold ensemble's of the test set."""
    sources = [PredictionSource("cv", fold, *models.validation_predictions(fold)) for fold in models.folds]
    return [*sources, PredictionSource("test", ENSEMBLE, *models.test_ensemble())]


def ensemble_file(predictions_dir: Path, arch: str) -> Path:
    """data/predictions/<arch>/test_ensemble.npz: the fold ensemble's predictions of the test images."""
    return Path(predictions_dir) / arch / TEST_ENSEMBLE


def write_ensemble(path: Path, ensemble: Predictions | PredictionSource) -> None:
    """The fold ensemble's test predictions, in the dtypes they were scored in (prob float64, seg_prob
    float32), losslessly."""
    arrays: dict[str, Any] = {"image_id": np.asarray(ensemble.image_ids).astype(str), "prob": ensemble.prob}
    if ensemble.seg is not None:
        arrays["seg_prob"] = ensemble.seg
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)


def read_ensemble(path: Path) -> Predictions:
    """What write_ensemble wrote (the evaluate stage)."""
    saved = load_npz(path, "evaluate", keys=("image_id", "prob"), optional=("seg_prob",))
    return Predictions(saved["image_id"], saved["prob"], saved.get("seg_prob"))


def manifest_rows(data: ImageSet, image_ids: np.ndarray) -> tuple[np.ndarray, pd.DataFrame]:
    """The rows of `data` holding `image_ids` (in that order), and their manifest columns MANIFEST_COLUMNS."""
    index_of = pd.Series(np.arange(len(data.manifest)), index=data.manifest["image_id"])
    rows = index_of.loc[image_ids].to_numpy()
    return rows, data.manifest.iloc[rows][MANIFEST_COLUMNS].copy()


def threshold(values: np.ndarray, cut: float) -> np.ndarray:
    """True where a probability (or a probability map's pixel) is at least `cut`: metastasis, tumour."""
    return values >= cut


def overlap_columns(mask: np.ndarray, truth: np.ndarray, suffix: str = "") -> dict[str, np.ndarray]:
    """Per-image IoU and Dice of predicted against true masks, as columns iou<suffix>, dice<suffix>."""
    return {f"iou{suffix}": iou_per_image(mask, truth), f"dice{suffix}": dice_per_image(mask, truth)}


def crf_refined(images: np.ndarray, seg: np.ndarray, cfg: CRFConfig, desc: str = "crf") -> np.ndarray:
    """Each tumour map refined by the dense CRF on its image (crlm.models.crf), with a progress bar."""
    return np.stack(
        [crf_refine(image, prob, cfg) for image, prob in progress(zip(images, seg), desc, total=len(seg), unit="image")]
    )


def prediction_frame(
    arch: str, sources: list[PredictionSource], data: ImageSet, cut: float, crf: CRFConfig, refine: bool
) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """One row per predicted image of `sources` (fold_sources: cv rows from each fold's model, test rows from
    the fold ensemble):
    the manifest columns, subset, fold, prob, pred (prob >= cut) and, for an arch that segments, iou and dice
    of its mask (map >= cut), and with `refine` those after refinement by the CRF `crf` (iou_crf, dice_crf).
    Also the masks by row: "mask" and, with refine, "mask_crf"."""
    frames, masks, crf_masks = [], [], []
    for source in sources:
        rows, frame = manifest_rows(data, source.image_ids)
        frame["subset"] = source.subset
        frame["fold"] = source.fold
        frame["prob"] = source.prob
        frame["pred"] = threshold(source.prob, cut).astype(int)
        if source.seg is not None:
            truth = data.tumour[rows].astype(bool)
            mask = threshold(source.seg, cut)
            frame = frame.assign(**overlap_columns(mask, truth))
            masks.append(mask)
            if refine:
                refined = threshold(
                    crf_refined(data.images[rows], source.seg, crf, desc=f"crf {arch} {source.subset} {source.fold}"),
                    cut,
                )
                frame = frame.assign(**overlap_columns(refined, truth, suffix="_crf"))
                crf_masks.append(refined)
        frames.append(frame)
    table = pd.concat(frames, ignore_index=True)
    out = {}
    if masks:
        out["mask"] = np.concatenate(masks)
    if crf_masks:
        out["mask_crf"] = np.concatenate(crf_masks)
    return table, out
