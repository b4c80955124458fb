"""evaluate: image-level recognition and segmentation metrics of every arch, CV and independent test.

Writes data/predictions/<arch>.parquet, the fold ensemble's test predictions
data/predictions/<arch>/test_ensemble.npz, metrics/classification.json,
metrics/segmentation.json and the plots under plots/evaluate/.
"""

from crlm.archs import CandidateConfig
from crlm.core.config import cli_params
from crlm.core.io import write_json, write_parquet
from crlm.core.logs import stage_logger, stage_main
from crlm.core.paths import METRICS, MODELS, PLOTS, PREDICTIONS, SPLITS
from crlm.data.config import SlicesConfig
from crlm.data.dataset import load_image_set
from crlm.data.splits import Splits
from crlm.evaluation.config import EvaluateConfig
from crlm.evaluation.run import evaluate_archs
from crlm.models.crf import CRFConfig
from crlm.plots import curves_plot, overlays, report_heatmap, write_points_csv
from crlm.stats.config import StatsConfig

OUT = PLOTS / "evaluate"
log = stage_logger(__file__)


@stage_main
def main() -> None:
    params = cli_params(__doc__, CandidateConfig, CRFConfig, EvaluateConfig, SlicesConfig, StatsConfig)
    data = load_image_set()
    result = evaluate_archs(params, data, Splits.read(SPLITS).fold_names, MODELS, PREDICTIONS)

    for arch, frame in result.frames.items():
        write_parquet(PREDICTIONS / f"{arch}.parquet", frame)
    write_json(METRICS / "classification.json", result.classification)
    write_json(METRICS / "segmentation.json", result.segmentation)
    for arch, c in result.curves.items():  # for `dvc plots show/diff`
        write_points_csv(OUT / f"roc_{arch}.csv", {"fpr": c.fpr, "tpr": c.tpr})
        write_points_csv(OUT / f"pr_{arch}.csv", {"recall": c.recall, "precision": c.precision})
    curves_plot(OUT / "roc.png", {a: (c.fpr, c.tpr, f"AUC {c.auc:.3f}") for a, c in result.curves.items()}, "roc")
    curves_plot(
        OUT / "pr.png", {a: (c.recall, c.precision, f"AUC {c.auc:.3f}") for a, c in result.curves.items()}, "pr"
    )
    report_heatmap(OUT / "classification_report.png", result.reports)
    chosen, rows = result.overlay
    overlays(
        OUT / "overlays.png",
        data.images_at(rows),
        data.tumour_at(rows).astype(bool),
        result.test_masks,
        result.test["image_id"].iloc[chosen].tolist(),
    )

    for arch in result.frames:
        test = result.classification[arch]["test"]
        called = {name: group["called_metastasis"] for name, group in test["groups"].items()}
        if arch not in result.curves:
            log.warning("%s: test set has one class; no ROC/PR curve", arch)
        log.info(
            f"{arch}: test AUC {test['auc']['value']}, accuracy {test['accuracy']['value']} "
            f"(prevalence {test['prevalence']}), called metastasis {called}"
            + (f", IoU {result.segmentation[arch]['test']['iou']['value']}" if arch in result.segmentation else "")
        )


if __name__ == "__main__":
    main()
