"""evaluate: image-level recognition and segmentation metrics of every arch, CV and independent test.

Writes data/predictions/<arch>.parquet, metrics/classification.json,
metrics/segmentation.json and the plots under plots/evaluate/.
"""

import numpy as np
import pandas as pd
from sklearn.metrics import precision_recall_curve, roc_curve

from crlm.config import cli_params
from crlm.data.dataset import load_image_set
from crlm.evaluation.summary import classification_summary, prediction_frame, segmentation_summary
from crlm.io import read_json, write_json, write_parquet
from crlm.models.registry import ARCHS, CRF_REFINED, SEGMENTING
from crlm.paths import METRICS, MODELS, PLOTS, PREDICTIONS, PROCESSED_ARRAYS, PROCESSED_MANIFEST, SPLITS
from crlm.plots import curves_plot, overlays, report_heatmap

OUT = PLOTS / "evaluate"


def main() -> None:
    params = cli_params(__doc__)
    data = load_image_set(PROCESSED_ARRAYS, PROCESSED_MANIFEST)
    n_folds = len(read_json(SPLITS)["folds"])
    classification = {"candidate": params.model.arch}
    segmentation = {"candidate": params.model.arch}
    roc, pr, reports, test_masks = {}, {}, {}, {}
    test_rows = None
    for arch in ARCHS:
        use_crf = arch in CRF_REFINED and params.crf.enabled
        frame, masks = prediction_frame(arch, MODELS, data, n_folds, params, crf=use_crf)
        write_parquet(PREDICTIONS / f"{arch}.parquet", frame)
        classification[arch] = classification_summary(frame, params)
        reports[arch] = classification[arch].pop("classification_report")
        test = frame[frame["subset"] == "test"]
        test_rows = test
        if arch in SEGMENTING:
            segmentation[arch] = segmentation_summary(frame, params)
            is_test = (frame["subset"] == "test").to_numpy()
            test_masks[arch] = masks["mask"][is_test]
            if use_crf:
                segmentation[f"{arch}+crf"] = segmentation_summary(frame, params, suffix="_crf")
                test_masks[f"{arch}+crf"] = masks["mask_crf"][is_test]
        _curves(arch, test, classification[arch]["test"]["auc"]["value"], roc, pr)

    candidate = params.model.arch
    classification["candidate_test_auc"] = classification[candidate]["test"]["auc"]["value"]
    if candidate in segmentation:
        segmentation["candidate_test_iou"] = segmentation[candidate]["test"]["iou"]["value"]
    write_json(METRICS / "classification.json", classification)
    write_json(METRICS / "segmentation.json", segmentation)
    curves_plot(OUT / "roc.png", roc, "roc")
    curves_plot(OUT / "pr.png", pr, "pr")
    report_heatmap(OUT / "classification_report.png", reports)
    _overlays(data, test_rows, test_masks, params.evaluate.overlay_images)
    for arch in ARCHS:
        test = classification[arch]["test"]
        called = {name: group["called_metastasis"] for name, group in test["groups"].items()}
        print(f"evaluate {arch}: test AUC {test['auc']['value']}, accuracy {test['accuracy']['value']} "
              f"(prevalence {test['prevalence']}), called metastasis {called}"
              + (f", IoU {segmentation[arch]['test']['iou']['value']}" if arch in segmentation else ""))


def _curves(arch: str, test: pd.DataFrame, auc, roc: dict, pr: dict) -> None:
    """ROC and PR points for the PNGs and as CSV for `dvc plots show/diff`."""
    labels, probs = test["label"].to_numpy(), test["prob"].to_numpy()
    if len(np.unique(labels)) < 2:
        print(f"evaluate {arch}: test set has one class; no ROC/PR curve")
        return
    fpr, tpr, _ = roc_curve(labels, probs)
    precision, recall, _ = precision_recall_curve(labels, probs)
    roc[arch] = (fpr, tpr, f"AUC {auc:.3f}")
    pr[arch] = (recall, precision, f"AUC {auc:.3f}")
    OUT.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"fpr": fpr.round(6), "tpr": tpr.round(6)}).to_csv(OUT / f"roc_{arch}.csv", index=False)
    pd.DataFrame({"recall": recall.round(6), "precision": precision.round(6)}).to_csv(
        OUT / f"pr_{arch}.csv", index=False)


def _overlays(data, test: pd.DataFrame, masks: dict, n: int) -> None:
    """The n test images with the largest tumours, one per patient."""
    order = test.reset_index(drop=True).sort_values(["tumour_area_px", "image_id"], ascending=[False, True])
    chosen = order.drop_duplicates("patient_id").index[:n].to_numpy()
    index_of = dict(zip(data.manifest["image_id"], range(len(data.manifest))))
    rows = np.array([index_of[i] for i in test["image_id"].iloc[chosen]])
    overlays(OUT / "overlays.png", data.images[rows], data.tumour[rows].astype(bool),
             {arch: m[chosen] for arch, m in masks.items()}, test["image_id"].iloc[chosen].tolist())


if __name__ == "__main__":
    main()
