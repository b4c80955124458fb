"""The calibration stage's figures (reliability diagrams, decision curve) and the decision curves' CSV files
for `dvc plots show/diff`; byte-stable like crlm.plots."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from crlm.archs import title  # noqa: E402
from crlm.calibration.measures import Reliability  # noqa: E402
from crlm.plots import write_points_csv  # noqa: E402


def _save(fig, path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, metadata={"Software": None})  # no version/date stamp: byte-stable
    plt.close(fig)


def _name(arch: str, candidate: str) -> str:
    return f"{title(arch)} (candidate)" if arch == candidate else title(arch)


def reliability_figure(
    path: str | Path,
    diagrams: dict[str, Reliability | None],
    notes: dict[str, str],
    candidate: str,
    heading: str,
    xlabel: str,
    unit: str,
) -> None:
    """One column per arch. Top: observed share against mean predicted probability per quantile bin (the
    points; the diagonal is perfect calibration), with the number of `unit` behind each point, left to
    right, and beside them the loess calibration curve over every prediction (the line). Bottom: the
    histogram of the predictions."""
    n = len(diagrams)
    fig, axes = plt.subplots(
        2, n, figsize=(3.1 * n, 4.6), sharex=True, squeeze=False, gridspec_kw={"height_ratios": [3.2, 1]}
    )
    for col, (arch, diagram) in enumerate(diagrams.items()):
        ax, hist = axes[0][col], axes[1][col]
        colour = "tab:red" if arch == candidate else "tab:blue"
        ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
        note = notes.get(arch, "")
        if diagram is not None:
            ax.plot(
                diagram.loess.prob,
                diagram.loess.observed,
                color=colour,
                linewidth=2.2 if arch == candidate else 1.3,
                label=f"loess (frac {diagram.loess.frac:.2g})",
            )
            ax.plot(
                diagram.prob_pred,
                diagram.prob_true,
                marker="o",
                markersize=4,
                color=colour,
                linestyle="none",
                markeredgecolor="black",
                markeredgewidth=0.5,
                label=f"{diagram.bins} quantile bins",
            )
            ax.legend(fontsize=6, loc="lower right", frameon=False)
            note += f"\n{unit} per point, left to right:\n{' '.join(str(c) for c in diagram.count)}"
            width = 1 / len(diagram.histogram)
            hist.bar(
                np.arange(len(diagram.histogram)) * width,
                diagram.histogram,
                width=width,
                align="edge",
                color=colour,
                alpha=0.6,
            )
        ax.text(0.03, 0.97, note, transform=ax.transAxes, va="top", fontsize=6.5)
        ax.set_xlim(-0.02, 1.02)
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(_name(arch, candidate), fontsize=9, fontweight="bold" if arch == candidate else "normal")
        hist.set_xlabel(xlabel, fontsize=8)
        for a in (ax, hist):
            a.tick_params(labelsize=7)
    axes[0][0].set_ylabel("observed share", fontsize=8)
    axes[1][0].set_ylabel(unit, fontsize=8)
    fig.suptitle(heading, fontsize=9)
    fig.tight_layout()
    _save(fig, path)


def decision_curve_figure(
    path: str | Path, curves: dict[str, pd.DataFrame], candidate: str, horizon_months: float
) -> None:
    """Net benefit against the threshold probability: every arch (the candidate bold), treat-all (the
    candidate's patients) and treat-none."""
    fig, ax = plt.subplots(figsize=(6, 4.4))
    reference = curves[candidate]
    for arch, curve in curves.items():
        if arch != candidate:
            ax.plot(curve["threshold"], curve["net_benefit"], linewidth=1.2, alpha=0.85, label=title(arch))
    ax.plot(
        reference["threshold"],
        reference["net_benefit"],
        color="tab:red",
        linewidth=2.6,
        zorder=5,
        label=_name(candidate, candidate),
    )
    ax.plot(
        reference["threshold"],
        reference["treat_all"],
        color="dimgrey",
        linestyle="--",
        linewidth=1.2,
        label="treat all",
    )
    ax.plot(reference["threshold"], reference["treat_none"], color="black", linewidth=1.0, label="treat none")
    values = np.concatenate(
        [c["net_benefit"].to_numpy(float) for c in curves.values()] + [reference["treat_all"].to_numpy(float)]
    )
    top = np.nanmax(values) if np.isfinite(values).any() else 0.1
    top = max(top, 0.01)
    ax.set_ylim(-0.3 * top, 1.15 * top)
    ax.set_xlim(reference["threshold"].min(), reference["threshold"].max())
    ax.set_xlabel(f"threshold probability of death before {horizon_months:g} months")
    ax.set_ylabel("net benefit (net true positives per patient)")
    ax.set_title(
        f"Decision curve: risk of death before {horizon_months:g} months, every patient "
        "(Kaplan-Meier for the censored)",
        fontsize=8,
    )
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    _save(fig, path)


def decision_curve_csv(path: str | Path, curve: pd.DataFrame, columns: tuple[str, ...]) -> None:
    """threshold and `columns` of a decision curve (6 decimals; empty where undefined)."""
    write_points_csv(path, {name: curve[name].to_numpy(float) for name in ("threshold", *columns)})
