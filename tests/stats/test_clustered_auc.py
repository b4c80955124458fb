"""Obuchowski's clustered AUC comparison against DeLong, a loop-by-loop transcription of the paper,
and a null simulation with a patient random effect."""

from dataclasses import fields

import numpy as np
import pytest
from scipy import stats

from crlm.stats.clustered_auc import clustered_auc_test
from crlm.stats.delong import delong_test


def obuchowski_by_the_paper(y, a, b, clusters):
    """Obuchowski (1997), Biometrics 53:567-578, section 2, with explicit loops over clusters and units:
    psi(X, Y) = 1, 1/2, 0; V10(X_ij) = (1/N) sum_Y psi; V01(Y_ik) = (1/M) sum_X psi; cluster sums
    V10(X_i.), V01(Y_i.); S10, S01, S11 and their two-modality cross products; var(A - B) =
    var(A) + var(B) - 2 cov(A, B). Same formulas as DIDSR/mitoticFigureCounts R/doAUCcluster.R."""
    ids = sorted(set(clusters))
    units = {c: [j for j in range(len(y)) if clusters[j] == c] for c in ids}
    pos = [j for j in range(len(y)) if y[j] == 1]
    neg = [j for j in range(len(y)) if y[j] == 0]
    M, N, n_clusters = len(pos), len(neg), len(ids)
    I10 = sum(1 for c in ids if any(y[j] == 1 for j in units[c]))
    I01 = sum(1 for c in ids if any(y[j] == 0 for j in units[c]))
    m = [sum(1 for j in units[c] if y[j] == 1) for c in ids]
    n = [sum(1 for j in units[c] if y[j] == 0) for c in ids]

    def psi(x, yy):
        return 1.0 if x > yy else (0.5 if x == yy else 0.0)

    comps = []
    for s in (a, b):
        v10 = {j: sum(psi(s[j], s[k]) for k in neg) / N for j in pos}
        v01 = {k: sum(psi(s[j], s[k]) for j in pos) / M for k in neg}
        auc = sum(v10.values()) / M
        x = [sum(v10[j] for j in units[c] if y[j] == 1) for c in ids]  # V10(X_i.)
        w = [sum(v01[k] for k in units[c] if y[k] == 0) for c in ids]  # V01(Y_i.)
        comps.append(
            (auc, [x[i] - m[i] * auc for i in range(n_clusters)], [w[i] - n[i] * auc for i in range(n_clusters)])
        )

    def cov(p, q):
        (_, xp, wp), (_, xq, wq) = comps[p], comps[q]
        s10 = I10 / ((I10 - 1) * M) * sum(xp[i] * xq[i] for i in range(n_clusters))
        s01 = I01 / ((I01 - 1) * N) * sum(wp[i] * wq[i] for i in range(n_clusters))
        s11_pq = n_clusters / (n_clusters - 1) * sum(xp[i] * wq[i] for i in range(n_clusters))
        s11_qp = n_clusters / (n_clusters - 1) * sum(xq[i] * wp[i] for i in range(n_clusters))
        return s10 / M + s01 / N + (s11_pq + s11_qp) / (M * N)

    var_diff = cov(0, 0) + cov(1, 1) - 2 * cov(0, 1)
    z = (comps[0][0] - comps[1][0]) / np.sqrt(var_diff)
    return comps[0][0], comps[1][0], np.sqrt(var_diff), 2 * stats.t.sf(abs(z), n_clusters - 1)


def clustered_data(seed, n_clusters, rounding):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 7, size=n_clusters)  # unequal cluster sizes
    clusters = np.repeat([f"patient-{i:02d}" for i in range(n_clusters)], sizes)
    p_lesion = rng.choice([0.0, 0.4, 1.0], size=n_clusters)[np.repeat(np.arange(n_clusters), sizes)]
    y = (rng.random(len(clusters)) < p_lesion).astype(int)  # some patients all positive, some all negative
    u = rng.normal(size=(2, n_clusters))[:, np.repeat(np.arange(n_clusters), sizes)]
    a = y + u[0] + rng.normal(size=len(y))
    b = 0.7 * y + 0.5 * a + u[1] + rng.normal(size=len(y))
    if rounding is not None:  # ties within and across classes
        a, b = np.round(a, rounding), np.round(b, rounding)
    return y, a, b, clusters


@pytest.mark.parametrize("seed, n, rounding", [(0, 40, 1), (1, 150, 0), (2, 25, None), (3, 400, 2)])
def test_one_unit_per_cluster_is_exactly_delong(seed, n, rounding):
    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.4
    a = y * 1.0 + rng.normal(size=n)
    b = y * 0.6 + 0.5 * a + rng.normal(size=n)
    if rounding is not None:
        a, b = np.round(a, rounding), np.round(b, rounding)
    clustered = clustered_auc_test(y, a, b, rng.permutation(n))
    delong = delong_test(y, a, b)
    assert clustered.n_clusters == n and clustered.reason == delong.reason == ""
    for f in fields(delong):
        if f.name not in ("reason", "p_value", "ci_low", "ci_high"):
            expected, got = getattr(delong, f.name), getattr(clustered, f.name)
            assert got == pytest.approx(expected, rel=1e-12, abs=1e-12), f.name
    # the same statistic, referred to t with n - 1 df instead of the normal
    assert clustered.df == n - 1
    assert clustered.p_value == pytest.approx(2 * stats.t.sf(abs(delong.z), n - 1), rel=1e-12)
    assert clustered.p_value > delong.p_value


@pytest.mark.parametrize("seed, n_clusters, rounding", [(10, 15, 0), (11, 30, 1), (12, 8, 0), (13, 50, None)])
def test_matches_the_papers_formulas_written_as_loops(seed, n_clusters, rounding):
    y, a, b, clusters = clustered_data(seed, n_clusters, rounding)
    counts = {c: (y[clusters == c].min(), y[clusters == c].max()) for c in set(clusters)}
    assert (1, 1) in counts.values() and (0, 0) in counts.values() and (0, 1) in counts.values()
    result = clustered_auc_test(y, a, b, clusters)
    auc_a, auc_b, se, p = obuchowski_by_the_paper(y.tolist(), a.tolist(), b.tolist(), clusters.tolist())
    assert (result.auc_a, result.auc_b) == pytest.approx((auc_a, auc_b), abs=1e-8)
    assert result.se == pytest.approx(se, abs=1e-8)
    assert result.p_value == pytest.approx(p, abs=1e-8)
    assert result.n_clusters == n_clusters and result.n_pos + result.n_neg == len(y)


def _null_rejection_rates(seed, n_patients, images, reps=2000):
    """Equal AUCs; each model has its own patient random effect, so image-level errors are correlated
    within a patient. Half the patients have lesions (80% of their images positive), half none."""
    rng = np.random.default_rng(seed)
    clusters = np.repeat(np.arange(n_patients), images)
    sick = (np.arange(n_patients) % 2 == 0)[clusters]
    clustered = naive = 0
    for _ in range(reps):
        y = sick & (rng.random(len(clusters)) < 0.8)
        u = rng.normal(size=(2, n_patients))[:, clusters]
        a = y + u[0] + rng.normal(size=len(y))
        b = y + u[1] + rng.normal(size=len(y))
        clustered += clustered_auc_test(y, a, b, clusters).p_value < 0.05
        naive += delong_test(y, a, b).p_value < 0.05
    return clustered / reps, naive / reps


def test_null_simulation_clustered_test_holds_its_level_and_naive_delong_does_not():
    low, high = (q / 2000 for q in stats.binom.interval(0.99, 2000, 0.05))
    clustered, naive = _null_rejection_rates(2024, n_patients=100, images=3)
    print(
        f"100 patients x 3 images: clustered {clustered:.4f}, naive DeLong {naive:.4f}, "
        f"99% binomial interval [{low:.4f}, {high:.4f}]"
    )
    assert low <= clustered <= high
    assert naive > high
    # With few patients (12, of whom 6 have lesions) Obuchowski's statistic against the normal rejects too
    # often (about 0.07 in our runs); against t with I - 1 df it holds the level.
    clustered_small, naive_small = _null_rejection_rates(7, n_patients=12, images=6)
    print(f"12 patients x 6 images: clustered {clustered_small:.4f}, naive DeLong {naive_small:.4f}")
    assert clustered_small <= high and naive_small > high


def test_undefined_cases_give_a_reason():
    one_class = clustered_auc_test([1, 1, 1], [0.2, 0.5, 0.9], [0.1, 0.3, 0.4], [1, 2, 3])
    assert np.isnan(one_class.auc_a) and "one class" in one_class.reason
    assert one_class.to_dict()["p_value"] is None
    # every positive image in one patient: AUCs are defined, their clustered variance is not
    one_cluster = clustered_auc_test([1, 1, 0, 0], [0.9, 0.8, 0.1, 0.5], [0.7, 0.9, 0.2, 0.1], ["p", "p", "q", "r"])
    assert one_cluster.auc_a == 1.0 and np.isnan(one_cluster.se) and "1 cluster(s) with positives" in one_cluster.reason
    y, a, _, clusters = clustered_data(10, 15, 0)
    same = clustered_auc_test(y, a, a, clusters)
    assert same.diff == 0.0 and same.se == 0.0 and same.p_value == 1.0 and same.reason == ""


def test_bad_input_names_the_problem():
    with pytest.raises(ValueError, match="lengths differ"):
        clustered_auc_test([0, 1], [0.1, 0.2], [0.3, 0.4], [1])
    with pytest.raises(ValueError, match="scores_a contains NaN"):
        clustered_auc_test([0, 1], [np.inf, 0.2], [0.3, 0.4], [1, 2])
    with pytest.raises(ValueError, match="labels must be 0/1"):
        clustered_auc_test([0, 2], [0.1, 0.2], [0.3, 0.4], [1, 2])
    with pytest.raises(ValueError, match="clusters contains NaN"):
        clustered_auc_test([0, 1], [0.1, 0.2], [0.3, 0.4], [1.0, np.nan])
