"""The spread of the headline numbers over training seeds (`make stability` -> metrics/stability.json).

A number from one training run is one draw: the same recipe with another
`train.seed` gives another value. `headline` names the numbers the report takes
from one run; `spread` summarises one of them over seeds.
"""

from __future__ import annotations

import statistics

from crlm.headline import per_arch


# the metrics files whose numbers `make stability` follows (crlm.headline: PER_ARCH, PER_CRF, BEYOND)
FILES = ("classification", "segmentation", "survival", "lesions", "cam", "calibration")


def headline(metrics: dict[str, dict]) -> dict[str, float | None]:
    """The report's single-run numbers, flat: "<arch>.<metric>" -> value (None where undefined), from
    metrics = {file name: its contents} (FILES); the names are crlm.headline's PER_ARCH, PER_CRF and BEYOND."""
    return per_arch(metrics)


def spread(values: list[float | None]) -> dict:
    """Values over seeds with their mean, sample SD (n - 1) and range; undefined values are left out."""
    known = [v for v in values if v is not None]
    if len(known) < 2:
        return {"values": values, "mean": known[0] if known else None, "sd": None, "range": None}
    return {"values": values, "mean": round(statistics.mean(known), 4), "sd": round(statistics.stdev(known), 4),
            "range": round(max(known) - min(known), 4)}


def times_ahead(stability: dict | None, first: str, second: str) -> tuple[int, int] | None:
    """At how many of `make stability`'s seeds the number `first` exceeds `second`, of the seeds where both are
    defined: (times ahead, seeds); None where either number was not followed (or no seed defines both)."""
    rows = [(stability or {}).get("metrics", {}).get(name) for name in (first, second)]
    if None in rows:
        return None
    pairs = [(a, b) for a, b in zip(rows[0]["values"], rows[1]["values"]) if a is not None and b is not None]
    return (sum(a > b for a, b in pairs), len(pairs)) if pairs else None
