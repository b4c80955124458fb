"""Figures in their units, as bench_scale prints them and reports/scale.md shows them."""

from __future__ import annotations

MIB = 2**20


def fmt_bytes(n: float | None) -> str:
    """Bytes in the largest binary unit that keeps the figure at or above 1000 of the unit below."""
    if n is None:
        return "-"
    for unit, size in (("GiB", 2**30), ("MiB", MIB), ("KiB", 2**10)):
        if n >= size * 1000 / 1024:
            value = n / size
            return f"{value:,.2f} {unit}" if value < 10 else f"{value:,.1f} {unit}"
    return f"{n:.0f} B"


def fmt_mib(mib: float | None) -> str:
    return "-" if mib is None else fmt_bytes(mib * MIB)


def fmt_s(s: float | None) -> str:
    if s is None:
        return "-"
    if s < 120:
        return f"{s:.1f} s"
    if s < 7200:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


def fmt_value(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    return {"MiB": fmt_mib, "s": fmt_s}.get(unit, lambda v: f"{v:.2f}")(value)
