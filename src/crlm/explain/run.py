"""Every arch's class activation maps on the test set, as the explain stage writes them: metrics/cam.json
(how much of each map falls on the true tumour, over every metastasis test slice, beside the baselines of
crlm.explain.localisation and the randomisation check of crlm.explain.sanity) and the maps of the images of
plots/evaluate/overlays.png, for plots/evaluate/cam.png."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from crlm.archs import ARCHS

if TYPE_CHECKING:
    from crlm.params import Params
from crlm.core.io import rounded
from crlm.data.dataset import ImageSet
from crlm.evaluation.overlay import overlay_rows
from crlm.explain.cam import ensemble_of, fold_cams
from crlm.explain.localisation import CENTRE_SIGMA, centre_prior, chance_levels, image_scores, localisation_summary
from crlm.explain.sanity import randomisation_check
from crlm.models.folds import FoldModels

METHOD = (
    "Grad-CAM (captum LayerGradCam) of the image-level metastasis logit at each arch's cam_layer(), "
    "upsampled bilinearly, ReLU'd, normalised per image; mean of the fold models' maps"
)


@dataclass
class Explanation:
    metrics: dict  # metrics/cam.json
    rows: np.ndarray  # the figure's images (rows of the ImageSet)
    cams: dict[str, np.ndarray] = field(default_factory=dict)  # arch -> their maps
    shares: dict[str, np.ndarray] = field(default_factory=dict)  # arch -> their mass shares (NaN: empty map)


def explain_archs(
    params: Params, data: ImageSet, liver: np.ndarray, test_patients: list[str], folds: list[str], model_dir: Path
) -> Explanation:
    """Each arch of crlm.archs: the fold ensemble's maps of the metastasis test slices (label 1) and of the
    overlay images (evaluate.overlay_images, chosen as the evaluate stage chooses them), scored against the
    true tumour masks beside the whole-image and liver chance levels (`liver`: the liver masks, row for row
    with `data`) and the centre prior, with stats.* bootstrap CIs; and the randomisation check (crlm.explain.sanity)
    of every fold model's maps of the metastasis slices. The fold models: those of `folds` (crlm.data.splits.Splits's
    fold_names) under model_dir (crlm.models.folds)."""
    if liver.shape != data.tumour.shape:
        raise ValueError(
            f"explain_archs: liver masks of shape {liver.shape} for tumour masks of shape {data.tumour.shape}"
        )
    test = data.indices_of(test_patients)
    positives = test[data.manifest["label"].to_numpy()[test] == 1]
    _, figure_rows = overlay_rows(data.manifest.iloc[test], data.manifest, params.evaluate.overlay_images)
    rows = np.unique(np.concatenate([positives, figure_rows]))  # each image's map computed once
    at = {row: k for k, row in enumerate(rows)}
    on_positives = [at[r] for r in positives]
    tolerance = params.explain.pointing_tolerance_px
    masks = data.tumour_at(positives).astype(bool)
    livers = liver[positives].astype(bool)
    patients = data.manifest["patient_id"].to_numpy()[positives]
    stats = params.stats

    def summary(scores: dict, centre: dict | None = None) -> dict:
        return localisation_summary(scores, patients, stats.n_boot, stats.seed, stats.ci_level, centre)

    prior = np.broadcast_to(centre_prior(data.image_shape), masks.shape)
    centre = image_scores(prior, masks, tolerance, livers)
    result = Explanation({}, figure_rows)
    for arch in ARCHS:
        paths = FoldModels.of(arch, folds, model_dir).model_paths()
        per_fold, layer, grid = fold_cams(paths, data.images_at(rows), arch)
        cams = ensemble_of(per_fold)
        scores = image_scores(cams[on_positives], masks, tolerance, livers)
        randomisation = randomisation_check(
            [maps[on_positives] for maps in per_fold], paths, data.images_at(positives), arch
        )
        result.metrics[arch] = {
            "layer": layer,
            "layer_grid": list(grid),
            **summary(scores, centre),
            "randomisation": randomisation,
        }
        figure_cams = cams[[at[r] for r in figure_rows]]
        result.cams[arch] = figure_cams
        result.shares[arch] = image_scores(figure_cams, data.tumour_at(figure_rows).astype(bool), tolerance)[
            "mass_share"
        ]
    centre_summary = summary(centre)
    result.metrics = rounded(
        {
            "method": METHOD,
            "pointing_tolerance_px": tolerance,
            "images": int(len(positives)),
            "patients": int(len(np.unique(patients))),
            "chance": chance_levels(centre),  # of the images, whichever map was scored
            "centre_prior": {
                "sigma_fraction": CENTRE_SIGMA,
                "sigma_px": CENTRE_SIGMA * min(data.image_shape),
                **{
                    key: centre_summary[key]
                    for key in (
                        "mass_share",
                        "mass_share_minus_liver_chance",
                        "pointing_hit_rate",
                        "pointing_hit_rate_minus_liver_chance",
                    )
                },
            },
            **result.metrics,
        },
        4,
    )
    return result
