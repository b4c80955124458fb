"""Per-arch prediction tables and the summaries written to metrics/.

Cross-validation: each fold's model predicts its validation patients; the
metrics are computed per fold and summarised as mean and SD over folds.
Independent test: the ensemble of the k fold models (the mean of their
probabilities and of their tumour maps, as nnU-Net does) predicts the test
set; each metric gets a patient-level bootstrap CI.

Both are scored on every image of their patients, at the natural prevalence
(only the training images are sampled). The label is the slices stage's
(tumour area >= slices.min_tumor_px), so an ambiguous slice (a smaller tumour)
counts as non-metastasis in the metrics; `groups` reports the test images of
each kind on their own: metastasis, ambiguous and tumour-free.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import classification_report

from crlm.config import Params
from crlm.data.dataset import ImageSet
from crlm.data.labels import is_ambiguous
from crlm.evaluation.bootstrap import patient_bootstrap
from crlm.evaluation.classification import METRICS, classification_metrics
from crlm.evaluation.segmentation import dice_per_image, iou_per_image
from crlm.models.crf import crf_refine

SEG_METRICS = ("iou", "dice")
GROUPS = ("metastasis", "ambiguous", "tumour_free")


ENSEMBLE = "ensemble"   # the fold column of the test rows


def load_predictions(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(image ids, probabilities, tumour maps or None) as a fold's training wrote them."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found; run `dvc repro` (the train stages write it)")
    with np.load(path) as saved:
        seg = saved["seg_prob"].astype(np.float32) if "seg_prob" in saved.files else None
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


def prediction_frame(arch: str, model_dir: Path, data: ImageSet, n_folds: int, params: Params,
                     crf: bool) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """One row per predicted image (cv rows from each fold's model, test rows from the fold ensemble),
    and the thresholded tumour masks by row (keys "mask" and, with crf, "mask_crf")."""
    folds = [str(k) for k in range(n_folds)]
    sources = [("cv", fold, *load_predictions(model_dir / arch / fold / "predictions.npz")) for fold in folds]
    sources.append(("test", ENSEMBLE,
                    *ensemble_predictions([model_dir / arch / fold / "test_predictions.npz" for fold in folds])))
    frames, masks, crf_masks = [], [], []
    threshold = params.evaluate.threshold
    index_of = pd.Series(np.arange(len(data.manifest)), index=data.manifest["image_id"])
    for subset, fold, image_ids, prob, seg in sources:
        rows = index_of.loc[image_ids].to_numpy()
        frame = data.manifest.iloc[rows][["image_id", "patient_id", "label", "tumour_area_px"]].copy()
        frame["subset"] = subset
        frame["fold"] = fold
        frame["prob"] = prob
        frame["pred"] = (prob >= threshold).astype(int)
        if seg is not None:
            truth = data.tumour[rows].astype(bool)
            mask = seg >= threshold
            frame["iou"] = iou_per_image(mask, truth)
            frame["dice"] = dice_per_image(mask, truth)
            masks.append(mask)
            if crf:
                refined = np.stack([crf_refine(data.images[r], s, params.crf) for r, s in zip(rows, seg)])
                refined_mask = refined >= threshold
                frame["iou_crf"] = iou_per_image(refined_mask, truth)
                frame["dice_crf"] = dice_per_image(refined_mask, truth)
                crf_masks.append(refined_mask)
        frames.append(frame)
    table = pd.concat(frames, ignore_index=True)
    out = {}
    if masks:
        out["mask"] = np.concatenate(masks)
    if crf_masks:
        out["mask_crf"] = np.concatenate(crf_masks)
    return table, out


def _rounded(value):
    return None if value is None else round(float(value), 4)


def classification_summary(frame: pd.DataFrame, params: Params) -> dict:
    threshold = params.evaluate.threshold
    cv = frame[frame["subset"] == "cv"]
    per_fold = {fold: classification_metrics(rows["label"].to_numpy(), rows["prob"].to_numpy(), threshold)
                for fold, rows in cv.groupby("fold", sort=True)}
    cv_summary = {}
    for metric in METRICS:
        values = [m[metric] for m in per_fold.values() if m[metric] is not None]
        cv_summary[metric] = {"mean": _rounded(np.mean(values)) if values else None,
                              "sd": _rounded(np.std(values, ddof=1)) if len(values) > 1 else None,
                              "folds": len(values)}
    test = frame[frame["subset"] == "test"]
    labels, probs = test["label"].to_numpy(), test["prob"].to_numpy()
    point = classification_metrics(labels, probs, threshold)
    test_summary = {"images": int(len(test)), "patients": int(test["patient_id"].nunique()),
                    "prevalence": _rounded(labels.mean()) if len(test) else None}
    for metric in METRICS:
        ci = patient_bootstrap(lambda idx, m=metric: classification_metrics(labels[idx], probs[idx], threshold,
                                                                            auc=m == "auc")[m],
                               test["patient_id"].to_numpy(), params.stats.n_boot, params.stats.seed,
                               params.stats.ci_level)
        test_summary[metric] = {k: (_rounded(v) if isinstance(v, float) else v) for k, v in ci.as_dict().items()}
    if point["undefined"]:
        test_summary["undefined"] = point["undefined"]
    test_summary["groups"] = image_groups(test, threshold)
    report = classification_report(labels, test["pred"].to_numpy(), labels=[0, 1],
                                   target_names=["no metastasis", "metastasis"], output_dict=True,
                                   zero_division=0)
    return {"cv": cv_summary, "test": test_summary, "classification_report": _round_tree(report)}


def image_groups(frame: pd.DataFrame, threshold: float) -> dict:
    """For the metastasis, ambiguous and tumour-free images of `frame`: how many (images, patients), their
    mean probability and the fraction called metastasis (prob >= threshold): the sensitivity, how often a
    lesion below slices.min_tumor_px is flagged, and the false-positive rate."""
    ambiguous = is_ambiguous(frame)
    members = {"metastasis": frame["label"] == 1, "ambiguous": ambiguous,
               "tumour_free": (frame["label"] == 0) & ~ambiguous}
    out = {}
    for name in GROUPS:
        rows = frame[members[name]]
        prob = rows["prob"].to_numpy()
        out[name] = {"images": int(len(rows)), "patients": int(rows["patient_id"].nunique()),
                     "mean_prob": _rounded(prob.mean()) if len(rows) else None,
                     "called_metastasis": _rounded((prob >= threshold).mean()) if len(rows) else None}
    return out


def segmentation_summary(frame: pd.DataFrame, params: Params, suffix: str = "") -> dict:
    """Mean IoU/Dice over images that contain tumour; the share of tumour-free images left clean."""
    out = {}
    for subset in ("cv", "test"):
        rows = frame[frame["subset"] == subset]
        tumour = rows[rows["tumour_area_px"] > 0]
        clean = rows[rows["tumour_area_px"] == 0]
        entry: dict = {"tumour_images": int(len(tumour)),
                       "tumour_free_images_predicted_clean": _rounded(clean[f"iou{suffix}"].mean())
                       if len(clean) else None}
        for metric in SEG_METRICS:
            values = tumour[f"{metric}{suffix}"].to_numpy()
            if subset == "cv":
                by_fold = tumour.groupby("fold")[f"{metric}{suffix}"].mean()
                entry[metric] = {"mean": _rounded(values.mean()) if len(values) else None,
                                 "fold_sd": _rounded(by_fold.std(ddof=1)) if len(by_fold) > 1 else None}
            else:
                ci = patient_bootstrap(lambda idx, v=values: float(v[idx].mean()) if len(idx) else None,
                                       tumour["patient_id"].to_numpy(), params.stats.n_boot, params.stats.seed,
                                       params.stats.ci_level)
                entry[metric] = {k: (_rounded(v) if isinstance(v, float) else v) for k, v in ci.as_dict().items()}
        out[subset] = entry
    return out


def _round_tree(tree):
    if isinstance(tree, dict):
        return {k: _round_tree(v) for k, v in tree.items()}
    return _rounded(tree) if isinstance(tree, float) else tree
