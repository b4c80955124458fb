"""DeLong test: the fast midrank algorithm against an independent O(n*m) implementation."""

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score

from crlm.stats.delong import delong_test


def structural_components_delong(y, a, b, ci_level=0.95):
    """DeLong et al. (1988) as written in the paper: the kernel psi(X, Y) = 1, 1/2, 0 over every
    positive-negative pair, V10/V01 as row/column means, S10/S01 as sample covariances."""
    y = np.asarray(y).astype(bool)
    out = []
    for s in (np.asarray(a, float), np.asarray(b, float)):
        x, yy = s[y][:, None], s[~y][None, :]
        psi = (x > yy) + 0.5 * (x == yy)
        out.append((psi.mean(), psi.mean(axis=1), psi.mean(axis=0)))
    (auc_a, v10a, v01a), (auc_b, v10b, v01b) = out
    s10 = np.cov(np.vstack([v10a, v10b]))
    s01 = np.cov(np.vstack([v01a, v01b]))
    cov = s10 / len(v10a) + s01 / len(v01a)
    var = cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]
    z = (auc_a - auc_b) / np.sqrt(var)
    half = stats.norm.ppf(0.5 + ci_level / 2) * np.sqrt(var)
    return auc_a, auc_b, z, 2 * stats.norm.sf(abs(z)), auc_a - auc_b - half, auc_a - auc_b + half


@pytest.mark.parametrize("seed, n, rounding", [(0, 60, None), (1, 200, 1), (2, 31, 0), (3, 500, 2)])
def test_fast_delong_matches_the_pairwise_structural_components(seed, n, rounding):
    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.4
    a = y * 1.0 + rng.normal(size=n)
    b = y * 0.6 + 0.5 * a + rng.normal(size=n)  # correlated with a, as two models on one test set
    if rounding is not None:  # ties within and across classes
        a, b = np.round(a, rounding), np.round(b, rounding)
    result = delong_test(y, a, b)
    auc_a, auc_b, z, p, low, high = structural_components_delong(y, a, b)
    assert result.auc_a == pytest.approx(auc_a, abs=1e-12)
    assert result.auc_b == pytest.approx(auc_b, abs=1e-12)
    assert result.auc_a == pytest.approx(roc_auc_score(y, a), abs=1e-12)
    assert result.z == pytest.approx(z, abs=1e-8)
    assert result.p_value == pytest.approx(p, abs=1e-8)
    assert (result.ci_low, result.ci_high) == pytest.approx((low, high), abs=1e-8)
    assert result.n_pos == y.sum() and result.n_neg == n - y.sum()


def test_a_clearly_better_model_is_significant_and_a_copy_is_not():
    rng = np.random.default_rng(5)
    y = rng.random(400) < 0.5
    good = y * 2.0 + rng.normal(size=400)
    poor = y * 0.3 + rng.normal(size=400)
    better = delong_test(y, good, poor)
    assert better.diff > 0.2 and better.p_value < 1e-6 and better.ci_low > 0
    same = delong_test(y, good, good)
    assert same.diff == 0.0 and same.p_value == 1.0 and same.reason == ""
    swapped = delong_test(y, poor, good)
    assert swapped.z == pytest.approx(-better.z) and swapped.p_value == pytest.approx(better.p_value)


def test_one_class_is_undefined_with_a_reason_not_a_crash():
    result = delong_test([1, 1, 1], [0.2, 0.5, 0.9], [0.1, 0.3, 0.4])
    assert np.isnan(result.auc_a) and np.isnan(result.p_value)
    assert "one class" in result.reason
    assert result.to_dict()["p_value"] is None


def test_bad_input_names_the_problem():
    with pytest.raises(ValueError, match="lengths differ"):
        delong_test([0, 1], [0.1, 0.2], [0.3])
    with pytest.raises(ValueError, match="scores_b contains NaN"):
        delong_test([0, 1], [0.1, 0.2], [0.3, np.nan])
    with pytest.raises(ValueError, match="labels must be 0/1"):
        delong_test([0, 2], [0.1, 0.2], [0.3, 0.4])


def test_delong_and_clustered_check_their_inputs_alike():
    """One check (crlm.stats.inputs.paired_scores): the same problems are named the same way in both."""
    from crlm.stats.clustered_auc import clustered_auc_test
    from crlm.stats.inputs import paired_scores

    with pytest.raises(ValueError, match=r"clustered_auc_test: lengths differ \(labels 2, a 2, b 2, clusters 1\)"):
        clustered_auc_test([0, 1], [0.1, 0.2], [0.3, 0.4], [1])
    with pytest.raises(ValueError, match=r"delong_test: lengths differ \(labels 2, a 2, b 1\)"):
        delong_test([0, 1], [0.1, 0.2], [0.3])
    for ci_level in (0.0, 1.0):
        with pytest.raises(ValueError, match="ci_level must be in"):
            delong_test([0, 1], [0.1, 0.2], [0.3, 0.4], ci_level=ci_level)
    y, a, b, clusters = paired_scores("t", [0, 1, 1], [0.1, 0.2, 0.3], (0.3, 0.4, 0.5), ["p", "p", "q"])
    assert all(isinstance(v, np.ndarray) for v in (y, a, b, clusters)) and list(clusters) == ["p", "p", "q"]
    assert len(paired_scores("t", [0, 1], [0.1, 0.2], [0.3, 0.4])) == 3
