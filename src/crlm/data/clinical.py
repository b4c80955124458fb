"""Normalise TCIA-style clinical tables: one row per patient, missing as NaN.

TCIA's Colorectal-Liver-Metastases spreadsheet codes missing values as -999
and writes some fractions as percentage strings ("90%"). The documented
numeric columns (NUMERIC_COLUMNS) are normalised to numbers, and a value
that is not a number is an error naming the patient; every other column
(IDC's `source_batch`, free-text notes) is kept as text, missing as <NA>.
Coded columns keep TCIA's codes and are documented here:
  sex: 1 male, 2 female; vital_status: 1 dead, 0 alive at last follow-up;
  progression_or_recurrence: 1 yes, 0 no.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from crlm.data.sources import patient_id

MISSING_CODE = -999
ID_COLUMN = "Patient-ID"
# coded columns: TCIA's codes are kept as numbers (Cox uses them as such); any other value is an error
CODES = {
    "sex": {1: "male", 2: "female"},
    "vital_status": {1: "dead", 0: "alive at last follow-up"},
    "progression_or_recurrence": {1: "yes", 0: "no"},
}
SURVIVAL_COLUMNS = ("overall_survival_months", "vital_status", "months_to_DFS_progression", "progression_or_recurrence")
NUMERIC_COLUMNS = (
    "age",
    "sex",
    "major_comorbidity",
    "node_pos",
    "clinrisk_score",
    "carcinoembryonic_antigen",
    "max_tumor_size",
    "total_response_percent",
    *SURVIVAL_COLUMNS,
)


class ClinicalError(ValueError):
    """The clinical table is malformed; the message names the file, column or patient."""


def normalise_value(value: object) -> float:
    """-999 / blank -> NaN, '90%' -> 0.9, numeric text -> float; anything else raises."""
    if value is None:
        return np.nan
    if isinstance(value, (bool, np.bool_)):
        return float(value)
    if isinstance(value, (int, float, np.integer, np.floating)):
        return np.nan if (np.isnan(value) or value == MISSING_CODE) else float(value)
    text = str(value).strip()
    if text == "" or text.lower() in {"nan", "na", "n/a"}:
        return np.nan
    if text.endswith("%"):
        return normalise_value(text[:-1].strip()) / 100.0
    try:
        return normalise_value(float(text))
    except ValueError:
        raise ValueError(f"not a number: {value!r}") from None


def normalise_text(value: object) -> str | None:
    """Stripped text; None, NaN, blank and -999 are missing."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    text = str(value).strip()
    return None if text == "" or text in (str(MISSING_CODE), f"{MISSING_CODE}.0") else text


def normalise_clinical(raw: pd.DataFrame, source: str, origin: str = "clinical table") -> pd.DataFrame:
    if ID_COLUMN not in raw.columns:
        raise ClinicalError(f"{origin}: no '{ID_COLUMN}' column (columns: {list(raw.columns)})")
    ids = raw[ID_COLUMN].astype(str).str.strip()
    duplicated = sorted(set(ids[ids.duplicated()]))
    if duplicated:
        raise ClinicalError(f"{origin}: patients listed more than once: {duplicated}")
    out = pd.DataFrame({"patient_id": [patient_id(source, i) for i in ids], "source": source, "case_id": ids})
    for column in raw.columns:
        if column == ID_COLUMN:
            continue
        if column not in NUMERIC_COLUMNS:
            out[column] = pd.array([normalise_text(v) for v in raw[column]], dtype="string")
            continue
        values = []
        for case_id, value in zip(ids, raw[column]):
            try:
                values.append(normalise_value(value))
            except ValueError as exc:
                raise ClinicalError(f"{origin}: patient {case_id}, column '{column}': {exc}") from None
        out[column] = np.asarray(values, dtype=float)
        if column in CODES:
            bad = out[column].notna() & ~out[column].isin(list(CODES[column]))
            if bad.any():
                case_id, value = ids[bad.to_numpy()].iloc[0], out.loc[bad, column].iloc[0]
                raise ClinicalError(
                    f"{origin}: patient {case_id}, column '{column}': code {value:g} is not one of {CODES[column]}"
                )
    return out.sort_values("patient_id", kind="stable").reset_index(drop=True)


def missing_counts(clinical: pd.DataFrame) -> dict[str, int]:
    value_columns = [c for c in clinical.columns if c not in ("patient_id", "source", "case_id")]
    counts = clinical[value_columns].isna().sum()
    return {column: int(n) for column, n in counts.items() if n > 0}
