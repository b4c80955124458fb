"""The raw store (CRLM_RAW_DIR) and its manifest data/raw.json: fetch writes it, slices checks the store against it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from crlm.core.paths import RAW_DIR_ENV, raw_dir
from crlm.data.sources import SOURCES, RawStoreError
from crlm.data.sources.phantom import phantom_folder, volume_folder_cases
from crlm.data.sources.store import Listing, as_in_default_store, checked_folder, read_manifest
from crlm.data.sources.tcia import tcia_cases
from crlm.params import params_from_dict
from tests.conftest import REPO, tiny_params_dict

SMALL = {"phantom": {"n_patients": 4, "n_slices": 6}}


def _fetch(workspace: Path, store: Path, wait: bool = True, **sections):
    """stages/fetch.py run in `workspace` (its data/raw.json) with the raw store `store`."""
    workspace.mkdir(parents=True, exist_ok=True)
    (workspace / "params.yaml").write_text(yaml.safe_dump(tiny_params_dict(**{**SMALL, **sections})))
    env = {**os.environ, RAW_DIR_ENV: str(store)}
    process = subprocess.Popen(
        [sys.executable, str(REPO / "stages/fetch.py")],
        cwd=workspace,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    if not wait:
        return process
    out, _ = process.communicate()
    assert process.returncode == 0, out
    return out


def test_raw_dir_is_the_env_var_or_data_raw(monkeypatch, tmp_path):
    monkeypatch.setenv(RAW_DIR_ENV, str(tmp_path))
    assert raw_dir() == tmp_path
    monkeypatch.delenv(RAW_DIR_ENV)
    assert raw_dir() == Path("data/raw")


def test_the_manifest_is_the_same_wherever_the_store_lies_and_names_no_store(tmp_path):
    _fetch(tmp_path / "a", tmp_path / "store_a")
    _fetch(tmp_path / "b", tmp_path / "store_b")
    text = (tmp_path / "a/data/raw.json").read_text()
    assert text == (tmp_path / "b/data/raw.json").read_text()
    assert str(tmp_path) not in text
    sources = json.loads(text)["sources"]
    folder = phantom_folder(params_from_dict(tiny_params_dict(**SMALL)).phantom)
    assert list(sources) == ["phantom"] and sources["phantom"]["folder"] == folder
    files = {entry["path"] for entry in sources["phantom"]["files"]}
    assert files == {"clinical.csv", "phantom_truth.csv"} | {
        f"{kind}s/{kind}-{i}.nii.gz" for kind in ("volume", "segmentation") for i in range(4)
    }
    assert sorted(p.name for p in (tmp_path / "store_a").iterdir()) == [f".{folder}.lock", folder]


def test_fetch_keeps_a_complete_phantom_and_replaces_a_damaged_one(tmp_path):
    store = tmp_path / "store"
    _fetch(tmp_path / "ws", store)
    manifest = (tmp_path / "ws/data/raw.json").read_text()
    folder = store / json.loads(manifest)["sources"]["phantom"]["folder"]
    stamps = {p: p.stat().st_mtime_ns for p in folder.rglob("*")}
    assert "already in the store" in _fetch(tmp_path / "ws", store)
    assert {p: p.stat().st_mtime_ns for p in folder.rglob("*")} == stamps
    (folder / "volumes/volume-1.nii.gz").write_bytes(b"not a volume")
    assert "replaced a damaged folder" in _fetch(tmp_path / "ws", store)
    assert (tmp_path / "ws/data/raw.json").read_text() == manifest
    assert not [p for p in store.iterdir() if ".tmp-" in p.name or ".damaged-" in p.name]


def test_another_phantom_gets_its_own_folder():
    params = params_from_dict(tiny_params_dict(**SMALL))
    other = params_from_dict(tiny_params_dict(phantom={"n_patients": 5, "n_slices": 6}))
    assert phantom_folder(params.phantom) == phantom_folder(params_from_dict(tiny_params_dict(**SMALL)).phantom)
    assert phantom_folder(other.phantom) != phantom_folder(params.phantom)


def test_concurrent_fetches_into_one_store_write_the_phantom_once(tmp_path):
    store = tmp_path / "store"
    processes = [_fetch(tmp_path / f"ws{i}", store, wait=False) for i in range(3)]
    outs = [p.communicate()[0] for p in processes]
    assert [p.returncode for p in processes] == [0, 0, 0], outs
    assert sum("already in the store" in out for out in outs) == 2, outs
    manifests = {(tmp_path / f"ws{i}/data/raw.json").read_text() for i in range(3)}
    assert len(manifests) == 1
    assert len([p for p in store.iterdir() if not p.name.startswith(".")]) == 1


def test_the_slices_check_names_the_missing_file_the_store_and_the_fix(tmp_path):
    store = tmp_path / "store"
    _fetch(tmp_path / "ws", store)
    sources = read_manifest(tmp_path / "ws/data/raw.json")
    folder, listing = checked_folder(sources, "phantom", store)
    assert folder == store / sources["phantom"]["folder"]
    assert len(volume_folder_cases("phantom", folder, listing)) == 4
    (folder / "segmentations/segmentation-2.nii.gz").unlink()
    with pytest.raises(RawStoreError) as error:
        checked_folder(sources, "phantom", store)
    message = str(error.value)
    assert f"{folder}/segmentations/segmentation-2.nii.gz: missing" in message
    assert f"raw store {store}" in message and "dvc repro -f fetch" in message and RAW_DIR_ENV in message
    with pytest.raises(RawStoreError, match="lists no source 'tcia'"):
        checked_folder(sources, "tcia", store)
    (folder / "clinical.csv").write_text("x")
    with pytest.raises(RawStoreError, match="clinical.csv: 1 bytes, data/raw.json lists"):
        checked_folder(sources, "phantom", store)
    with pytest.raises(RawStoreError, match="run the fetch stage first"):
        read_manifest(tmp_path / "nowhere.json")


def test_a_file_damaged_after_fetch_with_its_size_kept_is_found_by_its_md5(tmp_path):
    store = tmp_path / "store"
    _fetch(tmp_path / "ws", store)
    sources = read_manifest(tmp_path / "ws/data/raw.json")
    folder = store / sources["phantom"]["folder"]
    volume = folder / "volumes/volume-1.nii.gz"
    data = bytearray(volume.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte, the same size
    volume.write_bytes(bytes(data))
    with pytest.raises(RawStoreError) as error:
        checked_folder(sources, "phantom", store)
    assert f"{volume}: md5 differs from the one data/raw.json lists" in str(error.value)
    assert "dvc repro -f fetch" in str(error.value)


def test_a_shared_folder_gives_only_the_cases_the_manifest_lists(tmp_path):
    """Another experiment's fetch may have added patients to a shared folder (tcia, lits)."""
    phantom_dir = tmp_path / "phantom"
    for i in range(3):
        for kind in ("volume", "segmentation"):
            path = phantom_dir / f"{kind}s/{kind}-{i}.nii.gz"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"")
    listed = Listing(phantom_dir, ["volumes/volume-0.nii.gz", "volumes/volume-2.nii.gz"])
    assert [c.case_id for c in volume_folder_cases("phantom", phantom_dir, listed)] == ["0", "2"]
    assert len(volume_folder_cases("phantom", phantom_dir)) == 3

    tcia_dir = tmp_path / "tcia"
    for patient in ("CRLM-1", "CRLM-2"):
        (tcia_dir / "dicom" / patient / "CT_1.2").mkdir(parents=True)
        (tcia_dir / "dicom" / patient / "CT_1.2" / "a.dcm").write_bytes(b"")
    cases = tcia_cases(tcia_dir, Listing(tcia_dir, ["clinical.csv", "dicom/CRLM-2/CT_1.2/a.dcm"]))
    assert [(c.case_id, c.volume_path.name) for c in cases] == [("CRLM-2", "CT_1.2")]
    assert Path("elsewhere/x") not in Listing(tcia_dir, ["clinical.csv"])


def test_outputs_name_raw_files_as_in_the_default_store(tmp_path):
    folder = tmp_path / "store" / "phantom-0123abcd"
    frame = pd.DataFrame(
        {
            "detail": pd.Series([f"{folder}/volumes/volume-3.nii.gz: cannot read", ""], dtype="string"),
            "note": pd.Series(["", ""], dtype="string"),
        }
    )
    shown = as_in_default_store(frame, {"phantom": folder}, ["detail", "note"])
    assert shown["detail"].tolist() == ["data/raw/phantom/volumes/volume-3.nii.gz: cannot read", ""]
    assert shown.dtypes.equals(frame.dtypes)


def test_every_source_names_its_folder(tiny_params):
    params = tiny_params
    assert {name: source.folder(params) for name, source in SOURCES.items() if name != "phantom"} == {
        "tcia": "tcia",
        "lits": "lits",
    }
    assert SOURCES["phantom"].folder(params).startswith("phantom-")
