"""End to end: `dvc repro` of the data stages on a tiny profile in a temporary git repository."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from crlm.config import params_from_dict
from crlm.data.splits import make_splits
from tests.conftest import REPO, tiny_params_dict

pytestmark = pytest.mark.slow

DETERMINISTIC_OUTPUTS = ["data/splits/splits.json", "data/interim/slices.parquet", "data/interim/clinical.parquet",
                         "data/interim/qc.parquet", "data/processed/manifest.parquet", "metrics/qc.json",
                         "metrics/splits.json"]


def _run(args, cwd):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "DVC_NO_ANALYTICS": "1"}
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    assert result.returncode == 0, f"{args} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def _dvc(*args, cwd):
    return _run([sys.executable, "-m", "dvc", *args], cwd)


def _write_params(repo, **overrides):
    (repo / "params.yaml").write_text(yaml.safe_dump(tiny_params_dict(**overrides), sort_keys=False))


@pytest.fixture
def tiny_repo(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    for name in ("dvc.yaml", ".gitignore"):
        shutil.copy(REPO / name, repo / name)
    shutil.copytree(REPO / "stages", repo / "stages")
    shutil.copytree(REPO / "src", repo / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    _write_params(repo, phantom={"defect_rate": 0.25})
    _run(["git", "init", "-q"], repo)
    _dvc("init", "-q", cwd=repo)
    return repo


def _snapshot(repo):
    return {name: (repo / name).read_bytes() for name in DETERMINISTIC_OUTPUTS}


def test_dvc_repro_runs_the_data_stages_and_reruns_only_what_changed(tiny_repo):
    _dvc("repro", cwd=tiny_repo)
    first = _snapshot(tiny_repo)

    qc = json.loads((tiny_repo / "metrics/qc.json").read_text())
    assert qc["excluded_by_reason"]["unreadable"] == 1  # the planted truncated file
    assert qc["excluded_by_reason"]["low_resolution"] > 0
    splits = json.loads((tiny_repo / "data/splits/splits.json").read_text())
    assert len(splits["folds"]) == 3 and splits["test"]
    manifest = pd.read_parquet(tiny_repo / "data/processed/manifest.parquet")
    assert set(splits["test"]) | set(splits["folds"][0]["train"]) | set(splits["folds"][0]["val"]) == set(
        manifest["patient_id"])
    assert (tiny_repo / "plots/augmentation.png").stat().st_size > 10_000

    assert json.loads(_dvc("status", "--json", cwd=tiny_repo)) == {}

    _write_params(tiny_repo, phantom={"defect_rate": 0.25}, split={"seed": 11})
    assert set(json.loads(_dvc("status", "--json", cwd=tiny_repo))) == {"split"}
    log = _dvc("repro", cwd=tiny_repo)
    assert "Running stage 'split'" in log
    for stage in ("fetch", "slices", "qc", "prepare", "augment"):
        assert f"Running stage '{stage}'" not in log
    reseeded = params_from_dict(tiny_params_dict(split={"seed": 11})).split
    expected = make_splits(pd.read_parquet(tiny_repo / "data/processed/manifest.parquet"), reseeded)
    assert json.loads((tiny_repo / "data/splits/splits.json").read_text()) == expected

    _write_params(tiny_repo, phantom={"defect_rate": 0.25})
    _dvc("repro", "--force", cwd=tiny_repo)
    assert _snapshot(tiny_repo) == first, "same seed must give byte-identical manifests and splits"
