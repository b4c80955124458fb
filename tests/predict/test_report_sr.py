"""The DICOM SR `crlm predict` writes beside its SEG (crlm.predict.report_sr, crlm.predict.lesions): lesions
planted in a mask on the real GE CT of ../shared/realdata and on a test-made series stored right-to-left, the
SEG and SR written, read back by highdicom, and every reference and value checked against the CT files read
with pydicom and the planted lesions measured here by brute force; dciodvfy checks both files."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.sr.codedict import codes
from scipy.spatial.distance import pdist

from crlm.archs import get_arch
from crlm.predict.lesions import measure_lesions
from crlm.predict.outputs import write_dicom_seg
from crlm.predict.report_sr import (
    DEATH_BY_HORIZON,
    RISK_GROUP,
    RISK_HORIZON,
    ModelRecord,
    model_record,
    write_dicom_sr,
)
from crlm.predict.risk import SurvivalRisk
from crlm.predict.volume import read_scan
from tests.dicom_fixtures import write_ct_series
from tests.dicom_validator import assert_valid_dicom
from tests.predict.test_predict import REALDATA, needs_realdata, text_values

MODEL = ModelRecord("crlm U-Net fold ensemble", "9.9.9", ("arch unet, 5 fold models", "evaluate.threshold 0.5"))
RISK = SurvivalRisk(
    "models", True, horizon_months=36.0, probability=0.42, percentile=81.5, risk_group="high", reference_n=12
)


def planted(shape: tuple[int, int, int], centre: tuple[int, int]) -> list[np.ndarray]:
    """Three lesions of a (z, y, x) volume of at least 3 slices: a box on slices 0-1, a disc on slices 1-2, and
    two voxels touching only at a corner across slices 0 and 1 (one lesion under 26-connectivity)."""
    r, c = centre
    box = np.zeros(shape, bool)
    box[0:2, r : r + 10, c : c + 20] = True
    disc = np.zeros(shape, bool)
    rows, cols = np.ogrid[: shape[1], : shape[2]]
    disc[1:3] = (rows - (r + 30)) ** 2 + (cols - (c - 20)) ** 2 <= 36
    corner = np.zeros(shape, bool)
    corner[0, r + 50, c + 30] = corner[1, r + 51, c + 31] = True
    return [box, disc, corner]


def ct_files(folder: Path) -> tuple[list[pydicom.Dataset], np.ndarray, tuple[float, float, float]]:
    """The series read here with pydicom: its files by position, HU (z, y, x) with columns running patient
    right -> left, and (slice spacing from the positions, row, column) mm."""
    cts = sorted((pydicom.dcmread(p) for p in folder.iterdir()), key=lambda ds: float(ds.ImagePositionPatient[2]))
    hu = np.stack([ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept) for ds in cts])
    if float(cts[0].ImageOrientationPatient[0]) < 0:
        hu = hu[:, :, ::-1]
    dz = abs(float(cts[1].ImagePositionPatient[2]) - float(cts[0].ImagePositionPatient[2]))
    row_mm, col_mm = (float(v) for v in cts[0].PixelSpacing)
    return cts, hu, (dz, row_mm, col_mm)


def longest_axial_mm(lesion: np.ndarray, row_mm: float, col_mm: float) -> float:
    """Every pair of corners of the lesion's pixels on each slice: the longest distance."""
    best = 0.0
    offsets = np.array([(-0.5, -0.5), (-0.5, 0.5), (0.5, -0.5), (0.5, 0.5)])
    for plane in lesion:
        if plane.any():
            corners = (np.argwhere(plane)[:, None, :] + offsets).reshape(-1, 2) * [row_mm, col_mm]
            best = max(best, float(pdist(corners).max()))
    return best


def measured(group) -> dict[str, tuple[float, str]]:
    return {m.name.meaning: (float(m.value), m.unit.value) for m in group.get_measurements()}


def write_both(folder: Path, out: Path, lesions: list[np.ndarray], risk: SurvivalRisk | None):
    scan = read_scan(folder)
    mask = np.any(lesions, axis=0).astype(np.uint8) if lesions else np.zeros(scan.volume.array.shape, np.uint8)
    out.mkdir()
    seg = write_dicom_seg(out / "tumour_seg.dcm", scan, mask, "U-Net", "9.9.9")
    write_dicom_sr(out / "report_sr.dcm", scan, mask, seg, MODEL, risk)
    return mask


def real_ct(tmp_path: Path) -> Path:
    return REALDATA / "ct"


def made_ct(tmp_path: Path) -> Path:
    hu = np.random.default_rng(1).normal(40, 30, (4, 64, 80)).round()
    write_ct_series(tmp_path / "ct", hu, spacing=(2.5, 0.7, 0.9), flip_cols=True)
    return tmp_path / "ct"


@pytest.mark.parametrize(
    "make, centre",
    [
        pytest.param(real_ct, (200, 300), marks=needs_realdata, id="real GE CT"),
        pytest.param(made_ct, (5, 30), id="test-made right-to-left"),
    ],
)
def test_sr_measures_each_lesion_and_references_its_segment_and_ct_instances(tmp_path, make, centre):
    import highdicom as hd

    folder = make(tmp_path)
    cts, hu, (dz, row_mm, col_mm) = ct_files(folder)
    np.testing.assert_allclose(read_scan(folder).volume.array, hu)  # the HU the SR averages are the files'
    lesions = planted(hu.shape, centre)
    write_both(folder, tmp_path / "out", lesions, RISK)
    seg = hd.seg.segread(tmp_path / "out" / "tumour_seg.dcm")
    sr = hd.sr.srread(tmp_path / "out" / "report_sr.dcm")
    ct_uids = [str(ds.SOPInstanceUID) for ds in cts]

    assert sr.StudyInstanceUID == cts[0].StudyInstanceUID and sr.PatientID == cts[0].PatientID
    groups = sr.content.get_volumetric_roi_measurement_groups()
    assert len(groups) == len(lesions) == len(seg.get_segment_numbers())
    found = []
    for group in groups:
        ref = group.referenced_segment
        (number,) = ref.referenced_segment_numbers
        assert ref.referenced_sop_instance_uid == seg.SOPInstanceUID
        assert ref.referenced_sop_class_uid == seg.SOPClassUID
        assert number in seg.get_segment_numbers()
        segment = seg.get_segment_description(number)
        assert group.tracking_uid == segment.tracking_uid and segment.segment_label == f"Metastasis {number}"
        pixels = seg.get_pixels_by_source_instance(ct_uids, segment_numbers=[number], combine_segments=False)[..., 0]
        if float(cts[0].ImageOrientationPatient[0]) < 0:
            pixels = pixels[:, :, ::-1]
        (lesion,) = [lesion for lesion in lesions if np.array_equal(pixels.astype(bool), lesion)]
        found.append(number)
        slices = np.flatnonzero(lesion.any(axis=(1, 2)))
        assert [str(s.referenced_sop_instance_uid) for s in ref.source_images_for_segmentation] == [
            ct_uids[z] for z in slices
        ]
        values = measured(group)
        assert values["Volume"] == (pytest.approx(lesion.sum() * dz * row_mm * col_mm / 1000, rel=1e-9), "ml")
        assert values["Long axis"] == (pytest.approx(longest_axial_mm(lesion, row_mm, col_mm), rel=1e-9), "mm")
        assert values["Attenuation Coefficient"] == (pytest.approx(hu[lesion].mean(), rel=1e-9), "[hnsf'U]")
        assert text_values(group, "Algorithm Name") == [MODEL.name]
        assert text_values(group, "Algorithm Version") == [MODEL.version]
        assert text_values(group, "Algorithm Parameters") == list(MODEL.parameters)
    assert sorted(found) == [1, 2, 3]
    # the box's diagonal on its slices, a single pixel's on the corner pair
    box, _, corner = lesions
    by_volume = {round(measured(g)["Volume"][0], 9): measured(g) for g in groups}
    assert by_volume[round(box.sum() * dz * row_mm * col_mm / 1000, 9)]["Long axis"][0] == pytest.approx(
        np.hypot(20 * col_mm, 10 * row_mm)
    )
    assert by_volume[round(corner.sum() * dz * row_mm * col_mm / 1000, 9)]["Long axis"][0] == pytest.approx(
        np.hypot(col_mm, row_mm)
    )

    patient, risk = sr.content.get_image_measurement_groups()
    ((name, value),) = [(q.name, q.value) for q in patient.get_qualitative_evaluations()]
    assert (name, value) == (codes.SCT.Metastasis, codes.SCT.Present)
    risk_values = {m.name.value: (float(m.value), m.unit.value) for m in risk.get_measurements()}
    assert risk_values == {
        DEATH_BY_HORIZON.value: (0.42, "1"),
        codes.DCM.PercentileRankingOfMeasurement.value: (81.5, "%"),
        RISK_HORIZON.value: (36.0, "mo"),
    }
    assert [(q.name, q.value) for q in risk.get_qualitative_evaluations()] == [(RISK_GROUP, codes.SCT.HighRisk)]
    assert [item.CodingSchemeDesignator for item in sr.CodingSchemeIdentificationSequence] == ["99CRLM"]
    evidence = {
        str(item.SeriesInstanceUID): {str(i.ReferencedSOPInstanceUID) for i in item.ReferencedSOPSequence}
        for study in sr.CurrentRequestedProcedureEvidenceSequence
        for item in study.ReferencedSeriesSequence
    }
    assert evidence == {str(cts[0].SeriesInstanceUID): set(ct_uids), str(seg.SeriesInstanceUID): {seg.SOPInstanceUID}}
    assert_valid_dicom(tmp_path / "out" / "tumour_seg.dcm")
    assert_valid_dicom(tmp_path / "out" / "report_sr.dcm")


def test_a_mask_without_lesions_reports_metastasis_absent_and_no_risk_when_none_is_given(tmp_path):
    import highdicom as hd

    folder = made_ct(tmp_path)
    write_both(folder, tmp_path / "out", [], risk=None)
    seg = hd.seg.segread(tmp_path / "out" / "tumour_seg.dcm")
    assert [seg.get_segment_description(k).segment_label for k in seg.get_segment_numbers()] == ["Metastasis"]
    assert int(seg.NumberOfFrames) == 4  # an empty segment still covers every CT slice
    sr = hd.sr.srread(tmp_path / "out" / "report_sr.dcm")
    assert sr.content.get_volumetric_roi_measurement_groups() == []
    (patient,) = sr.content.get_image_measurement_groups()
    assert [(q.name, q.value) for q in patient.get_qualitative_evaluations()] == [
        (codes.SCT.Metastasis, codes.SCT.Absent)
    ]
    assert "CodingSchemeIdentificationSequence" not in sr
    assert_valid_dicom(tmp_path / "out" / "tumour_seg.dcm")
    assert_valid_dicom(tmp_path / "out" / "report_sr.dcm")


def test_lesion_measures_on_an_anisotropic_grid():
    """crlm.predict.lesions alone: numbering in raster order, 26-connectivity, each value by brute force."""
    from crlm.data.nifti import Volume

    shape, spacing = (3, 70, 70), (3.0, 0.6, 1.1)
    lesions = planted(shape, (2, 30))
    hu = np.random.default_rng(2).normal(0, 50, shape)
    measures = measure_lesions(np.any(lesions, axis=0), Volume(hu, spacing))
    box, disc, corner = lesions
    assert [m.number for m in measures] == [1, 2, 3]
    for measure, lesion in zip(measures, [box, corner, disc]):  # by first voxel: (0, 2, 30), (0, 52, 60), (1, ...)
        assert measure.voxels == lesion.sum()
        assert measure.slices == tuple(np.flatnonzero(lesion.any(axis=(1, 2))))
        assert measure.volume_ml == pytest.approx(lesion.sum() * np.prod(spacing) / 1000)
        assert measure.longest_axial_mm == pytest.approx(longest_axial_mm(lesion, *spacing[1:]))
        assert measure.mean_hu == pytest.approx(hu[lesion].mean())


def test_model_record_names_the_arch_its_fold_files_and_the_settings(tmp_path, tiny_params):
    paths = []
    for fold, content in enumerate([b"fold zero", b"fold one"]):
        paths.append(tmp_path / str(fold) / "model.pt")
        paths[-1].parent.mkdir()
        paths[-1].write_bytes(content)
    record = model_record(get_arch("unet"), paths, tiny_params, crf=False, liver_mask=False, version="1.2.3")
    assert record.name == "crlm U-Net fold ensemble" and record.version == "1.2.3"
    digest = hashlib.sha256(b"fold zerofold one").hexdigest()[:16]
    assert record.parameters[0] == f"arch unet, 2 fold models, sha256 of the model files {digest}"
    assert '"crop": "none (no liver mask)"' in record.parameters[2]
    assert record.parameters[3:] == (f"evaluate.threshold {tiny_params.evaluate.threshold:g}", "crf off")
