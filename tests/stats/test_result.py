"""The one result convention (crlm.stats.result): field names are the JSON keys in declaration order,
NaN/inf -> None, numpy scalars -> Python, rounding only when asked (crlm.core.io.rounded)."""

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from crlm.core.io import rounded, write_json
from crlm.evaluation.bootstrap import BootstrapCI
from crlm.stats.clustered_auc import ClusteredAUCResult
from crlm.stats.delong import DeLongResult
from crlm.stats.discrimination import CIndexResult, IPCWAUCResult, LRTResult, PairedCIndexResult
from crlm.stats.result import Result, plain
from crlm.stats.survival import CoxResult, LogRankResult

NAN = float("nan")


@dataclasses.dataclass(frozen=True)
class Toy(Result):
    zeta: float
    alpha: int
    mid: dict
    label: str = ""


def test_keys_are_the_field_names_in_declaration_order():
    assert list(Toy(0.5, 2, {"b": 1, "a": 2}).to_dict()) == ["zeta", "alpha", "mid", "label"]
    assert list(Toy(0.5, 2, {"b": 1, "a": 2}).to_dict()["mid"]) == ["b", "a"]


def test_nan_and_infinities_become_none_also_nested():
    out = Toy(NAN, 1, {"x": float("inf"), "y": np.float64("-inf"), "z": np.nan, "ok": 0.25}).to_dict()
    assert out == {"zeta": None, "alpha": 1, "mid": {"x": None, "y": None, "z": None, "ok": 0.25}, "label": ""}
    json.dumps(out, allow_nan=False)


def test_numpy_scalars_become_python_numbers():
    out = Toy(np.float64(0.1), np.int64(3), {"n": np.int32(4), "flag": np.bool_(True), "f": np.float32(0.5)}).to_dict()
    assert type(out["zeta"]) is float and out["zeta"] == 0.1
    assert type(out["alpha"]) is int and out["alpha"] == 3
    assert type(out["mid"]["n"]) is int and type(out["mid"]["flag"]) is bool and type(out["mid"]["f"]) is float
    assert json.dumps(out) == '{"zeta": 0.1, "alpha": 3, "mid": {"n": 4, "flag": true, "f": 0.5}, "label": ""}'


def test_no_rounding_unless_digits_is_given():
    result = Toy(0.123456789, 7, {"p": 2 / 3, "k": 5})
    assert result.to_dict()["zeta"] == 0.123456789 and result.to_dict()["mid"]["p"] == 2 / 3
    out = result.to_dict(digits=4)
    assert out == {"zeta": 0.1235, "alpha": 7, "mid": {"p": 0.6667, "k": 5}, "label": ""}
    assert type(out["alpha"]) is int and type(out["mid"]["k"]) is int


def test_rounded_recurses_dicts_only_and_keeps_ints_none_strings_lists():
    tree = {"a": 1.23456, "b": 3, "c": None, "d": "x", "e": [0.123456], "f": {"g": np.float64(2.0 / 3)}, "h": True}
    assert rounded(tree, 2) == {"a": 1.23, "b": 3, "c": None, "d": "x", "e": [0.123456], "f": {"g": 0.67}, "h": True}
    assert type(rounded(tree, 2)["f"]["g"]) is float
    assert plain((np.float64(0.5), np.array([1, 2]))) == [0.5, [1, 2]]


def test_to_dict_is_a_copy():
    result = LogRankResult(1.0, 0.3, {"high": 3, "low": 4}, {"high": 1, "low": 2})
    result.to_dict()["n"]["high"] = 99
    assert result.n == {"high": 3, "low": 4}


def test_results_keep_the_json_keys_written_to_metrics():
    keys = [
        (BootstrapCI(0.8, 0.7, 0.9, 0.95, 1000), ["value", "ci_low", "ci_high", "ci_level", "n_boot_valid"]),
        (LogRankResult(NAN, NAN), ["chisq", "p_value", "n", "events", "reason"]),
        (LRTResult(NAN, 1, NAN), ["statistic", "df", "p_value", "reason"]),
        (IPCWAUCResult(NAN, 24.0, 10, 3, 4), ["value", "horizon", "n", "n_cases", "n_controls", "reason"]),
        (CIndexResult(NAN, 10, 3, NAN), ["value", "n", "n_events", "tau", "reason"]),
    ]
    for result, expected in keys:
        assert list(result.to_dict()) == expected, type(result).__name__
    common = ["auc_a", "auc_b", "diff", "se", "z", "p_value", "ci_low", "ci_high", "ci_level", "n_pos", "n_neg"]
    assert [f.name for f in dataclasses.fields(DeLongResult)] == [*common, "reason"]
    assert [f.name for f in dataclasses.fields(ClusteredAUCResult)] == [*common, "n_clusters", "df", "reason"]
    assert [f.name for f in dataclasses.fields(PairedCIndexResult)][-4:] == ["n", "n_events", "n_boot_valid", "reason"]


def test_bootstrap_ci_rounding_matches_the_evaluation_summary():
    """Floats rounded to 4 digits (ci_level too), n_boot_valid an int, an undefined value None."""
    assert BootstrapCI(0.912345, 0.81234, 0.98765, 0.95, 997).to_dict(digits=4) == {
        "value": 0.9123,
        "ci_low": 0.8123,
        "ci_high": 0.9877,
        "ci_level": 0.95,
        "n_boot_valid": 997,
    }
    assert BootstrapCI(None, None, None, 0.95, 0).to_dict(digits=4) == {
        "value": None,
        "ci_low": None,
        "ci_high": None,
        "ci_level": 0.95,
        "n_boot_valid": 0,
    }


def test_cox_result_writes_its_table_as_covariates_first():
    table = pd.DataFrame(
        {
            "coef": [0.5, NAN],
            "se": [0.1, NAN],
            "hr": [np.exp(0.5), NAN],
            "hr_low": [1.2, NAN],
            "hr_high": [2.0, NAN],
            "p": [0.01, NAN],
        },
        index=["risk_score", "age"],
    )
    out = CoxResult(table, 0.7, -40.5, 50, 20).to_dict()
    assert list(out) == ["covariates", "concordance", "log_likelihood", "n", "n_events", "reason"]
    assert list(out["covariates"]) == ["risk_score", "age"]
    assert list(out["covariates"]["risk_score"]) == ["coef", "se", "hr", "hr_low", "hr_high", "p"]
    assert out["covariates"]["age"] == dict.fromkeys(["coef", "se", "hr", "hr_low", "hr_high", "p"])
    assert type(out["covariates"]["risk_score"]["coef"]) is float and out["n"] == 50


def test_write_json_refuses_nan_and_names_the_file(tmp_path):
    write_json(tmp_path / "ok.json", Toy(0.1, 1, {}).to_dict())
    assert (tmp_path / "ok.json").read_text() == '{\n  "zeta": 0.1,\n  "alpha": 1,\n  "mid": {},\n  "label": ""\n}\n'
    with pytest.raises(ValueError, match="bad.json"):
        write_json(tmp_path / "bad.json", {"x": NAN})
    assert not (tmp_path / "bad.json").exists()
