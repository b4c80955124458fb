"""Bootstrap optimism-corrected C (crlm.stats.optimism): against a loop written from Harrell, Lee & Mark's
(1996) formula on lifelines' CoxPHFitter and concordance_index with the same resamples; the one-covariate
property; refused fits; bad input."""

import warnings

import numpy as np
import pandas as pd
import pytest
from lifelines import CoxPHFitter
from lifelines.utils import concordance_index

from crlm.stats.discrimination import harrell_c
from crlm.stats.optimism import optimism_corrected_c, resample_indices
from crlm.stats.survival import cox_fit


def cohort(seed, n=74, beta=(0.6, 0.4)):
    """An integer score 0-5 (as clinrisk_score) and a continuous marker, exponential deaths, uniform censoring."""
    rng = np.random.default_rng(seed)
    x = np.column_stack([rng.integers(0, 6, n), rng.normal(size=n)]).astype(float)[:, : len(beta)]
    death = rng.exponential(30.0 * np.exp(-(x - x.mean(axis=0)) @ np.asarray(beta)))
    censor = rng.uniform(10, 100, size=n)
    return np.minimum(death, censor), (death <= censor).astype(float), x


def crlm_fit(t, e, x):
    """The pipeline's fit: crlm.stats.survival.cox_fit (Efron ties), refused below 10 events per covariate."""
    names = [f"x{i}" for i in range(x.shape[1])]
    result = cox_fit(pd.DataFrame(x, columns=names).assign(t=t, e=e), "t", "e", names, min_events_per_covariate=10)
    return result.reason or result.table["coef"].to_numpy()


def crlm_c(t, e, risk):
    return harrell_c(t, e, risk).value


def reference(t, e, x, n_resamples, seed):
    """Harrell, Lee & Mark 1996: apparent C - mean_b [C(fit_b, resample b) - C(fit_b, original)], by lifelines."""

    def fit(rows):
        frame = pd.DataFrame(x[rows], columns=[f"x{i}" for i in range(x.shape[1])]).assign(t=t[rows], e=e[rows])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return CoxPHFitter().fit(frame, "t", "e").params_.to_numpy()

    def c(rows, beta):  # lifelines: a higher score is a longer survival
        return concordance_index(t[rows], -(x[rows] @ beta), e[rows])

    everyone = np.arange(len(t))
    apparent = c(everyone, fit(everyone))
    rng = np.random.default_rng(seed)
    optimism = []
    for _ in range(n_resamples):
        rows = rng.integers(0, len(t), size=len(t))
        beta = fit(rows)
        optimism.append(c(rows, beta) - c(everyone, beta))
    return apparent, float(np.mean(optimism))


@pytest.mark.parametrize("seed, beta", [(0, (0.6, 0.4)), (1, (0.0, 0.3)), (2, (0.5,))])
def test_equals_a_loop_from_the_papers_formula_on_lifelines(seed, beta):
    t, e, x = cohort(seed, beta=beta)
    result = optimism_corrected_c(t, e, x, crlm_fit, crlm_c, 40, seed)
    apparent, optimism = reference(t, e, x, 40, seed)
    assert result.reason == "" and result.n_used == 40 and result.n_refused == 0
    assert result.apparent == pytest.approx(apparent, abs=1e-12)
    assert result.optimism == pytest.approx(optimism, abs=1e-12)
    assert result.corrected == pytest.approx(apparent - optimism, abs=1e-12)


def test_the_resamples_are_numpy_default_rng_integers():
    np.testing.assert_array_equal(resample_indices(7, 3, 11), np.random.default_rng(11).integers(0, 7, size=(3, 7)))


def test_one_covariate_the_original_data_c_of_every_refit_is_the_apparent_c_or_its_mirror():
    """A one-covariate model's ranking depends only on the sign of its coefficient: refitted on any resample,
    its C on the original patients is the apparent C, or 1 - apparent C where the sign flipped."""
    t, e, x = cohort(3, beta=(0.1,))  # a weak effect: the sign flips in some resamples
    on_original = []

    def recording(tt, ee, risk):
        value = crlm_c(tt, ee, risk)
        if tt is t:
            on_original.append(value)
        return value

    result = optimism_corrected_c(t, e, x, crlm_fit, recording, 60, 0)
    apparent, refits = on_original[0], np.array(on_original[1:])
    assert apparent == result.apparent and len(refits) == 60
    mirrored = np.isclose(refits, 1 - apparent, atol=1e-12)
    assert np.all(np.isclose(refits, apparent, atol=1e-12) | mirrored) and mirrored.any()


def test_one_covariate_the_corrected_c_is_not_above_the_apparent_c_beyond_monte_carlo_error():
    """So the optimism is the mean over resamples of C_b(s_b x) - C(s_b x), s_b the sign of the refit: about 0
    where the sign is stable, positive where it flips (then C_b is high and C(s_b x) = 1 - C low). The
    corrected C can exceed the apparent C only by the Monte Carlo error of that mean (and the O(1/n) bias of
    a bootstrapped ratio), never as an artefact of pooling fits: checked over effects from none to strong."""
    gaps = {}
    for seed, beta in enumerate((0.0, 0.0, 0.1, 0.3, 0.7, 0.7)):
        t, e, x = cohort(10 + seed, beta=(beta,))
        result = optimism_corrected_c(t, e, x[:, :1], crlm_fit, crlm_c, 100, seed)
        assert result.n_used == 100
        assert result.corrected <= result.apparent + 3 * result.optimism_se, (beta, result)
        gaps[beta] = result.optimism / result.optimism_se
    assert gaps[0.0] > 3  # no effect: the fitted sign is noise, the apparent C clearly optimistic


def test_a_refused_fit_is_counted_and_left_out():
    t, e, x = cohort(4)
    rows = resample_indices(len(t), 50, 9)
    allowed = {b for b, r in enumerate(rows) if e[r].sum() >= e.sum()}  # refuse resamples with fewer deaths
    calls = iter(range(-1, 50))

    def picky(tt, ee, xx):
        b = next(calls)
        return crlm_fit(tt, ee, xx) if b == -1 or b in allowed else "refused"

    result = optimism_corrected_c(t, e, x, picky, crlm_c, 50, 9)
    assert 0 < len(allowed) < 50 and result.n_used == len(allowed) and result.n_refused == 50 - len(allowed)
    kept = [b for b in range(50) if b in allowed]
    optimism = [
        crlm_c(t[rows[b]], e[rows[b]], x[rows[b]] @ crlm_fit(t[rows[b]], e[rows[b]], x[rows[b]]))
        - crlm_c(t, e, x @ crlm_fit(t[rows[b]], e[rows[b]], x[rows[b]]))
        for b in kept
    ]
    assert result.optimism == pytest.approx(np.mean(optimism), abs=1e-12)
    assert result.optimism_se == pytest.approx(np.std(optimism, ddof=1) / np.sqrt(len(kept)), abs=1e-12)


def test_a_refused_fit_on_all_patients_is_undefined_with_the_reason():
    t, e, x = cohort(5)
    result = optimism_corrected_c(t, e, x, lambda *_: "3 events for 2 covariate(s)", crlm_c, 10, 0).to_dict()
    assert result["corrected"] is None and result["apparent"] is None and result["n_refused"] == 10
    assert result["reason"] == "fit on all patients: 3 events for 2 covariate(s)"


def test_bad_input_is_refused():
    t, e, x = cohort(6)
    with pytest.raises(ValueError, match="must agree"):
        optimism_corrected_c(t[:-1], e, x, crlm_fit, crlm_c, 10, 0)
    with pytest.raises(ValueError, match="n_resamples"):
        optimism_corrected_c(t, e, x, crlm_fit, crlm_c, 1, 0)
