"""plots/evaluate/cam.png: the test images of overlays.png with each arch's class activation map."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from crlm.archs import title  # noqa: E402


def cam_figure(
    path: str | Path,
    images: np.ndarray,
    truth: np.ndarray,
    cams: dict[str, np.ndarray],
    shares: dict[str, np.ndarray],
    titles: list[str],
) -> None:
    """One row per image: the image with the true tumour outlined (red), then each arch's map over it (jet,
    0 transparent-ish to 1 red) with the same outline and the map's share of mass inside the tumour."""
    n_rows, n_cols = len(images), 1 + len(cams)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(1.8 * n_cols, 1.8 * n_rows + 0.5), squeeze=False)
    for r in range(n_rows):
        for c, name in enumerate(["truth", *cams]):
            ax = axes[r][c]
            ax.imshow(images[r], cmap="gray", vmin=0, vmax=1)
            if c > 0:
                ax.imshow(cams[name][r], cmap="jet", vmin=0, vmax=1, alpha=0.45)
                share = shares[name][r]
                ax.set_xlabel("empty map" if np.isnan(share) else f"in tumour {share:.2f}", fontsize=7)
            if truth[r].any():
                ax.contour(truth[r], levels=[0.5], colors="red" if c == 0 else "white", linewidths=0.8)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(name if c == 0 else title(name), fontsize=8)
        axes[r][0].set_ylabel(titles[r], fontsize=7)
    fig.suptitle("Grad-CAM of the metastasis logit (fold ensemble) on test images; tumour outlined", fontsize=9)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, metadata={"Software": None})  # no version/date stamp: byte-stable
    plt.close(fig)
