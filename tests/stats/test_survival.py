"""Kaplan-Meier, log-rank and Cox pinned to R's survival package on data it ships (aml, lung).

References:
- aml (survival::aml, Miller 1997): R 4.5.1, survival 3.8.3, values printed with %.12g:
  survfit(Surv(time, status) ~ 1, data = aml)$surv; survdiff(Surv(time, status) ~ x, data = aml)
  (chisq 3.39638869898, p 0.0653393220405, expected 10.6893359923 / 7.3106640077);
  coxph(Surv(time, status) ~ m, data = aml), m = 1 if Maintained (coef -0.915532575015,
  se 0.511934275172, Wald p 0.073714860639, loglik -41.0326155965).
- lung (survival::lung, as shipped by lifelines): coxph(Surv(time, status) ~ age + sex, data = lung)
  printout (coef 0.017045 / -0.513219, se 0.009223 / 0.167458, concordance 0.603) and
  summary(survfit(Surv(time, status) ~ sex, data = lung), times = c(365, 730))$surv
  = 0.33608783 0.07812409 (sex 1), 0.52646303 0.18723250 (sex 2).
"""

import numpy as np
import pandas as pd
import pytest
from lifelines.datasets import load_lung

from crlm.stats.survival import at_risk, cox_fit, kaplan_meier, logrank

AML_MAINTAINED = [(9, 1), (13, 1), (13, 0), (18, 1), (23, 1), (28, 0), (31, 1), (34, 1), (45, 0), (48, 1), (161, 0)]
AML_NONMAINTAINED = [
    (5, 1),
    (5, 1),
    (8, 1),
    (8, 1),
    (12, 1),
    (16, 0),
    (23, 1),
    (27, 1),
    (30, 1),
    (33, 1),
    (43, 1),
    (45, 1),
]


@pytest.fixture
def aml():
    rows = [(t, e, 1) for t, e in AML_MAINTAINED] + [(t, e, 0) for t, e in AML_NONMAINTAINED]
    return pd.DataFrame(rows, columns=["time", "status", "maintained"])


def test_kaplan_meier_matches_r_on_aml(aml):
    times = [5, 8, 9, 12, 13, 16, 18, 23, 27, 28, 30, 31, 33, 34, 43, 45, 48, 161]
    r_surv = [
        0.913043478261,
        0.826086956522,
        0.782608695652,
        0.739130434783,
        0.695652173913,
        0.695652173913,
        0.645962732919,
        0.546583850932,
        0.496894409938,
        0.496894409938,
        0.441683919945,
        0.386473429952,
        0.331262939959,
        0.276052449965,
        0.220841959972,
        0.165631469979,
        0.0828157349896,
        0.0828157349896,
    ]
    km = kaplan_meier(aml["time"], aml["status"])
    np.testing.assert_allclose(km.at(times), r_surv, atol=1e-6)
    assert km.median == 27 and km.n == 23 and km.n_events == 18
    assert km.at([0, 4.9])[0] == 1.0
    assert list(at_risk(aml["time"], [0, 5, 13, 161])) == [23, 23, 17, 1]


def test_logrank_matches_r_survdiff_on_aml(aml):
    result = logrank(aml["time"], aml["status"], np.where(aml["maintained"] == 1, "maintained", "not"))
    assert result.chisq == pytest.approx(3.39638869898, abs=1e-6)
    assert result.p_value == pytest.approx(0.0653393220405, abs=1e-6)
    assert result.n == {"maintained": 11, "not": 12} and result.events == {"maintained": 7, "not": 11}


def test_cox_matches_r_coxph_on_aml(aml):
    result = cox_fit(aml, "time", "status", ["maintained"])
    row = result.table.loc["maintained"]
    assert row["coef"] == pytest.approx(-0.915532575015, abs=1e-6)
    assert row["se"] == pytest.approx(0.511934275172, abs=1e-6)
    assert row["p"] == pytest.approx(0.073714860639, abs=1e-6)
    assert result.log_likelihood == pytest.approx(-41.0326155965, abs=1e-6)
    assert row["hr"] == pytest.approx(np.exp(-0.915532575015), abs=1e-6)


def test_cox_and_kaplan_meier_match_r_on_lung():
    lung = load_lung()
    result = cox_fit(lung, "time", "status", ["age", "sex"])
    # R prints 6 decimals: a difference below 1e-6 means the same printout
    assert result.table.loc["age", "coef"] == pytest.approx(0.017045, abs=1e-6)
    assert result.table.loc["sex", "coef"] == pytest.approx(-0.513219, abs=1e-6)
    assert result.table.loc["age", "se"] == pytest.approx(0.009223, abs=1e-6)
    assert result.table.loc["sex", "se"] == pytest.approx(0.167458, abs=1e-6)
    assert round(result.concordance, 3) == 0.603
    assert (result.n, result.n_events) == (228, 165)
    for sex, expected in ((1, [0.33608783, 0.07812409]), (2, [0.52646303, 0.18723250])):
        group = lung[lung["sex"] == sex]
        np.testing.assert_allclose(kaplan_meier(group["time"], group["status"]).at([365, 730]), expected, atol=1e-6)


def test_undefined_results_carry_a_reason(aml):
    one_group = logrank(aml["time"], aml["status"], ["high"] * len(aml))
    assert np.isnan(one_group.p_value) and "two groups" in one_group.reason
    few = aml.head(3).assign(status=[1, 0, 0])
    too_few = cox_fit(few, "time", "status", ["maintained"])
    assert np.isnan(too_few.concordance) and "1 events" in too_few.reason
    assert too_few.to_dict()["covariates"]["maintained"]["hr"] is None
    constant = cox_fit(aml.assign(one=1.0), "time", "status", ["one"])
    assert "constant" in constant.reason
    with pytest.raises(KeyError, match="cea"):
        cox_fit(aml, "time", "status", ["cea"])
    with pytest.raises(ValueError, match="events must be 0/1"):
        kaplan_meier([1, 2], [1, 2])
