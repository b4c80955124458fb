"""TCIA and LiTS, offline: readers, plan, resumable fetch, safe extraction and the data stages, on files
the tests write in the real formats (DICOM CT + DICOM-SEG with pydicom/highdicom, NIfTI with nibabel)."""

import dataclasses
import json
import subprocess
import sys
import zipfile

import numpy as np
import pandas as pd
import pytest

from crlm.data import lits, phantom, tcia
from crlm.data.dicom import DicomReadError, read_ct_series, read_seg_labels
from crlm.data.nifti import write_nifti
from crlm.data.slices import case_slices
from crlm.data.sources import fetch, lits_kaggle_cases, tcia_cases
from tests.conftest import REPO, tiny_params_dict
from tests.dicom_fixtures import write_ct_series, write_seg


def _volume():
    hu = np.full((6, 24, 20), -100.0)
    hu[:, 4:20, 2:16] = 60.0
    liver = np.zeros(hu.shape, bool)
    liver[1:5, 4:20, 2:16] = True
    tumour_1 = np.zeros(hu.shape, bool)
    tumour_1[2, 7, 3] = True                      # the planted voxel: slice 2, row 7, column 3
    tumour_2 = np.zeros(hu.shape, bool)
    tumour_2[2:4, 7:10, 3:6] = True               # overlaps tumour 1 and the liver
    return hu, liver, tumour_1, tumour_2


@pytest.mark.parametrize("flip_cols", [False, True])
def test_ct_and_seg_with_overlapping_segments_are_aligned_slice_by_slice(tmp_path, flip_cols):
    hu, liver, tumour_1, tumour_2 = _volume()
    datasets = write_ct_series(tmp_path / "ct", hu, spacing=(5.0, 0.7, 0.8), flip_cols=flip_cols)
    write_seg(tmp_path / "seg.dcm", datasets, liver, [tumour_1, tumour_2])
    ct = read_ct_series(tmp_path / "ct")
    np.testing.assert_array_equal(ct.volume.array, hu)           # HU via the rescale, sorted inferior -> superior
    assert ct.volume.spacing_mm == (5.0, 0.7, 0.8)
    labels = read_seg_labels(tmp_path / "seg.dcm", ct)
    assert labels[2, 7, 3] == 2                                  # the planted tumour voxel where it was put
    np.testing.assert_array_equal(labels == 2, tumour_1 | tumour_2)
    np.testing.assert_array_equal(labels >= 1, liver | tumour_1 | tumour_2)


def test_mixed_spacing_and_missing_referenced_ct_are_named(tmp_path):
    hu, liver, tumour_1, _ = _volume()
    write_ct_series(tmp_path / "uneven", hu, z_positions=[0, 5, 10, 15, 22, 27])
    with pytest.raises(DicomReadError, match="uneven: mixed slice spacing") as info:
        read_ct_series(tmp_path / "uneven")
    assert info.value.reason == "mixed_spacing"
    first = write_ct_series(tmp_path / "ct_a", hu)
    write_seg(tmp_path / "seg.dcm", first, liver, [tumour_1])
    write_ct_series(tmp_path / "ct_b", hu)                       # another series of the same anatomy
    with pytest.raises(DicomReadError, match="seg.dcm: SEG references CT series") as info:
        read_seg_labels(tmp_path / "seg.dcm", read_ct_series(tmp_path / "ct_b"))
    assert info.value.reason == "missing_ct"


def test_seg_whose_frames_are_not_in_the_ct_is_a_geometry_mismatch(tmp_path):
    hu, liver, tumour_1, _ = _volume()
    first = write_ct_series(tmp_path / "ct", hu)
    write_seg(tmp_path / "seg.dcm", first, liver, [tumour_1])
    for path in (tmp_path / "ct").iterdir():     # the series re-exported: same series, new instances
        path.unlink()
    write_ct_series(tmp_path / "ct", hu, series_uid=first[0].SeriesInstanceUID)
    with pytest.raises(DicomReadError, match="seg.dcm: SEG refers to 6 CT instance") as info:
        read_seg_labels(tmp_path / "seg.dcm", read_ct_series(tmp_path / "ct"))
    assert info.value.reason == "geometry_mismatch"


def _write_tcia_patient(root, case_id, case, seg=True, ct=True):
    patient = root / "dicom" / case_id
    datasets = write_ct_series(patient / "CT_1.2.3", case.volume.astype(float), spacing=case.spacing_mm,
                               patient_id=case_id)
    if seg:
        write_seg(patient / "SEG_1.2.4" / "seg.dcm", datasets, case.labels >= 1, [case.labels == 2])
    if not ct:
        for path in (patient / "CT_1.2.3").iterdir():
            path.unlink()
        (patient / "CT_1.2.3").rmdir()


def test_tcia_cases_record_a_missing_seg_and_a_missing_ct_by_name(tmp_path, tiny_params):
    cfg = dataclasses.replace(tiny_params.phantom, n_slices=6)
    _write_tcia_patient(tmp_path, "CRLM-1", phantom.generate_case(cfg, 0))
    _write_tcia_patient(tmp_path, "CRLM-2", phantom.generate_case(cfg, 1), seg=False)
    _write_tcia_patient(tmp_path, "CRLM-3", phantom.generate_case(cfg, 2), ct=False)
    cases = tcia_cases(tmp_path)
    assert [c.patient_id for c in cases] == ["tcia-CRLM-1", "tcia-CRLM-2", "tcia-CRLM-3"]
    (tmp_path / "slices").mkdir()
    rows = {c.case_id: case_slices(c, tmp_path / "slices", 3) for c in cases}
    assert all(r["read_error"] == "" for r in rows["CRLM-1"]) and len(rows["CRLM-1"]) > 0
    assert rows["CRLM-2"][0]["read_error"] == "missing_mask" and "CRLM-2" in rows["CRLM-2"][0]["detail"]
    assert rows["CRLM-3"][0]["read_error"] == "missing_ct" and "CRLM-3" in rows["CRLM-3"][0]["detail"]


def test_dry_run_plan_from_the_bundled_index_has_197_patients_ct_and_expert_seg(tiny_params):
    params = dataclasses.replace(tiny_params, data=dataclasses.replace(tiny_params.data, sources=("tcia",)))
    text = fetch("tcia", REPO / "data" / "raw", params, dry_run=True)
    assert text.startswith("tcia: 197 patients, series {'CT': 197, 'SEG': 197}")
    rows = tcia.selection(tcia.bundled_index())
    assert rows["analysis_result_id"].isna().all() and (rows.query("Modality == 'SEG'")["SeriesDescription"]
                                                        == "Segmentation").all()
    assert tcia.plan_summary(rows)["size_gb"] > 5                   # about 10.6 GB
    with_ai = tcia.selection(tcia.bundled_index(), max_patients=3, include_ai=True)
    assert with_ai["PatientID"].nunique() == 3 and (with_ai["Modality"] == "SEG").sum() > 3


def _index(n_patients=3, files=4):
    rows = []
    for p in range(n_patients):
        for modality, count in (("CT", files), ("SEG", 1)):
            rows.append({"collection_id": tcia.COLLECTION, "PatientID": f"CRLM-{p}", "Modality": modality,
                         "SeriesInstanceUID": f"1.{p}.{modality}", "SeriesDescription": "Segmentation",
                         "analysis_result_id": None, "instanceCount": count, "series_size_MB": 1.0})
    return pd.DataFrame(rows)


def test_interrupted_tcia_download_resumes_without_fetching_finished_series(tmp_path):
    rows = tcia.selection(_index())
    requested = []

    def download(uids, root, stop_after=None):
        requested.append(list(uids))
        for k, row in enumerate(rows[rows["SeriesInstanceUID"].isin(uids)].itertuples()):
            folder = tcia.series_folder(root, row)
            folder.mkdir(parents=True, exist_ok=True)
            n = row.instanceCount if stop_after is None or k < stop_after else 1   # cut short
            for i in range(n):
                (folder / f"{i}.dcm").write_bytes(b"x")
            if stop_after is not None and k >= stop_after:
                raise ConnectionError("network dropped")

    with pytest.raises(ConnectionError):
        tcia.fetch(rows, tmp_path, lambda uids, root: download(uids, root, stop_after=2))
    fetched = tcia.fetch(rows, tmp_path, download)
    assert fetched == ["1.1.CT", "1.1.SEG", "1.2.CT", "1.2.SEG"]    # the two finished series are kept
    assert tcia.fetch(rows, tmp_path, download) == [] and len(requested) == 2
    assert tcia.missing_series(rows, tmp_path).empty


def test_missing_kaggle_credentials_say_where_to_put_them(tmp_path):
    cfg = tiny_params_dict()["data"]["lits"]
    with pytest.raises(lits.KaggleCredentialsError, match="kaggle.json"):
        lits.fetch(_lits_cfg(cfg), tmp_path, download=None, env={"HOME": str(tmp_path)})
    assert not lits.credentials_found({}, home=tmp_path)
    (tmp_path / ".kaggle").mkdir()
    (tmp_path / ".kaggle" / "kaggle.json").write_text('{"username": "u", "key": "k"}')
    assert lits.credentials_found({}, home=tmp_path)
    assert lits.credentials_found({"KAGGLE_USERNAME": "u", "KAGGLE_KEY": "k"}, home=tmp_path / "nowhere")


def _lits_cfg(raw):
    from crlm.config import LitsConfig

    return LitsConfig(datasets=tuple(raw["datasets"]), max_volumes=raw["max_volumes"])


def test_archive_with_a_path_traversal_entry_is_refused_and_nothing_is_written(tmp_path):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("volume_pt1/volume-0.nii", b"fine")
        z.writestr("../../outside.txt", b"escape")
    with pytest.raises(lits.UnsafeArchiveError, match=r"'\.\./\.\./outside\.txt' would be written outside"):
        lits.safe_extract(archive, tmp_path / "extracted")
    assert not (tmp_path / "extracted" / "volume_pt1").exists() and not (tmp_path.parent / "outside.txt").exists()


def _lits_zip(path, cases, spacing):
    with zipfile.ZipFile(path, "w") as z:
        for k, case in enumerate(cases):
            for name, array in ((f"volume_pt1/volume-{k}.nii", case.volume), (f"segmentations/segmentation-{k}.nii",
                                                                                case.labels)):
                file = path.parent / "tmp.nii"
                write_nifti(file, array, spacing)
                z.write(file, name)
                file.unlink()


def test_lits_fetch_resumes_and_lists_kaggle_cases(tmp_path, tiny_params):
    cfg = dataclasses.replace(tiny_params.phantom, n_slices=6)
    cases = [phantom.generate_case(cfg, k) for k in range(2)]
    calls = []

    def download(slug, archive):
        calls.append(slug)
        _lits_zip(archive, cases, cases[0].spacing_mm)

    env = {"KAGGLE_USERNAME": "u", "KAGGLE_KEY": "k"}
    one = _lits_cfg({"datasets": ["a/lits"], "max_volumes": 0})
    archive = tmp_path / "archives" / "a__lits.zip"
    archive.parent.mkdir(parents=True)
    archive.write_bytes(b"PK\x03\x04 cut short")                       # an interrupted download
    assert lits.fetch(one, tmp_path, download, env) == ["a/lits"]
    assert lits.fetch(one, tmp_path, download, env) == [] and calls == ["a/lits"]
    found = lits_kaggle_cases(tmp_path / "extracted")
    assert [c.case_id for c in found] == ["0", "1"] and all(c.label_path.is_file() for c in found)
    assert len(lits_kaggle_cases(tmp_path / "extracted", max_volumes=1)) == 1


def _run_stage(name, cwd):
    result = subprocess.run([sys.executable, str(REPO / "stages" / f"{name}.py")], cwd=cwd, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.slow
def test_data_stages_run_on_tiny_tcia_and_lits_fixtures(tmp_path, tiny_params):
    import yaml

    cfg = dataclasses.replace(tiny_params.phantom, n_slices=8)
    raw = tmp_path / "data" / "raw"
    for k in range(6):
        _write_tcia_patient(raw / "tcia", f"CRLM-{k}", phantom.generate_case(cfg, k))
    clinical = phantom.clinical_table(cfg, [phantom.generate_case(cfg, k) for k in range(6)])
    clinical["Patient-ID"] = [f"CRLM-{k}" for k in range(6)]
    clinical.to_csv(raw / "tcia" / "clinical.csv", index=False)
    lits_cases = [phantom.generate_case(cfg, k) for k in range(6, 12)]
    (raw / "lits" / "archives").mkdir(parents=True)
    _lits_zip(raw / "lits" / "archives" / "x.zip", lits_cases, lits_cases[0].spacing_mm)
    lits.safe_extract(raw / "lits" / "archives" / "x.zip", raw / "lits" / "extracted")
    params = tiny_params_dict(data={"sources": ["tcia", "lits"]}, split={"folds": 2, "test_fraction": 0.2})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for stage in ("slices", "qc", "prepare", "split"):
        _run_stage(stage, tmp_path)
    manifest = pd.read_parquet(tmp_path / "data/processed/manifest.parquet")
    assert set(manifest["source"]) == {"tcia", "lits"}
    assert manifest["patient_id"].str.match(r"^(tcia-CRLM-|lits-)\d+$").all()
    clinical_out = pd.read_parquet(tmp_path / "data/interim/clinical.parquet")
    assert list(clinical_out["patient_id"]) == [f"tcia-CRLM-{k}" for k in range(6)]   # LiTS: no survival
    splits = json.loads((tmp_path / "data/splits/splits.json").read_text())
    assert splits["test"] and len(splits["folds"]) == 2
