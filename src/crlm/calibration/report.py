"""The report's calibration section (reports/report.md) and the figure notes, from metrics/calibration.json.

The paper reports no calibration, Brier score or decision curve, so the paper's column reads "–". Every
sentence is built from the numbers it sits beside: the survival risk's words (over-confident, too timid,
too high or low a risk) follow the likelihood-ratio tests at ALPHA (one row per patient); the image
words follow the patient-bootstrap CIs, since the likelihood-ratio tests treat a patient's images as
independent; the decision curve's words say which CIs exclude 0.

Over 300 lines: the section's prose, sentence by sentence in the order the report prints it, each sentence
beside the numbers it is built from; split, one section's text would be read across files.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from crlm.archs import ARCHS, title

if TYPE_CHECKING:
    from crlm.params import Params

NO_PAPER = "–"  # the paper reports none of these
ALPHA = 0.05  # the level of the likelihood-ratio tests whose result the words follow
FLOAT32_EPS = 2.0**-23  # numpy.finfo(numpy.float32).eps, the image probabilities' logit clip


def _num(value, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _signed(value, digits: int = 3) -> str:
    return "–" if value is None else f"{value:+.{digits}f}"


def _ci(entry: dict | None, digits: int = 3, number=_num) -> str:
    """'value [low, high]' of a bootstrap entry ({value, ci_low, ci_high, ...})."""
    if not entry or entry.get("value") is None:
        return "–"
    if entry.get("ci_low") is None:
        return number(entry["value"], digits)
    return f"{number(entry['value'], digits)} [{entry['ci_low']:.{digits}f}, {entry['ci_high']:.{digits}f}]"


def _p(test: dict | None) -> str:
    """The p-value of a {statistic, df, p_value} entry (JSON rounds to 4 decimals: 0 prints as < 0.0001)."""
    p = (test or {}).get("p_value")
    if p is None:
        return "–"
    if p < 1e-4:
        return "<0.0001"
    return f"{p:.4f}" if p < 0.01 else f"{p:.3f}"


def _clip(c: float | None) -> str:
    return "–" if c is None else f"[{c:.3g}, 1 − {c:.3g}]"


def _list(values: list[str]) -> str:
    return ", ".join(values)


def panel_note(m: dict, with_lr_test: bool = True) -> str:
    """The text in a reliability panel: Brier with CI, intercept, slope (and its LR p, where the rows are
    independent: not for the images), n."""
    lr = f" (LR p {_p(m.get('slope_lr_test'))})" if with_lr_test else ""
    return (
        f"Brier {_ci(m.get('brier'))}\nintercept {_num((m.get('intercept') or {}).get('value'), 2)}, "
        f"slope {_num((m.get('slope') or {}).get('value'), 2)}{lr}\nn = {m.get('n', 0)}"
    )


def _direction(m: dict) -> str:
    """What the intercept and slope say, in words, by their patient-bootstrap CIs (used for the images)."""
    words = []
    intercept, slope = (m.get("intercept") or {}), (m.get("slope") or {})
    if intercept.get("value") is not None and intercept.get("ci_low") is not None:
        if intercept["ci_high"] < 0:
            words.append("predicts too high a risk on average")
        elif intercept["ci_low"] > 0:
            words.append("predicts too low a risk on average")
    if slope.get("value") is not None and slope.get("ci_low") is not None:
        if slope["ci_high"] < 1:
            words.append("is over-confident (probabilities too extreme)")
        elif slope["ci_low"] > 1:
            words.append("is too timid (probabilities too close to the mean)")
    return " and ".join(words) if words else "shows no miscalibration that its CIs can resolve"


def _significant(test: dict | None) -> bool:
    p = (test or {}).get("p_value")
    return p is not None and p < ALPHA


def _direction_lr(m: dict) -> str:
    """What the intercept and slope say, in words, by the likelihood-ratio tests at ALPHA (intercept = 0
    with slope 1; slope = 1), the direction by the estimate's sign."""
    words = []
    intercept, slope = (m.get("intercept") or {}).get("value"), (m.get("slope") or {}).get("value")
    if intercept is not None and _significant(m.get("intercept_lr_test")):
        words.append("predicts too high a risk on average" if intercept < 0 else "predicts too low a risk on average")
    if slope is not None and _significant(m.get("slope_lr_test")):
        words.append(
            "is over-confident (probabilities too extreme)"
            if slope < 1
            else "is too timid (probabilities too close to the mean)"
        )
    return (
        " and ".join(words)
        if words
        else f"shows no miscalibration that the likelihood-ratio tests resolve at the {ALPHA:g} level"
    )


def _fine_clip(m: dict) -> str:
    """The survival slope and its test at the fine clip, beside the a-priori one."""
    fine = m.get("slope_at_fine_clip") or {}
    if fine.get("slope") is None:
        return ""
    return (
        f"; at c = {fine['logit_clip']:g} instead the slope is {fine['slope']:.2f} (slope = 1: p = "
        f"{_p(fine.get('slope_lr_test'))})"
    )


def _covers(entry: dict, value: float) -> str:
    return "covers" if entry["ci_low"] <= value <= entry["ci_high"] else "excludes"


def report_section(params: Params, calibration: dict) -> list[str]:
    """Markdown lines: image-level and survival calibration tables, the net benefit, what they mean, figures."""
    candidate = params.model.arch
    level = round(params.stats.ci_level * 100)
    horizon = calibration["horizon_months"]
    frac = calibration.get("loess_frac")
    archs = [a for a in ARCHS if a in calibration]
    lines = [
        "## Calibration and clinical usefulness (beyond the paper)",
        "",
        "The paper reports discrimination only (AUC, log-rank): no calibration, Brier score or decision "
        'curve, so its column reads "–". Brier: mean squared error of the probability (0 is perfect; '
        '"prevalence" is the Brier of predicting the observed rate for everyone, the score to beat). '
        "Intercept (calibration-in-the-large, logit P(y) = a + logit(p), the slope fixed at 1): 0 is "
        "perfect, below 0 too high a risk on average. Slope b of the logistic recalibration logit P(y) = "
        "a + b logit(p): 1 is perfect, below 1 over-confident. The logit is taken of p clipped to "
        "[c, 1 − c], c fixed a priori at the resolution of the probabilities (given per table). "
        f"[{level}% percentile patient-bootstrap CIs.] LR p: likelihood-ratio tests, chi-square with 1 "
        "df, of slope = 1 (the fit a + b logit(p) against a + logit(p)) and of intercept = 0 (a + logit(p) "
        "against logit(p)); they treat the rows as independent.",
        "",
        f"### Test images ({calibration['image_bins']} quantile bins in the reliability diagram)",
        "",
        "| model | images (patients) | observed share | mean probability | Brier [CI] | Brier of the "
        "prevalence | intercept [CI] | intercept LR p | slope [CI] | slope LR p | paper |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for arch in archs:
        m = calibration[arch]["images"]
        lines.append(
            f"| {_label(arch, candidate)} | {m['n']} ({m['patients']}) | {_num(m.get('observed_rate'))} | "
            f"{_num(m.get('mean_prob'))} | {_ci(m.get('brier'))} | {_num(m.get('brier_reference'))} | "
            f"{_ci(m.get('intercept'), 2)} | {_p(m.get('intercept_lr_test'))} | {_ci(m.get('slope'), 2)} | "
            f"{_p(m.get('slope_lr_test'))} | {NO_PAPER} |"
        )
    c = calibration[candidate]["images"] if candidate in calibration else None
    if c:
        clip = c.get("logit_clip")
        lines += [
            "",
            (
                f"The logit of an image probability is clipped at c = {clip:.3g}"
                + (
                    ", float32's machine epsilon: the networks' sigmoid is computed in float32, which steps "
                    "by 2^-24 just below 1 and rounds to exactly 1 beyond a logit of about 17, so 1 − p is "
                    "not resolved below that"
                    if clip == FLOAT32_EPS
                    else ""
                )
                + f" ({c.get('n_clipped', 0)} of {title(candidate)}'s {c['n']} test images lie outside "
                f"{_clip(clip)}). "
                if clip is not None
                else ""
            )
            + f"On the test images {title(candidate)} {_direction(c)}, by its "
            f"patient-bootstrap CIs (mean probability {_num(c.get('mean_prob'))}, observed share "
            f"{_num(c.get('observed_rate'))}). The likelihood-ratio p-values in the table treat the "
            f"{c['n']} images of {c['patients']} patients as independent, which they are not (a patient's "
            "images are alike), so they are not valid tests for these rows and do not decide these words. The "
            "networks "
            "are trained on a balanced sample (`train.balance`, the default: as many metastasis as other "
            "images) and tested at the natural prevalence, so their probabilities are not the "
            "probability of a metastasis at this prevalence: read them as scores (the AUC is unaffected), "
            "or recalibrate them before quoting one to a clinician.",
        ]
    lines += _survival_lines(calibration, archs, candidate, horizon, level)
    lines += _net_benefit_lines(calibration, archs, candidate, level)
    lines += [
        "",
        "Reliability diagrams: the points are the quantile bins, the line the loess calibration curve "
        f"over every prediction (lowess of the outcome on p, span {frac:.2g} of the points fixed a priori, "
        "no robustness iterations: Van Calster et al. 2016, J Clin Epidemiol 74:167); the diagonal is "
        "perfect calibration."
        if frac is not None
        else "",
        "",
        "Reliability, test images: ![reliability](../plots/calibration/reliability.png)",
        "",
        f"Reliability, death before {horizon:g} months: "
        "![reliability survival](../plots/calibration/reliability_survival.png)",
        "",
        "Decision curve: ![decision curve](../plots/calibration/decision_curve.png)",
        "",
    ]
    return lines


def _survival_lines(calibration: dict, archs: list[str], candidate: str, horizon: float, level: int) -> list[str]:
    first = calibration[archs[0]]["survival"] if archs else {}
    clip = first.get("logit_clip")
    lines = [
        "",
        f"### Death before {horizon:g} months (cross-fitted probabilities, every patient out of "
        f"sample; {calibration['patient_bins']} quantile bins; logit of p clipped to {_clip(clip)})",
        "",
        "| model | patients (deaths; censored before the horizon) | Brier [CI] | Brier of the prevalence | "
        "IPCW Brier (patients) | intercept [CI] | intercept LR p | slope [CI] | slope LR p | paper |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for arch in archs:
        m = calibration[arch]["survival"]
        ipcw = m.get("brier_ipcw") or {}
        lines.append(
            f"| {_label(arch, candidate)} | {m['n']} ({m['events']}; {m.get('censored_before_horizon', 0)}) "
            f"| {_ci(m.get('brier'))} | {_num(m.get('brier_reference'))} | "
            f"{_num(ipcw.get('value'))} ({ipcw.get('n', 0)}) | {_ci(m.get('intercept'), 2)} | "
            f"{_p(m.get('intercept_lr_test'))} | {_ci(m.get('slope'), 2)} | {_p(m.get('slope_lr_test'))} | "
            f"{NO_PAPER} |"
        )
    if candidate not in calibration:
        return lines
    m = calibration[candidate]["survival"]
    text = (
        f"The Brier, intercept and slope use the complete cases (a patient censored before {horizon:g} months "
        "has no label); the IPCW Brier and the decision curve keep everyone "
        f"({m['decision_curve']['patients']} patients; Kaplan-Meier weights the censored). "
    )
    if m.get("logit_clip") is not None:
        trees = round(1 / (2 * m["logit_clip"]))
        text += (
            f"The clip c = {m['logit_clip']:.3g} = 1/(2 x {trees}) is half a vote of a random forest of "
            f"{trees} trees, the fewest in `survival.rf_trees`, the coarsest classifier the inner CV may pick: "
            "it is fixed by that grid before the probabilities are seen. A logistic regression resolves "
            "probabilities more finely, so in its folds the clip caps values the model did resolve "
            f"({m.get('n_clipped', 0)} of {title(candidate)}'s {m['n']} lie outside it)" + _fine_clip(m) + ". "
        )
    text += f"For the survival risk {title(candidate)} {_direction_lr(m)}"
    intercept_test, slope_test = m.get("intercept_lr_test") or {}, m.get("slope_lr_test") or {}
    slope = m.get("slope") or {}
    if slope.get("value") is not None and slope_test.get("p_value") is not None:
        text += (
            f", by the likelihood-ratio tests at the {ALPHA:g} level (intercept = 0: p = {_p(intercept_test)}; "
            f"slope = 1: p = {_p(slope_test)}, slope {slope['value']:.2f})."
        )
        if slope.get("ci_low") is not None:
            covers = _covers(slope, 1.0)
            text += (
                f" The slope's {level}% percentile bootstrap CI, [{slope['ci_low']:.2f}, {slope['ci_high']:.2f}], "
                f"{covers} 1; the words follow the likelihood-ratio test"
                + (
                    ", so the evidence is weak: the test and the interval disagree, and the test moves with the clip"
                    if covers == "covers" and _significant(slope_test)
                    else ""
                )
                + "."
            )
    else:
        text += "."
    text += (
        " Under `survival.class_weight: balanced` (the default) the classifier is fitted as if short- and "
        "long-term survivors were equally common, which shifts its probabilities: the intercept measures "
        "that shift."
    )
    if slope.get("value") is not None and slope["value"] < 1:
        text += (
            f" The slope is below 1 ({slope['value']:.2f}), the usual sign of overfitting: a classifier "
            "fitted on a few dozen patients per fold gives new patients too extreme probabilities"
            + (
                "."
                if _significant(slope_test)
                else f"; here the likelihood-ratio test does not resolve it from 1 (p = {_p(slope_test)})."
            )
        )
    return lines + ["", text]


def _net_benefit_lines(calibration: dict, archs: list[str], candidate: str, level: int) -> list[str]:
    if not archs:
        return []
    thresholds = list(calibration[archs[0]]["survival"]["decision_curve"]["net_benefit"])
    lines = [
        "",
        f"### Net benefit at the horizon ({level}% patient-bootstrap CIs)",
        "",
        "| model | "
        + " | ".join(f"net benefit at {t} [CI] | minus treat all at {t} [CI]" for t in thresholds)
        + " | paper |",
        "|---|" + "---|---|" * len(thresholds) + "---|",
    ]
    widths = []
    for arch in archs:
        nb = calibration[arch]["survival"]["decision_curve"]["net_benefit"]
        cells = []
        for t in thresholds:
            low, high = nb[t].get("model_ci") or [None, None]
            cells += [
                _ci({"value": nb[t].get("model"), "ci_low": low, "ci_high": high}),
                _ci(nb[t].get("model_minus_treat_all"), number=_signed)
                + (" (one-sided)" if (nb[t].get("model_minus_treat_all") or {}).get("one_sided") else ""),
            ]
            if low is not None:
                widths.append(high - low)
        lines.append(f"| {_label(arch, candidate)} | " + " | ".join(cells) + f" | {NO_PAPER} |")
    if candidate in calibration:
        nb = calibration[candidate]["survival"]["decision_curve"]["net_benefit"]
        lines.append(
            "| treat all | "
            + " | ".join(f"{_num(nb[t].get('treat_all'))} | –" for t in thresholds)
            + f" | {NO_PAPER} |"
        )
    lines += [
        "",
        "Net benefit = TP/n - FP/n x pt/(1 - pt) at threshold probability pt (Vickers & Elkin 2006): "
        "acting on everyone whose risk reaches pt, the net true positives per patient, a false positive "
        "weighted by the odds of pt; death by the horizon from Kaplan-Meier, so the censored count. A model "
        "is useful at the thresholds where it beats both treat-all and treat-none (0); the CI of its net "
        "benefit is the CI of its difference with treat-none.",
    ]
    if candidate not in calibration:
        return lines
    nb = calibration[candidate]["survival"]["decision_curve"]["net_benefit"]
    useful = [
        t
        for t in thresholds
        if nb[t].get("model") is not None
        and nb[t].get("treat_all") is not None
        and nb[t]["model"] > max(nb[t]["treat_all"], 0.0)
    ]
    name = title(candidate)
    if not useful:
        text = f"{name} beats both at none of pt = {_list(thresholds)} (point estimates)."
    else:
        one_sided = [t for t in useful if (nb[t].get("model_minus_treat_all") or {}).get("one_sided")]
        over_all = [
            t
            for t in useful
            if ((nb[t].get("model_minus_treat_all") or {}).get("ci_low") or 0) > 0 and t not in one_sided
        ]
        over_none = [t for t in useful if (nb[t].get("model_ci") or [None])[0] is not None and nb[t]["model_ci"][0] > 0]
        both = [t for t in useful if t in over_all and t in over_none]
        holds = [t for t in useful if t not in over_all and t not in one_sided]
        text = (
            f"{name} beats both at pt = {_list(useful)} (point estimates; "
            + (
                f"CI of the difference with treat-all excludes 0 at {_list(over_all)}"
                if over_all
                else "CI of the difference with treat-all excludes 0 at none of them"
            )
            + (f", and includes 0 at {_list(holds)}" if over_all and holds else "")
            + "; CI of the net benefit, the difference with treat-none, excludes 0 at "
            + (_list(over_none) if over_none else "none of them")
            + "). "
            + (f"Both CIs exclude 0 at pt = {_list(both)}." if both else "At no threshold do both CIs exclude 0.")
        )
        if one_sided:
            text += (
                f" At pt = {_list(one_sided)} the difference with treat-all has a one-sided bootstrap: "
                + "; ".join(nb[t]["model_minus_treat_all"]["one_sided"] for t in one_sided)
                + ", so its CI cannot hold 0 and is no evidence (a few deaths among them would reverse it)."
            )
    if widths:
        text += (
            f" The net benefit CIs are {min(widths):.2f} to {max(widths):.2f} wide (archs x thresholds); no "
            "test compares archs here, so read differences between archs against that width."
        )
    return lines + ["", text]


def _label(arch: str, candidate: str) -> str:
    return f"**{title(arch)}**" if arch == candidate else title(arch)
