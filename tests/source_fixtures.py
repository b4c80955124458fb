"""TCIA and LiTS inputs in their real formats, for tests/data/sources/: test_tcia.py, test_lits.py and
test_real_sources.py: a TCIA patient folder (DICOM CT + SEG) and a Kaggle LiTS archive (NIfTI in a zip)."""

import zipfile

from crlm.data.nifti import write_nifti
from tests.dicom_fixtures import write_ct_series, write_seg


def write_tcia_patient(root, case_id, case, seg=True, ct=True):
    patient = root / "dicom" / case_id
    datasets = write_ct_series(
        patient / "CT_1.2.3", case.volume.astype(float), spacing=case.spacing_mm, patient_id=case_id
    )
    if seg:
        write_seg(patient / "SEG_1.2.4" / "seg.dcm", datasets, case.labels >= 1, [case.labels == 2])
    if not ct:
        for path in (patient / "CT_1.2.3").iterdir():
            path.unlink()
        (patient / "CT_1.2.3").rmdir()


def lits_zip(path, cases, spacing):
    with zipfile.ZipFile(path, "w") as z:
        for k, case in enumerate(cases):
            for name, array in (
                (f"volume_pt1/volume-{k}.nii", case.volume),
                (f"segmentations/segmentation-{k}.nii", case.labels),
            ):
                file = path.parent / "tmp.nii"
                write_nifti(file, array, spacing)
                z.write(file, name)
                file.unlink()
