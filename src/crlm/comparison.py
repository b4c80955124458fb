"""The candidate arch against each baseline, on paired predictions of the same images and patients.

Recognition: Obuchowski's clustered comparison of the two test AUCs (images nested in
patients; DeLong's statistic with one image per patient), referred to t with (patients - 1)
degrees of freedom (crlm.stats.clustered_auc), with a patient-bootstrap CI
of the difference beside it. Survival: the paired AUCs of the two risk scores on the
binary task (one row per patient) and a patient-level paired bootstrap of the difference of
their Harrell C-indices over every analysed patient (this replaces the paper's unspecified
"log-rank between models"). Holm adjusts the p-values within each family of tests.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from crlm.evaluation.bootstrap import patient_bootstrap
from crlm.stats.clustered_auc import clustered_auc_test
from crlm.stats.config import StatsConfig
from crlm.stats.discrimination import paired_c_index_test
from crlm.survival.endpoint import DIED, MONTHS, RISK_SCORE


def paired(frames: dict[str, pd.DataFrame], candidate: str, baseline: str, key: str, score: str) -> pd.DataFrame:
    """Rows predicted by both archs, matched on `key`; a mismatch in the label is an error."""
    a = frames[candidate][list(dict.fromkeys([key, "patient_id", "label", score]))]
    b = frames[baseline][[key, "label", score]]
    both = a.merge(b, on=key, suffixes=("_a", "_b"), validate="one_to_one")
    if not (both["label_a"] == both["label_b"]).all():
        raise ValueError(f"{candidate} and {baseline} disagree on the true labels of the same {key}s")
    if len(both) < max(len(a), len(b)):
        raise ValueError(
            f"{candidate} and {baseline} predicted different {key}s "
            f"({len(a)} and {len(b)}, {len(both)} shared); rerun their stages"
        )
    return both


def auc_between(
    frames: dict[str, pd.DataFrame], candidate: str, baseline: str, key: str, score: str, stats: StatsConfig
) -> dict:
    """Clustered (by patient) paired AUC comparison, and a patient-bootstrap CI of the difference."""
    empty = [arch for arch in (candidate, baseline) if frames[arch].empty]
    if empty:
        return {"p_value": None, "diff": None, "reason": f"no predictions from {empty} (see their stage's reason)"}
    both = paired(frames, candidate, baseline, key, score)
    labels, a, b = both["label_a"].to_numpy(int), both[f"{score}_a"].to_numpy(), both[f"{score}_b"].to_numpy()
    patients = both["patient_id"].to_numpy()
    out = clustered_auc_test(labels, a, b, patients, stats.ci_level).to_dict()

    def diff(rows):
        if len(np.unique(labels[rows])) < 2:
            return None
        return roc_auc_score(labels[rows], a[rows]) - roc_auc_score(labels[rows], b[rows])

    ci = patient_bootstrap(diff, patients, stats.n_boot, stats.seed, stats.ci_level)
    out["patient_bootstrap_diff_ci"] = [ci.ci_low, ci.ci_high]
    return out


def c_index_between(candidate: pd.DataFrame, baseline: pd.DataFrame, stats: StatsConfig) -> dict:
    """Paired patient-bootstrap test of the difference of the two risk scores' Harrell C."""
    both = candidate.merge(
        baseline[["patient_id", RISK_SCORE]], on="patient_id", suffixes=("_a", "_b"), validate="one_to_one"
    ).dropna(subset=[f"{RISK_SCORE}_a", f"{RISK_SCORE}_b"])
    if both.empty:
        return {"p_value": None, "diff": None, "reason": "no patient has a risk score from both archs"}
    return paired_c_index_test(
        both[MONTHS].to_numpy(),
        both[DIED].to_numpy(),
        both[f"{RISK_SCORE}_a"].to_numpy(),
        both[f"{RISK_SCORE}_b"].to_numpy(),
        stats.n_boot,
        stats.seed,
        stats.ci_level,
    ).to_dict()


def intersection_union(results: dict[str, dict]) -> dict:
    """ "The candidate is better than every baseline": every difference positive and the largest p below
    alpha (an intersection-union test, Berger 1982: no multiplicity adjustment, but every test must win)."""
    p_values: list[Any] = [r.get("p_value") for r in results.values()]  # float, or None: not `defined`
    diffs: list[Any] = [r.get("diff") for r in results.values()]
    defined = all(v is not None for v in p_values + diffs)
    return {
        "all_differences_positive": defined and all(d > 0 for d in diffs),
        "largest_p": max(p_values) if defined and p_values else None,
    }
