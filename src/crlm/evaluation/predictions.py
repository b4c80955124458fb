"""One arch's prediction table: what its fold models predicted, joined to the manifest, thresholded, and
scored for mask overlap (optionally after dense-CRF refinement).

Cross-validation rows come from each fold's model (its validation patients); test rows from the
ensemble of the k fold models (the mean of their probabilities and of their tumour maps, as nnU-Net
does). The table is data/predictions/<arch>.parquet; crlm.evaluation.summary summarises it.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from crlm.core.io import load_npz
from crlm.core.logs import progress
from crlm.data.dataset import ImageSet
from crlm.evaluation.segmentation import dice_per_image, iou_per_image
from crlm.models.crf import CRFConfig, crf_refine

ENSEMBLE = "ensemble"   # the fold column of the test rows
MANIFEST_COLUMNS = ["image_id", "patient_id", "label", "tumour_area_px"]


class PredictionSource(NamedTuple):
    """The predictions of one model (a fold's) or of the fold ensemble, for one subset of images."""
    subset: str                  # "cv" (a fold's validation patients) or "test"
    fold: str                    # the fold, or ENSEMBLE
    image_ids: np.ndarray
    prob: np.ndarray             # image probability of metastasis
    seg: np.ndarray | None       # tumour probability maps (N, H, W); None for an arch that does not segment


def load_predictions(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(image ids, probabilities, tumour maps or None) as a fold's training wrote them."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found; run `dvc repro` (the train stages write it)")
    saved = load_npz(path, f"train@{path.parent.parent.name}",   # <arch>/<fold>/predictions.npz
                     keys=("image_id", "prob"), optional=("seg_prob",))
    seg = saved["seg_prob"].astype(np.float32) if "seg_prob" in saved else None
    return saved["image_id"], saved["prob"].astype(np.float64), seg


def ensemble_predictions(paths: list[Path]) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """The mean probability and mean tumour map of several models' predictions of the same images."""
    loaded = [load_predictions(path) for path in paths]
    image_ids = loaded[0][0]
    for path, (ids, _, _) in zip(paths, loaded):
        if not np.array_equal(ids, image_ids):
            raise ValueError(f"{path}: predicts other images than {paths[0]}; retrain the arch's folds together")
    prob = np.mean([p for _, p, _ in loaded], axis=0)
    seg = None if loaded[0][2] is None else np.mean([s for _, _, s in loaded], axis=0)
    return image_ids, prob, seg


def fold_sources(model_dir: Path, arch: str, n_folds: int) -> list[PredictionSource]:
    """Each fold model's predictions of its validation patients, then the fold ensemble's of the test set."""
    folds = [str(k) for k in range(n_folds)]
    sources = [PredictionSource("cv", fold, *load_predictions(model_dir / arch / fold / "predictions.npz"))
               for fold in folds]
    test = ensemble_predictions([model_dir / arch / fold / "test_predictions.npz" for fold in folds])
    return [*sources, PredictionSource("test", ENSEMBLE, *test)]


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
    return np.stack([crf_refine(image, prob, cfg) for image, prob in progress(zip(images, seg), desc,
                                                                              total=len(seg), unit="image")])


def prediction_frame(arch: str, model_dir: Path, data: ImageSet, n_folds: int, cut: float, crf: CRFConfig,
                     refine: bool) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """One row per predicted image (cv rows from each fold's model, test rows from the fold ensemble):
    the manifest columns, subset, fold, prob, pred (prob >= cut) and, for an arch that segments, iou and dice
    of its mask (map >= cut), and with `refine` those after refinement by the CRF `crf` (iou_crf, dice_crf).
    Also the masks by row: "mask" and, with refine, "mask_crf"."""
    frames, masks, crf_masks = [], [], []
    for source in fold_sources(model_dir, arch, n_folds):
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
                refined = threshold(crf_refined(data.images[rows], source.seg, crf,
                                                desc=f"crf {arch} {source.subset} {source.fold}"), cut)
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
