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
from typing import NamedTuple

import numpy as np
import pandas as pd

from crlm.core.arrays import NpzStreamWriter, RowBlocks, npz_rows, npz_shape
from crlm.core.io import load_npz
from crlm.core.logs import progress
from crlm.data.dataset import ImageSet
from crlm.evaluation.segmentation import dice_per_image, iou_per_image
from crlm.models.crf import CRFConfig, crf_refine
from crlm.models.folds import FoldModels, Predictions, StreamedPredictions

ENSEMBLE = "ensemble"  # the fold column of the test rows
MANIFEST_COLUMNS = ["image_id", "patient_id", "label", "tumour_area_px"]
TEST_ENSEMBLE = "test_ensemble.npz"


class PredictionSource(NamedTuple):
    """The predictions of one model (a fold's) or of the fold ensemble, for one subset of images."""

    subset: str  # "cv" (a fold's validation patients) or "test"
    fold: str  # the fold, or ENSEMBLE
    image_ids: np.ndarray
    prob: np.ndarray  # image probability of metastasis
    seg: RowBlocks | None  # tumour probability maps (N, H, W), a block at a time; None for a classifier


def fold_sources(models: FoldModels, ensemble: Path | None = None) -> list[PredictionSource]:
    """Each fold model's predictions of its validation patients, then the fold ensemble's of the test set:
    as `ensemble` (the file write_ensemble wrote) holds them, else averaged from the fold files."""
    sources = [PredictionSource("cv", fold, *models.streamed_validation_predictions(fold)) for fold in models.folds]
    test = models.streamed_test_ensemble() if ensemble is None else read_ensemble_blocks(ensemble)
    return [*sources, PredictionSource("test", ENSEMBLE, *test)]


def ensemble_file(predictions_dir: Path, arch: str) -> Path:
    """data/predictions/<arch>/test_ensemble.npz: the fold ensemble's predictions of the test images."""
    return Path(predictions_dir) / arch / TEST_ENSEMBLE


def write_ensemble(path: Path, ensemble: Predictions | StreamedPredictions | PredictionSource) -> None:
    """The fold ensemble's test predictions, in the dtypes they were scored in (prob float64, seg_prob
    float32), losslessly; the maps a block of images at a time."""
    with NpzStreamWriter(path) as npz:
        npz.add("image_id", np.asarray(ensemble.image_ids).astype(str))
        npz.add("prob", ensemble.prob)
        if ensemble.seg is not None:
            seg = ensemble.seg if isinstance(ensemble.seg, RowBlocks) else RowBlocks.of(ensemble.seg)
            first = next(iter(seg))
            npz.add_rows("seg_prob", first.dtype, (len(seg), *first.shape[1:]), seg)


def read_ensemble(path: Path) -> Predictions:
    """What write_ensemble wrote (the evaluate stage)."""
    saved = load_npz(path, "evaluate", keys=("image_id", "prob"), optional=("seg_prob",))
    return Predictions(saved["image_id"], saved["prob"], saved.get("seg_prob"))


def read_ensemble_blocks(path: Path) -> StreamedPredictions:
    """read_ensemble with the maps read a block of images at a time."""
    saved = load_npz(path, "evaluate", keys=("image_id", "prob"))
    header = npz_shape(path, "evaluate", "seg_prob")
    seg = None if header is None else RowBlocks(header[0][0], lambda: npz_rows(path, "evaluate", "seg_prob"))
    return StreamedPredictions(saved["image_id"], saved["prob"], seg)


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
    arch: str,
    sources: list[PredictionSource],
    data: ImageSet,
    cut: float,
    crf: CRFConfig,
    refine: bool,
    keep: np.ndarray | None = None,
) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """One row per predicted image of `sources` (fold_sources: cv rows from each fold's model, test rows from
    the fold ensemble):
    the manifest columns, subset, fold, prob, pred (prob >= cut) and, for an arch that segments, iou and dice
    of its mask (map >= cut), and with `refine` those after refinement by the CRF `crf` (iou_crf, dice_crf).
    Also the test images' masks at the positions `keep` of the test source (all of them when None), in that
    order: "mask" and, with refine, "mask_crf". The maps are scored a block of images at a time."""
    frames, masks = [], {}
    for source in sources:
        rows, frame = manifest_rows(data, source.image_ids)
        frame["subset"] = source.subset
        frame["fold"] = source.fold
        frame["prob"] = source.prob
        frame["pred"] = threshold(source.prob, cut).astype(int)
        if source.seg is not None:
            wanted = (np.arange(len(rows)) if keep is None else np.asarray(keep)) if source.subset == "test" else None
            columns, kept = _scored_maps(source, rows, data, cut, crf if refine else None, wanted, arch)
            frame = frame.assign(**columns)
            masks.update(kept)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True), masks


def _scored_maps(
    source: PredictionSource,
    rows: np.ndarray,
    data: ImageSet,
    cut: float,
    crf: CRFConfig | None,
    wanted: np.ndarray | None,
    arch: str,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """prediction_frame's overlap columns of one source, and its masks at the positions `wanted`."""
    assert source.seg is not None
    parts: dict[str, list[np.ndarray]] = {}
    kept: dict[str, dict[int, np.ndarray]] = {"mask": {}, "mask_crf": {}}
    start = 0
    desc = f"crf {arch} {source.subset} {source.fold}"
    for seg in progress(source.seg, desc if crf else f"{arch} {source.subset} {source.fold}", unit="block"):
        block = rows[start : start + len(seg)]
        truth = data.tumour_at(block).astype(bool)
        named = {"mask": threshold(seg, cut)}
        if crf is not None:
            named["mask_crf"] = threshold(
                np.stack([crf_refine(image, prob, crf) for image, prob in zip(data.images_at(block), seg)]), cut
            )
        for name, mask in named.items():
            for key, values in overlap_columns(mask, truth, "_crf" if name == "mask_crf" else "").items():
                parts.setdefault(key, []).append(values)
            if wanted is not None:
                for position in wanted[(wanted >= start) & (wanted < start + len(seg))]:
                    kept[name][int(position)] = mask[position - start]
        start += len(seg)
    if start != len(rows):
        raise ValueError(f"{arch} {source.subset} {source.fold}: {start} tumour maps for {len(rows)} images")
    columns = {key: np.concatenate(values) for key, values in parts.items()}
    size = data.image_shape
    masks = {
        name: np.stack([by_position[int(p)] for p in wanted]) if len(wanted) else np.zeros((0, *size), bool)
        for name, by_position in kept.items()
        if wanted is not None and (name == "mask" or crf is not None)
    }
    return columns, masks
