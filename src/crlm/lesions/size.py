"""The prepared images' pixel size in mm, and each lesion's equivalent diameter and size band.

prepare (crlm.data.prepare.prepare_images) cuts a box out of each slice (prepare.crop: `liver`, the square
liver_box around the liver mask widened by prepare.crop_margin; `none`, the whole slice) and resizes the box
to the prepared image's side. A prepared pixel is therefore (box rows x spacing / image rows) mm high and
(box columns x spacing / image columns) mm wide, spacing being the slice's in-plane spacing_mm
(data/interim/slices.parquet). prepare records the box in the processed manifest (crlm.data.prepare.CROP_COLUMNS,
read back by crlm.data.prepare.crop_boxes).

A lesion's equivalent diameter is that of the disc of its area: d = 2 sqrt(area / pi), area = pixels x the
pixel's area in mm^2. Size bands (lesions.size_bands_mm, edges e_0 < e_1 < ...): d <= e_0, e_0 < d <= e_1,
..., d > e_last (seed 001: <= 10 mm and 10-30 mm; the default adds > 30 mm).
"""

from __future__ import annotations

import numpy as np

from crlm.data.prepare import Box


def prepared_pixel_mm(box: Box, spacing_mm: float, image_shape: tuple[int, int]) -> tuple[float, float]:
    """(height, width) in mm of one pixel of the prepared image made from `box` of a slice of in-plane
    spacing `spacing_mm`, resized to `image_shape` (rows, columns)."""
    rows, cols = box
    return (
        (rows.stop - rows.start) * spacing_mm / image_shape[0],
        (cols.stop - cols.start) * spacing_mm / image_shape[1],
    )


def equivalent_diameter_mm(area_px: np.ndarray | float, pixel_area_mm2: np.ndarray | float) -> np.ndarray:
    """The diameter in mm of the disc whose area is area_px pixels of pixel_area_mm2 each."""
    return 2.0 * np.sqrt(np.asarray(area_px, dtype=float) * pixel_area_mm2 / np.pi)


def size_band(diameter_mm: np.ndarray | float, edges: tuple[float, ...]) -> np.ndarray:
    """The band index of each diameter: 0 for d <= edges[0], k for edges[k-1] < d <= edges[k], len(edges)
    for d > edges[-1]."""
    return np.searchsorted(np.asarray(edges, dtype=float), np.asarray(diameter_mm, dtype=float), side="left")


def band_names(edges: tuple[float, ...]) -> list[str]:
    """The bands' names, e.g. (10, 30) -> ["<=10mm", "10-30mm", ">30mm"]."""
    names = [f"<={edges[0]:g}mm"]
    names += [f"{low:g}-{high:g}mm" for low, high in zip(edges, edges[1:])]
    return names + [f">{edges[-1]:g}mm"]
