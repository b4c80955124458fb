"""TCIA and LiTS together through the data stages (slices, qc, prepare, split), on tiny fixtures in the real
formats (tests/source_fixtures.py); each source's own tests: test_tcia.py, test_lits.py."""

import dataclasses
import json
import subprocess
import sys

import pandas as pd
import pytest

from crlm.data import lits, phantom
from tests.conftest import REPO, tiny_params_dict
from tests.dvc_repo import write_raw_manifest
from tests.source_fixtures import lits_zip, write_tcia_patient


def _run_stage(name, cwd):
    result = subprocess.run(
        [sys.executable, str(REPO / "stages" / f"{name}.py")], cwd=cwd, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.slow
def test_data_stages_run_on_tiny_tcia_and_lits_fixtures(tmp_path, tiny_params, raw_store):
    import yaml

    cfg = dataclasses.replace(tiny_params.phantom, n_slices=8)
    raw = raw_store  # CRLM_RAW_DIR, which the stages inherit
    for k in range(6):
        write_tcia_patient(raw / "tcia", f"CRLM-{k}", phantom.generate_case(cfg, k))
    clinical = phantom.clinical_table(cfg, [phantom.generate_case(cfg, k) for k in range(6)])
    clinical["Patient-ID"] = [f"CRLM-{k}" for k in range(6)]
    clinical.to_csv(raw / "tcia" / "clinical.csv", index=False)
    lits_cases = [phantom.generate_case(cfg, k) for k in range(6, 12)]
    (raw / "lits" / "archives").mkdir(parents=True)
    lits_zip(raw / "lits" / "archives" / "x.zip", lits_cases, lits_cases[0].spacing_mm)
    lits.safe_extract(raw / "lits" / "archives" / "x.zip", raw / "lits" / "extracted")
    params = tiny_params_dict(data={"sources": ["tcia", "lits"]}, split={"folds": 2, "test_fraction": 0.2})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    write_raw_manifest(tmp_path, raw, {"tcia": "tcia", "lits": "lits"})
    for stage in ("slices", "qc", "prepare", "split"):
        _run_stage(stage, tmp_path)
    manifest = pd.read_parquet(tmp_path / "data/processed/manifest.parquet")
    assert set(manifest["source"]) == {"tcia", "lits"}
    assert manifest["patient_id"].str.match(r"^(tcia-CRLM-|lits-)\d+$").all()
    clinical_out = pd.read_parquet(tmp_path / "data/interim/clinical.parquet")
    assert list(clinical_out["patient_id"]) == [f"tcia-CRLM-{k}" for k in range(6)]  # LiTS: no survival
    splits = json.loads((tmp_path / "data/splits/splits.json").read_text())
    assert splits["test"] and len(splits["folds"]) == 2
