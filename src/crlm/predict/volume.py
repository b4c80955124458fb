"""The CT that `crlm predict` scores and its liver mask, in the pipeline's axial convention, and its slices
prepared exactly as the pipeline prepares an image.

A CT is a DICOM series folder (crlm.data.dicom.read_ct_series, after checking that every file is a CT) or a
NIfTI volume (crlm.data.nifti.read_nifti). A liver mask is a NIfTI file (nonzero = liver: a LiTS label map's
liver 1 and tumour 2 both count, as in the slices stage) or, for a DICOM CT, a DICOM-SEG read as the tcia
source reads it (crlm.data.dicom.read_seg_labels).

Preparation mirrors the slices and prepare stages step by step: the slice is stored as int16 HU (the slices
stage's .npz), cropped by `prepare.crop` from its liver mask (crlm.data.prepare.CROPS), windowed
(`window`), resized (`resize`) and kept as float16 (as data/processed/images.npy). With no mask every slice
is scored whole, as with `prepare.crop: none`.

Non-finite voxels (NaN, inf: a float NIfTI can hold them, a DICOM series' rescaled integers cannot) are
checked once both are read (`check_nonfinite`): refused by default, or with --nonfinite mask scored as air.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import nibabel as nib
import numpy as np
import pydicom
from PIL import Image

from crlm.core.options import look_up
from crlm.data.config import PrepareConfig
from crlm.data.dicom import CTSeries, read_ct_series, read_seg_labels
from crlm.data.nifti import Volume, read_nifti
from crlm.data.prepare import CROPS, resize, window
from crlm.predict import PredictError

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def is_nifti(path: Path) -> bool:
    return path.name.lower().endswith((".nii", ".nii.gz"))


@dataclass(frozen=True)
class Scan:
    path: Path
    volume: Volume  # HU, (z, y, x) in the pipeline's axial convention
    z_mm: np.ndarray  # each axial slice's position along the body axis (mm, superior +)
    affine: np.ndarray  # RAS affine of the array `stored()` returns (the input's geometry)
    ct: CTSeries | None = None  # DICOM input: the series as read
    headers: tuple = ()  # DICOM input: each slice's header (no pixels), in volume order
    nifti: nib.Nifti1Image | None = None  # NIfTI input: the image as loaded

    @property
    def is_dicom(self) -> bool:
        return self.ct is not None

    def stored(self, axial: np.ndarray) -> np.ndarray:
        """An axial (z, y, x) array laid out as the input stores it, the array `affine` maps: the NIfTI's own
        axis order and directions, or for DICOM (column, row, slice) with slices in ascending position."""
        if self.ct is not None:
            array = axial[:, ::-1, :] if self.ct.flip_rows else axial
            array = array[:, :, ::-1] if self.ct.flip_cols else array
            return np.ascontiguousarray(array.transpose(2, 1, 0))
        assert self.nifti is not None  # a Scan is DICOM (ct) or NIfTI (nifti): read_scan, read_dicom_scan
        canonical = nib.as_closest_canonical(self.nifti)
        ras = axial.transpose(2, 1, 0)[::-1, ::-1, :]  # read_nifti's mapping, undone
        to_input = nib.orientations.ornt_transform(
            nib.orientations.io_orientation(canonical.affine), nib.orientations.io_orientation(self.nifti.affine)
        )
        return np.ascontiguousarray(nib.orientations.apply_orientation(ras, to_input))


def read_scan(path: str | Path) -> Scan:
    path = Path(path)
    if path.is_dir():
        return read_dicom_scan(path)
    if not path.exists():
        raise PredictError(f"{path}: not found")
    if not is_nifti(path):
        raise PredictError(f"{path}: not a DICOM CT series folder or a NIfTI volume (.nii, .nii.gz)")
    volume = read_nifti(path)
    image = cast(nib.Nifti1Image, nib.load(str(path)))  # is_nifti: nib.load gives a Nifti1Image (or subclass)
    canonical = nib.as_closest_canonical(image)
    z_mm = np.array([(canonical.affine @ [0.0, 0.0, k, 1.0])[2] for k in range(volume.array.shape[0])])
    return Scan(path, volume, z_mm, image.affine.copy(), nifti=image)


def read_dicom_scan(folder: Path) -> Scan:
    headers = {}
    for file in sorted(p for p in folder.iterdir() if p.is_file()):
        try:
            header = pydicom.dcmread(file, stop_before_pixels=True)
        except Exception as exc:  # pydicom raises many types for a file that is not DICOM
            raise PredictError(f"{file}: unreadable DICOM file ({type(exc).__name__}: {exc})") from None
        modality = str(header.get("Modality", "") or "missing")
        if modality != "CT":
            raise PredictError(f"{folder}: not a CT series: {file.name} has Modality {modality}, expected CT")
        headers[str(header.SOPInstanceUID)] = header
    ct = read_ct_series(folder)
    ordered = tuple(headers[uid] for uid in ct.sop_uids)
    z_mm = np.array([float(h.ImagePositionPatient[2]) for h in ordered])
    return Scan(folder, ct.volume, z_mm, dicom_affine(ordered, ct.volume.spacing_mm[0]), ct=ct, headers=ordered)


def dicom_affine(headers: tuple, slice_mm: float) -> np.ndarray:
    """The RAS affine of a series' voxels indexed (column, row, slice), slices in the order given."""
    orientation = np.array([float(v) for v in headers[0].ImageOrientationPatient])
    row_dir, col_dir = orientation[:3], orientation[3:]
    row_mm, col_mm = (float(v) for v in headers[0].PixelSpacing)
    first = np.array([float(v) for v in headers[0].ImagePositionPatient])
    if len(headers) > 1:
        step = (np.array([float(v) for v in headers[-1].ImagePositionPatient]) - first) / (len(headers) - 1)
    else:
        step = np.cross(row_dir, col_dir) * slice_mm
    lps = np.eye(4)
    lps[:3, 0], lps[:3, 1], lps[:3, 2], lps[:3, 3] = row_dir * col_mm, col_dir * row_mm, step, first
    return LPS_TO_RAS @ lps


def read_liver_mask(path: str | Path, scan: Scan) -> np.ndarray:
    """The liver mask (z, y, x) bool, aligned with scan.volume."""
    path = Path(path)
    if not path.exists():
        raise PredictError(f"{path}: liver mask not found")
    if is_nifti(path):
        mask = read_nifti(path).array
        if mask.shape != scan.volume.array.shape:
            raise PredictError(
                f"{path}: mask shape {mask.shape} (z, y, x) differs from the volume's "
                f"{scan.volume.array.shape} ({scan.path})"
            )
        liver = mask != 0
    else:
        if not scan.is_dicom:
            raise PredictError(
                f"{path}: a DICOM-SEG liver mask needs a DICOM CT series as input, "
                f"not {scan.path}; give the mask as NIfTI"
            )
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.is_file())
            if len(files) != 1:
                raise PredictError(f"{path}: expected one DICOM-SEG file in the folder, found {len(files)}")
            path = files[0]
        assert scan.ct is not None  # scan.is_dicom
        liver = read_seg_labels(path, scan.ct).array != 0
    if not liver.any():
        raise PredictError(f"{path}: the liver mask is empty (no nonzero voxel): no slice to score")
    return liver


@dataclass(frozen=True)
class PreparedSlices:
    indices: np.ndarray  # axial slice index of each image (0 = most inferior)
    boxes: list[tuple[slice, slice]]  # each image's crop box (rows, columns) in its slice
    images: np.ndarray  # (N, S, S) float16 in [0, 1], as data/processed/images.npy


def prepare_slices(
    volume: Volume, liver: np.ndarray | None, cfg: PrepareConfig, skip: Iterable[int] = ()
) -> PreparedSlices:
    """The liver slices cropped by prepare.crop, or with no mask every slice whole (prepare.crop: none); the
    slices in `skip` left out."""
    crop = CROPS["none"] if liver is None else look_up("prepare.crop", cfg.crop, CROPS)
    n_slices = volume.array.shape[0]
    indices = np.arange(n_slices) if liver is None else np.flatnonzero(liver.reshape(n_slices, -1).any(axis=1))
    indices = indices[~np.isin(indices, list(skip))]
    images = np.zeros((len(indices), cfg.image_size, cfg.image_size), dtype=np.float16)
    boxes = []
    for i, z in enumerate(indices):
        image = volume.array[z].astype(np.int16)  # the slices stage stores int16 HU
        slice_liver = np.ones(image.shape, np.uint8) if liver is None else liver[z].astype(np.uint8)
        box = crop(slice_liver, cfg.crop_margin)
        images[i] = resize(window(image[box], cfg.window_center_hu, cfg.window_width_hu), cfg.image_size)
        boxes.append(box)
    return PreparedSlices(indices, boxes, images)


def paste_back(masks: np.ndarray, prepared: PreparedSlices, shape: tuple[int, int, int]) -> np.ndarray:
    """(N, S, S) masks resized (nearest neighbour) back into their crop boxes of a zero (z, y, x) volume."""
    full = np.zeros(shape, dtype=np.uint8)
    for mask, z, (rows, cols) in zip(masks, prepared.indices, prepared.boxes):
        size = (cols.stop - cols.start, rows.stop - rows.start)  # PIL's (width, height)
        # Image.NEAREST exists (Pillow sets it with setattr from Resampling); Pillow's own types miss it
        full[z, rows, cols] = np.asarray(Image.fromarray(mask.astype(np.uint8)).resize(size, Image.NEAREST))  # type: ignore[attr-defined]
    return full


@dataclass(frozen=True)
class NonFinite:
    per_slice: np.ndarray  # each axial slice's non-finite voxels (replaced by fill_hu)
    unscored: dict[int, str]  # slice index -> why it is not scored
    fill_hu: float | None = None  # None: the volume had none
    note: str = ""  # what was found and done, for the log


def check_nonfinite(scan: Scan, liver: np.ndarray | None, cfg: PrepareConfig, policy: str) -> tuple[Scan, NonFinite]:
    """The scan with its non-finite voxels refused (policy "refuse") or replaced ("mask"); a slice whose liver
    region (the whole slice without a mask) holds no finite voxel is left unscored, and a volume with no
    such slice left is refused either way: there is nothing to score."""
    array = scan.volume.array
    n = array.shape[0]
    bad = ~np.isfinite(array) if np.issubdtype(array.dtype, np.inexact) else np.zeros(array.shape, bool)
    per_slice = bad.reshape(n, -1).sum(axis=1)
    if not per_slice.any():
        return scan, NonFinite(per_slice, {})
    region = np.ones(array.shape, bool) if liver is None else liver
    has_region = region.reshape(n, -1).any(axis=1)
    empty = has_region & (bad | ~region).reshape(n, -1).all(axis=1)
    found = f"{per_slice.sum():,} non-finite voxels ({kinds(array[bad])}) in {slices(np.flatnonzero(per_slice))}"
    what = "slice" if liver is None else "slice's liver region"
    if empty[has_region].all():
        raise PredictError(
            f"{scan.path}: {found}: every {what} is entirely non-finite, nothing to score (--nonfinite mask or not)"
        )
    if policy == "refuse":
        raise PredictError(
            f"{scan.path}: {found}; a CT holds finite HU, so the file is likely damaged or badly "
            "converted; pass --nonfinite mask to score them as air (below the HU window) and "
            "report them"
        )
    # No value is right for a voxel with no attenuation; the window's lower bound windows to 0 like air and
    # anything outside the window, so it adds no tissue (nothing that looks like liver or lesion).
    fill = cfg.window_center_hu - cfg.window_width_hu / 2
    filled = np.where(bad, fill, array).astype(array.dtype, copy=False)
    reason = "entirely non-finite" if liver is None else "liver region entirely non-finite"
    unscored = {int(z): reason for z in np.flatnonzero(empty)}
    note = f"{scan.path}: {found}: scored as {fill:g} HU (the HU window's lower bound: air)"
    if unscored:
        note += f"; {slices(list(unscored))} not scored ({reason})"
    volume = dataclasses.replace(scan.volume, array=filled)
    return dataclasses.replace(scan, volume=volume), NonFinite(per_slice, unscored, fill, note)


def kinds(values: np.ndarray) -> str:
    """ "NaN", or the count of each kind where there are several: "1,500 NaN, 100 +inf"."""
    counts = {"NaN": np.isnan(values).sum(), "+inf": np.isposinf(values).sum(), "-inf": np.isneginf(values).sum()}
    present = {name: count for name, count in counts.items() if count}
    return next(iter(present)) if len(present) == 1 else ", ".join(f"{c:,} {name}" for name, c in present.items())


def slices(indices, most: int = 8) -> str:
    """Slice indices as runs: "slice 4", "slices 0-3, 7, 9-27" (the first `most` runs, then "...")."""
    runs: list[list[int]] = []
    for i in sorted(int(i) for i in indices):
        if runs and i == runs[-1][1] + 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    text = [f"{a}" if a == b else f"{a}-{b}" for a, b in runs]
    return f"slice{'s' if len(indices) > 1 else ''} " + ", ".join(text[:most]) + (", ..." if len(text) > most else "")
