import nibabel as nib
import numpy as np
import pytest

from crlm.data.nifti import VolumeReadError, read_nifti, write_nifti


def _ramp(shape=(5, 7, 9)):
    return np.arange(np.prod(shape), dtype=np.int16).reshape(shape)


def test_round_trip_keeps_array_and_spacing(tmp_path):
    axial = _ramp()
    write_nifti(tmp_path / "v.nii.gz", axial, (5.0, 0.8, 0.7))
    volume = read_nifti(tmp_path / "v.nii.gz")
    np.testing.assert_array_equal(volume.array, axial)
    assert volume.spacing_mm == pytest.approx((5.0, 0.8, 0.7))
    assert volume.array.dtype == np.int16


def test_other_orientation_lands_in_the_shared_convention(tmp_path):
    """The same anatomy stored RAS+ (no flips) reads back identical to the LPS-style file."""
    axial = _ramp()
    write_nifti(tmp_path / "lps.nii", axial, (5.0, 0.8, 0.7))
    # RAS+: i -> patient right, j -> anterior; axial x runs right -> left, y anterior -> posterior
    ras = axial.transpose(2, 1, 0)[::-1, ::-1, :]
    nib.save(nib.Nifti1Image(np.ascontiguousarray(ras), np.diag([0.7, 0.8, 5.0, 1.0])), str(tmp_path / "ras.nii"))
    np.testing.assert_array_equal(read_nifti(tmp_path / "ras.nii").array, read_nifti(tmp_path / "lps.nii").array)
    np.testing.assert_array_equal(read_nifti(tmp_path / "ras.nii").array, axial)


def test_truncated_file_error_names_the_file(tmp_path):
    path = tmp_path / "volume-3.nii.gz"
    write_nifti(path, _ramp((8, 32, 32)), (1.0, 1.0, 1.0))
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(VolumeReadError, match="volume-3.nii.gz"):
        read_nifti(path)


def test_missing_file_error_names_the_file(tmp_path):
    with pytest.raises(VolumeReadError, match="absent.nii.*not found"):
        read_nifti(tmp_path / "absent.nii")
