"""Planted truth end to end: `dvc repro survival` on the committed default phantom profile.

The phantom plants each patient's survival on their tumour burden (phantom.survival_effect);
the candidate's out-of-sample image risk score must rank that burden: a positive Spearman
correlation, significant at 0.05 (one-sided). About 13 minutes on a 2-core CPU.
"""

import subprocess

import pandas as pd
import pytest
import yaml
from scipy import stats

from tests.conftest import REPO
from tests.dvc_repo import dvc, make_repo, raw_source_dir

pytestmark = pytest.mark.slow


def test_the_candidates_risk_score_ranks_the_planted_tumour_burden(tmp_path):
    # the committed params (not the workspace's, which `dvc exp run -S` may have changed)
    committed = subprocess.run(
        ["git", "show", "HEAD:params.yaml"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    repo = make_repo(tmp_path, committed)
    dvc("repro", "survival", cwd=repo)

    params = yaml.safe_load(committed)
    assert params["data"]["sources"] == ["phantom"] and params["phantom"]["survival_effect"] > 0
    patients = pd.read_parquet(repo / f"data/survival/{params['model']['arch']}.parquet")
    truth = pd.read_csv(raw_source_dir(repo, "phantom") / "phantom_truth.csv")
    truth["patient_id"] = "phantom-" + truth["Patient-ID"].astype(str)
    both = patients.merge(truth, on="patient_id", validate="one_to_one").dropna(subset=["risk_score"])
    assert len(both) >= 0.8 * len(truth)
    rho = stats.spearmanr(both["risk_score"], both["burden_z"], alternative="greater")
    print(f"Spearman rho {rho.statistic:.3f}, one-sided p {rho.pvalue:.2g}, {len(both)} patients")
    assert rho.statistic > 0 and rho.pvalue < 0.05
