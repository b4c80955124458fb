"""Figures written by the stages (matplotlib without a display) and the CSV files behind
`dvc plots show/diff`: both byte-stable, so reruns write identical files."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

KM_GROUPS = ("high", "low")  # the risk groups of a KM CSV, one column each


def augmentation_grid(
    path: str | Path,
    originals: list[tuple[np.ndarray, np.ndarray]],
    augmented: list[list[tuple[np.ndarray, np.ndarray]]],
    titles: list[str],
) -> None:
    """One row per image: the original, then its augmented versions; tumour outlined in red."""
    n_rows, n_cols = len(originals), 1 + max((len(a) for a in augmented), default=0)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(2.0 * n_cols, 2.0 * n_rows), squeeze=False)
    for r, ((image, mask), variants) in enumerate(zip(originals, augmented)):
        for c, (img, msk) in enumerate([(image, mask), *variants]):
            ax = axes[r][c]
            ax.imshow(img, cmap="gray", vmin=0.0, vmax=1.0)
            if msk.any():
                ax.contour(msk, levels=[0.5], colors="red", linewidths=0.8)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title("original" if c == 0 else f"augmented {c}", fontsize=8)
        axes[r][0].set_ylabel(titles[r], fontsize=7)
    fig.suptitle("Training augmentation: rotation, flip, crop, scale, elastic", fontsize=9)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(fig)


def _save(fig, path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, metadata={"Software": None})  # no version/date stamp: byte-stable
    plt.close(fig)


def curves_plot(path: str | Path, curves: dict[str, tuple[np.ndarray, np.ndarray, str]], kind: str) -> None:
    """All archs on one ROC (kind="roc") or precision-recall (kind="pr") plot; label carries the AUC."""
    fig, ax = plt.subplots(figsize=(5, 5))
    for arch, (x, y, label) in curves.items():
        ax.plot(x, y, label=f"{arch} ({label})", linewidth=1.5)
    if kind == "roc":
        ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate")
        ax.set_title("ROC, independent test set")
    else:
        ax.set_xlabel("recall")
        ax.set_ylabel("precision")
        ax.set_title("Precision-recall, independent test set")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.legend(loc="lower right" if kind == "roc" else "lower left", fontsize=8)
    _save(fig, path)


def report_heatmap(path: str | Path, reports: dict[str, dict]) -> None:
    """scikit-learn classification reports (precision, recall, F1 per class) of every arch as one heatmap."""
    rows, values = [], []
    for arch, report in reports.items():
        for cls in ("no metastasis", "metastasis"):
            rows.append(f"{arch}: {cls}")
            values.append([report[cls]["precision"], report[cls]["recall"], report[cls]["f1-score"]])
    matrix = np.array(values, dtype=float)
    fig, ax = plt.subplots(figsize=(5, 0.45 * len(rows) + 1.2))
    ax.imshow(matrix, cmap="viridis", vmin=0, vmax=1, aspect="auto")
    for (r, c), v in np.ndenumerate(matrix):
        ax.text(c, r, f"{v:.2f}", ha="center", va="center", color="white" if v < 0.6 else "black", fontsize=8)
    ax.set_xticks(range(3), ["precision", "recall", "F1"])
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    ax.set_title("Classification report, independent test set", fontsize=9)
    fig.tight_layout()
    _save(fig, path)


def overlays(
    path: str | Path, images: np.ndarray, truth: np.ndarray, predicted: dict[str, np.ndarray], titles: list[str]
) -> None:
    """One row per test image: the truth (red) and each arch's predicted mask (yellow)."""
    n_rows, n_cols = len(images), 1 + len(predicted)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(1.8 * n_cols, 1.8 * n_rows + 0.4), squeeze=False)
    for r in range(n_rows):
        for c, (name, masks) in enumerate([("truth", truth), *predicted.items()]):
            ax = axes[r][c]
            ax.imshow(images[r], cmap="gray", vmin=0, vmax=1)
            if masks[r].any():
                ax.contour(masks[r], levels=[0.5], colors="red" if c == 0 else "yellow", linewidths=0.8)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(name, fontsize=8)
        axes[r][0].set_ylabel(titles[r], fontsize=7)
    fig.suptitle("Tumour masks on test images: truth (red), predictions (yellow)", fontsize=9)
    _save(fig, path)


def km_plot(
    path: str | Path,
    curves: dict,
    at_risk: dict[str, np.ndarray],
    times: list[float],
    title: str,
    p_value: float | None,
) -> None:
    """Kaplan-Meier curves per risk group (crlm.stats.survival.KMResult: timeline, survival, ci_low, ci_high,
    n) with the numbers at risk at `times` (at_risk[group], one count per time) in a table under the axis."""
    fig, (ax, table) = plt.subplots(2, 1, figsize=(6, 4.6), gridspec_kw={"height_ratios": [4, 1]}, sharex=True)
    colours = {"high": "tab:red", "low": "tab:blue"}
    for group, km in sorted(curves.items()):
        colour = colours.get(group, None)
        ax.step(km.timeline, km.survival, where="post", color=colour, label=f"{group} risk (n={km.n})")
        ax.fill_between(km.timeline, km.ci_low, km.ci_high, step="post", color=colour, alpha=0.15)
    ax.set_ylim(0, 1.02)
    ax.set_ylabel("overall survival")
    ax.legend(loc="lower left", fontsize=8)
    p_text = "log-rank p undefined" if p_value is None else f"log-rank p = {p_value:.3g}"
    ax.set_title(f"{title}: {p_text}", fontsize=9)
    groups = sorted(curves)
    for row, group in enumerate(groups):
        for t, n in zip(times, at_risk[group]):
            table.text(t, row, str(n), ha="center", va="center", fontsize=7, color=colours.get(group, "k"))
    table.set_yticks(range(len(groups)), [f"{g} at risk" for g in groups], fontsize=7)
    table.set_ylim(-0.7, len(groups) - 0.3)
    table.set_xlabel("months")
    table.tick_params(axis="y", length=0)
    for side in ("top", "right", "left"):
        table.spines[side].set_visible(False)
    fig.tight_layout()
    _save(fig, path)


def write_points_csv(path: str | Path, columns: dict[str, np.ndarray], digits: int = 6) -> None:
    """A curve's points as CSV, one column per name (e.g. fpr, tpr), values rounded to `digits` decimals."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({name: np.asarray(values).round(digits) for name, values in columns.items()}).to_csv(path, index=False)


def km_csv(path: str | Path, curves: dict) -> None:
    """The risk groups' Kaplan-Meier curves (crlm.stats.survival.KMResult by group) on one time grid:
    months (4 decimals), then survival_high and survival_low (6 decimals; empty for a group without patients)."""
    times = np.unique(np.concatenate([k.timeline for k in curves.values()])) if curves else np.zeros(0)
    frame = pd.DataFrame({"months": times.round(4)})
    for group in KM_GROUPS:
        frame[f"survival_{group}"] = curves[group].at(times).round(6) if group in curves else np.nan
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
