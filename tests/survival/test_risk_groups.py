"""crlm.survival.risk_groups: a new patient's percentile and risk group among a reference group, by hand, and
the same rule as the survival stage's groups."""

from __future__ import annotations

import numpy as np
import pytest

from crlm.stats.discrimination import normal_scores
from crlm.survival.risk_groups import place, risk_group

EVEN = [0.4, 0.1, 0.3, 0.2]  # unsorted on purpose


@pytest.mark.parametrize(
    "reference, probability, percentile, group",
    [
        (EVEN, 0.35, 75.0, "high"),  # 3 of 4 below
        (EVEN, 0.25, 50.0, "low"),  # the middle of the 5 once it joins: score 0 is low
        (EVEN, 0.05, 0.0, "low"),
        (EVEN, 0.5, 100.0, "high"),
        (EVEN, 0.1, 12.5, "low"),  # a tie counts half
        (EVEN, 0.3, 62.5, "high"),  # ties 0.3: mid-rank 3.5 of 5 > 3
        ([0.1, 0.2, 0.3], 0.2, 50.0, "low"),  # ties the median: mid-rank 2.5 of 4, score 0
        ([0.1, 0.2, 0.3], 0.21, 66.66666666666667, "high"),
        ([0.7], 0.7, 50.0, "low"),
    ],
)
def test_percentile_and_group_by_hand(reference, probability, percentile, group):
    placed = place(probability, np.array(reference))
    assert placed.percentile == pytest.approx(percentile, abs=1e-12)
    assert placed.group == group


def test_the_group_is_the_stage_rule_in_the_joined_group_and_high_exactly_above_the_50th_percentile():
    rng = np.random.default_rng(0)
    for _ in range(300):
        reference = rng.integers(0, 6, rng.integers(1, 12)) / 5  # many ties
        probability = rng.integers(0, 6) / 5
        placed = place(probability, reference)
        joined = normal_scores(np.append(reference, probability))
        assert placed.group == risk_group(joined)[-1]
        assert (placed.group == "high") == (placed.percentile > 50)


def test_an_empty_or_non_finite_reference_is_an_error():
    with pytest.raises(ValueError, match="reference"):
        place(0.5, np.array([]))
    with pytest.raises(ValueError, match="reference"):
        place(0.5, np.array([0.1, np.nan]))
