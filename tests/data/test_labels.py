"""The slice label (tumour area >= slices.min_tumor_px) and the ambiguous slices (a smaller tumour, label 0)."""

import pandas as pd

from crlm.data.labels import is_ambiguous, slice_label


def test_a_slice_is_metastasis_from_min_tumor_px_on():
    assert [slice_label(area, 40) for area in (0, 1, 39, 40, 41, 5000)] == [0, 0, 0, 1, 1, 1]
    assert slice_label(1, 1) == 1 and slice_label(0, 1) == 0
    assert type(slice_label(40, 40)) is int


def test_ambiguous_is_label_0_with_some_tumour_only():
    frame = pd.DataFrame({"label": [0, 0, 1, 1, 0], "tumour_area_px": [0, 5, 0, 50, 39]})
    # label 0 & no tumour: clean; label 0 & tumour: ambiguous; label 1 never (with or without tumour)
    assert is_ambiguous(frame).tolist() == [False, True, False, False, True]


def test_ambiguous_follows_the_labels_of_slice_label():
    areas = [0, 1, 39, 40, 100]
    frame = pd.DataFrame({"tumour_area_px": areas, "label": [slice_label(a, 40) for a in areas]})
    assert is_ambiguous(frame).tolist() == [False, True, True, False, False]
    assert is_ambiguous(frame.iloc[:0]).tolist() == []
