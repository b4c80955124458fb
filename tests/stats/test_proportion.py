"""Exact intervals of a proportion, clustered (Korn-Graubard), pinned to statsmodels, R's binom.test and the
paper's formulas written as a loop."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

from crlm.stats.proportion import clopper_pearson, korn_graubard

# R 4.3: binom.test(x, n)$conf.int (95%)
R_BINOM_TEST = {
    (7, 7): (0.5903836, 1.0),
    (0, 4): (0.0, 0.6023646),
    (3, 10): (0.06673951, 0.65245285),
    (6, 6): (0.5407419, 1.0),
}


@pytest.mark.parametrize("successes, n", list(R_BINOM_TEST))
def test_clopper_pearson_is_r_binom_test(successes, n):
    assert clopper_pearson(successes, n, 0.95) == pytest.approx(R_BINOM_TEST[successes, n], abs=1e-7)


@pytest.mark.parametrize(
    "successes, n, level", [(0, 1, 0.95), (5, 5, 0.9), (12, 40, 0.99), (0, 142, 0.95), (2.5, 7.3, 0.95)]
)
def test_clopper_pearson_is_statsmodels_beta_method(successes, n, level):
    expected = proportion_confint(successes, n, alpha=1 - level, method="beta")
    assert clopper_pearson(successes, n, level) == pytest.approx(expected, abs=1e-12)


def test_at_n_and_at_0_the_bounds_have_a_closed_form():
    # all n successes: the lower bound solves P(X = n) = alpha / 2, i.e. p^n = alpha / 2
    assert clopper_pearson(8, 8, 0.95)[0] == pytest.approx(0.025 ** (1 / 8), abs=1e-12)
    assert clopper_pearson(0, 8, 0.95)[1] == pytest.approx(1 - 0.025 ** (1 / 8), abs=1e-12)
    with pytest.raises(ValueError, match="successes"):
        clopper_pearson(3, 2)


def korn_graubard_by_the_paper(values, patients, level):
    """Korn & Graubard (1998), written out unit by unit: the ratio estimate, its linearised between-patient
    variance, the design effect (at least 1; 1 where the variance is 0), the degrees-of-freedom adjustment."""
    ids = sorted(set(patients))
    n, clusters = len(values), len(ids)
    p = sum(values) / n
    y = {i: sum(v for v, q in zip(values, patients) if q == i) for i in ids}
    m = {i: sum(1 for q in patients if q == i) for i in ids}
    variance = clusters / (clusters - 1) * sum((y[i] - p * m[i]) ** 2 for i in ids) / n**2
    deff = 1.0 if variance == 0 or p in (0.0, 1.0) else max(1.0, variance / (p * (1 - p) / n))
    z, t_quantile = stats.norm.ppf(0.5 + level / 2), stats.t.ppf(0.5 + level / 2, clusters - 1)
    effective = n / deff * (z / t_quantile) ** 2
    x = p * effective
    low = 0.0 if x == 0 else stats.beta.ppf((1 - level) / 2, x, effective - x + 1)
    high = 1.0 if x == effective else stats.beta.ppf(0.5 + level / 2, x + 1, effective - x)
    return p, low, high, effective, deff


@pytest.mark.parametrize(
    "seed, patients, rate, level", [(0, 7, 0.7, 0.95), (1, 12, 0.3, 0.95), (2, 40, 0.5, 0.9), (3, 6, 0.95, 0.95)]
)
def test_korn_graubard_is_the_papers_formulas_written_as_a_loop(seed, patients, rate, level):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 12, patients)
    owner = np.repeat([f"p{i}" for i in range(patients)], sizes)
    frailty = rng.normal(0, 1.5, patients)[np.repeat(np.arange(patients), sizes)]  # patients differ
    values = (rng.random(len(owner)) < 1 / (1 + np.exp(-(np.log(rate / (1 - rate)) + frailty)))).astype(float)
    entry = korn_graubard(values, owner, level)
    p, low, high, effective, deff = korn_graubard_by_the_paper(values.tolist(), owner.tolist(), level)
    assert (entry["value"], entry["ci_low"], entry["ci_high"]) == pytest.approx((p, low, high), abs=1e-12)
    assert (entry["effective_n"], entry["design_effect"]) == pytest.approx((effective, deff), rel=1e-12)
    assert entry["ci_low"] <= entry["value"] <= entry["ci_high"]


def test_at_0_and_1_the_design_effect_is_1_and_the_interval_leaves_the_boundary():
    # 40 lesions of 6 patients, all detected: Clopper-Pearson on 40 x (z / t_5)^2 trials
    patients = np.repeat([f"p{i}" for i in range(6)], [10, 10, 5, 5, 5, 5])
    entry = korn_graubard(np.ones(40), patients)
    effective = 40 * (stats.norm.ppf(0.975) / stats.t.ppf(0.975, 5)) ** 2
    assert entry["design_effect"] == 1.0 and entry["effective_n"] == pytest.approx(effective, rel=1e-12)
    assert (entry["value"], entry["ci_high"]) == (1.0, 1.0)
    assert entry["ci_low"] == pytest.approx(0.025 ** (1 / effective), rel=1e-12) and entry["ci_low"] < 0.9
    missed = korn_graubard(np.zeros(4), ["a", "a", "b", "c"])
    assert (missed["value"], missed["ci_low"]) == (0.0, 0.0) and 0.5 < missed["ci_high"] < 1.0


def test_a_perfect_score_never_gets_a_narrower_interval_than_a_near_perfect_one():
    patients = np.repeat(np.arange(7), [14, 12, 10, 9, 8, 6, 5])
    perfect = korn_graubard(np.ones(64), patients)
    near = np.ones(64)
    near[0] = 0.0
    one_miss = korn_graubard(near, patients)
    assert perfect["ci_high"] - perfect["ci_low"] <= one_miss["ci_high"] - one_miss["ci_low"] + 1e-12
    assert perfect["ci_low"] >= one_miss["ci_low"]


def test_clustering_widens_the_interval_and_bad_input_is_refused():
    rng = np.random.default_rng(5)
    values = (rng.random(120) < 0.6).astype(float)
    independent = korn_graubard(values, np.arange(120))
    alike = korn_graubard(np.repeat(values[:12], 10), np.repeat(np.arange(12), 10))  # 10 copies per patient
    assert alike["design_effect"] > 5
    assert alike["ci_high"] - alike["ci_low"] > independent["ci_high"] - independent["ci_low"]
    assert korn_graubard([], [])["value"] is None
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        korn_graubard([0.5, 1.5], ["a", "b"])
