import dataclasses

import numpy as np
import pandas as pd

from crlm.data.prepare import resize, select_slices, window


def test_window_maps_the_hu_range_to_unit_interval():
    hu = np.array([-1000, -140, 60, 260, 3000], dtype=np.int16)
    np.testing.assert_allclose(window(hu, centre=60, width=400), [0.0, 0.0, 0.5, 1.0, 1.0])


def test_resize_shapes_and_mask_stays_binary():
    image = np.linspace(0, 1, 128 * 128, dtype=np.float32).reshape(128, 128)
    mask = np.zeros((128, 128), np.uint8)
    mask[30:70, 30:70] = 1
    assert resize(image, 64).shape == (64, 64)
    small = resize(mask, 64, mask=True)
    assert set(np.unique(small)) == {0, 1}
    assert small.sum() == 20 * 20


def _kept(n_patients=10, per_patient=30, positive_every=5):
    rows = []
    for p in range(n_patients):
        for z in range(per_patient):
            rows.append({"image_id": f"p{p:02d}-s{z:03d}", "patient_id": f"p{p:02d}", "source": "phantom",
                         "slice_index": z, "label": int(z % positive_every == 0), "tumour_area_px": 0,
                         "n_lesions": 0})
    return pd.DataFrame(rows)


def test_balance_and_per_patient_cap(tiny_params):
    cfg = dataclasses.replace(tiny_params.prepare, max_slices_per_patient=20, balance=True, majority_per_minority=1.0)
    selected = select_slices(_kept(), cfg)
    assert selected.groupby("patient_id").size().max() <= 20
    counts = selected["label"].value_counts()
    assert counts[0] == counts[1]
    ratio = dataclasses.replace(cfg, majority_per_minority=2.0)
    counts2 = select_slices(_kept(), ratio)["label"].value_counts()
    assert counts2[0] == 2 * counts2[1]


def test_selection_is_deterministic_and_seeded(tiny_params):
    cfg = dataclasses.replace(tiny_params.prepare, max_slices_per_patient=12)
    a, b = select_slices(_kept(), cfg), select_slices(_kept(), cfg)
    pd.testing.assert_frame_equal(a, b)
    c = select_slices(_kept(), dataclasses.replace(cfg, seed=cfg.seed + 1))
    assert a["image_id"].tolist() != c["image_id"].tolist()


def test_no_balance_keeps_everything_under_the_cap(tiny_params):
    cfg = dataclasses.replace(tiny_params.prepare, max_slices_per_patient=100, balance=False)
    assert len(select_slices(_kept(), cfg)) == 300
