"""The readers on DICOM that no one on this project wrote: a real 3-slice abdominal CT and the liver
DICOM-SEG that dcmqi (3D Slicer's converter) wrote for it (../shared/realdata/dcmqi-liver/README.md).
Like many real SEGs it does not record SpatialLocationsPreserved, and it has no tumour segment."""

import json
import shutil
import subprocess
import sys

import nibabel as nib
import numpy as np
import pandas as pd
import pydicom
import pytest
import yaml

from crlm.data.dicom import read_ct_series, read_seg_labels
from crlm.data.nifti import read_nifti
from tests.conftest import REPO, repo_params_dict, tiny_params_dict
from tests.dvc_repo import write_raw_manifest

REALDATA = REPO.parent / "shared" / "realdata" / "dcmqi-liver"
pytestmark = pytest.mark.skipif(not REALDATA.is_dir(), reason=f"{REALDATA} not found (shared/ beside the clone)")
LIVER_VOXELS = 107098  # the SEG's set pixels over its 3 frames (highdicom: seg.get_volume().array.sum())


def test_real_ct_reads_in_hounsfield_units_sorted_inferior_to_superior():
    ct = read_ct_series(REALDATA / "ct")
    files = sorted(
        (pydicom.dcmread(p) for p in (REALDATA / "ct").iterdir()), key=lambda ds: float(ds.ImagePositionPatient[2])
    )
    expected = np.stack([ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept) for ds in files])
    np.testing.assert_array_equal(ct.volume.array, expected)
    assert ct.volume.array.shape == (3, 512, 512)
    assert ct.volume.spacing_mm == pytest.approx((1.0, 0.810547, 0.810547))
    assert (ct.volume.array.min(), ct.volume.array.max()) == (-3024.0, 1381.0)  # padding .. bone
    assert ct.sop_uids == tuple(str(ds.SOPInstanceUID) for ds in files)


def test_real_dcmqi_seg_reads_as_liver_on_every_slice_and_says_it_has_no_tumour_segment():
    ct = read_ct_series(REALDATA / "ct")
    seg = read_seg_labels(REALDATA / "seg" / "liver.dcm", ct)
    assert (seg.liver_segments, seg.tumour_segments, seg.other_segments) == (("Liver",), (), ())
    assert int((seg.array == 1).sum()) == LIVER_VOXELS and not (seg.array == 2).any()
    assert all((seg.array[z] == 1).sum() > 30_000 for z in range(3))
    liver_hu = np.median(ct.volume.array[seg.array == 1])
    assert 20 <= liver_hu <= 80, liver_hu  # soft tissue: the mask lies on the liver, not shifted off it


def test_nifti_and_dicom_readers_agree_on_the_real_case(tmp_path):
    """highdicom's own volumes (and their LPS affines) of the CT and SEG, saved as a NIfTI pair with
    nibabel (RAS affine), must read back as exactly what the DICOM readers give."""
    import highdicom as hd

    ct_volume = hd.get_volume_from_series([pydicom.dcmread(p) for p in sorted((REALDATA / "ct").iterdir())])
    seg_volume = hd.seg.segread(str(REALDATA / "seg" / "liver.dcm")).get_volume(combine_segments=True)
    assert seg_volume.geometry_equal(ct_volume)
    for name, volume in (("ct", ct_volume), ("labels", seg_volume)):
        lps_to_ras = np.diag([-1.0, -1.0, 1.0, 1.0])
        affine = lps_to_ras @ volume.affine[:, [2, 1, 0, 3]]  # highdicom: (slice, row, column) -> LPS
        data = np.ascontiguousarray(volume.array.transpose(2, 1, 0))  # NIfTI: (column, row, slice)
        nib.save(nib.Nifti1Image(data.astype(np.int16), affine), str(tmp_path / f"{name}.nii.gz"))
    ct = read_ct_series(REALDATA / "ct")
    from_nifti = read_nifti(tmp_path / "ct.nii.gz")
    np.testing.assert_array_equal(from_nifti.array, ct.volume.array)
    assert from_nifti.spacing_mm == pytest.approx(ct.volume.spacing_mm, abs=1e-5)
    np.testing.assert_array_equal(
        read_nifti(tmp_path / "labels.nii.gz").array, read_seg_labels(REALDATA / "seg" / "liver.dcm", ct).array
    )


def test_real_case_passes_slices_and_qc_as_three_kept_liver_slices_with_a_note(tmp_path, raw_store):
    ct_uid = str(pydicom.dcmread(REALDATA / "ct" / "01.dcm", stop_before_pixels=True).SeriesInstanceUID)
    seg_uid = str(pydicom.dcmread(REALDATA / "seg" / "liver.dcm", stop_before_pixels=True).SeriesInstanceUID)
    patient = raw_store / "tcia" / "dicom" / "DCMQI-1"  # as TCIA's collection arrives (CRLM_RAW_DIR)
    shutil.copytree(REALDATA / "ct", patient / f"CT_{ct_uid}")
    shutil.copytree(REALDATA / "seg", patient / f"SEG_{seg_uid}")
    pd.DataFrame(
        {"Patient-ID": ["DCMQI-1"], "age": [60], "overall_survival_months": [24.0], "vital_status": [0]}
    ).to_csv(raw_store / "tcia" / "clinical.csv", index=False)
    params = tiny_params_dict(data={"sources": ["tcia"]})
    params["qc"] = repo_params_dict()["qc"]  # the default QC rules
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    write_raw_manifest(tmp_path, raw_store, {"tcia": "tcia"})
    for stage in ("slices", "qc"):
        result = subprocess.run(
            [sys.executable, str(REPO / "stages" / f"{stage}.py")], cwd=tmp_path, capture_output=True, text=True
        )
        assert result.returncode == 0, result.stderr
    assert "qc: note no_tumour_segment for 1 patient(s): ['tcia-DCMQI-1']" in result.stdout
    qc = pd.read_parquet(tmp_path / "data" / "interim" / "qc.parquet")
    assert list(qc["image_id"]) == [f"tcia-DCMQI-1-s{z:03d}" for z in range(3)] and qc["kept"].all()
    summary = json.loads((tmp_path / "metrics" / "qc.json").read_text())
    assert summary["rows"] == {"slices": 3, "unusable_cases": 0, "kept": 3, "excluded": 0, "ambiguous_kept": 0}
    assert list(summary["notes"]["no_tumour_segment"]["patients"]) == ["tcia-DCMQI-1"]
