"""`crlm review BASE`: one markdown page comparing the workspace with a git revision: the params that changed,
the stages that reran (or would), each headline number's change against its seed noise, and the changed plots."""

from __future__ import annotations

import json
from pathlib import Path

from crlm.review.changes import lock_at, metrics_changed, open_repo, params_changed, stages_pending, stages_reran
from crlm.review.noise import Reading, SeedNoise, describe_test
from crlm.review.plots import PlotChange, changed_plots

HEADLINE = "metrics/headline.json"
STABILITY = "metrics/stability.json"


def number(value) -> str:
    return "–" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)


def gather(root: Path, base: str) -> dict:
    """Everything the page says, from DVC (params and metrics diffs, dvc.lock at both revisions, dvc status)."""
    stability_file = root / STABILITY
    stability = json.loads(stability_file.read_text()) if stability_file.is_file() else None
    with open_repo(root) as repo:
        base_lock = lock_at(repo, base)
        try:
            measured_lock = lock_at(repo, stability["commit"]) if stability and stability.get("commit") else None
        except Exception:  # noqa: BLE001 - a commit this clone lacks (shallow, rebased): the SD's age is unknown
            measured_lock = None
        noise = SeedNoise(stability, measured_lock, base_lock)
        readings = [
            noise.read(name, change["old"], change["new"])
            for name, change in metrics_changed(repo, base, HEADLINE).items()
        ]
        return {
            "params": params_changed(repo, base),
            "reran": stages_reran(base_lock, lock_at(repo, None)),
            "pending": stages_pending(repo),
            "readings": readings,
            "stability": stability,
        }


def params_section(params: dict[str, dict]) -> list[str]:
    if not params:
        return ["No param changed.", ""]
    return (
        ["| param | base | workspace |", "|---|---|---|"]
        + [f"| `{key}` | {number(c['old'])} | {number(c['new'])} |" for key, c in params.items()]
        + [""]
    )


def stages_section(reran: list[str], pending: list[str]) -> list[str]:
    lines = [f"Reran (their dvc.lock entries differ from the base): {', '.join(f'`{s}`' for s in reran) or 'none'}."]
    if pending:
        lines.append(
            f"**Out of date in the workspace** (`dvc repro` would rerun {', '.join(f'`{s}`' for s in pending)}"
            "): the numbers below are not yet those of the workspace's code and params."
        )
    else:
        lines.append("Nothing is out of date: the workspace's outputs are what its code and params produce.")
    return lines + [""]


def verdict_rank(reading: Reading) -> int:
    return 0 if reading.verdict.startswith("beyond") else 2 if reading.verdict == "within seed noise" else 1


def numbers_section(readings: list[Reading], stability: dict | None) -> list[str]:
    changed = sorted((r for r in readings if r.verdict != "unchanged"), key=verdict_rank)
    beyond = sum(r.verdict.startswith("beyond") for r in changed)
    within = sum(r.verdict == "within seed noise" for r in changed)
    lines = [
        f"{len(changed)} of {len(readings)} headline numbers changed: {beyond} beyond seed noise, {within} "
        f"within it, {len(changed) - beyond - within} without a verdict.",
        "",
    ]
    if changed:
        lines += [
            "| number | base | workspace | change | change / seed SD | verdict | note |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in changed:
            ratio = "–" if r.test is None else f"{r.test.sds:+.1f}"
            change = "–" if r.change is None else f"{r.change:+.4g}"
            lines.append(
                f"| `{r.name}` | {number(r.old)} | {number(r.new)} | {change} | {ratio} | {r.verdict} | {r.note} |"
            )
        lines.append("")
    if stability and stability.get("seeds"):
        seeds = stability["seeds"]
        lines += [
            f"Seed SDs: metrics/stability.json, `make stability` at commit {stability.get('commit', '?')} "
            f"(train.seed {', '.join(map(str, seeds))}). " + describe_test(len(seeds)),
            "",
        ]
    else:
        lines += [
            "Seed SDs: not measured (no metrics/stability.json; `make stability` measures them), so no "
            "change gets a verdict.",
            "",
        ]
    return lines


def plots_section(plots: list[PlotChange]) -> list[str]:
    if not plots:
        return ["No plot changed.", ""]
    lines = []
    for plot in plots:
        lines += [
            f"**{plot.title}**"
            + (" (base, then workspace)" if len(plot.images) == 2 else " (dashed: base; solid: workspace)"),
            "",
        ]
        lines += [" ".join(f"![{plot.title}]({image})" for image in plot.images), ""]
    return lines


def write_review(root: Path, base: str, out: Path) -> str:
    """Write the review page of the workspace against `base` to `out` (its images in `<out stem>/` beside it)."""
    facts = gather(root, base)
    images = out.parent / out.stem
    plots = changed_plots(root, base, images, out.stem)
    lines = [
        f"# Review: the workspace against `{base}`",
        "",
        "Generated by `crlm review` from DVC's params, metrics and plots diffs.",
        "",
        "## Params",
        "",
        *params_section(facts["params"]),
        "## Stages",
        "",
        *stages_section(facts["reran"], facts["pending"]),
        f"## Headline numbers ({HEADLINE})",
        "",
        *numbers_section(facts["readings"], facts["stability"]),
        "## Plots",
        "",
        *plots_section(plots),
    ]
    text = "\n".join(lines).rstrip() + "\n"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    return text
