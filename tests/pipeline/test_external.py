"""End to end on the tiny profile with two phantom sites and site B as the external test set: `dvc repro`
through the report, in a temporary git repository (slow)."""

import json

import pandas as pd
import pytest
import yaml

from crlm.stability import spread
from tests.conftest import tiny_params_dict
from tests.dvc_repo import dvc, make_repo

pytestmark = pytest.mark.slow

STABILITY = {"seeds": [0, 1], "commit": "abc1234", "metrics": {"clmnet.cv_auc": spread([0.8, 0.9])}}


def test_two_phantom_sites_with_site_b_external_go_through_to_the_report(tmp_path):
    params = tiny_params_dict(
        phantom={"n_patients": 20, "site_b": {"share": 0.3, "pixel_spacing_mm": 4.4, "slice_thickness_mm": 2.5}},
        split={"external": "site:B"},
    )
    repo = make_repo(
        tmp_path,
        yaml.safe_dump(params, sort_keys=False),
        {"metrics/stability.json": json.dumps(STABILITY, indent=2)},
    )
    dvc("repro", cwd=repo)

    clinical = pd.read_parquet(repo / "data/interim/clinical.parquet")
    prepared = set(pd.read_parquet(repo / "data/processed/manifest.parquet")["patient_id"])
    site_b = set(clinical.loc[clinical["site"] == "B", "patient_id"])
    assert len(site_b) == 6 and set(clinical["site"]) == {"A", "B"}
    splits = json.loads((repo / "data/splits/splits.json").read_text())
    assert set(splits["test"]) == site_b & prepared
    for fold in splits["folds"]:
        assert not (set(fold["train"]) | set(fold["val"])) & site_b
    classification = json.loads((repo / "metrics/classification.json").read_text())
    assert classification["clmnet"]["test"]["patients"] == len(splits["test"])
    assert classification["clmnet"]["cv"]["out_of_fold"]["patients"] == len(prepared - site_b)

    report = (repo / "reports/report.md").read_text()
    assert "Test set: external, every patient of phantom site B (`split.external: site:B`)" in report
    table = report.split(
        "## Table 1b. Recognition AUC: cross-validation (out of fold) vs the test set, external (site:B)"
    )
    rows = table[1].split("\n\n")[1].splitlines()[2:]
    assert len(rows) == 4
    clmnet = next(row for row in rows if row.startswith("| CLM-Net |")).split(" | ")
    oof = classification["clmnet"]["cv"]["out_of_fold"]
    assert clmnet[1] == f"{oof['images']} ({oof['patients']})" and clmnet[3] == "0.071"  # SD of 0.8, 0.9
    assert json.loads(dvc("status", "--json", cwd=repo)) == {}
