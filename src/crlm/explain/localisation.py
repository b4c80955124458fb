"""How well a class activation map points at the tumour: pure functions of a map and a mask.

- mass share: the share of the map's total mass that lies inside the true tumour mask;
- pointing game (Zhang et al. 2018): a hit when the map's maximum lies in the tumour mask grown by a
  tolerance of t px (a (2t + 1)-px square, so diagonal neighbours count); where several pixels share the
  maximum, the hit is the share of them inside (the expected hit under a random tie-break).

Baselines, scored on the same images:
- a map uniform over the whole image scores the tumour's share of the image (mass share) and the grown
  tumour's share (pointing game): the whole-image chance level;
- a map uniform over the liver scores the liver's share that is tumour, (tumour & liver) / liver, and
  (grown tumour & liver) / liver: the liver chance level. Every tumour lies in the liver and the images are
  cropped to the liver's box, so this is the level a map that merely finds the liver reaches. An image with
  an empty liver mask falls back to its whole-image level, counted;
- the centre prior: a fixed isotropic Gaussian centred on the image, sigma a quarter of the side (fixed
  before looking at any map), the centre baseline of Zhang et al. 2018's pointing game.

A map without positive mass (no evidence for metastasis anywhere) has neither score: None, counted apart.
Each summary is a mean over metastasis slices with a patient-bootstrap CI (crlm.evaluation.bootstrap); a
difference from a baseline is paired, image by image.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.ndimage import binary_dilation

from crlm.evaluation.bootstrap import patient_bootstrap
from crlm.stats.proportion import korn_graubard


def mass_share(cam: np.ndarray, mask: np.ndarray) -> float | None:
    """Sum of `cam` inside `mask` over its total; None for a map with no positive mass."""
    cam = np.clip(np.asarray(cam, dtype=np.float64), 0.0, None)
    total = cam.sum()
    return float(cam[np.asarray(mask, bool)].sum() / total) if total > 0 else None


def grown(mask: np.ndarray, tolerance_px: int) -> np.ndarray:
    """`mask` dilated by `tolerance_px` pixels in every direction, diagonals included (Chebyshev distance)."""
    mask = np.asarray(mask, bool)
    if tolerance_px == 0 or not mask.any():
        return mask
    return binary_dilation(mask, structure=np.ones((2 * tolerance_px + 1,) * 2, bool))


def pointing_hit(cam: np.ndarray, mask: np.ndarray, tolerance_px: int) -> float | None:
    """1 when the map's maximum lies within `tolerance_px` of the mask, 0 when not; the share of the tied
    maxima that do where several pixels share it; None for a map with no positive mass."""
    cam = np.asarray(cam, dtype=np.float64)
    peak = cam.max() if cam.size else 0.0
    if peak <= 0:
        return None
    return float(grown(mask, tolerance_px)[cam == peak].mean())


def area_share(mask: np.ndarray) -> float:
    """The mask's share of the image: the mass share of a map uniform over the image."""
    return float(np.asarray(mask, bool).mean())


def liver_share(mask: np.ndarray, liver: np.ndarray) -> float | None:
    """(mask & liver) / liver: the mass share of a map uniform over the liver (and, for a grown mask, its
    pointing hit: every liver pixel ties for the maximum); None for an empty liver mask."""
    liver = np.asarray(liver, bool)
    area = liver.sum()
    return float((np.asarray(mask, bool) & liver).sum() / area) if area else None


CENTRE_SIGMA = 0.25  # the centre prior's sigma, a fraction of the image side, fixed a priori


def centre_prior(shape: tuple[int, int], sigma: float = CENTRE_SIGMA) -> np.ndarray:
    """An isotropic Gaussian centred on an (H, W) image, sigma = `sigma` x the shorter side, peak 1."""
    h, w = shape
    yy, xx = np.mgrid[:h, :w].astype(np.float64)
    s = sigma * min(h, w)
    return np.exp(-((yy - (h - 1) / 2) ** 2 + (xx - (w - 1) / 2) ** 2) / (2 * s * s))


def image_scores(
    cams: np.ndarray, masks: np.ndarray, tolerance_px: int, livers: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Per image: mass share and pointing hit (NaN for an empty map) and their whole-image chance levels;
    with `livers`, also their liver chance levels ("liver_share", "grown_liver_share"; an empty liver
    mask takes the whole-image level, flagged in "empty_liver")."""

    def nan_if_none(values):
        return np.array([np.nan if v is None else v for v in values], dtype=np.float64)

    grown_masks = [grown(m, tolerance_px) for m in masks]
    scores = {
        "mass_share": nan_if_none(mass_share(c, m) for c, m in zip(cams, masks)),
        "pointing_hit": nan_if_none(pointing_hit(c, m, tolerance_px) for c, m in zip(cams, masks)),
        "area_share": np.array([area_share(m) for m in masks], dtype=np.float64),
        "grown_area_share": np.array([area_share(g) for g in grown_masks], dtype=np.float64),
    }
    if livers is not None:
        if len(livers) != len(masks):
            raise ValueError(f"image_scores: {len(livers)} liver masks for {len(masks)} tumour masks")
        empty = np.array([not np.asarray(liver, bool).any() for liver in livers])
        share = nan_if_none(liver_share(m, liver) for m, liver in zip(masks, livers))
        grown_share = nan_if_none(liver_share(g, liver) for g, liver in zip(grown_masks, livers))
        scores["liver_share"] = np.where(empty, scores["area_share"], share)
        scores["grown_liver_share"] = np.where(empty, scores["grown_area_share"], grown_share)
        scores["empty_liver"] = empty
        scores["liver_area_share"] = np.array([area_share(liver) for liver in livers], dtype=np.float64)
        scores["tumour_px_outside_liver"] = np.array(
            [(np.asarray(m, bool) & ~np.asarray(liver, bool)).sum() for m, liver in zip(masks, livers)], dtype=np.int64
        )
    return scores


def mean_with_ci(values: np.ndarray, patients: np.ndarray, n_boot: int, seed: int, level: float) -> dict:
    """Mean of the finite values, with a percentile CI from a patient bootstrap (NaN rows are left out)."""
    values = np.asarray(values, dtype=np.float64)

    def mean(rows: np.ndarray) -> float | None:
        kept = values[rows][np.isfinite(values[rows])]
        return float(kept.mean()) if len(kept) else None

    return patient_bootstrap(mean, patients, n_boot, seed, level).to_dict()


def localisation_summary(
    scores: dict[str, np.ndarray],
    patients: np.ndarray,
    n_boot: int,
    seed: int,
    level: float,
    centre: dict[str, np.ndarray] | None = None,
) -> dict:
    """A map's summary: mean mass share and pointing hit rate, the share's excess over the whole-image
    chance level and, where `scores` has them, both scores' excess over the liver chance level and (given
    the centre prior's scores of the same images) the share's excess over the centre prior's, each paired
    per image with a patient-bootstrap CI; and the number of empty maps."""
    share, hit = scores["mass_share"], scores["pointing_hit"]

    def ci(values: np.ndarray) -> dict:
        return mean_with_ci(values, patients, n_boot, seed, level)

    summary: dict[str, Any] = {"mass_share": ci(share), "mass_share_minus_chance": ci(share - scores["area_share"])}
    if "liver_share" in scores:
        summary["mass_share_minus_liver_chance"] = ci(share - scores["liver_share"])
    if centre is not None:
        summary["mass_share_minus_centre_prior"] = ci(share - centre["mass_share"])
    # a proportion of images: the exact clustered interval, which (unlike the bootstrap) can leave 0 and 1
    finite = np.isfinite(hit)
    summary["pointing_hit_rate"] = korn_graubard(hit[finite], patients[finite], level)
    if "grown_liver_share" in scores:
        summary["pointing_hit_rate_minus_liver_chance"] = ci(hit - scores["grown_liver_share"])
    summary["empty_maps"] = int(np.isnan(share).sum())
    return summary


def chance_levels(scores: dict[str, np.ndarray]) -> dict[str, dict]:
    """What a uniform map would score on these images: over the whole image, the mean tumour and
    grown-tumour area shares; over the liver (where `scores` has it), their mean shares of the liver, the
    liver's mean share of the image, the tumour pixels outside the liver and the number of images whose
    empty liver mask fell back to the whole image."""

    def mean(values: np.ndarray) -> float | None:
        return float(values.mean()) if len(values) else None

    levels = {
        "whole_image": {"mass_share": mean(scores["area_share"]), "pointing_hit_rate": mean(scores["grown_area_share"])}
    }
    if "liver_share" in scores:
        levels["liver"] = {
            "mass_share": mean(scores["liver_share"]),
            "pointing_hit_rate": mean(scores["grown_liver_share"]),
            "liver_area_share": mean(scores["liver_area_share"]),
            "tumour_px_outside_liver": int(scores["tumour_px_outside_liver"].sum()),
            "empty_liver_masks": int(scores["empty_liver"].sum()),
        }
    return levels
