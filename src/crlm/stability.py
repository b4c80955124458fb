"""The spread of the headline numbers over training seeds (`make stability` -> metrics/stability.json).

A number from one training run is one draw: the same recipe with another
`train.seed` gives another value. `headline` names the numbers the report takes
from one run; `spread` summarises one of them over seeds.
"""

from __future__ import annotations

import statistics

from crlm.models.registry import ARCHS, SEGMENTING


def headline(classification: dict, segmentation: dict, survival: dict) -> dict[str, float | None]:
    """The report's single-run numbers, flat: "<arch>.<metric>" -> value (None where undefined)."""
    out: dict[str, float | None] = {}
    for arch in ARCHS:
        out[f"{arch}.test_auc"] = classification[arch]["test"]["auc"]["value"]
        out[f"{arch}.cv_auc"] = classification[arch]["cv"]["auc"]["mean"]
        out[f"{arch}.test_accuracy"] = classification[arch]["test"]["accuracy"]["value"]
        if arch in SEGMENTING:
            out[f"{arch}.test_iou"] = segmentation[arch]["test"]["iou"]["value"]
            out[f"{arch}.test_dice"] = segmentation[arch]["test"]["dice"]["value"]
        out[f"{arch}.survival_auc"] = survival[arch]["auc"]["value"]
        out[f"{arch}.survival_auc_ipcw"] = survival[arch]["auc_ipcw"]["value"]
        out[f"{arch}.survival_c_harrell"] = survival[arch]["c_index"]["harrell"]
        out[f"{arch}.survival_logrank_p"] = survival[arch]["logrank"]["p_value"]
    for name in segmentation:
        if name.endswith("+crf"):
            out[f"{name}.test_iou"] = segmentation[name]["test"]["iou"]["value"]
    return out


def spread(values: list[float | None]) -> dict:
    """Values over seeds with their mean, sample SD (n - 1) and range; undefined values are left out."""
    known = [v for v in values if v is not None]
    if len(known) < 2:
        return {"values": values, "mean": known[0] if known else None, "sd": None, "range": None}
    return {"values": values, "mean": round(statistics.mean(known), 4), "sd": round(statistics.stdev(known), 4),
            "range": round(max(known) - min(known), 4)}
