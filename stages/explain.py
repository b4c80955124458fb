"""explain: class activation maps (Grad-CAM, captum) of every arch's image-level metastasis logit on the
test set, from the fold models, how much of each map falls on the true tumour beside the chance levels
and a centre prior, and whether the maps change when the models' weights are re-initialised.

Writes metrics/cam.json and plots/evaluate/cam.png (the images of plots/evaluate/overlays.png).
"""

from crlm.core.config import cli_params
from crlm.core.io import write_json
from crlm.core.logs import stage_logger, stage_main
from crlm.core.paths import METRICS, MODELS, PLOTS, SPLITS
from crlm.data.dataset import load_image_set, load_liver
from crlm.data.splits import Splits
from crlm.evaluation.config import OverlayConfig
from crlm.explain.config import ExplainConfig
from crlm.explain.figure import cam_figure
from crlm.explain.run import explain_archs
from crlm.stats.config import StatsConfig

log = stage_logger(__file__)


@stage_main
def main() -> None:
    params = cli_params(__doc__, OverlayConfig, ExplainConfig, StatsConfig)
    data = load_image_set()
    liver = load_liver()
    splits = Splits.read(SPLITS)
    result = explain_archs(params, data, liver, list(splits.test), splits.fold_names, MODELS)
    write_json(METRICS / "cam.json", result.metrics)
    rows = result.rows
    cam_figure(
        PLOTS / "evaluate" / "cam.png",
        data.images_at(rows),
        data.tumour_at(rows).astype(bool),
        result.cams,
        result.shares,
        data.manifest["image_id"].iloc[rows].tolist(),
    )
    chance, centre = result.metrics["chance"], result.metrics["centre_prior"]
    log.info(
        f"{result.metrics['images']} metastasis test slices; mass share / pointing hit rate of a map "
        f"uniform over the image {chance['whole_image']['mass_share']} / "
        f"{chance['whole_image']['pointing_hit_rate']}, over the liver {chance['liver']['mass_share']} / "
        f"{chance['liver']['pointing_hit_rate']} ({chance['liver']['empty_liver_masks']} empty liver "
        f"masks), of the centre prior {centre['mass_share']['value']} / {centre['pointing_hit_rate']['value']}"
    )
    for arch in result.cams:
        m = result.metrics[arch]
        log.info(
            f"{arch} ({m['layer']}, {m['layer_grid'][0]}x{m['layer_grid'][1]}): mass share "
            f"{m['mass_share']['value']} (minus liver chance {m['mass_share_minus_liver_chance']['value']}), "
            f"pointing hit rate {m['pointing_hit_rate']['value']}, empty maps {m['empty_maps']}, "
            f"trained vs randomised maps: mean Spearman {m['randomisation']['spearman_mean']}"
        )


if __name__ == "__main__":
    main()
