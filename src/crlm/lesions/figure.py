"""plots/lesions/froc.png (every segmenting arch's FROC curves, per slice and 3-D) and the CSV behind
`dvc plots` (plots/lesions/froc_<arch>.csv). Byte-stable, as crlm.plots's figures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from crlm.archs import title
from crlm.plots import plt, write_points_csv


def froc_csv(path: str | Path, per_slice: pd.DataFrame, per_patient: pd.DataFrame) -> None:
    """One row per probability cut: threshold, fp_per_patient and sensitivity (per-slice lesions), then
    fp_per_patient_3d and sensitivity_3d (3-D lesions); an undefined value is empty."""
    write_points_csv(
        path,
        {
            "threshold": per_slice["threshold"].to_numpy(float),
            "fp_per_patient": per_slice["fp_per_patient"].to_numpy(float),
            "sensitivity": per_slice["sensitivity"].to_numpy(float),
            "fp_per_patient_3d": per_patient["fp_per_patient"].to_numpy(float),
            "sensitivity_3d": per_patient["sensitivity"].to_numpy(float),
        },
    )


def froc_plot(
    path: str | Path, per_slice: dict[str, pd.DataFrame], per_patient: dict[str, pd.DataFrame], cut: float
) -> None:
    """Two panels (per-slice lesions, 3-D lesions): sensitivity against mean false positives per patient,
    one line per arch over the probability cuts, the point at `cut` (evaluate.threshold) marked."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.4))
    for ax, curves, unit in (
        (axes[0], per_slice, "per-slice lesions (2-D)"),
        (axes[1], per_patient, "per-patient lesions (3-D)"),
    ):
        for k, (arch, points) in enumerate(curves.items()):
            colour = f"C{k}"
            x, y = points["fp_per_patient"].to_numpy(float), points["sensitivity"].to_numpy(float)
            ax.plot(x, y, marker=".", color=colour, linewidth=1.5, label=title(arch))
            at = np.flatnonzero(np.isclose(points["threshold"].to_numpy(float), cut))
            if len(at):
                ax.plot(x[at], y[at], marker="o", markersize=8, markerfacecolor="none", color=colour)
        ax.set_xlabel("mean false positives per patient")
        ax.set_ylabel("lesion sensitivity")
        ax.set_ylim(0, 1.02)
        ax.set_xlim(left=0)
        ax.set_title(f"FROC, {unit}", fontsize=9)
        ax.legend(loc="lower right", fontsize=8)
    fig.suptitle(f"FROC over the probability threshold, independent test set (circle: threshold {cut:g})", fontsize=9)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, metadata={"Software": None})  # no version/date stamp: byte-stable
    plt.close(fig)
