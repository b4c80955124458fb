"""The report's survival sections (reports/report.md, Tables 3 and 4 and the risk groups): the paper's numbers
beside ours. The paper's numbers are quoted from the CLM-Net paper (../shared/seeds/000_*.txt, "Results")."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crlm.archs import ARCHS, title
from crlm.report_seeds import SeedSpread
from crlm.report_text import (
    and_list,
    ci_text,
    differs_text,
    every_baseline_text,
    hr_text,
    num_text,
    p_text,
    paper_auc_text,
    vs_text,
)

if TYPE_CHECKING:
    from crlm.params import Params

# survival: (AUC, AUC CI, log-rank p of the risk groups at 0.5)
PAPER_SURVIVAL = {
    "vgg16": (0.812, (0.775, 0.846), ".087"),
    "deeplabv3": (0.829, (0.796, 0.861), ".041"),
    "unet": (0.794, (0.758, 0.827), ".126"),
    "clmnet": (0.864, (0.832, 0.892), "< .001"),
}
NO_PAPER_SURVIVAL = (None, None, "–")  # an arch the paper did not test


def survival_section(params: Params, survival: dict, compare: dict, seeds: SeedSpread) -> list[str]:
    candidate = params.model.arch
    horizon = f"{params.survival.horizon_months:g}"
    lines = [
        f"## Table 3. Survival: discrimination of the image risk score at {horizon} months",
        "",
        "| model | AUC, complete cases [CI] | AUC seed SD | IPCW AUC | Harrell C | Uno C | "
        "AUC test p vs candidate (Holm) | C-index test p vs candidate (Holm) | paper: AUC [CI] |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for arch in ARCHS:
        s = survival[arch]
        paper = PAPER_SURVIVAL.get(arch, NO_PAPER_SURVIVAL)
        lines.append(
            f"| {title(arch)} | {ci_text(s['auc'])} | {seeds.sd(f'{arch}.survival_auc')} | "
            f"{num_text(s['auc_ipcw']['value'])} | {num_text(s['c_index']['harrell'])} | "
            f"{num_text(s['c_index']['uno'])} | {vs_text(compare['survival_auc'].get(arch))} | "
            f"{vs_text(compare['survival_c_index'].get(arch))} | {paper_auc_text(paper[0], paper[1])} |"
        )
    s = survival[candidate]
    lines += [
        "",
        f"{s['n_analysed']} patients with images and survival data; {s['n_binary_task']} in the binary task "
        f"({s['n_short_term']} short-, {s['n_long_term']} long-term). Every patient's probability is "
        "out of sample: cross-fitted over the CNN folds (a fold's classifier, trained on that fold's "
        "training patients as its CNN embeds them, predicts the fold's validation patients; test patients "
        "get the mean of the folds'). The risk score is the rank (normal score) of that probability within "
        "its prediction group (a fold's validation patients, or the test patients), so scores from different "
        "classifiers share one scale.",
        f"Complete-case AUC: the {s['n_censored_before_horizon']} patients censored before the horizon are left "
        f"out; the IPCW AUC (Uno 2007) and Uno's C use them with inverse-probability-of-censoring weights. "
        f"Uno's C is truncated at the horizon (only pairs whose earlier death falls before {horizon} months "
        "count); Harrell's C is not (every comparable pair over the whole follow-up), so the two need not "
        f"agree. The AUC's CI covers {s['auc'].get('covers', 'patient sampling')}.",
        differs_text(s["auc"]["value"], PAPER_SURVIVAL.get(candidate, (None,))[0], "the candidate's survival AUC"),
        f"The paper's endpoint is survival beyond 30 days; ours is {horizon} months (docs/methods.md, "
        '"Survival prediction").',
        "The C-index test is a patient-level paired bootstrap of the difference of Harrell's C; it gives "
        'the paper\'s "log-rank between models" column, which the paper does not define.',
        every_baseline_text(compare, "survival_auc"),
        "",
    ]
    return lines + _survival_by_set(survival, candidate)


def _survival_by_set(survival: dict, candidate: str) -> list[str]:
    """Table 3b: the development (cross-fitted) and the untouched test patients apart."""
    lines = [
        "### Table 3b. Development (cross-fitted) vs independent test patients",
        "",
        "| model | development: patients (deaths) | development: AUC, complete cases [CI] | development: "
        "Harrell C / Uno C | test: patients (deaths) | test: AUC, complete cases [CI] | test: Harrell C / Uno C |",
        "|---|---|---|---|---|---|---|",
    ]
    for arch in ARCHS:
        cells = []
        for part in ("development", "test"):
            b = survival[arch]["by_set"][part]
            cells += [
                f"{b['n']} ({b['n_events']})",
                ci_text(b["auc"]),
                f"{num_text(b['c_index']['harrell'])} / {num_text(b['c_index']['uno'])}",
            ]
        lines.append(f"| {title(arch)} | {' | '.join(cells)} |")
    s = survival[candidate]
    dev, test = s["by_set"]["development"], s["by_set"]["test"]
    unscored = [
        f"No survival numbers for the {part} set: {b['reason']}." for part, b in s["by_set"].items() if "reason" in b
    ]
    if unscored:  # a set with no scored patient (e.g. an external test set of an image-only source such as LiTS)
        return [*lines, "", " ".join(unscored), ""]
    lines += [
        "",
        f"Table 3 pools both sets: {dev['n']} of its {dev['n'] + test['n']} patients are development "
        f"patients, whose probabilities are cross-fitted over the CNN folds, and {test['n']} untouched test "
        "patients. Its AUC and C compare pairs of patients within the development set, within the test set "
        "and across the two (a development patient's risk score against a test patient's), so it is neither "
        "the cross-validation estimate nor the test estimate; read Table 3b, which gives them apart as "
        "TRIPOD+AI (Collins et al. 2024, BMJ 385:e078378) asks. The "
        f"test columns rest on {test['n']} patients ({test['n_binary_task']} in the binary task, "
        f"{test['n_short_term']} of them short-term): read them with their CIs.",
        "",
    ]
    return lines


def risk_groups_section(params: Params, survival: dict, compare: dict, seeds: SeedSpread) -> list[str]:
    candidate = params.model.arch
    covariates = ", ".join(params.survival.covariates)
    shares = list(survival[candidate]["risk_groups"]["high_share_per_group"].values())
    lines = [
        "## Table 4. Risk groups (upper half of the risk score within each prediction group) and Cox models",
        "",
        "High risk is the upper half of the risk score within each prediction group (a cross-validation "
        "fold's validation patients, or the test patients; the middle patient of an odd group is low risk). "
        f"This rule replaced the paper's cut at probability {params.survival.threshold:g} because the "
        "probabilities of different folds' classifiers are on different scales (that cut put very different "
        "shares of each fold's patients at high risk), not because of the log-rank results; the log-rank p at "
        "the paper's "
        "cut is given beside it for comparison."
        + (
            f" The candidate's high-risk share per prediction group: {min(shares):.0%} to {max(shares):.0%}."
            if shares
            else ""
        ),
        "",
        "| model | high / low risk (n) | log-rank p (Holm) | log-rank p over seeds | log-rank p at probability "
        f">= {params.survival.threshold:g} (high / low) | Cox HR per SD of risk "
        f"score, with {covariates} [CI] | LR test p: + risk score vs {covariates} | C corrected for optimism "
        "(apparent): clinical / + risk score | paper: log-rank p |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for arch in ARCHS:
        s = survival[arch]
        groups = s["logrank"]["n"]
        cut = s.get("logrank_probability_cut") or {}
        at_cut = (
            f"{p_text(cut.get('p_value'))} ({cut['n'].get('high', 0)} / {cut['n'].get('low', 0)})"
            if cut.get("n")
            else "–"
        )
        risk = s["cox_model"]["covariates"].get("risk_score", {})
        c = s["cox_concordance_optimism_corrected"]
        lines.append(
            f"| {title(arch)} | {groups.get('high', 0)} / {groups.get('low', 0)} | "
            f"{p_text(compare['logrank_p'][arch])} ({p_text(compare['logrank_p_holm'][arch])}) | "
            f"{seeds.span(f'{arch}.survival_logrank_p', p_text)} | {at_cut} | {hr_text(risk)} | "
            f"{p_text(s['cox_lr_test']['p_value'])} | {_corrected(c['clinical'])} / "
            f"{_corrected(c['clinical_plus_image'])} | {PAPER_SURVIVAL.get(arch, NO_PAPER_SURVIVAL)[2]} |"
        )
    s = survival[candidate]
    refused = s["cox_model"]["reason"] or s["cox_clinical"]["reason"]
    full = s["cox_concordance_optimism_corrected"]["clinical_plus_image"]
    sd = s.get("cox_risk_score_sd")
    lines += [
        "",
        f"Cox fits need at least {params.survival.min_events_per_covariate:g} events per covariate"
        + (
            f"; refused here: {refused}."
            if refused
            else f" ({s['cox_model']['n_events']} events for {len(params.survival.covariates) + 1} covariates)."
        ),
        ""
        if sd is None
        else "The risk score enters the Cox models divided by its SD over their patients (ddof 1; the candidate's: "
        f"{sd:.2f}), so the HR is per SD.",
        "The likelihood-ratio test is the test of whether the image risk score adds to the clinical model on "
        "the same patients. The C-indices are Harrell's, corrected for optimism by the bootstrap (Harrell, Lee "
        "& Mark 1996): the apparent C of the model fitted on all patients minus the mean optimism over "
        f"{full.get('n_resamples')} resamples of the patients (the C of the model refitted on a resample, on "
        "that resample, minus its C on the original patients)"
        + (
            f"; for the candidate's full model {full['n_refused']} resample(s) gave no fit (fewer events than "
            "the minimum, or no convergence) and are left out"
            if full.get("n_refused")
            else ""
        )
        + ". The difference between the two models' C is descriptive, not a test: testing the C difference of "
        "nested models is invalid (Demler, Pencina & D'Agostino 2012).",
        _c_gain(survival),
        "",
    ]
    return lines


def _corrected(result: dict) -> str:
    return f"{num_text(result.get('corrected'))} ({num_text(result.get('apparent'))})"


def _c_gain(survival: dict) -> str:
    """Which archs' risk score raises the optimism-corrected C above the clinical model's (descriptive)."""
    gains = {}
    for arch in ARCHS:
        c = survival[arch]["cox_concordance_optimism_corrected"]
        clinical, full = c["clinical"].get("corrected"), c["clinical_plus_image"].get("corrected")
        if clinical is not None and full is not None:
            gains[arch] = full - clinical
    if not gains:
        return ""
    up = [a for a in gains if gains[a] > 0]
    rest = [a for a in gains if gains[a] <= 0]
    parts = []
    if up:
        low, high = min(gains[a] for a in up), max(gains[a] for a in up)
        parts.append(
            f"with the risk score the corrected C is higher than the clinical model's for {and_list(up)} "
            f"(by {low:.3f}{f' to {high:.3f}' if f'{low:.3f}' != f'{high:.3f}' else ''})"
        )
    if rest:
        parts.append(f"not higher for {and_list(rest)}")
    return "Descriptively, " + "; ".join(parts) + "."
