"""explain: class activation maps (Grad-CAM, captum) of every arch's image-level metastasis logit on the
test set, from the fold models, and how much of each map falls on the true tumour.

Writes metrics/cam.json and plots/evaluate/cam.png (the images of plots/evaluate/overlays.png).
"""

from crlm.config import cli_params
from crlm.data.dataset import load_image_set
from crlm.explain.figure import cam_figure
from crlm.explain.run import explain_archs
from crlm.io import read_json, write_json
from crlm.logs import stage_logger, stage_main
from crlm.paths import METRICS, MODELS, PLOTS, PROCESSED_ARRAYS, PROCESSED_MANIFEST, SPLITS

log = stage_logger(__file__)


@stage_main
def main() -> None:
    params = cli_params(__doc__)
    data = load_image_set(PROCESSED_ARRAYS, PROCESSED_MANIFEST)
    splits = read_json(SPLITS)
    result = explain_archs(params, data, splits["test"], len(splits["folds"]), MODELS)
    write_json(METRICS / "cam.json", result.metrics)
    rows = result.rows
    cam_figure(PLOTS / "evaluate" / "cam.png", data.images[rows], data.tumour[rows].astype(bool), result.cams,
               result.shares, data.manifest["image_id"].iloc[rows].tolist())
    chance = result.metrics["chance"]
    log.info(f"{result.metrics['images']} metastasis test slices; chance: mass share {chance['mass_share']}, "
             f"pointing {chance['pointing_hit_rate']}")
    for arch in result.cams:
        m = result.metrics[arch]
        log.info(f"{arch} ({m['layer']}, {m['layer_grid'][0]}x{m['layer_grid'][1]}): mass share "
                 f"{m['mass_share']['value']}, pointing hit rate {m['pointing_hit_rate']['value']}, "
                 f"empty maps {m['empty_maps']}")


if __name__ == "__main__":
    main()
