"""crlm.survival.run: metrics/survival.json's key order and the KM at-risk table by risk group."""

import numpy as np
import pandas as pd

from crlm.survival.analysis import MONTHS
from crlm.survival.run import at_risk_by_group, survival_metrics


def test_survival_metrics_are_the_candidate_each_arch_then_the_candidate_keys():
    summaries = {
        arch: {"auc": {"value": k / 10}, "logrank": {"p_value": k / 100}}
        for k, arch in enumerate(("vgg16", "unet"), start=1)
    }
    metrics = survival_metrics(summaries, "unet")
    assert list(metrics.items()) == [
        ("candidate", "unet"),
        ("vgg16", summaries["vgg16"]),
        ("unet", summaries["unet"]),
        ("candidate_auc", 0.2),
        ("candidate_logrank_p", 0.02),
    ]


def test_the_at_risk_table_counts_each_groups_patients_still_followed_and_skips_the_unscored():
    patients = pd.DataFrame(
        {MONTHS: [3.0, 12.0, 30.0, 5.0, 24.0, 40.0], "risk_group": ["high", "high", "high", "low", "low", ""]}
    )
    table = at_risk_by_group(patients, [0, 12, 24])
    assert list(table) == ["high", "low"]
    np.testing.assert_array_equal(table["high"], [3, 2, 1])
    np.testing.assert_array_equal(table["low"], [2, 1, 1])
