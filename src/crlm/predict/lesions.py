"""Each predicted lesion of a `crlm predict` tumour mask, measured: its volume, longest axial diameter and
mean attenuation, for the DICOM-SEG's segments and the DICOM SR's measurement groups.

A lesion is a 3-D connected component of the mask (crlm.lesions.matching.components: 26-connectivity),
numbered 1.. in scipy.ndimage.label's order (first voxel in (z, y, x) raster order, inferior first); that
number is its segment number in the SEG.

- volume (ml): its voxels times the voxel volume (slice spacing x row spacing x column spacing).
- longest axial diameter (mm): on each slice it spans, the longest distance between two points of its
  cross-section, the pixels taken as squares of the slice's row and column spacing (the longest segment
  between two of their corners, as a caliper laid on the outline would measure it); the longest over its
  slices. One pixel measures its diagonal, a row of n pixels its n pixels' length and one pixel's height
  (the rectangle's diagonal).
- mean attenuation (HU): the mean of the CT's rescaled values over its voxels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.spatial import ConvexHull
from scipy.spatial.distance import pdist

from crlm.data.nifti import Volume
from crlm.lesions.matching import components


@dataclass(frozen=True)
class Lesion:
    number: int  # 1.., scipy.ndimage.label's order: its segment number in the SEG
    voxels: int
    volume_ml: float
    longest_axial_mm: float
    mean_hu: float
    slices: tuple[int, ...]  # the axial slices it spans (0 = most inferior), ascending


def lesion_labels(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """The (z, y, x) mask's lesions: a label array (0 background, k lesion k) and their number."""
    return components(mask)


def measure_lesions(mask: np.ndarray, ct: Volume) -> list[Lesion]:
    """Every lesion of the (z, y, x) mask, measured on the CT it was predicted on (HU, same shape)."""
    if mask.shape != ct.array.shape:
        raise ValueError(f"tumour mask {mask.shape} and CT {ct.array.shape} differ in shape")
    labels, n = lesion_labels(mask)
    dz, dy, dx = ct.spacing_mm
    lesions = []
    for number, box in enumerate(ndimage.find_objects(labels), start=1):
        assert box is not None  # every label 1..n has voxels
        region = labels[box] == number
        per_slice = region.reshape(region.shape[0], -1).any(axis=1)
        z0 = box[0].start
        lesions.append(
            Lesion(
                number=number,
                voxels=int(region.sum()),
                volume_ml=float(region.sum()) * dz * dy * dx / 1000.0,
                longest_axial_mm=max(longest_in_plane_mm(plane, dy, dx) for plane in region[per_slice]),
                mean_hu=float(ct.array[box][region].mean(dtype=np.float64)),
                slices=tuple(int(z0 + k) for k in np.flatnonzero(per_slice)),
            )
        )
    return lesions


def longest_in_plane_mm(plane: np.ndarray, row_mm: float, col_mm: float) -> float:
    """The longest distance (mm) between two corners of the plane's true pixels (see the module docstring)."""
    rows, cols = np.nonzero(plane)
    # the farthest corners lie on the outline's convex hull: each row's leftmost and rightmost pixel hold it
    starts = np.full(plane.shape[0], plane.shape[1])
    ends = np.full(plane.shape[0], -1)
    np.minimum.at(starts, rows, cols)
    np.maximum.at(ends, rows, cols)
    present = np.flatnonzero(ends >= 0)
    first, last = starts[present] - 0.5, ends[present] + 0.5
    corners = np.concatenate(
        [np.stack([present + dr, edge], axis=1) for dr in (-0.5, 0.5) for edge in (first, last)]
    ) * [row_mm, col_mm]
    hull = corners[ConvexHull(corners).vertices]
    return float(pdist(hull).max())
