"""survival.covariates and survival.log_covariates: the Cox models' clinical columns
(crlm.survival.analysis.covariate_columns) and their names in metrics/survival.json."""

import dataclasses

import numpy as np
import pandas as pd
import pytest

from crlm.params import params_from_dict
from crlm.stats.survival import cox_fit
from crlm.survival.analysis import DIED, MONTHS, RISK_SCORE, _cox_models, covariate_columns
from tests.conftest import tiny_params_dict


def _cfg(covariates, log_covariates):
    survival = params_from_dict(tiny_params_dict()).survival
    return dataclasses.replace(survival, covariates=tuple(covariates), log_covariates=tuple(log_covariates))


def _table():
    return pd.DataFrame({"age": [60.0, 70.0, 50.0], "cea": [0.0, 9.0, np.e - 1], "nodes": [1.0, 3.0, 0.0]})


def test_a_log_covariate_becomes_a_log1p_column_in_the_order_of_the_covariates():
    table = _table()
    names = covariate_columns(table, _cfg(["cea", "age"], ["cea", "nodes"]))
    assert names == ["log1p_cea", "age"]
    np.testing.assert_allclose(table["log1p_cea"], [0.0, np.log(10.0), 1.0])
    np.testing.assert_array_equal(table["cea"], _table()["cea"])  # the original column is kept
    # nodes is a log covariate but not a covariate: nothing is added for it
    assert list(table.columns) == ["age", "cea", "nodes", "log1p_cea"]


def test_without_log_covariates_the_covariates_are_the_columns():
    table = _table()
    assert covariate_columns(table, _cfg(["nodes", "age"], [])) == ["nodes", "age"]
    assert list(table.columns) == ["age", "cea", "nodes"]


def test_a_missing_covariate_is_named():
    with pytest.raises(KeyError, match=r"survival.covariates \['albumin'\]"):
        covariate_columns(_table(), _cfg(["age", "albumin"], []))


def test_the_cox_model_fits_and_names_the_log1p_column():
    rng = np.random.default_rng(0)
    n = 240
    scored = pd.DataFrame(
        {
            RISK_SCORE: rng.normal(size=n),
            "age": rng.normal(65, 8, n),
            "cea": rng.lognormal(2, 1, n),
            "group": [f"fold{k % 3}" for k in range(n)],
        }
    )
    hazard = np.exp(0.7 * scored[RISK_SCORE] + 0.4 * np.log1p(scored["cea"]))
    scored[MONTHS] = rng.exponential(30 / hazard)
    scored[DIED] = (scored[MONTHS] < 60).astype(int)
    scored[MONTHS] = scored[MONTHS].clip(upper=60)
    cfg = _cfg(["age", "cea"], ["cea"])
    out = _cox_models(scored, cfg, seed=0, optimism_resamples=2)
    assert list(out["cox_model"]["covariates"]) == [RISK_SCORE, "age", "log1p_cea"]
    assert list(out["cox_clinical"]["covariates"]) == ["age", "log1p_cea"]
    by_hand = scored.assign(log1p_cea=np.log1p(scored["cea"]))
    reference = cox_fit(
        by_hand, MONTHS, DIED, [RISK_SCORE, "age", "log1p_cea"], min_events_per_covariate=cfg.min_events_per_covariate
    )
    expected = reference.table.loc["log1p_cea", "coef"]
    assert out["cox_model"]["covariates"]["log1p_cea"]["coef"] == pytest.approx(expected)
    assert "log1p_cea" not in scored.columns  # _cox_models adds the column to its own copy
