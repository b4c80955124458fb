"""The image label of a slice, and which slices are ambiguous.

A slice is labelled metastasis when its tumour area reaches slices.min_tumor_px.
A slice with a smaller tumour is labelled 0 although it shows a lesion: it is
"ambiguous". It stays in the data (validation and test score it at its natural
frequency, as a group of its own); only a fold's training sample may leave it
out (train.exclude_ambiguous).
"""

from __future__ import annotations

import pandas as pd


def slice_label(tumour_area_px: int, min_tumor_px: int) -> int:
    return int(tumour_area_px >= min_tumor_px)


def is_ambiguous(frame: pd.DataFrame) -> pd.Series:
    """Per row: labelled 0 (no metastasis) while some tumour is present."""
    return (frame["label"] == 0) & (frame["tumour_area_px"] > 0)
