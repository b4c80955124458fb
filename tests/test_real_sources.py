"""TCIA and LiTS, offline: readers, plan, resumable fetch, safe extraction and the data stages, on files
the tests write in the real formats (DICOM CT + DICOM-SEG with pydicom/highdicom, NIfTI with nibabel)."""

import dataclasses
import json
import os
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
    seg = read_seg_labels(tmp_path / "seg.dcm", ct)
    labels = seg.array
    assert seg.tumour_segments == ("Tumor_1", "Tumor_2") and seg.liver_segments == ("Liver",)
    assert labels[2, 7, 3] == 2                                  # the planted tumour voxel where it was put
    np.testing.assert_array_equal(labels == 2, tumour_1 | tumour_2)
    np.testing.assert_array_equal(labels >= 1, liver | tumour_1 | tumour_2)


def test_segments_are_matched_case_insensitively_and_by_their_coded_type(tmp_path):
    from pydicom.sr.codedict import codes

    hu, liver, tumour_1, tumour_2 = _volume()
    vessel = np.zeros(hu.shape, bool)
    vessel[1:5, 12, 2:16] = True
    datasets = write_ct_series(tmp_path / "ct", hu)
    # TCIA-like: lower-case labels, a tumour named only by its code (Mass), a vessel that is neither
    write_seg(tmp_path / "seg.dcm", datasets, liver, [tumour_1, tumour_2, vessel],
              names=["liver", "TUMOR_1", "Region 7", "Hepatic vein"],
              types=[codes.SCT.Liver, codes.SCT.Neoplasm, codes.SCT.Mass, codes.SCT.HepaticVein])
    seg = read_seg_labels(tmp_path / "seg.dcm", read_ct_series(tmp_path / "ct"))
    assert (seg.liver_segments, seg.tumour_segments, seg.other_segments) == (
        ("liver",), ("TUMOR_1", "Region 7"), ("Hepatic vein",))
    np.testing.assert_array_equal(seg.array == 2, tumour_1 | tumour_2)
    assert not (seg.array[vessel & ~liver] > 0).any()           # the vessel outside the liver is background


def test_a_seg_without_a_tumour_segment_is_noted_by_patient_in_qc(tmp_path, tiny_params):
    from crlm.data.qc import qc_summary, run_qc
    from crlm.data.slices import build_slices

    cfg = dataclasses.replace(tiny_params.phantom, n_slices=6)
    case = phantom.generate_case(cfg, 0)
    datasets = write_ct_series(tmp_path / "dicom" / "CRLM-9" / "CT_1", case.volume.astype(float),
                               spacing=case.spacing_mm, patient_id="CRLM-9")
    write_seg(tmp_path / "dicom" / "CRLM-9" / "SEG_1" / "seg.dcm", datasets, case.labels >= 1, [],
              names=["Liver"], types=None)
    manifest = build_slices(tcia_cases(tmp_path), tmp_path / "slices", 3)
    assert (manifest["label"] == 0).all() and manifest["note"].str.startswith("no_tumour_segment").all()
    qc = run_qc(manifest, tmp_path / "slices", tiny_params.qc)
    notes = qc_summary(manifest, qc, pd.DataFrame({"patient_id": [], "source": []}))["notes"]
    assert notes["no_tumour_segment"]["count"] == 1
    assert "seg.dcm has no tumour segment" in notes["no_tumour_segment"]["patients"]["tcia-CRLM-9"]


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


KAGGLE_KEY_JSON = '{"username": "u", "key": "k"}'
# each way the installed kaggle package logs in: (environment, files under HOME), with what it will use
KAGGLE_LOGINS = {
    "none": ({}, {}, None),
    "token_env": ({"KAGGLE_API_TOKEN": "t0k"}, {}, "access token (KAGGLE_API_TOKEN)"),
    "token_file": ({}, {".kaggle/access_token": "t0k"}, "access token (access_token)"),
    "oauth": ({}, {".kaggle/credentials.json": '{"refresh_token": "r", "username": "u"}'}, "OAuth login"),
    "key_env": ({"KAGGLE_USERNAME": "u", "KAGGLE_KEY": "k"}, {}, "API key"),
    "key_file": ({}, {".kaggle/kaggle.json": KAGGLE_KEY_JSON}, "API key ({home}/.kaggle/kaggle.json"),
    "key_xdg": ({"XDG_CONFIG_HOME": "{home}/xdg"}, {"xdg/kaggle/kaggle.json": KAGGLE_KEY_JSON},
                "API key ({home}/xdg/kaggle/kaggle.json"),
    "key_config_dir": ({"KAGGLE_CONFIG_DIR": "{home}/cfg"}, {"cfg/kaggle.json": KAGGLE_KEY_JSON},
                       "API key ({home}/cfg/kaggle.json"),
}


@pytest.mark.parametrize("case", list(KAGGLE_LOGINS))
def test_kaggle_login_is_found_by_the_kaggle_package_own_lookup(tmp_path, case):
    """In a fresh process (kaggle reads its config folder once, at import) with a temporary HOME."""
    env_extra, files, expected = KAGGLE_LOGINS[case]
    home = tmp_path / "home"
    for name, text in files.items():
        (home / name).parent.mkdir(parents=True, exist_ok=True)
        (home / name).write_text(text)
        (home / name).chmod(0o600)    # as Kaggle asks; else kaggle prints a warning
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "PYTHONPATH": str(REPO / "src"),
           **{k: v.format(home=home) for k, v in env_extra.items()}}
    code = """
from pathlib import Path
from crlm.config import LitsConfig
from crlm.data import lits
def download(slug, archive):
    print("download", slug)
    raise InterruptedError
print(lits.kaggle_login())
try:
    lits.fetch(LitsConfig(datasets=("a/b",), max_volumes=0), Path("lits"), download)
except lits.KaggleCredentialsError as exc:
    print("error:", exc)
except InterruptedError:
    pass
"""
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120,
                            cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    found, outcome = result.stdout.strip().splitlines()[-2:]
    if expected is None:
        assert found == "None"
        assert outcome.startswith("error: Kaggle credentials not found. Log in once with `kaggle auth login`")
    else:
        assert found.startswith(expected.format(home=home)), found
        assert outcome == "download a/b"


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

    one = _lits_cfg({"datasets": ["a/lits"], "max_volumes": 0})
    archive = tmp_path / "archives" / "a__lits.zip"
    archive.parent.mkdir(parents=True)
    archive.write_bytes(b"PK\x03\x04 cut short")                       # an interrupted download
    def login():
        return "API key (test)"

    assert lits.fetch(one, tmp_path, download, login) == ["a/lits"]
    assert lits.fetch(one, tmp_path, download, login) == [] and calls == ["a/lits"]
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


def test_an_interrupted_kaggle_download_resumes_from_its_partial_file(tmp_path):
    """The real kaggle package downloads from a local HTTP server. An earlier run was cut off after 40%,
    leaving the partial file and resume marker that the package writes (written here with its own
    _write_resume_marker). kaggle_download must ask only for the missing bytes (force=True would not)."""
    import threading
    from email.utils import formatdate
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from types import SimpleNamespace

    import requests

    payload = bytes(np.random.default_rng(0).integers(0, 256, 300_000, dtype=np.uint8))
    etag, ranges = '"lits-v1"', []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            asked = self.headers.get("Range")
            ranges.append(asked)
            start = int(asked.split("=")[1].rstrip("-")) if asked else 0
            self.send_response(206 if asked else 200)
            self.send_header("Content-Length", str(len(payload) - start))
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("ETag", etag)
            self.send_header("Last-Modified", formatdate(0, usegmt=True))
            self.end_headers()
            try:
                self.wfile.write(payload[start:])
            except (BrokenPipeError, ConnectionResetError):   # the first response is abandoned for the range
                pass

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/lits.zip"

    class LocalClient:   # stands in for Kaggle's servers only: the download logic is the package's own
        datasets = SimpleNamespace(dataset_api_client=SimpleNamespace(
            download_dataset=lambda request: requests.get(url, stream=True, timeout=30)))

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def http_client(self):
            return None

    api = lits._kaggle_api_class()()
    api.build_kaggle_client = LocalClient
    partial = tmp_path / "lits.zip"                    # the package's own name: <dataset>.zip
    cut = 120_000
    partial.write_bytes(payload[:cut])
    api._write_resume_marker(str(partial), etag, len(payload))
    try:
        lits.kaggle_download("someone/lits", tmp_path / "someone__lits.zip", api=api)
    finally:
        server.shutdown()
    assert (tmp_path / "someone__lits.zip").read_bytes() == payload
    assert ranges[-1] == f"bytes={cut}-"                 # only the missing bytes were asked for
    assert not (tmp_path / "lits.zip.kaggle-partial").exists()


def test_idc_clinical_table_goes_through_the_real_client_and_the_normaliser(tmp_path):
    """idc-index's real IDCClient.get_clinical_table, on a clinical index and table in IDC's schema (the
    download of both, IDCClient.fetch_index, needs the network and is what this stands in for)."""
    from idc_index import IDCClient

    from crlm.data.clinical import normalise_clinical

    prefix = "bigquery-public-data.idc_v25_clinical."
    index_rows = [("colorectal_liver_metastases", "crlm_clinical", c) for c in
                  ("dicom_patient_id", "Patient_ID", "source_batch", "age", "overall_survival_months")]
    index_rows += [("colorectal_liver_metastases", "crlm_ancillary", "dicom_patient_id"),
                   ("nlst", "nlst_canc", "overall_survival_months")]
    client = IDCClient()
    client.clinical_index = pd.DataFrame({"collection_id": [r[0] for r in index_rows],
                                          "table_name": [prefix + r[1] for r in index_rows],
                                          "short_table_name": [r[1] for r in index_rows],
                                          "column": [r[2] for r in index_rows]})
    client.clinical_data_dir = str(tmp_path / "clinical_data")
    os.makedirs(client.clinical_data_dir)
    pd.DataFrame({
        "dicom_patient_id": ["CRLM-002", "CRLM-001"], "Patient_ID": ["CRLM-002", "CRLM-001"],
        "source_batch": [0, 0], "age": [64, 51], "sex": [1, 2], "carcinoembryonic_antigen": [-999.0, 3.5],
        "total_response_percent": ["90%", None], "vital_status": [1, 0],
        "overall_survival_months": [13.2, 60.0], "relevant_notes": [None, "re-resection"],
    }).to_parquet(tmp_path / "clinical_data" / "crlm_clinical")     # get_clinical_table reads <dir>/<short name>
    out = tmp_path / "raw" / "clinical.csv"
    tcia.write_clinical("idc", out, client=client)
    table = normalise_clinical(pd.read_csv(out, dtype=str), "tcia", origin=str(out))
    assert list(table["patient_id"]) == ["tcia-CRLM-001", "tcia-CRLM-002"]      # one row per patient
    first, second = table.iloc[0], table.iloc[1]
    assert np.isnan(second["carcinoembryonic_antigen"]) and first["carcinoembryonic_antigen"] == 3.5
    assert second["total_response_percent"] == pytest.approx(0.9) and np.isnan(first["total_response_percent"])
    assert (first["sex"], second["vital_status"], second["overall_survival_months"]) == (2.0, 1.0, 13.2)
    assert pd.isna(second["relevant_notes"]) and first["relevant_notes"] == "re-resection"     # not 'None'
    assert list(table["source_batch"]) == ["0", "0"] and list(table["Patient_ID"]) == ["CRLM-001", "CRLM-002"]
    assert tcia.clinical_table_name(client.clinical_index) == "crlm_clinical"
    client.clinical_index = client.clinical_index[client.clinical_index["column"] != "overall_survival_months"]
    with pytest.raises(RuntimeError, match=r"expected exactly one with 'overall_survival_months', found \[\]"):
        tcia.write_clinical("idc", out, client=client)
