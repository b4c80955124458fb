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

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import overload

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


class Built(Sequence[np.ndarray]):
    """A sequence of n arrays, each built by `build(k)` when it is read and kept by no one but the reader:
    one patient's volume in memory at a time, however many patients."""

    def __init__(self, n: int, build: Callable[[int], np.ndarray]) -> None:
        self._n, self._build = n, build

    def __len__(self) -> int:
        return self._n

    @overload
    def __getitem__(self, k: int) -> np.ndarray: ...

    @overload
    def __getitem__(self, k: slice) -> list[np.ndarray]: ...

    def __getitem__(self, k: int | slice) -> np.ndarray | list[np.ndarray]:
        if isinstance(k, slice):
            return [self._build(i) for i in range(*k.indices(self._n))]
        if not -self._n <= k < self._n:
            raise IndexError(f"item {k} of {self._n}")
        return self._build(k % self._n)

    def __iter__(self) -> Iterator[np.ndarray]:
        return (self._build(k) for k in range(self._n))


@dataclass(frozen=True)
class PatientVolumes:
    """Each patient's stack of slices (first axis: slice_index - the patient's lowest index): where each of
    its images lies in it, and the original tumour masks to build its true volume from when it is needed."""

    patients: list[str]
    units: list[np.ndarray]  # for each patient, its image positions (rows of the prepared arrays)
    depth_index: list[np.ndarray]  # for each patient, each image's position along the first axis
    shapes: list[tuple[int, int, int]]  # each patient's volume: (slices, rows, cols)
    boxes: list[Box]  # each image's box (by position)
    spacing_mm: list[float]  # each patient's in-plane spacing
    tumours: Sequence[np.ndarray]  # each image's original tumour mask (by position), read when asked for

    def true_volume(self, k: int) -> np.ndarray:
        """Patient k's original tumour masks stacked: a (slices, rows, cols) bool volume."""
        shape = self.shapes[k]
        volume = np.zeros(shape, dtype=bool)
        for unit, z in zip(self.units[k], self.depth_index[k]):
            tumour = self.tumours[int(unit)]
            if tumour.shape != shape[1:]:
                raise ValueError(f"{self.patients[k]}: a slice of shape {tumour.shape} in a volume of {shape}")
            volume[z] = tumour.astype(bool)
        return volume

    @property
    def truth(self) -> Built:
        """Every patient's true volume (true_volume), built as it is read."""
        return Built(len(self.patients), self.true_volume)

    def volume(self, k: int, prepared: Mapping[int, np.ndarray] | np.ndarray) -> np.ndarray:
        """Patient k's prepared maps (prepared[unit] for each of its image positions) as its volume in the
        original geometry, in their dtype."""
        units = self.units[k]
        volume = np.zeros(self.shapes[k], dtype=prepared[int(units[0])].dtype)
        for unit, z in zip(units, self.depth_index[k]):
            volume[z] = to_original(prepared[int(unit)], self.boxes[unit], self.shapes[k][1:])
        return volume

    def stack(self, prepared: np.ndarray) -> list[np.ndarray]:
        """Prepared maps (N, h, w), by image position, as every patient's volume at once (for small sets,
        the tests: the lesions stage builds one patient's volume at a time)."""
        return [self.volume(k, prepared) for k in range(len(self.patients))]


def largest_cross_section_px(truth: np.ndarray) -> np.ndarray:
    """The largest one-slice area (px) of each 3-D lesion of `truth`, in the order of components(truth)
    (the order of crlm.lesions.matching.match_lesions's lesions)."""
    labels, n = components(truth)
    per_slice = np.stack([np.bincount(plane.ravel(), minlength=n + 1) for plane in labels])
    return per_slice[:, 1:].max(axis=0) if len(per_slice) else np.zeros(n, dtype=int)


def patient_volumes(
    patients: np.ndarray,
    slice_index: np.ndarray,
    boxes: list[Box],
    tumours: Sequence[np.ndarray],
    spacing_mm: np.ndarray,
    shapes: Sequence[tuple[int, int]] | None = None,
) -> PatientVolumes:
    """The test images grouped by patient (sorted ids) into volumes: the image at position i belongs to
    patients[i] at slice_index[i], was prepared from boxes[i], has the original tumour mask tumours[i] (a
    list, or a sequence that reads each when asked for: it is kept, not read here when `shapes` is given) of
    shape shapes[i] (default: tumours[i].shape) and the in-plane spacing spacing_mm[i]."""
    patients, slice_index, spacing_mm = np.asarray(patients), np.asarray(slice_index), np.asarray(spacing_mm)
    ids, units, depth, volume_shapes, spacing = [], [], [], [], []
    for patient in sorted(set(patients.tolist())):
        mine = np.flatnonzero(patients == patient)
        slice_shapes = {tuple(shapes[i]) if shapes is not None else tumours[i].shape for i in mine.tolist()}
        if len(slice_shapes) != 1:
            raise ValueError(f"{patient}: slices of different shapes {sorted(slice_shapes)}; cannot stack them")
        if len(set(spacing_mm[mine].tolist())) != 1:
            raise ValueError(f"{patient}: slices of different spacing {sorted(set(spacing_mm[mine].tolist()))}")
        z = slice_index[mine] - slice_index[mine].min()
        if len(set(z.tolist())) != len(z):
            raise ValueError(f"{patient}: two test images share a slice_index")
        ids.append(patient)
        units.append(mine)
        depth.append(z)
        volume_shapes.append((int(z.max()) + 1, *slice_shapes.pop()))
        spacing.append(float(spacing_mm[mine[0]]))
    return PatientVolumes(ids, units, depth, volume_shapes, list(boxes), spacing, tumours)
