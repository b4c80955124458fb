"""The report's section on lesion-level detection and lesion size (metrics/lesions.json).

The CLM-Net paper reports no lesion-level number; the column beside ours quotes two related studies
(../shared/seeds/): seed 002 (a deep-learning lesion detector on CT of colorectal liver metastases, 99
metastases in 85 patients: per-lesion sensitivity and false positives per patient, and sensitivity below and
above 10 mm) and seed 001 (TotalSegmentator's Dice of colorectal liver metastases <= 10 mm and 10-30 mm).
Their data (real portal-venous CT, 3-D lesions read by radiologists) differ from ours, so they are a
reference for the order of magnitude, not a target.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from crlm.archs import title

if TYPE_CHECKING:
    from crlm.params import Params

# seed 002 (Table 3, Table 4): DLLD's per-lesion sensitivity (detected/lesions) and false positives per patient
SEED_002 = {
    "sensitivity": "0.818 (81/99)",
    "fp_per_patient": "1.330 (113/85)",
    "below_10mm": "0.565 (13/23, < 10 mm)",
    "from_10mm": "0.895 (68/76, >= 10 mm)",
}
# seed 001: TotalSegmentator's Dice of the lesions <= 10 mm and 10-30 mm
SEED_001_DICE = {0: "0.692", 1: "0.861"}
RELATED_BANDS = [10.0, 30.0]  # the band edges the related numbers belong to


def report_section(params: Params, lesions: dict) -> list[str]:
    """Markdown lines: detection at the threshold (per-slice and 3-D lesions), the size bands, the FROC
    figure, with seeds 001 and 002 beside ours and sentences saying what the numbers mean."""
    settings = lesions["settings"]
    archs = [name for name in lesions if name != "settings"]
    level = round(params.stats.ci_level * 100)
    lenient = settings["min_iou"] > 0
    match = (
        "a predicted component overlaps it (one shared pixel suffices)"
        if not lenient
        else f"the predicted components on it reach IoU >= {settings['min_iou']:g} with it (the stated "
        "localisation criterion; every count and sentence below uses it)"
    )
    lines = [
        "## Lesion-level detection and lesion size, independent test set (beyond the paper)",
        "",
        "Connected components (8-connectivity per slice; 26 across adjacent slices for the 3-D lesions) of "
        f"the fold ensemble's tumour mask at threshold {settings['threshold']:g} and of the true mask; a true "
        f"lesion is detected when {match}; a predicted component on no true lesion is a false positive. Per "
        "slice: every slice's cross-section of a lesion counts as one lesion (the prepared 2-D images); 3-D: "
        "each test patient's slices back in the original geometry, stacked by slice index. CIs: "
        f"{level}% patient-level bootstrap; for a sensitivity, Korn and Graubard's exact interval clustered by "
        "patient (it can leave 0 and 1, which no bootstrap resample can). The CLM-Net paper reports no "
        "lesion-level number; the last "
        "column quotes related studies on real CT (seed 002: a lesion detector, 3-D lesions), for the order "
        "of magnitude only.",
        "",
        "| model | per-slice sensitivity [CI] (detected/lesions) | per-slice FP per patient [CI] | "
        "3-D sensitivity [CI] (detected/lesions) | 3-D FP per patient [CI] | "
        + ("any overlap: per-slice / 3-D sensitivity (detected) | " if lenient else "")
        + "related: sensitivity / FP per patient (seed 002) |",
        "|---|---|---|---|---|" + ("---|" if lenient else "") + "---|",
    ]
    for arch in archs:
        flat, deep = lesions[arch]["per_slice"], lesions[arch]["per_patient_3d"]
        any_overlap = lesions[arch].get("any_overlap")
        lines.append(
            f"| {title(arch)} | {_vci(flat['sensitivity'])} ({flat['detected']}/{flat['lesions']}) | "
            f"{_vci(flat['fp_per_patient'])} | {_vci(deep['sensitivity'])} "
            f"({deep['detected']}/{deep['lesions']}) | {_vci(deep['fp_per_patient'])} | "
            + (
                f"{_counted(any_overlap['per_slice'])} / {_counted(any_overlap['per_patient_3d'])} | "
                if lenient and any_overlap
                else "– | "
                if lenient
                else ""
            )
            + f"{SEED_002['sensitivity']} / {SEED_002['fp_per_patient']} |"
        )
    lines += ["", *_criterion(lesions, archs, settings)] if lenient else []
    lines += [
        "",
        *_size_bands(lesions, archs, settings),
        "",
        *_meaning(lesions, archs, settings),
        "",
        "FROC (sensitivity against false positives per patient over the probability threshold): "
        "![FROC](../plots/lesions/froc.png)",
        "",
    ]
    return lines


def _size_bands(lesions: dict, archs: list[str], settings: dict) -> list[str]:
    related = list(settings["size_bands_mm"]) == RELATED_BANDS
    lines = [
        "Size bands: a per-slice lesion's size is its equivalent diameter (the disc of its area, in mm from "
        "the prepared image's pixel size: crop box x spacing / image side; median prepared pixel "
        f"{settings['test']['pixel_mm_median']:.2f} mm); a 3-D lesion's, that of its largest cross-section at "
        "the original spacing. Dice: each lesion against the predicted components on it (0 when missed). "
        "Slice AUC: the image probability, slices whose largest lesion is in the band against the "
        "tumour-free slices.",
        "",
        "| model | size band | per-slice lesions (patients) | sensitivity [CI] | Dice [CI] | slice AUC [CI] "
        "(slices vs tumour-free) | 3-D lesions: sensitivity (detected/lesions) | related: sensitivity "
        "(seed 002) / Dice (seed 001) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for arch in archs:
        deep = lesions[arch].get("size_bands_3d", {})
        for k, (band, row) in enumerate(lesions[arch]["size_bands"].items()):
            seed_002 = (SEED_002["below_10mm"] if k == 0 else SEED_002["from_10mm"]) if related else "–"
            seed_001 = SEED_001_DICE.get(k, "–") if related else "–"
            d = deep.get(band)
            three_d = f"{_num(d['sensitivity']['value'])} ({d['detected']}/{d['lesions']})" if d else "–"
            lines.append(
                f"| {title(arch)} | {band} | {row['lesions']} ({row['patients']}) | "
                f"{_vci(row['sensitivity'])} | {_vci(row['dice'])} | {_vci(row['auc'])} ({row['slices']} vs "
                f"{row['tumour_free_slices']}) | {three_d} | {seed_002} / {seed_001} |"
            )
    return lines


def _meaning(lesions: dict, archs: list[str], settings: dict) -> list[str]:
    """Sentences that read the tables (from the numbers, so they hold for any data)."""
    names = list(settings["size_bands"])
    out = []
    for arch in archs:
        bands = list(lesions[arch]["size_bands"].values())
        low, high = bands[0], bands[-1]
        if low["lesions"] and high["lesions"]:
            out.append(
                f"{title(arch)} detects {low['detected']}/{low['lesions']} per-slice lesions {names[0]} "
                f"({_num(low['sensitivity']['value'])}) and {high['detected']}/{high['lesions']} {names[-1]} "
                f"({_num(high['sensitivity']['value'])})."
            )
    aucs = {k: [lesions[a]["size_bands"][names[k]]["auc"]["value"] for a in archs] for k in (0, -1)}
    if archs and None not in aucs[0] + aucs[-1]:
        slices = [lesions[archs[0]]["size_bands"][names[k]]["slices"] for k in (0, -1)]
        out.append(
            f"The image probability separates the slices whose largest lesion is {names[0]} from the "
            f"tumour-free slices with AUC {_span(aucs[0])} ({slices[0]} slices), those {names[-1]} with "
            f"AUC {_span(aucs[-1])} ({slices[1]} slices); an AUC near 0.5 means the classifier does not "
            "see such lesions."
        )
    first = lesions[archs[0]] if archs else None
    if first is not None and "size_bands_3d" in first:
        small_2d = first["size_bands"][names[0]]["lesions"]
        small_3d = first["size_bands_3d"][names[0]]["lesions"]
        if small_2d and small_3d < small_2d / 2:
            out.append(
                f"Only {small_3d} of the 3-D lesions have their largest cross-section {names[0]}, against "
                f"{small_2d} per-slice lesions in that band: most small cross-sections are the first or "
                "last slices of larger lesions (or pieces of them), which the 3-D count credits when the "
                "lesion's middle slices are found."
            )
    out.append(
        "Seed 002's detector, on real CT, also lost sensitivity below 10 mm (0.565 against 0.895). Each "
        "point of the FROC is one probability threshold: a higher threshold trades sensitivity for fewer "
        "false positives per patient, though not at every step (a predicted component that splits into "
        "pieces off the lesions adds false positives"
        + (
            "; and under an IoU criterion a tighter mask can fit a lesion better, so the sensitivity can rise"
            if settings["min_iou"] > 0
            else ""
        )
        + ")."
    )
    return [" ".join(out)]


def _criterion(lesions: dict, archs: list[str], settings: dict) -> list[str]:
    """How much the counts owe to the localisation criterion: the lenient one (any overlap) credits a
    touch as a detection."""
    iou = f"{settings['min_iou']:g}"
    moved = []
    for arch in archs:
        lenient = lesions[arch].get("any_overlap", {}).get("per_slice")
        strict = lesions[arch]["per_slice"]
        if lenient and lenient["detected"] != strict["detected"]:
            moved.append(f"{title(arch)} {lenient['detected']} -> {strict['detected']}")
    if not moved:
        return [f"Any overlap and IoU >= {iou} detect the same per-slice lesions here."]
    return [
        f"Requiring IoU >= {iou} instead of any overlap changes the per-slice detections (of "
        f"{lesions[archs[0]]['per_slice']['lesions']} lesions): {', '.join(moved)}; a lead that exists only "
        "at any overlap is a lead in touching lesions, not in delineating them."
    ]


def _counted(entry: dict) -> str:
    return f"{_num(entry['sensitivity']['value'])} ({entry['detected']}/{entry['lesions']})"


def _span(values: list[float]) -> str:
    low, high = min(values), max(values)
    return _num(low) if low == high else f"{_num(low)} to {_num(high)}"


def _num(value) -> str:
    return "–" if value is None else f"{value:.3f}"


def _vci(metric: dict) -> str:
    """value [low, high], or the value alone without a CI, or – where undefined."""
    if metric.get("value") is None:
        return "–"
    if metric.get("ci_low") is None:
        return _num(metric["value"])
    return f"{_num(metric['value'])} [{_num(metric['ci_low'])}, {_num(metric['ci_high'])}]"
