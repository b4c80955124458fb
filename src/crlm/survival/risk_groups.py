"""The risk groups: high risk = the upper half of the risk score within a prediction group, and where a new
patient's probability falls in a reference group scored as that patient is.

The survival stage (crlm.survival.analysis) forms the groups within each prediction group (a CV fold's
validation patients, or the test patients) from the van der Waerden scores of the probabilities, so that the
classifiers' different scales do not move the cut. A new patient joins a reference group: its risk group is
the one the same rule gives it in that group with the patient added (a tie with the middle falls to low, as
for a cohort patient), and its percentile the share of the group below it, ties counted half. The two agree:
high exactly when the percentile is above 50.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crlm.stats.discrimination import normal_scores

RISK_GROUP_RULE = (
    "fixed a priori: high risk = the upper half of the risk score within the prediction group "
    "(risk score > 0; the middle patient of an odd group, score 0, is low risk; tied probabilities "
    "share a score and so a group); survival.threshold is not used for the groups, only for the "
    "accuracy"
)


def risk_group(score: np.ndarray) -> np.ndarray:
    """ "high" where the risk score (normal scores within the prediction group) is above 0, else "low"."""
    return np.where(np.asarray(score, dtype=float) > 0, "high", "low")


@dataclass(frozen=True)
class Placement:
    percentile: float  # 100 x the share of the reference group below the probability (ties counted half)
    group: str  # "high" or "low": the risk group the probability would join in the reference group


def place(probability: float, reference: np.ndarray) -> Placement:
    """Where `probability` falls among the reference group's probabilities (a non-empty 1-D array)."""
    reference = np.asarray(reference, dtype=float)
    if reference.ndim != 1 or not len(reference) or not np.isfinite(reference).all():
        raise ValueError(f"place: the reference needs finite probabilities, got {reference.shape} values")
    below, tied = np.sum(reference < probability), np.sum(reference == probability)
    joined = normal_scores(np.append(reference, probability))
    return Placement(float(100 * (below + tied / 2) / len(reference)), str(risk_group(joined[-1:])[0]))
