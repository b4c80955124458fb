"""The report's seed spread (metrics/stability.json from `make stability`): the SD beside each single-run
number, the range of the log-rank p, the count of seeds at which one arch is ahead of another, and the table of
the numbers beyond the paper."""

from __future__ import annotations

from collections.abc import Callable

from crlm.archs import ARCHS, title
from crlm.headline import BEYOND
from crlm.stability import times_ahead


class SeedSpread:
    """How much each single-run number moves with the training seed (metrics/stability.json)."""

    def __init__(self, stability: dict | None) -> None:
        self.stability = stability

    def note(self) -> str:
        if not self.stability:
            return (
                "Seed SD: not measured (`make stability` retrains with several seeds); every number below "
                "comes from one training run."
            )
        return (
            f"Seed SD: the SD of a number over `make stability`'s retrainings with train.seed "
            f"{', '.join(map(str, self.stability['seeds']))} (commit {self.stability.get('commit', '?')}); "
            "a difference smaller than a few seed SDs is not a finding. Rerun `make stability` after a change "
            "to the recipe."
        )

    def _row(self, name: str) -> dict | None:
        return (self.stability or {}).get("metrics", {}).get(name)

    def has(self, name: str) -> bool:
        return self._row(name) is not None

    def sd(self, name: str) -> str:
        row = self._row(name)
        return "–" if not row or row["sd"] is None else f"{row['sd']:.3f}"

    def ahead(self, first: str, second: str) -> str:
        """A sentence, after a space: at how many seeds the number `first` exceeded `second` ("" where not
        measured)."""
        count = times_ahead(self.stability, first, second)
        if count is None:
            return ""
        k, n = count
        who = f"{title(first.split('.')[0])} is ahead of {title(second.split('.')[0])}"
        if k == n:
            return (
                f" {who} at every one of `make stability`'s {n} training seeds: consistent, though {n} seeds "
                "on one test set are weak evidence of an order."
            )
        if k == 0:
            return (
                f" {who} at none of `make stability`'s {n} training seeds (is metrics/stability.json of this "
                "recipe?): not a finding."
            )
        return f" {who} at {k} of `make stability`'s {n} training seeds: the order depends on the seed, not a finding."

    def sd_range(self, name: str) -> str:
        row = self._row(name)
        return "–" if not row or row["sd"] is None else f"{row['sd']:.3f} ({row['range']:.3f})"

    def span(self, name: str, number: Callable[[float], str]) -> str:
        """'lowest – highest' of the number over the seeds, each written by `number`."""
        row = self._row(name)
        known = [v for v in (row or {}).get("values", []) if v is not None]
        return "–" if len(known) < 2 else f"{number(min(known))} – {number(max(known))}"


# BEYOND's names as the report's column heads
BEYOND_TITLES = {
    "lesion_sensitivity_3d": "3-D lesion sensitivity",
    "lesion_fp_per_patient_3d": "3-D FP per patient",
    "lesion_sensitivity_slice": "per-slice sensitivity",
    "lesion_fp_per_patient_slice": "per-slice FP per patient",
    "cam_mass_share": "CAM mass in tumour",
    "cam_pointing_hit_rate": "pointing game",
    "image_brier": "image Brier",
    "image_calibration_slope": "image calibration slope",
    "survival_brier": "survival Brier",
    "survival_calibration_slope": "survival calibration slope",
}


def beyond_section(seeds: SeedSpread) -> list[str]:
    """The seed SD (and range) of the lesion, Grad-CAM and calibration numbers, which come from one run."""
    lines = ["## Seed spread of the numbers beyond the paper", ""]
    if not any(seeds.has(f"{arch}.{name}") for arch in ARCHS for name in BEYOND):
        return lines + [
            "Not measured: the lesion, Grad-CAM and calibration numbers above come from one training "
            "run (`make stability` measures their spread over training seeds).",
            "",
        ]
    lines += [
        "The lesion, Grad-CAM and calibration numbers above come from one training run (train.seed of "
        "params.yaml); here is how far each moves over `make stability`'s seeds: SD (range, max - min). "
        "Their bootstrap CIs cover the sampling of test patients, not this.",
        "",
        "| model | " + " | ".join(BEYOND_TITLES[name] for name in BEYOND) + " |",
        "|---|" + "---|" * len(BEYOND),
    ]
    for arch in ARCHS:
        lines.append(f"| {title(arch)} | " + " | ".join(seeds.sd_range(f"{arch}.{name}") for name in BEYOND) + " |")
    return lines + [""]
