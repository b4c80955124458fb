import numpy as np
import pandas as pd
import pytest

from crlm.data.clinical import ClinicalError, missing_counts, normalise_clinical, normalise_value


@pytest.mark.parametrize(
    "raw, expected",
    [
        (-999, np.nan),
        ("-999", np.nan),
        (-999.0, np.nan),
        ("", np.nan),
        (None, np.nan),
        ("90%", 0.9),
        (" 12.5 % ", 0.125),
        ("3", 3.0),
        (7, 7.0),
        (2.5, 2.5),
        ("1e2", 100.0),
    ],
)
def test_normalise_value(raw, expected):
    value = normalise_value(raw)
    if np.isnan(expected):
        assert np.isnan(value)
    else:
        assert value == pytest.approx(expected)


def test_mixed_column_and_prefixed_ids():
    raw = pd.DataFrame(
        {
            "Patient-ID": ["CRLM-CT-1002", "CRLM-CT-1001"],
            "overall_survival_months": ["-999", 31.5],
            "total_response_percent": ["90%", -999],
        }
    )
    table = normalise_clinical(raw, "tcia")
    assert table["patient_id"].tolist() == ["tcia-CRLM-CT-1001", "tcia-CRLM-CT-1002"]
    assert table.loc[0, "overall_survival_months"] == 31.5
    assert np.isnan(table.loc[1, "overall_survival_months"])
    assert table.loc[1, "total_response_percent"] == pytest.approx(0.9)
    assert missing_counts(table) == {"overall_survival_months": 1, "total_response_percent": 1}


def test_bad_value_names_patient_and_column():
    raw = pd.DataFrame({"Patient-ID": ["7"], "age": ["sixty"]})
    with pytest.raises(ClinicalError, match=r"clinical.csv: patient 7, column 'age'.*'sixty'"):
        normalise_clinical(raw, "phantom", origin="clinical.csv")


def test_coded_columns_accept_only_their_codes():
    raw = pd.DataFrame({"Patient-ID": ["1", "2", "3"], "sex": ["1", "2", "-999"], "vital_status": [0, 1, 1]})
    table = normalise_clinical(raw, "tcia")
    assert table["sex"].tolist()[:2] == [1.0, 2.0] and np.isnan(table["sex"].iloc[2])
    raw.loc[1, "vital_status"] = 2
    with pytest.raises(ClinicalError, match=r"patient 2, column 'vital_status': code 2 is not one of"):
        normalise_clinical(raw, "tcia", origin="clinical.csv")


def test_duplicate_patient_is_an_error():
    raw = pd.DataFrame({"Patient-ID": ["1", "1"], "age": [60, 61]})
    with pytest.raises(ClinicalError, match=r"more than once: \['1'\]"):
        normalise_clinical(raw, "phantom")


def test_missing_id_column_is_named():
    with pytest.raises(ClinicalError, match="Patient-ID"):
        normalise_clinical(pd.DataFrame({"age": [1]}), "phantom")
