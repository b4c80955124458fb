"""Exact intervals of a proportion at 0 and n, pinned to statsmodels and to R's binom.test."""

from __future__ import annotations

import numpy as np
import pytest
from statsmodels.stats.proportion import proportion_confint

from crlm.evaluation.bootstrap import patient_bootstrap, proportion_ci
from crlm.stats.proportion import at_boundary, boundary_interval, clopper_pearson

# R 4.3: binom.test(x, n)$conf.int (95%)
R_BINOM_TEST = {(7, 7): (0.5903836, 1.0), (0, 4): (0.0, 0.6023646), (3, 10): (0.06673951, 0.65245285),
                (6, 6): (0.5407419, 1.0)}


@pytest.mark.parametrize("successes, n", list(R_BINOM_TEST))
def test_clopper_pearson_is_r_binom_test(successes, n):
    assert clopper_pearson(successes, n, 0.95) == pytest.approx(R_BINOM_TEST[successes, n], abs=1e-7)


@pytest.mark.parametrize("successes, n, level", [(0, 1, 0.95), (5, 5, 0.9), (12, 40, 0.99), (0, 142, 0.95),
                                                 (2.5, 7.3, 0.95)])
def test_clopper_pearson_is_statsmodels_beta_method(successes, n, level):
    expected = proportion_confint(successes, n, alpha=1 - level, method="beta")
    assert clopper_pearson(successes, n, level) == pytest.approx(expected, abs=1e-12)


def test_at_n_and_at_0_the_bounds_have_a_closed_form():
    # all n successes: the lower bound solves P(X = n) = alpha / 2, i.e. p^n = alpha / 2
    assert clopper_pearson(8, 8, 0.95)[0] == pytest.approx(0.025 ** (1 / 8), abs=1e-12)
    assert clopper_pearson(0, 8, 0.95)[1] == pytest.approx(1 - 0.025 ** (1 / 8), abs=1e-12)
    with pytest.raises(ValueError, match="successes"):
        clopper_pearson(3, 2)


def test_the_boundary_interval_takes_the_patients_as_the_sample_size():
    # 40 lesions of 6 patients, all detected: the interval of 6 Bernoulli trials, not of 40
    detected = np.ones(40)
    patients = np.repeat([f"p{i}" for i in range(6)], [10, 10, 5, 5, 5, 5])
    entry = boundary_interval(detected, patients)
    assert (entry["value"], entry["ci_high"], entry["effective_n"]) == (1.0, 1.0, 6)
    assert entry["ci_low"] == pytest.approx(R_BINOM_TEST[6, 6][0], abs=1e-7)
    assert "Clopper-Pearson" in entry["ci_method"]
    missed = boundary_interval(np.zeros(4), ["a", "a", "b", "c"])
    assert (missed["value"], missed["ci_low"]) == (0.0, 0.0)
    assert missed["ci_high"] == pytest.approx(1 - 0.025 ** (1 / 3), abs=1e-12)
    with pytest.raises(ValueError, match="not all 0 or all 1"):
        boundary_interval(np.array([0.0, 1.0]), ["a", "b"])


def test_proportion_ci_is_the_bootstrap_inside_and_exact_at_the_boundary():
    rng = np.random.default_rng(3)
    patients = np.repeat(np.arange(12), 5)
    values = (rng.random(60) < 0.7).astype(float)
    inside = proportion_ci(values, patients, 200, 0, 0.95)
    expected = patient_bootstrap(lambda idx: float(values[idx].mean()), patients, 200, 0, 0.95).to_dict()
    assert inside == expected and "ci_method" not in inside
    assert not at_boundary(values) and at_boundary(np.ones(3)) and not at_boundary(np.array([]))
    edge = proportion_ci(np.ones(60), patients, 200, 0, 0.95)
    assert edge["ci_low"] == pytest.approx(0.025 ** (1 / 12), abs=1e-12) and edge["ci_high"] == 1.0
    assert proportion_ci(np.array([]), np.array([]), 200, 0, 0.95)["value"] is None
