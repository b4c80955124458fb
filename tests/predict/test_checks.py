"""`crlm predict`'s checks before it scores (tests/predict/test_predict.py has the outputs themselves): the real GE CT
(../shared/realdata/dcmqi-liver) written as a float NIfTI with NaN voxels, refused by default and scored as air
with --nonfinite mask; an output folder that holds an earlier run's files; an --out that is not a folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from crlm.data.dicom import read_ct_series, read_seg_labels
from crlm.data.nifti import write_nifti
from tests.conftest import tiny_params_dict
from tests.factories import save_fold_models
from tests.predict.test_predict import REALDATA, assert_one_message, needs_realdata, run

BLOCK = (slice(200, 240), slice(200, 240))  # 40 x 40 px, inside the liver on every slice


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("predict_checks")
    params_path = root / "params.yaml"
    params_path.write_text(yaml.safe_dump(tiny_params_dict()))
    return {
        "params": params_path,
        "unet": save_fold_models(root / "models", "unet", tiny_params_dict()),
        "missing": root / "no_models",
    }


@pytest.fixture(scope="module")
def real_ct() -> tuple[np.ndarray, np.ndarray, tuple]:
    """The real CT's HU (z, y, x) float32 and its liver (dcmqi's SEG), with the series' spacing."""
    if not REALDATA.is_dir():
        pytest.skip(f"{REALDATA} not present")
    ct = read_ct_series(REALDATA / "ct")
    liver = read_seg_labels(REALDATA / "seg" / "liver.dcm", ct).array != 0
    return ct.volume.array.astype(np.float32), liver, ct.volume.spacing_mm


def write_ct(path: Path, real_ct, fill: float | None = None, slices=slice(None)) -> Path:
    """The real CT as a float NIfTI, the BLOCK of `slices` set to `fill` (None: left as it is)."""
    hu, _, spacing = real_ct
    hu = hu.copy()
    if fill is not None:
        hu[(slices, *BLOCK)] = fill
    write_nifti(path, hu, spacing)
    return path


def test_nan_voxels_are_refused_by_default(tmp_path, setup, real_ct, capsys):
    volume = write_ct(tmp_path / "nan.nii.gz", real_ct, np.nan)
    assert run([volume, "--out", tmp_path / "out"], setup) == 2
    assert_one_message(capsys, volume, "4,800 non-finite voxels (NaN) in slices 0-2; a CT holds finite HU")
    assert not (tmp_path / "out" / "slices.csv").exists()


def test_nan_voxels_with_nonfinite_mask_are_scored_as_air_and_reported(tmp_path, setup, real_ct, caplog, tiny_params):
    """Scored exactly as the same CT with the block at the HU window's lower bound; a slice whose whole liver
    is NaN gets no probability, only the reason."""
    _, liver, spacing = real_ct
    write_nifti(tmp_path / "liver.nii.gz", liver.astype(np.uint8), spacing)
    nan = real_ct[0].copy()
    nan[(slice(None), *BLOCK)] = np.nan
    nan[1][liver[1]] = np.nan
    write_nifti(tmp_path / "nan.nii.gz", nan, spacing)
    with caplog.at_level("INFO"):
        assert (
            run(
                [
                    tmp_path / "nan.nii.gz",
                    "--mask",
                    tmp_path / "liver.nii.gz",
                    "--nonfinite",
                    "mask",
                    "--out",
                    tmp_path / "out",
                ],
                setup,
            )
            == 0
        )
    prepare = tiny_params.prepare
    low = prepare.window_center_hu - prepare.window_width_hu / 2
    reference = write_ct(tmp_path / "air.nii.gz", real_ct, low)
    assert run([reference, "--mask", tmp_path / "liver.nii.gz", "--out", tmp_path / "ref"], setup) == 0

    written, expected = pd.read_csv(tmp_path / "out" / "slices.csv"), pd.read_csv(tmp_path / "ref" / "slices.csv")
    n_nan = np.isnan(nan).reshape(3, -1).sum(axis=1)
    assert written["slice_index"].tolist() == [0, 1, 2]
    assert written["nonfinite_voxels"].tolist() == n_nan.tolist() and n_nan[1] > 1600
    assert expected["nonfinite_voxels"].tolist() == [0, 0, 0]
    assert written["not_scored"].fillna("").tolist() == ["", "liver region entirely non-finite", ""]
    assert written.loc[1, ["probability", "metastasis", "tumour_px"]].isna().all()
    for column in ("probability", "metastasis", "tumour_px"):
        assert written.loc[[0, 2], column].tolist() == expected.loc[[0, 2], column].tolist()
    assert (
        f"{n_nan.sum():,} non-finite voxels (NaN) in slices 0-2: scored as {low:g} HU (the HU window's "
        "lower bound: air); slice 1 not scored (liver region entirely non-finite)"
    ) in caplog.text
    assert "; 1 not scored (slices.csv's not_scored)" in caplog.text


@pytest.mark.parametrize("policy", [[], ["--nonfinite", "mask"]], ids=["default", "mask"])
def test_an_all_nan_volume_is_refused_even_with_nonfinite_mask(tmp_path, setup, real_ct, capsys, policy):
    hu, _, spacing = real_ct
    volume = tmp_path / "all_nan.nii.gz"
    write_nifti(volume, np.full(hu.shape, np.nan, np.float32), spacing)
    assert run([volume, *policy, "--out", tmp_path / "out"], setup) == 2
    assert_one_message(
        capsys,
        volume,
        f"{hu.size:,} non-finite voxels (NaN) in slices 0-2: every slice is "
        "entirely non-finite, nothing to score (--nonfinite mask or not)",
    )


@needs_realdata
def test_a_non_empty_output_folder_is_refused_unless_overwrite(tmp_path, setup, real_ct, capsys):
    """An earlier DICOM run's slices.csv, SEG and SR stay untouched; --overwrite replaces them, and removes the
    SEG and SR that a NIfTI run does not write, keeping the user's other files."""
    out = tmp_path / "out"
    assert run([REALDATA / "ct", "--out", out], setup) == 0
    earlier = {path.name: path.read_bytes() for path in out.iterdir()}
    (out / "notes.txt").write_text("mine")
    volume = write_ct(tmp_path / "ct.nii.gz", real_ct)
    capsys.readouterr()
    assert run([volume, "--out", out], setup) == 2
    assert_one_message(
        capsys,
        out,
        "output folder is not empty (notes.txt, overlay.png, report_sr.dcm, risk.json, ...); pass --overwrite "
        "to replace an earlier run's outputs",
    )
    assert {name: (out / name).read_bytes() for name in earlier} == earlier

    assert run([volume, "--out", out, "--overwrite"], setup) == 0
    assert sorted(path.name for path in out.iterdir()) == [
        "notes.txt",
        "overlay.png",
        "risk.json",
        "slices.csv",
        "tumour_mask.nii.gz",
    ]
    assert "sop_instance_uid" not in pd.read_csv(out / "slices.csv")


@pytest.mark.parametrize(
    "where, problem",
    [
        ("file", "--out names a file; it takes a folder (created if missing)"),
        ("file/sub", "cannot create or write the output folder: {file} is a file"),
    ],
)
def test_an_out_that_cannot_be_a_folder_is_refused_before_the_models_are_read(tmp_path, setup, capsys, where, problem):
    """The models folder is missing too: the output check comes first, before any model is read."""
    (tmp_path / "file").write_text("an earlier result")
    out = tmp_path / where
    assert run([REALDATA / "ct", "--out", out], setup, models="missing") == 2
    assert_one_message(capsys, out, problem.format(file=tmp_path / "file"))
    assert (tmp_path / "file").read_text() == "an earlier result"
