"""The explanations' section of reports/report.md, from metrics/cam.json (torch-free, for the report stage)."""

from __future__ import annotations

from collections.abc import Callable

from crlm.archs import ARCHS, title
from crlm.config import Params

FIGURE = "../plots/evaluate/cam.png"
PAPER_NOTE = ("The paper shows no class activation maps and gives no localisation number, hence the \"–\": its "
              "\"heatmaps\" are the classification report of its Figure 7C (ours: "
              "`plots/evaluate/classification_report.png`), and its interpretability claim rests on a survey of "
              "10 pathologists and clinicians (90% concordance), which a pipeline cannot repeat.")


def _num(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _names(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _ci(entry: dict | None) -> str:
    if not entry or entry.get("value") is None:
        return "–"
    if entry.get("ci_low") is None:
        return _num(entry["value"])
    return f"{_num(entry['value'])} [{_num(entry['ci_low'])}, {_num(entry['ci_high'])}]"


def report_section(params: Params, cam: dict,
                   ahead: Callable[[str, str], str] = lambda first, second: "") -> list[str]:
    """Markdown lines: a table of every arch's CAM mass share and pointing-game hit rate on the test
    metastasis slices beside the chance level (and the paper's "–"), what they mean, and the figure.
    ahead("<arch>.cam_mass_share", "<arch>.cam_mass_share"): a sentence (after a space) on whether one arch's
    share exceeds the other's at every training seed (the report's seed spread), "" where not measured."""
    archs = [a for a in ARCHS if a in cam]
    chance = cam.get("chance") or {}
    tolerance = cam.get("pointing_tolerance_px")
    lines = ["## Explanations: Grad-CAM of the image-level output (test metastasis slices)", "",
             "| model | CAM layer (grid) | CAM mass in tumour [CI] | minus chance [CI] | pointing game [CI] | "
             "paper |", "|---|---|---|---|---|---|"]
    for arch in archs:
        m = cam[arch]
        grid = "x".join(str(n) for n in m.get("layer_grid", []))
        lines.append(f"| {title(arch)} | `{m['layer']}` ({grid}) | {_ci(m['mass_share'])} | "
                     f"{_ci(m['mass_share_minus_chance'])} | {_ci(m['pointing_hit_rate'])} | – |")
    lines.append(f"| chance (a uniform map) | | {_num(chance.get('mass_share'))} | 0 | "
                 f"{_num(chance.get('pointing_hit_rate'))} | |")
    lines += ["", f"Every metastasis slice of the test patients ({cam.get('images')} images of {cam.get('patients')} "
              "patients): Grad-CAM (captum) of the metastasis logit at the last convolutional features each arch's "
              "head pools, the mean over the fold models. *CAM mass in tumour*: the share of the map's mass inside "
              "the true tumour mask; a map spread evenly would score the tumour's share of the image, the chance "
              f"level. *Pointing game*: the map's maximum lies within {tolerance} px of the tumour (tied maxima "
              "share the hit); chance: the share of the image within that distance. CIs: patient bootstrap."]
    beyond = [title(a) for a in archs if (cam[a]["mass_share_minus_chance"].get("ci_low") or 0) > 0]
    if beyond:
        lines += ["", f"The maps of {_names(beyond)} put more of their mass on the tumour than chance (the CI of "
                  "the difference excludes 0): the evidence Grad-CAM finds for the metastasis call lies on the "
                  "lesion more than on the rest of the slice."]
    candidate = params.model.arch
    if candidate in archs and archs:
        share = {a: cam[a]["mass_share"].get("value") or -1.0 for a in archs}
        best = max(archs, key=share.get)
        lines += ["", f"The candidate ({title(candidate)}) puts {_num(cam[candidate]['mass_share']['value'])} of its "
                  "map on the tumour" + (", the most of any arch." if share[best] == share[candidate] else
                                         f"; {title(best)} puts the most ({_num(cam[best]['mass_share']['value'])})."
                                         + ahead(f"{best}.cam_mass_share", f"{candidate}.cam_mass_share"))]
    lines += _resolution(params, cam, archs)
    lines += ["", PAPER_NOTE,
              "", f"Class activation maps (test images of the mask overlays): ![CAM]({FIGURE})", ""]
    return lines


def _resolution(params: Params, cam: dict, archs: list[str]) -> list[str]:
    """Sentences on what the layer grids allow: a coarse map cannot concentrate on a small lesion; a
    full-resolution one of an arch that segments is also shaped by the mask training."""
    size = params.prepare.image_size
    grids = {a: max(cam[a].get("layer_grid") or [size]) for a in archs}
    lines = []
    coarsest = min(archs, key=lambda a: grids[a], default=None)
    if coarsest is not None and grids[coarsest] < size:
        cell = size / grids[coarsest]
        lines.append(f"A map is only as fine as its layer's grid: {title(coarsest)}'s is {grids[coarsest]} x "
                     f"{grids[coarsest]}, cells of {cell:g} px on the {size} px image, so its map cannot "
                     "concentrate on a lesion smaller than a cell even where the model looks at it; its share "
                     "measures the grid as much as the model.")
    full = [title(a) for a in archs if grids[a] >= size and ARCHS[a].segments]
    if full:
        lines.append(f"The maps of {_names(full)} come from full-resolution features that also feed the "
                     "tumour-mask head, trained on the true masks, so their concentration on the tumour partly "
                     "reflects that segmentation training.")
    return ["", " ".join(lines)] if lines else []
