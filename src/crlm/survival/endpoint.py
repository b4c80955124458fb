"""The binary survival endpoint: short- vs long-term survival at a horizon.

short-term (1): died before the horizon. long-term (0): followed up to the horizon
or beyond. A patient censored (alive at last contact) before the horizon has an
unknown class: NaN here, so that patient leaves the binary task but stays in the
time-to-event analyses (Kaplan-Meier, log-rank, Cox).
"""

from __future__ import annotations

import numpy as np

# the survival table's columns (data/interim/clinical.parquet, data/survival/<arch>.parquet), which the compare
# and calibration stages read too
MONTHS, DIED = "overall_survival_months", "vital_status"
RISK_SCORE = "risk_score"


def binary_endpoint(months, died, horizon_months: float) -> np.ndarray:
    months = np.asarray(months, dtype=float)
    died = np.asarray(died, dtype=float)
    label = np.full(months.shape, np.nan)
    label[(died == 1) & (months < horizon_months)] = 1.0
    label[months >= horizon_months] = 0.0
    label[~np.isfinite(months) | ~np.isfinite(died)] = np.nan
    return label
