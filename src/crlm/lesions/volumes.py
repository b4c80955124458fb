"""Each test patient's slices back in the original slice geometry, stacked by slice_index: 3-D lesions.

The prepared images are each cut to their own box (crlm.lesions.size) and resized, so their pixels do not
line up from slice to slice; the original slices' pixels do. `to_original` puts a prepared map back into its
slice: nearest-neighbour resizing to the box (the inverse of prepare's resize), 0 outside the box (prepare
never showed the model anything there). The true mask of the volume is the interim slice's own, at the
original resolution. A patient's slices are stacked by slice_index; an index the patient lacks among the
test images (a slice without liver, or one QC left out) is an empty slice, so lesions on either side of it
are never joined. 26-connectivity then joins a lesion's cross-sections on adjacent slices into one 3-D lesion
(crlm.lesions.matching.components).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crlm.lesions.matching import components
from crlm.lesions.size import Box


def to_original(prepared: np.ndarray, box: Box, matrix: tuple[int, int]) -> np.ndarray:
    """A prepared (h, w) map in its slice of shape `matrix`: resized to `box` by nearest neighbour (the
    prepared pixel whose area covers each original pixel's centre), zero outside the box."""
    h, w = prepared.shape
    rows, cols = box
    n_rows, n_cols = rows.stop - rows.start, cols.stop - cols.start
    src_r = np.minimum(((np.arange(n_rows) + 0.5) * h / n_rows).astype(int), h - 1)
    src_c = np.minimum(((np.arange(n_cols) + 0.5) * w / n_cols).astype(int), w - 1)
    out = np.zeros(matrix, dtype=prepared.dtype)
    out[rows, cols] = prepared[np.ix_(src_r, src_c)]
    return out


@dataclass(frozen=True)
class PatientVolumes:
    """Each patient's stack of slices (first axis: slice_index - the patient's lowest index)."""

    patients: list[str]
    truth: list[np.ndarray]  # (slices, rows, cols) bool, the original tumour masks
    units: list[np.ndarray]  # for each patient, its image positions (rows of the prepared arrays)
    depth_index: list[np.ndarray]  # for each patient, each image's position along the first axis
    boxes: list[Box]  # each image's box (by position)
    spacing_mm: list[float]  # each patient's in-plane spacing

    def stack(self, prepared: np.ndarray) -> list[np.ndarray]:
        """Prepared maps (N, h, w), by image position, as one volume per patient in the original geometry."""
        volumes = []
        for units, depth, truth in zip(self.units, self.depth_index, self.truth):
            volume = np.zeros(truth.shape, dtype=prepared.dtype)
            for unit, z in zip(units, depth):
                volume[z] = to_original(prepared[unit], self.boxes[unit], truth.shape[1:])
            volumes.append(volume)
        return volumes


def largest_cross_section_px(truth: np.ndarray) -> np.ndarray:
    """The largest one-slice area (px) of each 3-D lesion of `truth`, in the order of components(truth)
    (the order of crlm.lesions.matching.match_lesions's lesions)."""
    labels, n = components(truth)
    per_slice = np.stack([np.bincount(plane.ravel(), minlength=n + 1) for plane in labels])
    return per_slice[:, 1:].max(axis=0) if len(per_slice) else np.zeros(n, dtype=int)


def patient_volumes(
    patients: np.ndarray, slice_index: np.ndarray, boxes: list[Box], tumours: list[np.ndarray], spacing_mm: np.ndarray
) -> PatientVolumes:
    """The test images grouped by patient (sorted ids) into volumes: the image at position i belongs to
    patients[i] at slice_index[i], was prepared from boxes[i], has the original tumour mask tumours[i] and
    the in-plane spacing spacing_mm[i]."""
    patients, slice_index, spacing_mm = np.asarray(patients), np.asarray(slice_index), np.asarray(spacing_mm)
    ids, truth, units, depth, spacing = [], [], [], [], []
    for patient in sorted(set(patients.tolist())):
        mine = np.flatnonzero(patients == patient)
        shapes = {tumours[i].shape for i in mine}
        if len(shapes) != 1:
            raise ValueError(f"{patient}: slices of different shapes {sorted(shapes)}; cannot stack them")
        if len(set(spacing_mm[mine].tolist())) != 1:
            raise ValueError(f"{patient}: slices of different spacing {sorted(set(spacing_mm[mine].tolist()))}")
        z = slice_index[mine] - slice_index[mine].min()
        if len(set(z.tolist())) != len(z):
            raise ValueError(f"{patient}: two test images share a slice_index")
        volume = np.zeros((int(z.max()) + 1, *shapes.pop()), dtype=bool)
        for i, k in zip(mine, z):
            volume[k] = tumours[i].astype(bool)
        ids.append(patient)
        truth.append(volume)
        units.append(mine)
        depth.append(z)
        spacing.append(float(spacing_mm[mine[0]]))
    return PatientVolumes(ids, truth, units, depth, list(boxes), spacing)
