"""Figures written by the stages; matplotlib without a display."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def augmentation_grid(path: str | Path, originals: list[tuple[np.ndarray, np.ndarray]],
                      augmented: list[list[tuple[np.ndarray, np.ndarray]]], titles: list[str]) -> None:
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
