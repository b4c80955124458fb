"""Every arch's class activation maps on the test set, as the explain stage writes them: metrics/cam.json
(how much of each map falls on the true tumour, over every metastasis test slice, beside the baselines of
crlm.explain.localisation and the randomisation check of crlm.explain.sanity) and the maps of the images of
plots/evaluate/overlays.png, for plots/evaluate/cam.png.

Fold after fold (each model loaded once), a block of images at a time: a fold model's maps of a block are
added to the ensemble's running sum (crlm.explain.cam.EnsembleSum) and its maps of the block's metastasis
slices compared at once with its re-initialised network's (crlm.explain.sanity.randomised_similarity); the
ensemble's maps are scored a block of images at a time after the last fold. So the stage holds one block of
maps beside the running sum, whatever the number of test images.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from torch import nn

from crlm.archs import ARCHS

if TYPE_CHECKING:
    from crlm.params import Params
from crlm.core.arrays import blocks
from crlm.core.io import rounded
from crlm.data.dataset import ImageSet
from crlm.evaluation.overlay import overlay_rows
from crlm.explain.cam import EnsembleSum, grad_cam_blocks, layer_name
from crlm.explain.localisation import CENTRE_SIGMA, centre_prior, chance_levels, image_scores, localisation_summary
from crlm.explain.sanity import SEED, randomised_similarity, similarity_summary
from crlm.models.folds import FoldModels
from crlm.models.model_file import load_model

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
    on_positives = np.searchsorted(rows, positives)  # positives' positions in rows (both ascending)
    is_positive = np.isin(rows, positives)
    tolerance = params.explain.pointing_tolerance_px
    patients = data.manifest["patient_id"].to_numpy()[positives]
    stats = params.stats

    def summary(scores: dict, centre: dict | None = None) -> dict:
        return localisation_summary(scores, patients, stats.n_boot, stats.seed, stats.ci_level, centre)

    def positive_scores(cams_of: Callable[[slice], np.ndarray]) -> dict[str, np.ndarray]:
        """image_scores of the maps cams_of(block) of the positives, against their tumour and liver masks,
        a block of positives at a time."""
        return concatenated(
            image_scores(
                cams_of(block),
                data.tumour_at(positives[block]).astype(bool),
                tolerance,
                liver[positives[block]].astype(bool),
            )
            for block in list(blocks(len(positives))) or [slice(0, 0)]
        )

    prior = centre_prior(data.image_shape)
    centre = positive_scores(lambda block: np.broadcast_to(prior, (block.stop - block.start, *prior.shape)))
    result = Explanation({}, figure_rows)
    for arch in ARCHS:
        ensemble, layer, grid, randomisation = fold_maps(
            FoldModels.of(arch, folds, model_dir).model_paths(), arch, data, rows, is_positive
        )
        scores = positive_scores(lambda block: ensemble.maps(on_positives[block]))
        result.metrics[arch] = {
            "layer": layer,
            "layer_grid": list(grid),
            **summary(scores, centre),
            "randomisation": randomisation,
        }
        figure_cams = ensemble.maps(np.searchsorted(rows, figure_rows))
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


def fold_maps(
    paths: list[Path], arch: str, data: ImageSet, rows: np.ndarray, is_positive: np.ndarray
) -> tuple[EnsembleSum, str, tuple[int, int], dict]:
    """One arch's fold models (model files `paths`, in fold order), each loaded once: the fold ensemble's
    maps of the images `rows` (an EnsembleSum), the CAM layer's name and grid, and the randomisation check
    of each model's maps of the rows where is_positive (crlm.explain.sanity), computed from each block of
    the model's maps as it comes. One fold's block of maps in memory at a time, beside the running sum."""
    if not paths:
        raise ValueError(f"{arch}: no fold model paths given")
    ensemble = EnsembleSum(len(rows), data.image_shape)
    layer, grid, rho = "", [(0, 0)], []  # grid: the layer's, as the last block found it
    for k, path in enumerate(paths):
        model = load_model(path, expected_arch=arch)
        layer = layer or layer_name(model)

        def positive_maps(model: nn.Module = model) -> Iterator[np.ndarray]:
            for block, maps, grid[0] in grad_cam_blocks(model, rows, data.images_at):
                ensemble.add(block, maps)
                yield maps[is_positive[block]]

        rho.append(randomised_similarity(positive_maps(), path, arch, SEED + k, rows[is_positive], data.images_at))
        ensemble.fold_done()
    return ensemble, layer, grid[0], similarity_summary(np.concatenate(rho), len(paths))


def concatenated(parts: Iterable[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Dicts of per-image arrays (of consecutive blocks of images) joined key by key."""
    parts = list(parts)
    return {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}
