"""Family-wise error control over a family of p-values.

Holm S (1979), "A simple sequentially rejective multiple test procedure", Scand J Statist
6:65-70: the k p-values sorted ascending, p_(j) is adjusted to max_{l <= j} min(1, (k - l + 1) p_(l)).
Computed by statsmodels.stats.multitest.multipletests(method="holm").
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
from statsmodels.stats.multitest import multipletests


def holm(p_values: Mapping[str, float | None]) -> dict[str, float | None]:
    """Holm-adjusted p-values, same keys and order. An undefined p-value (None or NaN) stays None
    and is not counted in the family: k is the number of defined p-values."""
    defined: dict[str, float] = {}
    for name, p in p_values.items():
        if p is None or (isinstance(p, float | np.floating) and math.isnan(p)):
            continue
        p = float(p)
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"holm: p-value {name!r} must be in [0, 1], got {p}")
        defined[name] = p
    adjusted = dict(zip(defined, multipletests(list(defined.values()), method="holm")[1].tolist())) if defined else {}
    return {name: adjusted.get(name) for name in p_values}
