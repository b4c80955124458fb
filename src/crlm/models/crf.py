"""Dense-CRF refinement of a tumour probability map (pydensecrf2, imported as pydensecrf).

A fully connected CRF (Kraehenbuehl & Koltun 2011): the network's probabilities
are the unary term; a Gaussian kernel smooths labels over nearby pixels and a
bilateral kernel keeps them alike over nearby pixels of similar intensity, so
the mask snaps to lesion edges.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pydensecrf.densecrf as dcrf
from pydensecrf.utils import unary_from_softmax


@dataclass(frozen=True)
class CRFConfig:
    """params.yaml's `crf` section."""

    SECTION: ClassVar[str] = "crf"
    enabled: bool  # refine the masks of the archs whose registry entry has crf (crlm.archs)
    iterations: int
    gaussian_sxy: float
    gaussian_compat: float
    bilateral_sxy: float
    bilateral_srgb: float
    bilateral_compat: float


def crf_refine(image: np.ndarray, prob: np.ndarray, cfg: CRFConfig) -> np.ndarray:
    """image (H, W) in [0, 1], prob (H, W) tumour probability -> refined tumour probability."""
    if image.shape != prob.shape:
        raise ValueError(f"image {image.shape} and probability map {prob.shape} differ in shape")
    height, width = prob.shape
    p = np.clip(prob.astype(np.float32), 1e-5, 1 - 1e-5)
    crf = dcrf.DenseCRF2D(width, height, 2)
    crf.setUnaryEnergy(np.ascontiguousarray(unary_from_softmax(np.stack([1 - p, p]))))
    crf.addPairwiseGaussian(sxy=cfg.gaussian_sxy, compat=cfg.gaussian_compat)
    grey = np.clip(np.nan_to_num(image) * 255, 0, 255).astype(np.uint8)
    rgb = np.ascontiguousarray(np.repeat(grey[:, :, None], 3, axis=2))
    crf.addPairwiseBilateral(sxy=cfg.bilateral_sxy, srgb=cfg.bilateral_srgb, rgbim=rgb, compat=cfg.bilateral_compat)
    q = np.array(crf.inference(cfg.iterations), dtype=np.float32).reshape(2, height, width)
    return q[1]
