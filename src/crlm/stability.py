"""The spread of the headline numbers over training seeds (`make stability` -> metrics/stability.json).

A number from one training run is one draw: the same recipe with another
`train.seed` gives another value. `headline` names the numbers the report takes
from one run; `spread` summarises one of them over seeds.
"""

from __future__ import annotations

import math
import statistics
from typing import NamedTuple

from scipy.stats import chi2
from scipy.stats import t as student_t

from crlm.headline import per_arch

# the metrics files whose numbers `make stability` follows (crlm.headline: PER_ARCH, PER_CRF, BEYOND)
FILES = ("classification", "segmentation", "survival", "lesions", "cam", "calibration")


def headline(metrics: dict[str, dict]) -> dict[str, float | None]:
    """The report's single-run numbers, flat: "<arch>.<metric>" -> value (None where undefined), from
    metrics = {file name: its contents} (FILES); the names are crlm.headline's PER_ARCH, PER_CRF and BEYOND."""
    return per_arch(metrics)


def spread(values: list[float | None]) -> dict:
    """Values over seeds with their mean, sample SD (n - 1) and range (5 significant digits); undefined values
    are left out."""
    known = [v for v in values if v is not None]
    if len(known) < 2:
        return {"values": values, "mean": known[0] if known else None, "sd": None, "range": None}
    return {
        "values": values,
        "mean": significant(statistics.mean(known)),
        "sd": significant(statistics.stdev(known)),
        "range": significant(max(known) - min(known)),
    }


def significant(x: float, digits: int = 5) -> float:
    """x to `digits` significant digits: a p-value of 3e-6 keeps its size, where 4 decimals made it 0."""
    return float(f"{x:.{digits}g}")


def times_ahead(stability: dict | None, first: str, second: str) -> tuple[int, int] | None:
    """At how many of `make stability`'s seeds the number `first` exceeds `second`, of the seeds where both are
    defined: (times ahead, seeds); None where either number was not followed (or no seed defines both)."""
    rows = [(stability or {}).get("metrics", {}).get(name) for name in (first, second)]
    if None in rows:
        return None
    pairs = [(a, b) for a, b in zip(rows[0]["values"], rows[1]["values"]) if a is not None and b is not None]
    return (sum(a > b for a, b in pairs), len(pairs)) if pairs else None


class NoiseVerdict(NamedTuple):
    """A change between two single runs read against the seed SD: `sds` = change / SD; beyond noise when the
    change exceeds what two runs differing only in their training seed give at `level` (`p` below 1 - level)."""

    sds: float
    p: float
    beyond: bool
    threshold_sds: float  # the |change| / SD above which a change is beyond noise, at these seeds' df


def noise_verdict(change: float, sd: float, n_seeds: int, level: float = 0.95) -> NoiseVerdict:
    """Whether `change` (new - old, one run each) exceeds seed noise, given the SD of the number over `n_seeds`
    training seeds (n - 1 degrees of freedom). Two runs that differ only in their seed differ by
    N(0, 2 sigma^2), and sigma is estimated by the seeds' SD, so change / (SD * sqrt 2) follows Student's t
    with n - 1 df: a t reference rather than a normal one, because an SD from few seeds is itself uncertain
    (from 3 seeds its 95% CI runs from 0.52 to 6.3 times the estimate)."""
    if n_seeds < 2 or not sd > 0:
        raise ValueError(f"a seed SD needs at least 2 seeds and a positive SD (got {n_seeds} seeds, SD {sd})")
    df = n_seeds - 1
    t = change / (sd * math.sqrt(2))
    p = float(2 * student_t.sf(abs(t), df))
    threshold = float(student_t.ppf(1 - (1 - level) / 2, df)) * math.sqrt(2)
    return NoiseVerdict(sds=change / sd, p=p, beyond=p < 1 - level, threshold_sds=threshold)


def sd_interval(n_seeds: int, level: float = 0.95) -> tuple[float, float]:
    """The `level` CI of the true seed SD as multiples of an SD estimated from `n_seeds` seeds (chi-square with
    n - 1 df): 3 seeds give (0.52, 6.28), 5 give (0.60, 2.87)."""
    df = n_seeds - 1
    alpha = 1 - level
    return math.sqrt(df / chi2.ppf(1 - alpha / 2, df)), math.sqrt(df / chi2.ppf(alpha / 2, df))


def table(stability: dict) -> str:
    """metrics/stability.json as a markdown table, a row per number and a column per arch (and CRF entry):
    "mean (SD; range)" over the seeds, "–" where not followed; for reports/stability.md."""
    rows = stability["metrics"]
    groups = list(dict.fromkeys(name.split(".")[0] for name in rows))
    numbers = list(dict.fromkeys(name.split(".", 1)[1] for name in rows))

    def fmt(x: float) -> str:  # p-values far below 0.001 keep their size
        return f"{x:.3f}" if x == 0 or abs(x) >= 0.001 else f"{x:.1e}"

    def cell(row: dict | None) -> str:
        if not row or row["mean"] is None:
            return "–"
        return fmt(row["mean"]) if row["sd"] is None else f"{fmt(row['mean'])} ({fmt(row['sd'])}; {fmt(row['range'])})"

    lines = [
        f"Seeds: train.seed {', '.join(map(str, stability['seeds']))}, `make stability` at commit "
        f"{stability.get('commit', '?')}. Each cell: mean (SD; range) over the seeds.",
        "",
        "| number | " + " | ".join(groups) + " |",
        "|---|" + "---|" * len(groups),
    ]
    lines += [
        f"| {number} | " + " | ".join(cell(rows.get(f"{group}.{number}")) for group in groups) + " |"
        for number in numbers
    ]
    return "\n".join(lines) + "\n"
