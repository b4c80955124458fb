"""Which test images the figures show: plots/evaluate/overlays.png (evaluate) and cam.png (explain)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def overlay_rows(test: pd.DataFrame, manifest: pd.DataFrame, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The n test images with the largest tumours, one per patient: their positions in `test` and their rows
    in `manifest`."""
    order = test.reset_index(drop=True).sort_values(["tumour_area_px", "image_id"], ascending=[False, True])
    chosen = order.drop_duplicates("patient_id").index[:n].to_numpy()
    index_of = dict(zip(manifest["image_id"], range(len(manifest))))
    rows = np.array([index_of[i] for i in test["image_id"].iloc[chosen]])
    return chosen, rows
