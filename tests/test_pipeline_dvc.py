"""End to end: `dvc repro` on a tiny profile in a temporary git repository."""

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
    (repo / "metrics").mkdir()
    shutil.copy(REPO / "metrics" / "stability.json", repo / "metrics")    # `make stability`'s, read by report
    _write_params(repo, phantom={"defect_rate": 0.25})
    _run(["git", "init", "-q"], repo)
    _dvc("init", "-q", cwd=repo)
    # dvclive (in the train stage) reads the current git revision: the repo needs a commit
    _run(["git", "add", "-A"], repo)
    _run(["git", "-c", "user.name=test", "-c", "user.email=test@example.org", "commit", "-qm", "tiny"], repo)
    return repo


def _snapshot(repo):
    return {name: (repo / name).read_bytes() for name in DETERMINISTIC_OUTPUTS}


DATA_STAGES = ("split", "augment")   # targets: these and everything upstream


def test_dvc_repro_runs_the_data_stages_and_reruns_only_what_changed(tiny_repo):
    _dvc("repro", *DATA_STAGES, cwd=tiny_repo)
    first = _snapshot(tiny_repo)

    qc = json.loads((tiny_repo / "metrics/qc.json").read_text())
    assert qc["excluded_by_reason"]["unreadable"] == 1  # the planted truncated file
    assert qc["excluded_by_reason"]["low_resolution"] > 0
    splits = json.loads((tiny_repo / "data/splits/splits.json").read_text())
    assert len(splits["folds"]) == 5 and splits["test"]
    manifest = pd.read_parquet(tiny_repo / "data/processed/manifest.parquet")
    assert set(splits["test"]) | set(splits["folds"][0]["train"]) | set(splits["folds"][0]["val"]) == set(
        manifest["patient_id"])
    assert (tiny_repo / "plots/augmentation.png").stat().st_size > 10_000

    assert json.loads(_dvc("status", "--json", "--with-deps", *DATA_STAGES, cwd=tiny_repo)) == {}

    _write_params(tiny_repo, phantom={"defect_rate": 0.25}, split={"seed": 11})
    assert set(json.loads(_dvc("status", "--json", "--with-deps", *DATA_STAGES, cwd=tiny_repo))) == {"split"}
    log = _dvc("repro", *DATA_STAGES, cwd=tiny_repo)
    assert "Running stage 'split'" in log
    for stage in ("fetch", "slices", "qc", "prepare", "augment"):
        assert f"Running stage '{stage}'" not in log
    reseeded = params_from_dict(tiny_params_dict(split={"seed": 11})).split
    expected = make_splits(pd.read_parquet(tiny_repo / "data/processed/manifest.parquet"), reseeded)
    assert json.loads((tiny_repo / "data/splits/splits.json").read_text()) == expected

    _write_params(tiny_repo, phantom={"defect_rate": 0.25})
    _dvc("repro", "--force", *DATA_STAGES, cwd=tiny_repo)
    assert _snapshot(tiny_repo) == first, "same seed must give byte-identical manifests and splits"


def test_dvc_repro_trains_every_arch_on_every_fold_and_evaluates(tiny_repo):
    _dvc("repro", cwd=tiny_repo)
    classification = json.loads((tiny_repo / "metrics/classification.json").read_text())
    segmentation = json.loads((tiny_repo / "metrics/segmentation.json").read_text())
    assert classification["candidate"] == "clmnet"
    for arch in ("vgg16", "deeplabv3", "unet", "clmnet"):
        test = classification[arch]["test"]
        auc = test["auc"]["value"]
        assert (auc is None and "auc" in test["undefined"]) or 0.0 <= auc <= 1.0
        assert classification[arch]["cv"]["accuracy"]["folds"] == 5
        frame = pd.read_parquet(tiny_repo / f"data/predictions/{arch}.parquet")
        assert set(frame["subset"]) == {"cv", "test"}
        assert sorted(frame.loc[frame["subset"] == "cv", "fold"].unique()) == ["0", "1", "2", "3", "4"]
        # every development image is predicted exactly once out of fold
        assert frame.loc[frame["subset"] == "cv", "image_id"].is_unique
        assert set(frame.loc[frame["subset"] == "test", "fold"]) == {"ensemble"}
        curve = tiny_repo / f"plots/train/{arch}/0/plots/metrics/train_loss.tsv"
        assert len(curve.read_text().splitlines()) == 1 + 1   # header + one epoch
    assert set(segmentation) >= {"deeplabv3", "unet", "clmnet", "clmnet+crf"}
    assert "vgg16" not in segmentation
    for name in ("roc.png", "pr.png", "classification_report.png", "overlays.png"):
        assert (tiny_repo / "plots/evaluate" / name).stat().st_size > 5_000
    survival = json.loads((tiny_repo / "metrics/survival.json").read_text())
    compare = json.loads((tiny_repo / "metrics/compare.json").read_text())
    for arch in ("vgg16", "deeplabv3", "unet", "clmnet"):
        embeddings = pd.read_parquet(tiny_repo / f"data/embeddings/{arch}.parquet")
        assert sum(c.startswith("emb_") for c in embeddings.columns) == 1024
        assert sorted(embeddings["fold"].unique()) == ["0", "1", "2", "3", "4"]   # each fold's model, every patient
        assert embeddings.groupby("fold")["patient_id"].apply(frozenset).nunique() == 1
        assert survival[arch]["n_analysed"] > 0
        assert (tiny_repo / f"plots/survival/km_{arch}.png").stat().st_size > 5_000
    for family in ("recognition_auc", "survival_auc", "survival_c_index"):
        assert set(compare[family]) == {"vgg16", "deeplabv3", "unet"}
    report = (tiny_repo / "reports/report.md").read_text()
    assert "Table 3. Survival" in report and "0.864 [0.832, 0.892]" in report   # the paper's CLM-Net survival AUC
    assert "Seed SD: the SD of a number over `make stability`'s retrainings" in report
    assert json.loads(_dvc("status", "--json", cwd=tiny_repo)) == {}

    # an arch's own params rerun only that arch (evaluate follows once its models change);
    # the candidate arch: the stages that centre on it
    _write_params(tiny_repo, phantom={"defect_rate": 0.25}, model={"clmnet": {"se": False}})
    changed = set(json.loads(_dvc("status", "--json", cwd=tiny_repo)))
    assert changed == {"train@clmnet"}
    _write_params(tiny_repo, phantom={"defect_rate": 0.25}, model={"arch": "unet"})
    assert set(json.loads(_dvc("status", "--json", cwd=tiny_repo))) == {"evaluate", "survival", "compare", "report"}
    # a survival param reruns survival (and report, which prints the horizon); compare follows its outputs
    _write_params(tiny_repo, phantom={"defect_rate": 0.25}, survival={"horizon_months": 12.0})
    assert set(json.loads(_dvc("status", "--json", cwd=tiny_repo))) == {"survival", "report"}
