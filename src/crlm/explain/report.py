"""The explanations' section of reports/report.md, from metrics/cam.json (torch-free, for the report stage).

Over 300 lines: the section's prose, sentence by sentence in the order the report prints it, each sentence
beside the numbers it is built from; split, one section's text would be read across files.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from crlm.archs import ARCHS, title

if TYPE_CHECKING:
    from crlm.params import Params

FIGURE = "../plots/evaluate/cam.png"
PAPER_NOTE = (
    'The paper shows no class activation maps and gives no localisation number, hence the "–": its '
    '"heatmaps" are the classification report of its Figure 7C (ours: '
    "`plots/evaluate/classification_report.png`), and its interpretability claim rests on a survey of "
    "10 pathologists and clinicians (90% concordance), which a pipeline cannot repeat."
)


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


def _chance(cam: dict) -> tuple[dict, dict]:
    """The whole-image and liver chance levels of metrics/cam.json (an older file: the whole image only)."""
    chance = cam.get("chance") or {}
    if "whole_image" not in chance:
        return chance, {}
    return chance.get("whole_image") or {}, chance.get("liver") or {}


def _minus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def _randomisation(entry: dict | None) -> str:
    if not entry or entry.get("spearman_mean") is None:
        return "–"
    return f"{_num(entry['spearman_mean'], 2)} ({_num(entry['spearman_abs_mean'], 2)})"


def _sides(cam: dict, archs: list[str], key: str) -> tuple[list[str], list[str], list[str]]:
    """The archs whose `key` difference has a CI above 0, below 0, and one that holds 0 (or no CI)."""
    above: list[str]
    below: list[str]
    neither: list[str]
    above, below, neither = [], [], []
    for arch in archs:
        entry = cam[arch].get(key) or {}
        if entry.get("value") is None:
            continue
        low, high = entry.get("ci_low"), entry.get("ci_high")
        side = above if low is not None and low > 0 else below if high is not None and high < 0 else neither
        side.append(arch)
    return above, below, neither


def _with_ci(cam: dict, archs: list[str], key: str) -> str:
    return _names([f"{title(a)} ({_ci(cam[a][key])})" for a in archs])


def _clauses(what: str, groups: list[tuple[list[str], str, str]], cam: dict) -> str:
    """ "the <what> of A and B <verdict>; those of C (its CI) <verdict>" for the (archs, CI key or "",
    verdict) groups that have archs."""
    clauses: list[str] = []
    for archs, key, verdict in groups:
        if archs:
            names = _with_ci(cam, archs, key) if key else _names([title(a) for a in archs])
            clauses.append(f"{'those' if clauses else f'the {what}'} of {names} {verdict}")
    return "; ".join(clauses)


def report_section(params: Params, cam: dict, ahead: Callable[[str, str], str] = lambda first, second: "") -> list[str]:
    """Markdown lines: a table of every arch's CAM mass share and pointing-game hit rate on the test
    metastasis slices, their excess over the liver chance level, the similarity of trained and randomised
    maps, beside the baselines (the centre prior, maps uniform over the liver and over the image) and the
    paper's "–"; what they mean, and the figure.
    ahead("<arch>.cam_mass_share", "<arch>.cam_mass_share"): a sentence (after a space) on whether one arch's
    share exceeds the other's at every training seed (the report's seed spread), "" where not measured."""
    archs = [a for a in ARCHS if a in cam]
    whole, liver = _chance(cam)
    centre = cam.get("centre_prior") or {}
    tolerance = cam.get("pointing_tolerance_px")
    lines = [
        "## Explanations: Grad-CAM of the image-level output (test metastasis slices)",
        "",
        "| model | CAM layer (grid) | CAM mass in tumour [CI] | minus liver chance [CI] | pointing game [CI] | "
        "minus liver chance [CI] | trained vs randomised maps: Spearman (abs.) | paper |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for arch in archs:
        m = cam[arch]
        grid = "x".join(str(n) for n in m.get("layer_grid", []))
        lines.append(
            f"| {title(arch)} | `{m['layer']}` ({grid}) | {_ci(m['mass_share'])} | "
            f"{_ci(m.get('mass_share_minus_liver_chance'))} | {_ci(m['pointing_hit_rate'])} | "
            f"{_ci(m.get('pointing_hit_rate_minus_liver_chance'))} | {_randomisation(m.get('randomisation'))} "
            "| – |"
        )
    if centre:
        sigma = "" if centre.get("sigma_px") is None else f", sigma {centre['sigma_px']:g} px"
        lines.append(
            f"| centre prior (a Gaussian{sigma}) | | {_ci(centre.get('mass_share'))} | "
            f"{_ci(centre.get('mass_share_minus_liver_chance'))} | {_ci(centre.get('pointing_hit_rate'))} | "
            f"{_ci(centre.get('pointing_hit_rate_minus_liver_chance'))} | | |"
        )
    if liver:
        lines.append(
            f"| chance: a map uniform over the liver | | {_num(liver.get('mass_share'))} | 0 | "
            f"{_num(liver.get('pointing_hit_rate'))} | 0 | | |"
        )
    lines.append(
        f"| chance: a map uniform over the image | | {_num(whole.get('mass_share'))} | "
        f"{_num(_minus(whole.get('mass_share'), liver.get('mass_share')))} | "
        f"{_num(whole.get('pointing_hit_rate'))} | "
        f"{_num(_minus(whole.get('pointing_hit_rate'), liver.get('pointing_hit_rate')))} | | |"
    )
    lines += [
        "",
        f"Every metastasis slice of the test patients ({cam.get('images')} images of {cam.get('patients')} "
        "patients): Grad-CAM (captum) of the metastasis logit at the last convolutional features each arch's "
        "head pools, the mean over the fold models. *CAM mass in tumour*: the share of the map's mass inside "
        f"the true tumour mask. *Pointing game*: the map's maximum lies within {tolerance} px of the tumour "
        "(tied maxima share the hit). Baselines on the same images: a map uniform over the liver scores the "
        "liver's share that is tumour (pointing: within the tolerance), a map uniform over the image the "
        "image's; the centre prior (Zhang et al. 2018) is a fixed Gaussian centred on the image, sigma a "
        "quarter of its side, chosen beforehand. *Minus liver chance*: the difference from the liver level, "
        "paired image by image. *Trained vs randomised maps*: each fold model's maps against those of the "
        "same network with every weight re-initialised (Adebayo et al. 2018), the mean Spearman rank "
        "correlation per image (and of its absolute value). CIs: patient bootstrap.",
    ]
    lines += _baseline_sentences(cam, archs, whole, liver, centre)
    lines += _randomisation_sentences(cam, archs)
    candidate = params.model.arch
    if candidate in archs and archs:
        share = {a: cam[a]["mass_share"].get("value") or -1.0 for a in archs}
        best = max(archs, key=cast(Callable[[str], float], share.get))  # every arch is a key of share
        lines += [
            "",
            f"The candidate ({title(candidate)}) puts {_num(cam[candidate]['mass_share']['value'])} of its "
            "map on the tumour"
            + (
                ", the most of any arch."
                if share[best] == share[candidate]
                else f"; {title(best)} puts the most ({_num(cam[best]['mass_share']['value'])})."
                + ahead(f"{best}.cam_mass_share", f"{candidate}.cam_mass_share")
            ),
        ]
    lines += _resolution(params, cam, archs)
    lines += ["", PAPER_NOTE, "", f"Class activation maps (test images of the mask overlays): ![CAM]({FIGURE})", ""]
    return lines


def _baseline_sentences(cam: dict, archs: list[str], whole: dict, liver: dict, centre: dict) -> list[str]:
    """What the archs' maps do beside the liver chance level and the centre prior, from the paired CIs."""
    if not liver:
        return []
    sentences = []
    if liver.get("liver_area_share") is not None:
        outside = liver.get("tumour_px_outside_liver")
        where = (
            ""
            if outside is None
            else " and every tumour lies in it"
            if outside == 0
            else f" and all but {outside} tumour px lie in it"
        )
        sentences.append(
            f"The liver fills {_num(liver['liver_area_share'])} of the images on average{where}: a "
            f"map that merely covers the liver puts {_num(liver.get('mass_share'))} of its mass on the "
            f"tumour, against {_num(whole.get('mass_share'))} for one spread over the whole image, so "
            "the liver level is the one to beat."
        )
    if liver.get("empty_liver_masks"):
        sentences.append(
            f"{liver['empty_liver_masks']} image(s) have an empty liver mask: their liver level is the whole-image one."
        )
    above, below, neither = _sides(cam, archs, "mass_share_minus_liver_chance")
    if above:
        sentences.append(
            f"The maps of {_names([title(a) for a in above])} put more of their mass on the tumour than "
            "a map uniform over the liver (the CI of the paired difference lies above 0): the evidence "
            "Grad-CAM finds for the metastasis call lies on the lesion more than on the rest of the "
            "liver."
        )
    if below:
        sentences.append(
            f"The maps of {_with_ci(cam, below, 'mass_share_minus_liver_chance')} put less of their "
            "mass on the tumour than a map uniform over the liver (the CI lies below 0): a map that "
            "knows only where the liver is puts more of its mass on the tumour."
        )
    if neither:
        sentences.append(
            f"The mass shares of {_with_ci(cam, neither, 'mass_share_minus_liver_chance')} are not "
            "distinguishable from a map uniform over the liver's (the CI holds 0)."
        )
    above, below, neither = _sides(cam, archs, "pointing_hit_rate_minus_liver_chance")
    parts = _clauses(
        "maxima",
        [
            (above, "", "hit the tumour more often than a liver-uniform map's would (CI above 0)"),
            (below, "pointing_hit_rate_minus_liver_chance", "less often (CI below 0)"),
            (
                neither,
                "pointing_hit_rate_minus_liver_chance",
                "not distinguishably more or less often (the CI holds 0)",
            ),
        ],
        cam,
    )
    if parts:
        sentences.append(f"In the pointing game (liver level {_num(liver.get('pointing_hit_rate'))}), {parts}.")
    lines = ["", " ".join(sentences)] if sentences else []
    if centre.get("mass_share"):
        above, below, neither = _sides(cam, archs, "mass_share_minus_centre_prior")
        parts = _clauses(
            "maps",
            [
                (above, "", "put more of their mass on the tumour than it (paired CI above 0)"),
                (below, "mass_share_minus_centre_prior", "less (CI below 0)"),
                (neither, "mass_share_minus_centre_prior", "not distinguishably more or less (the CI holds 0)"),
            ],
            cam,
        )
        lines += [
            "",
            f"The centre prior, which knows nothing of the image, puts {_ci(centre['mass_share'])} of its "
            f"mass on the tumour and points at it in {_ci(centre.get('pointing_hit_rate'))} of the images"
            + (f": {parts}" if parts else "")
            + ".",
        ]
    return lines


def _randomisation_sentences(cam: dict, archs: list[str]) -> list[str]:
    """What the model-randomisation check found: which archs' maps change with the weights re-initialised."""
    checked = {
        a: cam[a]["randomisation"] for a in archs if (cam[a].get("randomisation") or {}).get("passes") is not None
    }
    if not checked:
        return []
    threshold = next(iter(checked.values()))["threshold"]
    folds = sorted({entry["fold_models"] for entry in checked.values()})
    models = (
        "fold 0's model of each arch"
        if folds == [1]
        else f"each of the {'/'.join(map(str, folds))} fold models of each arch"
    )

    def listed(names: list[str]) -> str:
        return _names([f"{title(a)} ({_num(checked[a]['spearman_abs_mean'], 2)})" for a in names])

    passed = [a for a in checked if checked[a]["passes"]]
    failed = [a for a in checked if not checked[a]["passes"]]
    sentences = [
        f"Model randomisation (Adebayo et al. 2018): {models} with every weight re-initialised by the "
        "arch's own initialisation under a fixed seed; the check passes where the mean absolute Spearman "
        f"correlation of trained and randomised maps lies below {threshold:g}, a threshold fixed "
        "beforehand."
    ]
    if passed:
        sentences.append(
            f"The maps of {listed(passed)} change when the weights are randomised: they pass "
            "this necessary check, which shows they are not a product of the architecture and the image "
            "alone, though not that they show what the model learned to look at."
        )
    if failed:
        sentences.append(
            f"The maps of {listed(failed)} stay alike: they reflect the architecture and the image "
            "more than the learned weights, and fail the check."
        )
    left_out = [a for a in checked if checked[a].get("undefined")]
    if left_out:
        counts = _names(
            [
                f"{title(a)} {checked[a]['undefined']} of {checked[a]['undefined'] + checked[a]['images']}"
                for a in left_out
            ]
        )
        sentences.append(
            f"Pairs where either map is empty (no positive Grad-CAM) have no rank correlation and are "
            f"left out: {counts}."
        )
    return ["", " ".join(sentences)]


def _resolution(params: Params, cam: dict, archs: list[str]) -> list[str]:
    """Sentences on what the layer grids allow: a coarse map cannot concentrate on a small lesion; a
    full-resolution one of an arch that segments is also shaped by the mask training."""
    size = params.prepare.image_size
    grids = {a: max(cam[a].get("layer_grid") or [size]) for a in archs}
    lines = []
    coarsest = min(archs, key=lambda a: grids[a], default=None)
    if coarsest is not None and grids[coarsest] < size:
        cell = size / grids[coarsest]
        lines.append(
            f"A map is only as fine as its layer's grid: {title(coarsest)}'s is {grids[coarsest]} x "
            f"{grids[coarsest]}, cells of {cell:g} px on the {size} px image, so its map cannot "
            "concentrate on a lesion smaller than a cell even where the model looks at it; its share "
            "measures the grid as much as the model."
        )
    full = [title(a) for a in archs if grids[a] >= size and ARCHS[a].segments]
    if full:
        lines.append(
            f"The maps of {_names(full)} come from full-resolution features that also feed the "
            "tumour-mask head, trained on the true masks, so their concentration on the tumour partly "
            "reflects that segmentation training."
        )
    return ["", " ".join(lines)] if lines else []
