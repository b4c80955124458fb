"""One convention for the results of the statistics (as lifelines' StatisticalResult).

A result is a frozen dataclass that mixes in `Result`. Its field names are the JSON keys,
in declaration order; an undefined value is NaN with the reason in a `reason` field.
`to_dict` is the only serialiser: NaN and infinities become None (JSON null), numpy
scalars become Python numbers, and floats are rounded only when `digits` is given
(`crlm.core.io.rounded`: dicts recursed, ints, None and strings kept).
"""

from __future__ import annotations

import math
from dataclasses import fields
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from crlm.core.io import rounded

if TYPE_CHECKING:
    from _typeshed import DataclassInstance


class Result:
    """Mixin for frozen dataclasses: `to_dict(digits=None)`, field names as keys in declaration order."""

    def to_dict(self, digits: int | None = None) -> dict:
        return plain({f.name: getattr(self, f.name) for f in fields(cast("DataclassInstance", self))}, digits)


def plain(value: Any, digits: int | None = None) -> Any:
    """`value` ready for JSON: dicts and lists recursed (tuples and arrays become lists), numpy scalars as
    Python numbers, NaN and infinities as None; then, given `digits`, floats rounded (`crlm.core.io.rounded`)."""
    value = _plain(value)
    return value if digits is None else rounded(value, digits)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [_plain(v) for v in (value.tolist() if isinstance(value, np.ndarray) else value)]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
