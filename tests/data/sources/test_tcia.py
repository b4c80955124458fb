"""TCIA, offline: the DICOM CT and SEG readers, the case listing, the download plan, the resumable fetch and
the IDC clinical table, on files the tests write in the real formats (DICOM CT + DICOM-SEG with
pydicom/highdicom)."""

import dataclasses
import os

import numpy as np
import pandas as pd
import pytest

from crlm.data import phantom, tcia
from crlm.data.dicom import DicomReadError, read_ct_series, read_seg_labels
from crlm.data.slices import case_slices
from crlm.data.sources import SOURCES
from crlm.data.sources.tcia import tcia_cases
from tests.dicom_fixtures import write_ct_series, write_seg
from tests.source_fixtures import write_tcia_patient


def _volume():
    hu = np.full((6, 24, 20), -100.0)
    hu[:, 4:20, 2:16] = 60.0
    liver = np.zeros(hu.shape, bool)
    liver[1:5, 4:20, 2:16] = True
    tumour_1 = np.zeros(hu.shape, bool)
    tumour_1[2, 7, 3] = True  # the planted voxel: slice 2, row 7, column 3
    tumour_2 = np.zeros(hu.shape, bool)
    tumour_2[2:4, 7:10, 3:6] = True  # overlaps tumour 1 and the liver
    return hu, liver, tumour_1, tumour_2


@pytest.mark.parametrize("flip_cols", [False, True])
def test_ct_and_seg_with_overlapping_segments_are_aligned_slice_by_slice(tmp_path, flip_cols):
    hu, liver, tumour_1, tumour_2 = _volume()
    datasets = write_ct_series(tmp_path / "ct", hu, spacing=(5.0, 0.7, 0.8), flip_cols=flip_cols)
    write_seg(tmp_path / "seg.dcm", datasets, liver, [tumour_1, tumour_2])
    ct = read_ct_series(tmp_path / "ct")
    np.testing.assert_array_equal(ct.volume.array, hu)  # HU via the rescale, sorted inferior -> superior
    assert ct.volume.spacing_mm == (5.0, 0.7, 0.8)
    seg = read_seg_labels(tmp_path / "seg.dcm", ct)
    labels = seg.array
    assert seg.tumour_segments == ("Tumor_1", "Tumor_2") and seg.liver_segments == ("Liver",)
    assert labels[2, 7, 3] == 2  # the planted tumour voxel where it was put
    np.testing.assert_array_equal(labels == 2, tumour_1 | tumour_2)
    np.testing.assert_array_equal(labels >= 1, liver | tumour_1 | tumour_2)


def test_segments_are_matched_case_insensitively_and_by_their_coded_type(tmp_path):
    from pydicom.sr.codedict import codes

    hu, liver, tumour_1, tumour_2 = _volume()
    vessel = np.zeros(hu.shape, bool)
    vessel[1:5, 12, 2:16] = True
    datasets = write_ct_series(tmp_path / "ct", hu)
    # TCIA-like: lower-case labels, a tumour named only by its code (Mass), a vessel that is neither
    write_seg(
        tmp_path / "seg.dcm",
        datasets,
        liver,
        [tumour_1, tumour_2, vessel],
        names=["liver", "TUMOR_1", "Region 7", "Hepatic vein"],
        types=[codes.SCT.Liver, codes.SCT.Neoplasm, codes.SCT.Mass, codes.SCT.HepaticVein],
    )
    seg = read_seg_labels(tmp_path / "seg.dcm", read_ct_series(tmp_path / "ct"))
    assert (seg.liver_segments, seg.tumour_segments, seg.other_segments) == (
        ("liver",),
        ("TUMOR_1", "Region 7"),
        ("Hepatic vein",),
    )
    np.testing.assert_array_equal(seg.array == 2, tumour_1 | tumour_2)
    assert not (seg.array[vessel & ~liver] > 0).any()  # the vessel outside the liver is background


def test_a_seg_without_a_tumour_segment_is_noted_by_patient_in_qc(tmp_path, tiny_params):
    from crlm.data.qc import qc_summary, run_qc
    from crlm.data.slices import build_slices

    cfg = dataclasses.replace(tiny_params.phantom, n_slices=6)
    case = phantom.generate_case(cfg, 0)
    datasets = write_ct_series(
        tmp_path / "dicom" / "CRLM-9" / "CT_1", case.volume.astype(float), spacing=case.spacing_mm, patient_id="CRLM-9"
    )
    write_seg(
        tmp_path / "dicom" / "CRLM-9" / "SEG_1" / "seg.dcm", datasets, case.labels >= 1, [], names=["Liver"], types=None
    )
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
    write_ct_series(tmp_path / "ct_b", hu)  # another series of the same anatomy
    with pytest.raises(DicomReadError, match="seg.dcm: SEG references CT series") as info:
        read_seg_labels(tmp_path / "seg.dcm", read_ct_series(tmp_path / "ct_b"))
    assert info.value.reason == "missing_ct"


def test_seg_whose_frames_are_not_in_the_ct_is_a_geometry_mismatch(tmp_path):
    hu, liver, tumour_1, _ = _volume()
    first = write_ct_series(tmp_path / "ct", hu)
    write_seg(tmp_path / "seg.dcm", first, liver, [tumour_1])
    for path in (tmp_path / "ct").iterdir():  # the series re-exported: same series, new instances
        path.unlink()
    write_ct_series(tmp_path / "ct", hu, series_uid=first[0].SeriesInstanceUID)
    with pytest.raises(DicomReadError, match="seg.dcm: SEG refers to 6 CT instance") as info:
        read_seg_labels(tmp_path / "seg.dcm", read_ct_series(tmp_path / "ct"))
    assert info.value.reason == "geometry_mismatch"


def test_tcia_cases_record_a_missing_seg_and_a_missing_ct_by_name(tmp_path, tiny_params):
    cfg = dataclasses.replace(tiny_params.phantom, n_slices=6)
    write_tcia_patient(tmp_path, "CRLM-1", phantom.generate_case(cfg, 0))
    write_tcia_patient(tmp_path, "CRLM-2", phantom.generate_case(cfg, 1), seg=False)
    write_tcia_patient(tmp_path, "CRLM-3", phantom.generate_case(cfg, 2), ct=False)
    cases = tcia_cases(tmp_path)
    assert [c.patient_id for c in cases] == ["tcia-CRLM-1", "tcia-CRLM-2", "tcia-CRLM-3"]
    (tmp_path / "slices").mkdir()
    rows = {c.case_id: case_slices(c, tmp_path / "slices", 3) for c in cases}
    assert all(r["case_error"] == "" for r in rows["CRLM-1"]) and len(rows["CRLM-1"]) > 0
    assert rows["CRLM-2"][0]["case_error"] == "missing_mask" and "CRLM-2" in rows["CRLM-2"][0]["detail"]
    assert rows["CRLM-3"][0]["case_error"] == "missing_ct" and "CRLM-3" in rows["CRLM-3"][0]["detail"]


def test_dry_run_plan_from_the_bundled_index_has_197_patients_ct_and_expert_seg(tiny_params, tmp_path):
    params = dataclasses.replace(tiny_params, data=dataclasses.replace(tiny_params.data, sources=("tcia",)))
    fetched = SOURCES["tcia"].fetch(tmp_path / "tcia", params, dry_run=True)
    assert fetched.files == () and not (tmp_path / "tcia").exists()
    text = fetched.summary
    assert text.startswith("tcia: 197 patients, series {'CT': 197, 'SEG': 197}")
    rows = tcia.selection(tcia.bundled_index())
    assert (
        rows["analysis_result_id"].isna().all()
        and (rows.query("Modality == 'SEG'")["SeriesDescription"] == "Segmentation").all()
    )
    assert tcia.plan_summary(rows)["size_gb"] > 5  # about 10.6 GB
    with_ai = tcia.selection(tcia.bundled_index(), max_patients=3, include_ai=True)
    assert with_ai["PatientID"].nunique() == 3 and (with_ai["Modality"] == "SEG").sum() > 3


def _index(n_patients=3, files=4):
    rows = []
    for p in range(n_patients):
        for modality, count in (("CT", files), ("SEG", 1)):
            rows.append(
                {
                    "collection_id": tcia.COLLECTION,
                    "PatientID": f"CRLM-{p}",
                    "Modality": modality,
                    "SeriesInstanceUID": f"1.{p}.{modality}",
                    "SeriesDescription": "Segmentation",
                    "analysis_result_id": None,
                    "instanceCount": count,
                    "series_size_MB": 1.0,
                }
            )
    return pd.DataFrame(rows)


def test_interrupted_tcia_download_resumes_without_fetching_finished_series(tmp_path):
    rows = tcia.selection(_index())
    requested = []

    def download(uids, root, stop_after=None):
        requested.append(list(uids))
        for k, row in enumerate(rows[rows["SeriesInstanceUID"].isin(uids)].itertuples()):
            folder = tcia.series_folder(root, row)
            folder.mkdir(parents=True, exist_ok=True)
            n = row.instanceCount if stop_after is None or k < stop_after else 1  # cut short
            for i in range(n):
                (folder / f"{i}.dcm").write_bytes(b"x")
            if stop_after is not None and k >= stop_after:
                raise ConnectionError("network dropped")

    with pytest.raises(ConnectionError):
        tcia.fetch(rows, tmp_path, lambda uids, root: download(uids, root, stop_after=2))
    fetched = tcia.fetch(rows, tmp_path, download)
    assert fetched == ["1.1.CT", "1.1.SEG", "1.2.CT", "1.2.SEG"]  # the two finished series are kept
    assert tcia.fetch(rows, tmp_path, download) == [] and len(requested) == 2
    assert tcia.missing_series(rows, tmp_path).empty


def test_idc_clinical_table_goes_through_the_real_client_and_the_normaliser(tmp_path):
    """idc-index's real IDCClient.get_clinical_table, on a clinical index and table in IDC's schema (the
    download of both, IDCClient.fetch_index, needs the network and is what this stands in for)."""
    from idc_index import IDCClient

    from crlm.data.clinical import normalise_clinical

    prefix = "bigquery-public-data.idc_v25_clinical."
    index_rows = [
        ("colorectal_liver_metastases", "crlm_clinical", c)
        for c in ("dicom_patient_id", "Patient_ID", "source_batch", "age", "overall_survival_months")
    ]
    index_rows += [
        ("colorectal_liver_metastases", "crlm_ancillary", "dicom_patient_id"),
        ("nlst", "nlst_canc", "overall_survival_months"),
    ]
    client = IDCClient()
    client.clinical_index = pd.DataFrame(
        {
            "collection_id": [r[0] for r in index_rows],
            "table_name": [prefix + r[1] for r in index_rows],
            "short_table_name": [r[1] for r in index_rows],
            "column": [r[2] for r in index_rows],
        }
    )
    client.clinical_data_dir = str(tmp_path / "clinical_data")
    os.makedirs(client.clinical_data_dir)
    pd.DataFrame(
        {
            "dicom_patient_id": ["CRLM-002", "CRLM-001"],
            "Patient_ID": ["CRLM-002", "CRLM-001"],
            "source_batch": [0, 0],
            "age": [64, 51],
            "sex": [1, 2],
            "carcinoembryonic_antigen": [-999.0, 3.5],
            "total_response_percent": ["90%", None],
            "vital_status": [1, 0],
            "overall_survival_months": [13.2, 60.0],
            "relevant_notes": [None, "re-resection"],
        }
    ).to_parquet(tmp_path / "clinical_data" / "crlm_clinical")  # get_clinical_table reads <dir>/<short name>
    out = tmp_path / "raw" / "clinical.csv"
    tcia.write_clinical("idc", out, client=client)
    table = normalise_clinical(pd.read_csv(out, dtype=str), "tcia", origin=str(out))
    assert list(table["patient_id"]) == ["tcia-CRLM-001", "tcia-CRLM-002"]  # one row per patient
    first, second = table.iloc[0], table.iloc[1]
    assert np.isnan(second["carcinoembryonic_antigen"]) and first["carcinoembryonic_antigen"] == 3.5
    assert second["total_response_percent"] == pytest.approx(0.9) and np.isnan(first["total_response_percent"])
    assert (first["sex"], second["vital_status"], second["overall_survival_months"]) == (2.0, 1.0, 13.2)
    assert pd.isna(second["relevant_notes"]) and first["relevant_notes"] == "re-resection"  # not 'None'
    assert list(table["source_batch"]) == ["0", "0"] and list(table["Patient_ID"]) == ["CRLM-001", "CRLM-002"]
    assert tcia.clinical_table_name(client.clinical_index) == "crlm_clinical"
    client.clinical_index = client.clinical_index[client.clinical_index["column"] != "overall_survival_months"]
    with pytest.raises(RuntimeError, match=r"expected exactly one with 'overall_survival_months', found \[\]"):
        tcia.write_clinical("idc", out, client=client)
