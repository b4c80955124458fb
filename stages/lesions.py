"""lesions: lesion-level detection (sensitivity, false positives per patient, FROC) and lesion-size bands
(sensitivity, Dice, slice-level AUC) of every segmenting arch's fold ensemble on the independent test set
(the ensemble's test predictions as the evaluate stage wrote them, data/predictions/<arch>/test_ensemble.npz).

Writes metrics/lesions.json, plots/lesions/froc.png and, per segmenting arch, plots/lesions/froc_<arch>.csv.
"""

from crlm.core.config import cli_params
from crlm.core.io import read_parquet, write_json
from crlm.core.logs import stage_logger, stage_main
from crlm.core.paths import METRICS, PLOTS, PREDICTIONS, SLICES, SLICES_DIR
from crlm.data.dataset import load_image_set
from crlm.evaluation.config import ThresholdConfig
from crlm.lesions.config import LesionsConfig
from crlm.lesions.figure import froc_csv, froc_plot
from crlm.lesions.run import lesion_metrics
from crlm.stats.config import StatsConfig

OUT = PLOTS / "lesions"
log = stage_logger(__file__)


@stage_main
def main() -> None:
    params = cli_params(__doc__, ThresholdConfig, StatsConfig, LesionsConfig)
    data = load_image_set()
    result = lesion_metrics(params, data, read_parquet(SLICES), SLICES_DIR, PREDICTIONS)

    write_json(METRICS / "lesions.json", result.metrics)
    for arch in result.froc:
        froc_csv(OUT / f"froc_{arch}.csv", result.froc[arch], result.froc_3d[arch])
    froc_plot(OUT / "froc.png", result.froc, result.froc_3d, params.evaluate.threshold)
    for arch in result.froc:
        m = result.metrics[arch]
        bands = ", ".join(f"{name}: {b['detected']}/{b['lesions']}" for name, b in m["size_bands"].items())
        log.info(
            f"{arch}: per-slice sensitivity {m['per_slice']['sensitivity']['value']} "
            f"({m['per_slice']['detected']}/{m['per_slice']['lesions']}), "
            f"FP/patient {m['per_slice']['fp_per_patient']['value']}; 3-D sensitivity "
            f"{m['per_patient_3d']['sensitivity']['value']}, FP/patient "
            f"{m['per_patient_3d']['fp_per_patient']['value']}; detected by size band {bands}"
        )


if __name__ == "__main__":
    main()
