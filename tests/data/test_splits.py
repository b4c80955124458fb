import dataclasses

import numpy as np
import pandas as pd
import pytest

from crlm.data.splits import LeakageError, SplitError, check_no_leakage, make_splits, splits_summary


def _manifest(n_patients=60, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(n_patients):
        has_tumour = rng.random() < 0.7
        for z in range(int(rng.integers(4, 12))):
            label = int(has_tumour and rng.random() < 0.6)
            rows.append({"image_id": f"p{p:03d}-s{z:03d}", "patient_id": f"p{p:03d}", "label": label,
                         "tumour_area_px": 100 if label else int(has_tumour and rng.random() < 0.3) * 10})
    return pd.DataFrame(rows)


def test_splits_cover_everyone_without_leakage(tiny_params):
    cfg = dataclasses.replace(tiny_params.split, folds=5, test_fraction=0.15)
    manifest = _manifest()
    splits = make_splits(manifest, cfg)
    everyone = set(manifest["patient_id"])
    test = set(splits["test"])
    assert len(test) == pytest.approx(0.15 * len(everyone), abs=1)
    vals = [set(f["val"]) for f in splits["folds"]]
    assert set().union(*vals) == everyone - test
    assert sum(len(v) for v in vals) == len(everyone - test)
    for fold in splits["folds"]:
        assert set(fold["train"]) | set(fold["val"]) == everyone - test
        assert not set(fold["train"]) & set(fold["val"])


def test_class_ratios_agree_within_ten_points(tiny_params):
    cfg = dataclasses.replace(tiny_params.split, folds=5, test_fraction=0.15)
    manifest = _manifest(n_patients=80, seed=3)
    summary = splits_summary(manifest, make_splits(manifest, cfg))
    overall = summary["all"]["metastasis_fraction"]
    fractions = [summary["test"]["metastasis_fraction"]]
    fractions += [f[s]["metastasis_fraction"] for f in summary["folds"].values() for s in ("train", "val")]
    assert max(abs(f - overall) for f in fractions) <= 0.10


def test_same_seed_same_splits_other_seed_differs(tiny_params):
    manifest = _manifest()
    a = make_splits(manifest, tiny_params.split)
    assert a == make_splits(manifest, tiny_params.split)
    assert a != make_splits(manifest, dataclasses.replace(tiny_params.split, seed=1))


def test_leak_check_names_the_patient():
    splits = {"test": ["p1"], "folds": [{"train": ["p2", "p1"], "val": ["p3"]}, {"train": ["p3"], "val": ["p2"]}]}
    with pytest.raises(LeakageError, match=r"fold 0: patient\(s\) \['p1'\] in both train and test"):
        check_no_leakage(splits)
    twice = {"test": [], "folds": [{"train": ["a"], "val": ["b"]}, {"train": ["a"], "val": ["b"]}]}
    with pytest.raises(LeakageError, match="patient b is in the validation set of folds 0 and 1"):
        check_no_leakage(twice)


def test_one_class_cannot_be_stratified(tiny_params):
    manifest = _manifest().assign(label=0)
    with pytest.raises(SplitError, match="patients per class"):
        make_splits(manifest, tiny_params.split)


def test_the_summary_counts_every_image_of_each_subsets_patients():
    manifest = pd.DataFrame({
        "image_id": [f"{p}-s{z}" for p, n in (("a", 4), ("b", 3), ("c", 2), ("d", 1)) for z in range(n)],
        "patient_id": ["a"] * 4 + ["b"] * 3 + ["c"] * 2 + ["d"],
        "label": [1, 0, 0, 0, 1, 1, 0, 0, 0, 0],
        "tumour_area_px": [90, 5, 3, 0, 80, 70, 0, 0, 0, 0],    # a: two ambiguous slices
    })
    splits = {"test": ["a"], "folds": [{"train": ["b", "c"], "val": ["d"]}, {"train": ["d"], "val": ["b", "c"]}]}
    summary = splits_summary(manifest, splits)
    assert summary["test"] == {"images": 4, "patients": 1, "metastasis_images": 1, "ambiguous_images": 2,
                               "metastasis_fraction": 0.25}
    assert summary["all"] == {"images": 10, "patients": 4, "metastasis_images": 3, "ambiguous_images": 2,
                              "metastasis_fraction": 0.3}
    assert summary["development"]["images"] == 6 and summary["development"]["metastasis_fraction"] == 0.3333
    assert summary["folds"]["fold0"]["train"] == {"images": 5, "patients": 2, "metastasis_images": 2,
                                                  "ambiguous_images": 0, "metastasis_fraction": 0.4}
    assert summary["folds"]["fold0"]["val"]["metastasis_fraction"] == 0.0
