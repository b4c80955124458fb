"""The candidate arch against each baseline: DeLong on paired predictions, log-rank on risk groups.

Recognition: the image-level test predictions (the same test images for every arch).
Survival: the patient-level out-of-fold probabilities of the binary task (the same
patients for every arch). Risk groups: each arch's log-rank test, and a test on the
patients where the candidate and the baseline disagree: there the candidate's high-risk
group is the baseline's low-risk group, so a hazard ratio above 1 says the candidate
was right more often (the paper's Table S3 compares log-rank p values without a
paired test; this is one).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from crlm.config import StatsConfig
from crlm.evaluation.bootstrap import patient_bootstrap
from crlm.stats.delong import delong_test
from crlm.stats.survival import cox_fit, logrank
from crlm.survival.analysis import DIED, MONTHS


def paired(frames: dict[str, pd.DataFrame], candidate: str, baseline: str, key: str) -> pd.DataFrame:
    """Rows predicted by both archs, matched on `key`; a mismatch in the label is an error."""
    a = frames[candidate][list(dict.fromkeys([key, "patient_id", "label", "prob"]))]
    b = frames[baseline][[key, "label", "prob"]]
    both = a.merge(b, on=key, suffixes=("_a", "_b"), validate="one_to_one")
    if not (both["label_a"] == both["label_b"]).all():
        raise ValueError(f"{candidate} and {baseline} disagree on the true labels of the same {key}s")
    if len(both) < max(len(a), len(b)):
        raise ValueError(f"{candidate} and {baseline} predicted different {key}s "
                         f"({len(a)} and {len(b)}, {len(both)} shared); rerun their stages")
    return both


def delong_between(frames: dict[str, pd.DataFrame], candidate: str, baseline: str, key: str,
                   stats: StatsConfig) -> dict:
    """DeLong on the paired rows; with several images per patient, DeLong's independence assumption
    does not hold, so a patient-level bootstrap CI of the AUC difference comes with it."""
    empty = [arch for arch in (candidate, baseline) if frames[arch].empty]
    if empty:
        return {"p_value": None, "diff": None, "reason": f"no predictions from {empty} (see their stage's reason)"}
    both = paired(frames, candidate, baseline, key)
    labels, a, b = both["label_a"].to_numpy(int), both["prob_a"].to_numpy(), both["prob_b"].to_numpy()
    out = delong_test(labels, a, b, stats.ci_level).as_dict()
    patients = both["patient_id"].to_numpy()
    if len(np.unique(patients)) < len(patients):
        def diff(rows):
            result = delong_test(labels[rows], a[rows], b[rows])
            return None if result.reason else result.diff
        ci = patient_bootstrap(diff, patients, stats.n_boot, stats.seed, stats.ci_level)
        out["patient_bootstrap_diff_ci"] = [ci.low, ci.high]
    return out


def discordant_logrank(candidate: pd.DataFrame, baseline: pd.DataFrame) -> dict:
    """Log-rank and Cox HR of the candidate's high-risk group among patients the two archs split differently."""
    both = candidate.merge(baseline[["patient_id", "risk_group"]], on="patient_id", suffixes=("", "_baseline"))
    both = both[(both["risk_group"] != "") & (both["risk_group_baseline"] != "")]
    disagree = both[both["risk_group"] != both["risk_group_baseline"]]
    test = logrank(disagree[MONTHS], disagree[DIED], disagree["risk_group"]) if len(disagree) else None
    cox = cox_fit(disagree.assign(candidate_high=(disagree["risk_group"] == "high").astype(float)),
                  MONTHS, DIED, ["candidate_high"]) if len(disagree) else None
    out = {"n_patients": int(len(both)), "n_discordant": int(len(disagree))}
    if test is None:
        return {**out, "logrank": None, "hr_candidate_high": None, "reason": "the two archs agree on every patient"}
    hr = cox.table.loc["candidate_high", "hr"]
    return {**out, "logrank": test.as_dict(), "hr_candidate_high": None if np.isnan(hr) else float(hr),
            "reason": test.reason or cox.reason}
