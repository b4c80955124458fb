"""Each headline number's change read against its seed noise (metrics/stability.json, `make stability`).

A seed SD is the noise of the pipeline as it was when `make stability` ran (its commit). It is stale for a
number when a stage that number depends on (the stage writing its metrics file, or any stage upstream of
it) has other code, data or params at the base revision than at that commit; the training seed itself
aside. Stages and their edges come from dvc.lock: a stage depends on another when one of its deps is, or
lies inside or above, one of the other's outputs.
"""

from __future__ import annotations

from typing import NamedTuple

from crlm.headline import source_file
from crlm.stability import NoiseVerdict, noise_verdict

METRICS_DIR = "metrics"
NOT_SEEDED = ("qc", "splits")  # the data stages' numbers: no training seed moves them


class Reading(NamedTuple):
    """One headline number of a review: its values, the change, and what the seed noise says of it."""

    name: str
    old: float | None
    new: float | None
    verdict: str  # "within seed noise", "beyond noise: 4.2 seed SDs", ...
    note: str = ""  # why there is no verdict, or that the SD is stale
    test: NoiseVerdict | None = None

    @property
    def change(self) -> float | None:
        return None if self.old is None or self.new is None else self.new - self.old


def fingerprint(entry: dict) -> dict:
    """A lock entry without its outputs and without train.seed: what a seed SD measured at one commit assumes."""
    params = {
        file: {
            key: (
                {k: v for k, v in value.items() if k != "seed"} if key == "train" and isinstance(value, dict) else value
            )
            for key, value in keys.items()
            if key != "train.seed"
        }
        for file, keys in entry.get("params", {}).items()
    }
    return {"cmd": entry.get("cmd"), "deps": entry.get("deps"), "params": params}


def upstream(lock: dict[str, dict], stage: str) -> set[str]:
    """`stage` and every stage it depends on, transitively, in one dvc.lock."""
    outs = {name: [out["path"] for out in entry.get("outs", [])] for name, entry in lock.items()}

    def feeds(dep: str, out: str) -> bool:
        return dep == out or dep.startswith(out.rstrip("/") + "/") or out.startswith(dep.rstrip("/") + "/")

    found, todo = set(), [stage]
    while todo:
        name = todo.pop()
        if name in found or name not in lock:
            continue
        found.add(name)
        for dep in lock[name].get("deps", []):
            todo += [other for other, paths in outs.items() if any(feeds(dep["path"], out) for out in paths)]
    return found


def producer(lock: dict[str, dict], kind: str) -> str | None:
    """The stage whose outputs include metrics/<kind>.json."""
    path = f"{METRICS_DIR}/{kind}.json"
    return next((name for name, entry in lock.items() if any(o["path"] == path for o in entry.get("outs", []))), None)


class SeedNoise:
    """metrics/stability.json with the dvc.lock of its commit and of the base revision."""

    def __init__(self, stability: dict | None, measured_lock: dict | None, base_lock: dict, level: float = 0.95):
        self.stability = stability or {}
        self.rows = self.stability.get("metrics", {})
        self.measured_lock = measured_lock
        self.base_lock = base_lock
        self.level = level

    def changed_stages(self, kind: str) -> list[str] | None:
        """The stages behind metrics/<kind>.json that differ between the stability commit and the base (None:
        that commit's dvc.lock could not be read)."""
        if self.measured_lock is None:
            return None
        stage = producer(self.base_lock, kind)
        if stage is None:
            return []
        return sorted(
            name
            for name in upstream(self.base_lock, stage)
            if name not in self.measured_lock
            or fingerprint(self.measured_lock[name]) != fingerprint(self.base_lock[name])
        )

    def read(self, name: str, old: float | None, new: float | None) -> Reading:
        kind = source_file(name)
        if old is None or new is None:
            return Reading(name, old, new, "new number" if old is None else "removed")
        if old == new:
            return Reading(name, old, new, "unchanged")
        if kind in NOT_SEEDED:
            return Reading(name, old, new, "changed", "the data stages' numbers: no training seed moves them")
        row = self.rows.get(name)
        known = [v for v in (row or {}).get("values", []) if v is not None]
        if not row or row.get("sd") is None or len(known) < 2:
            why = "not followed by `make stability`" if not self.rows or not row else "fewer than 2 seeds define it"
            return Reading(name, old, new, "no verdict", f"no seed SD ({why})")
        if row["sd"] == 0:
            return Reading(name, old, new, "beyond noise", f"the seeds all gave {known[0]}: any change is beyond them")
        test = noise_verdict(new - old, row["sd"], len(known), self.level)
        verdict = f"beyond noise: {abs(test.sds):.1f} seed SDs" if test.beyond else "within seed noise"
        stale = self.changed_stages(kind)
        shown = ", ".join(stale[:3]) + (f" and {len(stale) - 3} more" if len(stale) > 3 else "") if stale else ""
        note = (
            "stale SD? the stability commit's dvc.lock could not be read"
            if stale is None
            else f"stale SD: {shown} changed since `make stability`"
            if stale
            else ""
        )
        return Reading(name, old, new, verdict, note, test)


def describe_test(n_seeds: int, level: float = 0.95) -> str:
    """One sentence on how a verdict is reached, with the threshold at these seeds' degrees of freedom."""
    from crlm.stability import sd_interval

    threshold = noise_verdict(1.0, 1.0, n_seeds, level).threshold_sds
    low, high = sd_interval(n_seeds, level)
    return (
        f"A change is beyond noise when |change| / (seed SD x sqrt 2) exceeds Student's t at {level:.0%} "
        f"(two-sided) with {n_seeds - 1} degrees of freedom ({n_seeds} seeds): |change| > "
        f"{threshold:.2f} seed SDs. Two runs differing only in their training seed differ by about "
        f"sqrt 2 seed SDs; an SD from {n_seeds} seeds is itself uncertain (its {level:.0%} CI runs from "
        f"{low:.2f}x to {high:.2f}x the estimate), which the t reference allows for."
    )
