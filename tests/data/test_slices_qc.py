"""slices and qc on small volumes written here, each defect planted on purpose."""

import dataclasses

import numpy as np
import pandas as pd
import pytest

from crlm.data import phantom
from crlm.data import qc as qc_module
from crlm.data import slices as slices_module
from crlm.data.labels import is_ambiguous
from crlm.data.nifti import write_nifti
from crlm.data.qc import qc_summary, run_qc
from crlm.data.slices import build_slices, load_slice
from crlm.data.sources.phantom import volume_folder_cases
from tests.factories import spy_workers

SPACING = (5.0, 2.0, 2.0)


def _write_case(root, case_id, volume, labels, spacing=SPACING):
    write_nifti(root / "volumes" / f"volume-{case_id}.nii.gz", volume, spacing)
    if labels is not None:
        write_nifti(root / "segmentations" / f"segmentation-{case_id}.nii.gz", labels, spacing)


def _good_case(n=128, nz=4, tumour_px=25):
    rng = np.random.default_rng(0)
    volume = rng.normal(100, 20, size=(nz, n, n)).astype(np.int16)
    labels = np.zeros((nz, n, n), np.uint8)
    labels[1:, 40:80, 30:70] = 1
    labels[2, 50:55, 40 : 40 + tumour_px // 5] = 2
    return volume, labels


def _slices(tmp_path, min_tumor_px=10):
    cases = volume_folder_cases("phantom", tmp_path / "raw")
    return build_slices(cases, tmp_path / "slices", min_tumor_px)


def test_only_liver_slices_and_labels_follow_tumour_area(tmp_path):
    volume, labels = _good_case(tumour_px=25)
    _write_case(tmp_path / "raw", "1", volume, labels)
    manifest = _slices(tmp_path, min_tumor_px=10)
    assert manifest["slice_index"].tolist() == [1, 2, 3]  # slice 0 has no liver
    assert manifest.set_index("slice_index").loc[2, "tumour_area_px"] == 25
    assert manifest["label"].tolist() == [0, 1, 0]
    assert manifest["n_lesions"].tolist() == [0, 1, 0]
    row = manifest.iloc[1]
    arrays = load_slice(tmp_path / "slices", row)
    np.testing.assert_array_equal(arrays["image"], volume[2])
    assert arrays["tumour"].sum() == 25
    assert row["image_id"] == "phantom-1-s002" and row["patient_id"] == "phantom-1"
    # a lesion under the threshold is not a metastasis slice
    assert _slices(tmp_path, min_tumor_px=26)["label"].sum() == 0


def test_phantom_slice_labels_agree_with_masks(tmp_path, tiny_params):
    cfg = dataclasses.replace(tiny_params.phantom, n_patients=6)
    phantom.write_phantom(cfg, tmp_path / "raw")
    manifest = _slices(tmp_path, min_tumor_px=3)
    truth = pd.read_csv(tmp_path / "raw" / "phantom_truth.csv", dtype={"Patient-ID": str})
    for row in manifest.itertuples():
        tumour = load_slice(tmp_path / "slices", row)["tumour"]
        assert row.tumour_area_px == tumour.sum()
        assert row.label == int(tumour.sum() >= 3)
    per_patient = manifest.groupby("patient_id")["tumour_area_px"].sum()
    for row in truth.itertuples():
        assert (per_patient[f"phantom-{row._1}"] > 0) == (row.n_lesions > 0)


@pytest.mark.parametrize(
    "defect, reason, needle",
    [
        ("corrupt", "unreadable", "volume-9.nii.gz"),
        ("missing_mask", "missing_mask", "segmentation-9.nii.gz"),
        ("shape_mismatch", "shape_mismatch", "segmentation-9.nii.gz"),
    ],
)
def test_unusable_case_is_recorded_and_excluded_by_name(tmp_path, tiny_params, defect, reason, needle):
    volume, labels = _good_case()
    _write_case(tmp_path / "raw", "1", volume, labels)
    if defect == "corrupt":
        _write_case(tmp_path / "raw", "9", volume, labels)
        path = tmp_path / "raw" / "volumes" / "volume-9.nii.gz"
        path.write_bytes(path.read_bytes()[:300])
    elif defect == "missing_mask":
        _write_case(tmp_path / "raw", "9", volume, None)
    else:
        _write_case(tmp_path / "raw", "9", volume, labels[:, :64, :])
    manifest = _slices(tmp_path)
    bad = manifest[manifest["patient_id"] == "phantom-9"]
    assert len(bad) == 1 and bad["case_error"].item() == reason and needle in bad["detail"].item()
    qc = run_qc(manifest, tmp_path / "slices", tiny_params.qc)
    assert qc.loc[qc["patient_id"] == "phantom-9", "reason"].item() == reason
    assert qc.loc[qc["patient_id"] == "phantom-1", "kept"].all()
    clinical = pd.DataFrame(
        {
            "patient_id": ["phantom-1", "phantom-9", "phantom-77"],
            "source": "phantom",
            "case_id": ["1", "9", "77"],
            "overall_survival_months": [10.0, np.nan, 5.0],
        }
    )
    summary = qc_summary(manifest, qc, clinical)
    assert summary["excluded_by_reason"][reason] == 1
    assert needle in summary["unusable_cases"]["phantom-9"]
    assert summary["patients"]["lost_to_qc"] == ["phantom-9"]
    assert summary["clinical"]["without_images"] == ["phantom-77"]
    assert summary["clinical"]["missing_survival"] == ["phantom-9"]


def _qc_reasons(tmp_path, tiny_params, volume, labels, spacing=SPACING):
    _write_case(tmp_path / "raw", "1", volume, labels, spacing)
    manifest = _slices(tmp_path)
    qc = run_qc(manifest, tmp_path / "slices", tiny_params.qc)
    return dict(zip(manifest["slice_index"], qc["reason"]))


def test_qc_low_resolution(tmp_path, tiny_params):
    volume, labels = _good_case()
    volume, labels = volume[:, ::4, ::4], labels[:, ::4, ::4]  # 32 px; the tiny profile needs >= 48
    assert set(_qc_reasons(tmp_path, tiny_params, volume, labels).values()) == {"low_resolution"}


def test_qc_low_resolution_by_spacing(tmp_path, tiny_params):
    volume, labels = _good_case()
    reasons = _qc_reasons(tmp_path, tiny_params, volume, labels, spacing=(5.0, 9.0, 9.0))
    assert set(reasons.values()) == {"low_resolution"}


def test_qc_blank_saturated_and_empty_liver(tmp_path, tiny_params):
    volume, labels = _good_case(nz=6)
    labels[4] = 0
    labels[4, 40:42, 30:33] = 1  # 6 liver pixels < min_liver_px (10)
    volume[1] = -1024  # blank
    volume[3, :, :] = 3071  # saturated
    labels[5] = labels[1]
    reasons = _qc_reasons(tmp_path, tiny_params, volume, labels)
    assert reasons == {1: "blank", 2: "", 3: "saturated", 4: "empty_liver", 5: ""}


def test_qc_keeps_a_slice_with_a_tumour_below_the_threshold_and_counts_it(tmp_path, tiny_params):
    """Labelled 0 on a lesion: ambiguous, but QC excludes nothing by label (only training samples leave it out)."""
    volume, labels = _good_case(tumour_px=25)
    _write_case(tmp_path / "raw", "1", volume, labels)
    manifest = _slices(tmp_path, min_tumor_px=26)
    qc = run_qc(manifest, tmp_path / "slices", tiny_params.qc)
    assert qc["kept"].all() and set(qc["reason"]) == {""}
    assert is_ambiguous(manifest).tolist() == [False, True, False]  # slices 1, 2, 3: the tumour is on 2
    summary = qc_summary(manifest, qc, pd.DataFrame({"patient_id": ["phantom-1"], "source": "phantom"}))
    assert summary["rows"]["ambiguous_kept"] == 1 and summary["rows"]["excluded"] == 0
    assert "ambiguous_tumour" not in summary["excluded_by_reason"]


def test_qc_too_few_liver_slices_excludes_the_case(tmp_path, tiny_params):
    volume, labels = _good_case(nz=6)
    labels[3:] = 0  # liver on slices 1 and 2 only (slice 0 has none)
    reasons = _qc_reasons(tmp_path, tiny_params, volume, labels)
    assert reasons == {1: "too_few_liver_slices", 2: "too_few_liver_slices"}


def test_qc_finds_every_planted_phantom_defect(tmp_path, tiny_params):
    cfg = dataclasses.replace(tiny_params.phantom, n_patients=8, defect_rate=0.5)
    truth = phantom.write_phantom(cfg, tmp_path / "raw")
    manifest = _slices(tmp_path, min_tumor_px=3)
    qc = run_qc(manifest, tmp_path / "slices", tiny_params.qc)
    excluded = qc[~qc["kept"]].groupby("patient_id")["reason"].agg(set)
    expected = {
        "truncated": {"unreadable"},
        "low_resolution": {"low_resolution"},
        "blank_slices": {"blank"},
        "saturated_slices": {"saturated"},
    }
    for row in truth[truth["defect"] != ""].itertuples():
        assert expected[row.defect] <= excluded[f"phantom-{row._1}"], row.defect


def test_slices_and_qc_same_with_a_pool_of_workers(tmp_path, tiny_params, monkeypatch):
    monkeypatch.setattr(slices_module, "MIN_CASES_PER_WORKER", 1)  # pools even for a cohort this small
    monkeypatch.setattr(qc_module, "MIN_ROWS_PER_WORKER", 1)
    slices_workers = spy_workers(monkeypatch, slices_module)
    qc_workers = spy_workers(monkeypatch, qc_module)
    phantom.write_phantom(dataclasses.replace(tiny_params.phantom, n_patients=6, defect_rate=0.7), tmp_path / "raw")
    cases = volume_folder_cases("phantom", tmp_path / "raw")
    one = build_slices(cases, tmp_path / "one", 3, workers=1)
    two = build_slices(cases, tmp_path / "two", 3, workers=2)
    pd.testing.assert_frame_equal(one, two)
    files = sorted(p.name for p in (tmp_path / "one").iterdir())
    assert files == sorted(one.loc[one["path"] != "", "path"])
    assert files == sorted(p.name for p in (tmp_path / "two").iterdir())
    for name in files:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes(), name
    by_one = run_qc(one, tmp_path / "one", tiny_params.qc, workers=1)
    by_two = run_qc(one, tmp_path / "one", tiny_params.qc, workers=2)
    pd.testing.assert_frame_equal(by_one, by_two)
    assert {"unreadable", "low_resolution", "blank", "saturated"} <= set(by_one["reason"])
    assert slices_workers == [1, 2] and qc_workers == [1, 2]
