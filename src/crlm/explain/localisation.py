"""How well a class activation map points at the tumour: pure functions of a map and a mask.

- mass share: the share of the map's total mass that lies inside the true tumour mask (a uniform map scores
  the tumour's share of the image area: the chance level);
- pointing game (Zhang et al. 2018): a hit when the map's maximum lies in the tumour mask grown by a
  tolerance of t px (a (2t + 1)-px square, so diagonal neighbours count); where several pixels share the
  maximum, the hit is the share of them inside (the expected hit under a random tie-break). The chance
  level is the grown mask's share of the image.

A map without positive mass (no evidence for metastasis anywhere) has neither: None, counted apart.
Each summary is a mean over metastasis slices with a patient-bootstrap CI (crlm.evaluation.bootstrap).
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import binary_dilation

from crlm.evaluation.bootstrap import patient_bootstrap


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
    """The mask's share of the image: the mass share of a uniform map."""
    return float(np.asarray(mask, bool).mean())


def image_scores(cams: np.ndarray, masks: np.ndarray, tolerance_px: int) -> dict[str, np.ndarray]:
    """Per image: mass share and pointing hit (NaN for an empty map) and their chance levels."""
    def nan_if_none(values):
        return np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    return {
        "mass_share": nan_if_none(mass_share(c, m) for c, m in zip(cams, masks)),
        "pointing_hit": nan_if_none(pointing_hit(c, m, tolerance_px) for c, m in zip(cams, masks)),
        "area_share": np.array([area_share(m) for m in masks], dtype=np.float64),
        "grown_area_share": np.array([area_share(grown(m, tolerance_px)) for m in masks], dtype=np.float64),
    }


def mean_with_ci(values: np.ndarray, patients: np.ndarray, n_boot: int, seed: int, level: float) -> dict:
    """Mean of the finite values, with a percentile CI from a patient bootstrap (NaN rows are left out)."""
    values = np.asarray(values, dtype=np.float64)

    def mean(rows: np.ndarray) -> float | None:
        kept = values[rows][np.isfinite(values[rows])]
        return float(kept.mean()) if len(kept) else None

    return patient_bootstrap(mean, patients, n_boot, seed, level).to_dict()


def localisation_summary(scores: dict[str, np.ndarray], patients: np.ndarray, n_boot: int, seed: int,
                         level: float) -> dict:
    """An arch's summary: mean mass share, its excess over the chance level (paired, per image) and the
    pointing hit rate, each with a patient-bootstrap CI, and the number of empty maps."""
    share, hit = scores["mass_share"], scores["pointing_hit"]
    return {
        "mass_share": mean_with_ci(share, patients, n_boot, seed, level),
        "mass_share_minus_chance": mean_with_ci(share - scores["area_share"], patients, n_boot, seed, level),
        "pointing_hit_rate": mean_with_ci(hit, patients, n_boot, seed, level),
        "empty_maps": int(np.isnan(share).sum()),
    }


def chance_levels(scores: dict[str, np.ndarray]) -> dict[str, float]:
    """What a uniform map would score on these images: the mean tumour and grown-tumour area shares."""
    def mean(values: np.ndarray) -> float | None:
        return float(values.mean()) if len(values) else None
    return {"mass_share": mean(scores["area_share"]), "pointing_hit_rate": mean(scores["grown_area_share"])}
