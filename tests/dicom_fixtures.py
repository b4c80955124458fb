"""Small real-format DICOM files for the tests: a CT series (pydicom) and a DICOM-SEG (highdicom)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

INTERCEPT = -1024.0


def write_ct_series(
    folder: Path,
    hu: np.ndarray,
    spacing=(5.0, 0.8, 0.8),
    patient_id="CRLM-T1",
    flip_cols=False,
    z_positions=None,
    series_uid=None,
) -> list[Dataset]:
    """hu is (z, y, x) in the pipeline's convention; with flip_cols the file stores columns right-to-left
    (ImageOrientationPatient row cosine -1, 0, 0). Files are written in shuffled order."""
    folder.mkdir(parents=True, exist_ok=True)
    dz, dy, dx = spacing
    series_uid = series_uid or generate_uid()
    study_uid, frame_uid = generate_uid(), generate_uid()
    z_positions = np.arange(hu.shape[0]) * dz if z_positions is None else np.asarray(z_positions)
    datasets = []
    for k in np.random.default_rng(0).permutation(hu.shape[0]):
        stored = hu[k][:, ::-1] if flip_cols else hu[k]
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study_uid, series_uid, frame_uid
        ds.Modality, ds.PatientID, ds.PatientName = "CT", patient_id, f"{patient_id}^"
        ds.PatientBirthDate, ds.PatientSex, ds.StudyDate, ds.StudyTime = "19600101", "M", "20200101", "120000"
        ds.StudyID, ds.AccessionNumber, ds.ReferringPhysicianName = "1", "1", ""
        ds.SeriesNumber, ds.InstanceNumber, ds.Manufacturer = 1, int(k) + 1, "test"
        x0 = (hu.shape[2] - 1) * dx if flip_cols else 0.0
        ds.ImagePositionPatient = [x0, 0.0, float(z_positions[k])]
        ds.ImageOrientationPatient = [-1.0 if flip_cols else 1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
        ds.PixelSpacing, ds.SliceThickness = [dy, dx], dz
        ds.Rows, ds.Columns = stored.shape
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.RescaleIntercept, ds.RescaleSlope = INTERCEPT, 1.0
        ds.PixelData = np.round(stored - INTERCEPT).astype(np.uint16).tobytes()
        ds.save_as(folder / f"{ds.SOPInstanceUID}.dcm", enforce_file_format=True)
        datasets.append(ds)
    return datasets


def write_seg(
    path: Path,
    ct: list[Dataset],
    liver: np.ndarray,
    tumours: list[np.ndarray],
    names: list[str] | None = None,
    types: list | None = None,
) -> None:
    """A binary DICOM-SEG on the CT: segment 1 'Liver', then 'Tumor_1'.. (overlapping the liver), or the
    given segment names and SegmentedPropertyType codes (one per mask: liver first, then the tumours).
    Masks are (z, y, x) in the pipeline's convention, z in the order of the CT's positions."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    ordered = sorted(ct, key=lambda ds: float(ds.ImagePositionPatient[2]))
    flip_cols = float(ordered[0].ImageOrientationPatient[0]) < 0
    masks = np.stack([liver, *tumours], axis=-1).astype(bool)  # (z, y, x, segments)
    if flip_cols:
        masks = masks[:, :, ::-1, :]
    names = names or ["Liver"] + [f"Tumor_{k + 1}" for k in range(len(tumours))]
    types = types or [codes.SCT.Liver] + [codes.SCT.Neoplasm] * len(tumours)
    descriptions = [
        hd.seg.SegmentDescription(
            segment_number=k + 1,
            segment_label=name,
            segmented_property_category=codes.SCT.Organ if k == 0 else codes.SCT.MorphologicallyAbnormalStructure,
            segmented_property_type=kind,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL,
        )
        for k, (name, kind) in enumerate(zip(names, types))
    ]
    seg = hd.seg.Segmentation(
        source_images=ordered,
        pixel_array=masks,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=generate_uid(),
        series_number=2,
        sop_instance_uid=generate_uid(),
        instance_number=1,
        manufacturer="test",
        manufacturer_model_name="test",
        software_versions="1",
        device_serial_number="1",
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    seg.save_as(path)
