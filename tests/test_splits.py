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
            rows.append({"image_id": f"p{p:03d}-s{z:03d}", "patient_id": f"p{p:03d}",
                         "label": int(has_tumour and rng.random() < 0.6)})
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
