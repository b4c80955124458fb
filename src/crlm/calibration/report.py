"""The report's calibration section (reports/report.md) and the figure notes, from metrics/calibration.json.

The paper reports no calibration, Brier score or decision curve, so the paper's column reads "–".
"""

from __future__ import annotations

from crlm.archs import ARCHS, title
from crlm.config import Params

NO_PAPER = "–"   # the paper reports none of these


def _num(value, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _ci(entry: dict | None, digits: int = 3) -> str:
    """'value [low, high]' of a bootstrap entry ({value, ci_low, ci_high, ...})."""
    if not entry or entry.get("value") is None:
        return "–"
    if entry.get("ci_low") is None:
        return _num(entry["value"], digits)
    return f"{entry['value']:.{digits}f} [{entry['ci_low']:.{digits}f}, {entry['ci_high']:.{digits}f}]"


def panel_note(m: dict) -> str:
    """The text in a reliability panel: Brier with CI, intercept, slope, n."""
    return (f"Brier {_ci(m.get('brier'))}\nintercept {_num((m.get('intercept') or {}).get('value'), 2)}, "
            f"slope {_num((m.get('slope') or {}).get('value'), 2)}\nn = {m.get('n', 0)}")


def _direction(m: dict) -> str:
    """What the intercept and slope say, in words (the slope's CI decides whether it differs from 1)."""
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


def report_section(params: Params, calibration: dict) -> list[str]:
    """Markdown lines: image-level and survival calibration tables, the net benefit, what they mean, figures."""
    candidate = params.model.arch
    level = round(params.stats.ci_level * 100)
    horizon = calibration["horizon_months"]
    archs = [a for a in ARCHS if a in calibration]
    lines = ["## Calibration and clinical usefulness (beyond the paper)", "",
             "The paper reports discrimination only (AUC, log-rank): no calibration, Brier score or decision "
             "curve, so its column reads \"–\". Brier: mean squared error of the probability (0 is perfect; "
             "\"prevalence\" is the Brier of predicting the observed rate for everyone, the score to beat). "
             "Intercept (calibration-in-the-large, slope fixed at 1): 0 is perfect, below 0 too high a risk on "
             "average. Slope of the logistic recalibration on logit(p): 1 is perfect, below 1 over-confident. "
             f"[{level}% patient-bootstrap CIs.]", "",
             f"### Test images ({calibration['image_bins']} quantile bins in the reliability diagram)", "",
             "| model | images (patients) | observed share | mean probability | Brier [CI] | Brier of the "
             "prevalence | intercept [CI] | slope [CI] | paper |",
             "|---|---|---|---|---|---|---|---|---|"]
    for arch in archs:
        m = calibration[arch]["images"]
        lines.append(f"| {_label(arch, candidate)} | {m['n']} ({m['patients']}) | {_num(m.get('observed_rate'))} | "
                     f"{_num(m.get('mean_prob'))} | {_ci(m.get('brier'))} | {_num(m.get('brier_reference'))} | "
                     f"{_ci(m.get('intercept'), 2)} | {_ci(m.get('slope'), 2)} | {NO_PAPER} |")
    c = calibration[candidate]["images"] if candidate in calibration else None
    if c:
        lines += ["", f"On the test images {title(candidate)} {_direction(c)} (mean probability "
                  f"{_num(c.get('mean_prob'))}, observed share {_num(c.get('observed_rate'))}). The networks are "
                  "trained on a balanced sample (`train.balance`, the default: as many metastasis as other "
                  "images) and tested at the natural prevalence, so their probabilities are not the "
                  "probability of a metastasis at this prevalence: read them as scores (the AUC is unaffected), "
                  "or recalibrate them before quoting one to a clinician."]
    thresholds = list(calibration[archs[0]]["survival"]["decision_curve"]["net_benefit"]) if archs else []
    lines += ["", f"### Death before {horizon:g} months (cross-fitted probabilities, every patient out of "
              f"sample; {calibration['patient_bins']} quantile bins)", "",
              "| model | patients (deaths; censored before the horizon) | Brier [CI] | Brier of the prevalence | "
              "IPCW Brier (patients) | intercept [CI] | slope [CI] | "
              + " | ".join(f"net benefit at {t} (treat all)" for t in thresholds) + " | paper |",
              "|---|---|---|---|---|---|---|" + "---|" * len(thresholds) + "---|"]
    for arch in archs:
        m = calibration[arch]["survival"]
        ipcw = m.get("brier_ipcw") or {}
        nb = m["decision_curve"]["net_benefit"]
        lines.append(f"| {_label(arch, candidate)} | {m['n']} ({m['events']}; {m.get('censored_before_horizon', 0)}) "
                     f"| {_ci(m.get('brier'))} | {_num(m.get('brier_reference'))} | "
                     f"{_num(ipcw.get('value'))} ({ipcw.get('n', 0)}) | {_ci(m.get('intercept'), 2)} | "
                     f"{_ci(m.get('slope'), 2)} | "
                     + " | ".join(f"{_num(nb[t]['model'])} ({_num(nb[t]['treat_all'])})" for t in thresholds)
                     + f" | {NO_PAPER} |")
    if candidate in calibration:
        m = calibration[candidate]["survival"]
        nb = m["decision_curve"]["net_benefit"]
        useful = [t for t in thresholds if nb[t]["model"] is not None and nb[t]["treat_all"] is not None
                  and nb[t]["model"] > max(nb[t]["treat_all"], 0.0)]
        lines += ["", f"The Brier and slope use the complete cases (a patient censored before {horizon:g} months "
                  "has no label); the IPCW Brier and the decision curve keep everyone "
                  f"({m['decision_curve']['patients']} patients; Kaplan-Meier weights the censored). "
                  f"For the survival risk {title(candidate)} {_direction(m)}. Class weights "
                  "(`survival.class_weight: balanced`, the default) fit the classifier as if short- and long-term "
                  "survivors were equally common, which shifts its probabilities (the intercept); a slope below 1 "
                  "is the usual sign of overfitting: a classifier fitted on a few dozen patients per fold gives "
                  "new patients too extreme probabilities.",
                  "",
                  "Net benefit = TP/n - FP/n x pt/(1 - pt) at threshold probability pt (Vickers & Elkin 2006): "
                  "acting on everyone whose risk reaches pt, the net true positives per patient, a false positive "
                  "weighted by the odds of pt. A model is useful at the thresholds where it beats both treat-all "
                  "and treat-none (0). "
                  + (f"{title(candidate)} beats both at pt = {', '.join(useful)}."
                     if useful else f"{title(candidate)} beats both at none of pt = {', '.join(thresholds)}.")
                  + " The curves come from few patients and no CI: differences of a few hundredths between archs "
                  "are within noise."]
    lines += ["", "Reliability, test images: ![reliability](../plots/calibration/reliability.png)", "",
              f"Reliability, death before {horizon:g} months: "
              "![reliability survival](../plots/calibration/reliability_survival.png)", "",
              "Decision curve: ![decision curve](../plots/calibration/decision_curve.png)", ""]
    return lines


def _label(arch: str, candidate: str) -> str:
    return f"**{title(arch)}**" if arch == candidate else title(arch)
