"""A fold's training sample: the only place where labels choose images."""

import dataclasses

import numpy as np
import pandas as pd

from crlm.data.labels import is_ambiguous
from crlm.data.sampling import training_sample


def _manifest(n_patients=10, per_patient=30, positive_every=5, ambiguous_every=7):
    """Each patient: a metastasis slice every 5th, an ambiguous one (tumour, label 0) every 7th otherwise."""
    rows = []
    for p in range(n_patients):
        for z in range(per_patient):
            label = int(z % positive_every == 0)
            tumour = 50 if label else (5 if z % ambiguous_every == 0 else 0)
            rows.append(
                {"image_id": f"p{p:02d}-s{z:03d}", "patient_id": f"p{p:02d}", "label": label, "tumour_area_px": tumour}
            )
    return pd.DataFrame(rows)


def _cfg(tiny_params, **settings):
    base = {"exclude_ambiguous": True, "max_slices_per_patient": 20, "balance": True, "majority_per_minority": 1.0}
    return dataclasses.replace(tiny_params.train, **{**base, **settings})


TRAIN = [f"p{p:02d}" for p in range(8)]  # p08 and p09 are the fold's validation patients


def test_only_the_folds_training_patients_without_ambiguous_slices(tiny_params):
    manifest = _manifest()
    assert is_ambiguous(manifest).sum() == 10 * 4  # z = 7, 14, 21, 28 (z = 0 is a metastasis slice)
    cfg = _cfg(tiny_params, max_slices_per_patient=100, balance=False)
    rows = manifest.iloc[training_sample(manifest, TRAIN, cfg, "0")]
    assert set(rows["patient_id"]) == set(TRAIN)
    assert not is_ambiguous(rows).any()
    assert len(rows) == 8 * (30 - 4)  # everything else of those patients
    kept = manifest.iloc[training_sample(manifest, TRAIN, dataclasses.replace(cfg, exclude_ambiguous=False), "0")]
    assert len(kept) == 8 * 30 and is_ambiguous(kept).sum() == 8 * 4


def test_per_patient_cap_and_balance_to_the_configured_ratio(tiny_params):
    manifest = _manifest()
    capped = manifest.iloc[
        training_sample(manifest, TRAIN, _cfg(tiny_params, max_slices_per_patient=9, balance=False), "0")
    ]
    assert (capped.groupby("patient_id").size() == 9).all()
    # 26 non-ambiguous slices per patient (6 metastasis) capped at 20, then 1 or 2 majority images per minority one
    unbalanced = manifest.iloc[training_sample(manifest, TRAIN, _cfg(tiny_params, balance=False), "0")]
    assert (unbalanced.groupby("patient_id").size() == 20).all()
    for ratio in (1.0, 2.0):
        rows = manifest.iloc[training_sample(manifest, TRAIN, _cfg(tiny_params, majority_per_minority=ratio), "0")]
        counts = rows["label"].value_counts()
        assert counts[1] == unbalanced["label"].sum()  # every minority image of the capped sample stays
        assert counts[0] == ratio * counts[1]


def test_the_sample_is_deterministic_per_seed_and_fold_and_differs_across_folds(tiny_params):
    manifest = _manifest()
    cfg = _cfg(tiny_params, max_slices_per_patient=12)
    a = training_sample(manifest, TRAIN, cfg, "0")
    np.testing.assert_array_equal(a, training_sample(manifest, TRAIN, cfg, 0))
    assert np.all(np.diff(a) > 0)  # row positions, ascending
    assert not np.array_equal(a, training_sample(manifest, TRAIN, cfg, "1"))
    assert not np.array_equal(a, training_sample(manifest, TRAIN, dataclasses.replace(cfg, seed=cfg.seed + 1), "0"))


def test_row_positions_ignore_the_frames_index(tiny_params):
    manifest = _manifest(n_patients=3, per_patient=6)
    shuffled_index = manifest.set_axis(np.arange(len(manifest))[::-1] + 1000)
    cfg = _cfg(tiny_params, balance=False)
    np.testing.assert_array_equal(training_sample(shuffled_index, ["p01"], cfg, "0"), np.arange(6, 12))
