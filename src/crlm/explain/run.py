"""Every arch's class activation maps on the test set, as the explain stage writes them: metrics/cam.json
(how much of each map falls on the true tumour, over every metastasis test slice) and the maps of the
images of plots/evaluate/overlays.png, for plots/evaluate/cam.png."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from crlm.archs import ARCHS
from crlm.config import Params
from crlm.data.dataset import ImageSet
from crlm.evaluation.overlay import overlay_rows
from crlm.explain.cam import ensemble_cam
from crlm.explain.localisation import chance_levels, image_scores, localisation_summary
from crlm.io import rounded

METHOD = ("Grad-CAM (captum LayerGradCam) of the image-level metastasis logit at each arch's cam_layer(), "
          "upsampled bilinearly, ReLU'd, normalised per image; mean of the fold models' maps")


@dataclass
class Explanation:
    metrics: dict                                                 # metrics/cam.json
    rows: np.ndarray                                              # the figure's images (rows of the ImageSet)
    cams: dict[str, np.ndarray] = field(default_factory=dict)     # arch -> their maps
    shares: dict[str, np.ndarray] = field(default_factory=dict)   # arch -> their mass shares (NaN: empty map)


def explain_archs(params: Params, data: ImageSet, test_patients: list[str], n_folds: int,
                  model_dir: Path) -> Explanation:
    """Each arch of crlm.archs: the fold ensemble's maps of the metastasis test slices (label 1) and of the
    overlay images (evaluate.overlay_images, chosen as the evaluate stage chooses them), scored against the
    true tumour masks with stats.* bootstrap CIs."""
    test = data.indices_of(test_patients)
    positives = test[data.manifest["label"].to_numpy()[test] == 1]
    _, figure_rows = overlay_rows(data.manifest.iloc[test], data.manifest, params.evaluate.overlay_images)
    rows = np.unique(np.concatenate([positives, figure_rows]))      # each image's map computed once
    at = {row: k for k, row in enumerate(rows)}
    tolerance = params.explain.pointing_tolerance_px
    masks = data.tumour[positives].astype(bool)
    patients = data.manifest["patient_id"].to_numpy()[positives]
    stats = params.stats

    result = Explanation({}, figure_rows)
    chance = None
    for arch in ARCHS:
        cams, layer, grid = ensemble_cam([model_dir / arch / str(k) / "model.pt" for k in range(n_folds)],
                                         data.images[rows], arch)
        scores = image_scores(cams[[at[r] for r in positives]], masks, tolerance)
        chance = chance_levels(scores)
        result.metrics[arch] = {"layer": layer, "layer_grid": list(grid),
                                **localisation_summary(scores, patients, stats.n_boot, stats.seed, stats.ci_level)}
        figure_cams = cams[[at[r] for r in figure_rows]]
        result.cams[arch] = figure_cams
        result.shares[arch] = image_scores(figure_cams, data.tumour[figure_rows].astype(bool), tolerance)["mass_share"]
    result.metrics = rounded({
        "method": METHOD,
        "pointing_tolerance_px": tolerance,
        "images": int(len(positives)),
        "patients": int(len(np.unique(patients))),
        "chance": chance,
        **result.metrics,
    }, 4)
    return result
