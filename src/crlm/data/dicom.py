"""CT series (pydicom) and DICOM-SEG (highdicom) readers, in the pipeline's axial convention.

DICOM positions are in LPS: +x toward the patient's left, +y posterior, +z
superior. An axial CT whose rows run along +x and columns along +y is already
in the pipeline's convention (nifti.py): x patient right -> left, y anterior ->
posterior; slices are sorted by position along +z (inferior -> superior).
Flipped in-plane axes are flipped back; oblique series are refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code

from crlm.data.nifti import Volume, VolumeReadError

# Segments are matched by label (case-insensitive) or by their coded SegmentedPropertyType; highdicom's
# CodedConcept compares SNOMED CT codes across the old SRT and the current SCT designators.
LIVER_LABEL = re.compile(r"^liver$", re.IGNORECASE)
TUMOUR_LABEL = re.compile(r"^(tumou?r|mass|lesion|metasta|neoplasm)", re.IGNORECASE)
LIVER_TYPES = (codes.SCT.Liver,)
TUMOUR_TYPES = (codes.SCT.Mass, codes.SCT.Neoplasm, codes.SCT.Lesion, Code("14799000", "SCT", "Neoplasm, metastatic"))


class DicomReadError(VolumeReadError):
    """A DICOM series or SEG cannot be used; the message names the folder or file, `reason` is the QC
    reason: unreadable, mixed_spacing, geometry_mismatch, missing_ct or missing_mask."""

    def __init__(self, message: str, reason: str = "unreadable") -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class CTSeries:
    volume: Volume  # HU, (z, y, x)
    series_uid: str
    sop_uids: tuple[str, ...]  # SOPInstanceUID of each slice of volume, in array order
    flip_rows: bool  # the stored rows ran posterior -> anterior
    flip_cols: bool  # the stored columns ran left -> right


def read_ct_series(folder: str | Path, spacing_tolerance_mm: float = 0.01) -> CTSeries:
    folder = Path(folder)
    if not folder.is_dir():
        raise DicomReadError(f"{folder}: CT series folder not found", "missing_ct")
    files = sorted(p for p in folder.iterdir() if p.is_file())
    if not files:
        raise DicomReadError(f"{folder}: no DICOM files")
    try:
        slices = [pydicom.dcmread(p) for p in files]
    except Exception as exc:  # pydicom raises many types for a corrupt file
        raise DicomReadError(f"{folder}: cannot read DICOM ({type(exc).__name__}: {exc})") from exc
    uids = {str(s.SeriesInstanceUID) for s in slices}
    if len(uids) != 1:
        raise DicomReadError(f"{folder}: files of {len(uids)} series in one folder")
    orientation = np.array([float(v) for v in slices[0].ImageOrientationPatient])
    if any(not np.allclose([float(v) for v in s.ImageOrientationPatient], orientation, atol=1e-4) for s in slices):
        raise DicomReadError(f"{folder}: slices with different orientations", "geometry_mismatch")
    row, col = orientation[:3], orientation[3:]
    if not (abs(abs(row[0]) - 1) < 1e-3 and abs(abs(col[1]) - 1) < 1e-3):
        raise DicomReadError(
            f"{folder}: not an axial series (ImageOrientationPatient {orientation.tolist()})", "geometry_mismatch"
        )
    z = np.array([float(s.ImagePositionPatient[2]) for s in slices])
    order = np.argsort(z)
    steps = np.diff(z[order])
    if len(steps) and (steps.min() <= 0 or steps.max() - steps.min() > spacing_tolerance_mm):
        raise DicomReadError(
            f"{folder}: mixed slice spacing ({steps.min():.3f} to {steps.max():.3f} mm)", "mixed_spacing"
        )
    pixel = {tuple(float(v) for v in s.PixelSpacing) for s in slices}
    if len(pixel) != 1:
        raise DicomReadError(f"{folder}: mixed pixel spacing {sorted(pixel)}", "mixed_spacing")
    ((row_mm, col_mm),) = pixel
    images = [slices[i] for i in order]
    array = np.stack(
        [
            s.pixel_array.astype(np.float32) * float(getattr(s, "RescaleSlope", 1.0))
            + float(getattr(s, "RescaleIntercept", 0.0))
            for s in images
        ]
    )
    flip_rows, flip_cols = col[1] < 0, row[0] < 0
    array = _flip(array, flip_rows, flip_cols)
    dz = float(steps.mean()) if len(steps) else float(getattr(images[0], "SliceThickness", 1.0))
    return CTSeries(
        Volume(np.ascontiguousarray(array), (dz, row_mm, col_mm)),
        uids.pop(),
        tuple(str(s.SOPInstanceUID) for s in images),
        bool(flip_rows),
        bool(flip_cols),
    )


@dataclass(frozen=True)
class SegLabels:
    array: np.ndarray  # (z, y, x) aligned with the CT: 0 background, 1 liver, 2 tumour
    liver_segments: tuple[str, ...]  # labels of the segments read as liver
    tumour_segments: tuple[str, ...]  # labels of the segments read as tumour (empty: no tumour segment)
    other_segments: tuple[str, ...]  # e.g. vessels, the future liver remnant: not used


def segment_role(label: str, property_type) -> str:
    """'tumour', 'liver' or 'other' for one segment, from its label or its coded property type."""
    if TUMOUR_LABEL.match(label.strip()) or any(property_type == code for code in TUMOUR_TYPES):
        return "tumour"
    if LIVER_LABEL.match(label.strip()) or any(property_type == code for code in LIVER_TYPES):
        return "liver"
    return "other"


def read_seg_labels(path: str | Path, ct: CTSeries) -> SegLabels:
    """The SEG's liver and tumour segments as a label map aligned with ct.volume. Tumour is the union of
    every tumour segment (they may overlap the liver and each other); a SEG without one is reported in
    SegLabels.tumour_segments, and a SEG without a liver segment is refused (missing_mask)."""
    import highdicom as hd

    path = Path(path)
    try:
        seg = hd.seg.segread(str(path))
    except Exception as exc:
        raise DicomReadError(f"{path}: cannot read DICOM-SEG ({type(exc).__name__}: {exc})") from exc
    referenced = {str(item.SeriesInstanceUID) for item in getattr(seg, "ReferencedSeriesSequence", [])}
    if ct.series_uid not in referenced:
        raise DicomReadError(
            f"{path}: SEG references CT series {sorted(referenced)}, "
            f"not the patient's CT {ct.series_uid}: referenced CT missing",
            "missing_ct",
        )
    sources = {str(sop) for _, series, sop in seg.get_source_image_uids() if str(series) == ct.series_uid}
    absent = sources - set(ct.sop_uids)
    if absent:
        raise DicomReadError(
            f"{path}: SEG refers to {len(absent)} CT instance(s) that are not in the series {ct.series_uid} as read",
            "geometry_mismatch",
        )
    roles: dict[str, list[tuple[int, str]]] = {"liver": [], "tumour": [], "other": []}
    for number in seg.get_segment_numbers():
        description = seg.get_segment_description(number)
        label = str(description.segment_label)
        roles[segment_role(label, description.segmented_property_type)].append((number, label))
    liver, tumour = [n for n, _ in roles["liver"]], [n for n, _ in roles["tumour"]]
    if not liver:
        names = sorted(label for found in roles.values() for _, label in found)
        raise DicomReadError(f"{path}: no liver segment (segments: {names})", "missing_mask")
    try:
        # dcmqi and 3D Slicer do not record SpatialLocationsPreserved; the frames are matched to the CT by
        # their referenced instances, which were checked above against the series as read
        pixels = seg.get_pixels_by_source_instance(
            list(ct.sop_uids),
            segment_numbers=liver + tumour,
            combine_segments=False,
            assert_missing_frames_are_empty=True,
            ignore_spatial_locations=True,
        )
    except Exception as exc:
        raise DicomReadError(
            f"{path}: SEG frames do not align with the CT ({type(exc).__name__}: {exc})", "geometry_mismatch"
        ) from exc
    if pixels.shape[1:3] != ct.volume.array.shape[1:]:
        raise DicomReadError(
            f"{path}: SEG frames {pixels.shape[1:3]} differ from the CT's {ct.volume.array.shape[1:]}",
            "geometry_mismatch",
        )
    liver_mask = pixels[..., : len(liver)].any(axis=-1)
    tumour_mask = pixels[..., len(liver) :].any(axis=-1)
    label_map = np.where(tumour_mask, 2, np.where(liver_mask, 1, 0)).astype(np.uint8)
    return SegLabels(
        np.ascontiguousarray(_flip(label_map, ct.flip_rows, ct.flip_cols)),
        *(tuple(label for _, label in roles[role]) for role in ("liver", "tumour", "other")),
    )


def _flip(array: np.ndarray, rows: bool, cols: bool) -> np.ndarray:
    if rows:
        array = array[:, ::-1, :]
    if cols:
        array = array[:, :, ::-1]
    return array
