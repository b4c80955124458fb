"""How the report writes its numbers and recurring sentences (reports/report.md; crlm.report and
crlm.report_survival)."""

from __future__ import annotations

from crlm.archs import title

PROFILE_DIFFERENCES = (
    "our default profile differs from the paper's in data (phantom), image size (64 px), "
    "network width (1/8), initialisation (none) and epochs (40); how much of the gap each "
    "difference explains has not been measured"
)


def vs_text(result: dict | None) -> str:
    if result is None:
        return "(candidate)"
    return f"{p_text(result.get('p_value'))} ({p_text(result.get('p_holm'))})"


def every_baseline_text(compare: dict, family: str) -> str:
    claim = compare.get("better_than_every_baseline", {}).get(family)
    if not claim:
        return ""
    verdict = (
        "holds"
        if claim["all_differences_positive"] and claim["largest_p"] is not None and claim["largest_p"] < 0.05
        else "does not hold"
    )
    return (
        '"Better than each baseline" is an intersection-union claim (Berger 1982): every difference must '
        f"favour the candidate with p < .05, so the largest p ({p_text(claim['largest_p'])}) decides; "
        f"here it {verdict}."
    )


def and_list(archs: list[str]) -> str:
    names = [title(a) for a in archs]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def differs_text(ours, paper: float | None, what: str) -> str:
    if paper is None:
        return f"The paper gives no number for {what}."
    if ours is None:
        return f"We could not compute {what} (undefined on this data; see metrics/)."
    if ours >= paper - 0.02:
        return f"Ours ({ours:.3f}) is at or above the paper's {paper:.3f} for {what}."
    return f"Ours ({ours:.3f}) is below the paper's {paper:.3f} for {what}: {PROFILE_DIFFERENCES}."


def paper_auc_text(auc: float | None, ci: tuple[float, float] | None) -> str:
    if auc is None:
        return "–"
    assert ci is not None  # the paper gives a CI with every AUC (PAPER_RECOGNITION, PAPER_SURVIVAL)
    return f"{auc:.3f} [{ci[0]}, {ci[1]}]"


def num_text(value) -> str:
    return "–" if value is None else f"{value:.3f}"


def value_text(metric: dict) -> str:
    return num_text(metric.get("value"))


def ci_text(metric: dict) -> str:
    if metric.get("value") is None:
        return "undefined"
    if metric.get("ci_low") is None:
        return num_text(metric["value"])
    return f"{metric['value']:.3f} [{metric['ci_low']:.3f}, {metric['ci_high']:.3f}]"


def p_text(value) -> str:
    if value is None:
        return "undefined"
    return "< .001" if value < 0.001 else f"{value:.3f}"


def hr_text(row: dict) -> str:
    if not row or row.get("hr") is None:
        return "undefined"
    return f"{row['hr']:.2f} [{row['hr_low']:.2f}, {row['hr_high']:.2f}]"
