import dataclasses

import numpy as np
import pandas as pd

from crlm.data import phantom
from crlm.data.labels import is_ambiguous
from crlm.data.prepare import (
    CROP_COLUMNS,
    CROPS,
    crop_boxes,
    kept_slices,
    prepare_images,
    prepare_slices,
    processed_manifest,
    resize,
    window,
)
from crlm.data.qc import run_qc
from crlm.data.slices import build_slices
from crlm.data.sources.phantom import volume_folder_cases
from crlm.data.split_making import make_splits, splits_summary


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


def _slices_and_qc():
    """Two patients: p0 with 30 liver slices (3 metastasis, 2 ambiguous, 1 blank), p1 with 4, all tumour-free."""
    rows, reasons = [], []
    for p, n in ((0, 30), (1, 4)):
        for z in range(n):
            tumour = {3: 80, 4: 90, 5: 70, 10: 5, 11: 2}.get(z, 0) if p == 0 else 0
            rows.append(
                {
                    "image_id": f"p{p}-s{z:03d}",
                    "patient_id": f"p{p}",
                    "source": "phantom",
                    "slice_index": z,
                    "label": int(tumour >= 40),
                    "tumour_area_px": tumour,
                    "n_lesions": int(tumour > 0),
                    "liver_area_px": 500,
                }
            )
            reasons.append("blank" if (p, z) == (0, 20) else "")
    manifest = pd.DataFrame(rows)
    qc = pd.DataFrame(
        {
            "image_id": manifest["image_id"],
            "patient_id": manifest["patient_id"],
            "kept": [r == "" for r in reasons],
            "reason": reasons,
        }
    )
    return manifest, qc


def test_prepare_keeps_every_qc_passed_slice_at_its_natural_prevalence():
    manifest, qc = _slices_and_qc()
    kept = kept_slices(manifest.iloc[::-1], qc)
    boxes = pd.DataFrame([[0, 10 + i, 1, 12] for i in range(len(kept))], columns=CROP_COLUMNS)
    kept = processed_manifest(kept, boxes)
    assert kept["image_id"].tolist() == sorted(set(manifest["image_id"]) - {"p0-s020"})
    assert len(kept) == 33  # no per-patient cap, no class balancing
    assert kept["label"].sum() == 3 and is_ambiguous(kept).sum() == 2
    # the processed manifest: these columns in this order (liver_area_px and the rest of the slices table go),
    # then each image's crop box, row for row
    assert list(kept.columns) == [
        "image_id",
        "patient_id",
        "source",
        "slice_index",
        "label",
        "tumour_area_px",
        "n_lesions",
        "crop_row_start",
        "crop_row_stop",
        "crop_col_start",
        "crop_col_stop",
    ]
    assert crop_boxes(kept)[:2] == [(slice(0, 10), slice(1, 12)), (slice(0, 11), slice(1, 12))]
    assert kept.index.tolist() == list(range(33))


def test_the_test_set_keeps_the_natural_prevalence_of_its_qc_passed_slices(tmp_path, tiny_params):
    """The phantom through the real functions of slices, qc, prepare and split: every QC-passed slice of a
    test patient, ambiguous ones included, is a test image, so the test prevalence is the natural one."""
    cfg = dataclasses.replace(tiny_params.phantom, n_patients=20, n_slices=12, defect_rate=0.0)
    phantom.write_phantom(cfg, tmp_path / "raw")
    slices = build_slices(volume_folder_cases("phantom", tmp_path / "raw"), tmp_path / "slices", min_tumor_px=30)
    qc = run_qc(slices, tmp_path / "slices", tiny_params.qc)
    kept = kept_slices(slices, qc)
    arrays, boxes = prepare_slices(kept, tmp_path / "slices", tiny_params.prepare)
    processed = processed_manifest(kept, boxes)
    assert len(arrays["images"]) == len(processed)
    assert processed.dtypes.astype(str).to_dict() == {  # the slices stage's types, kept, then the crop box
        "image_id": "string",
        "patient_id": "string",
        "source": "string",
        "slice_index": "int64",
        "label": "int64",
        "tumour_area_px": "int64",
        "n_lesions": "int64",
        **{column: "int64" for column in CROP_COLUMNS},
    }
    splits = make_splits(processed, tiny_params.split)

    passed = slices[qc["kept"].to_numpy() & slices["patient_id"].isin(splits["test"]).to_numpy()]
    test_images = processed[processed["patient_id"].isin(splits["test"])]
    assert sorted(test_images["image_id"]) == sorted(passed["image_id"])
    assert is_ambiguous(test_images).sum() == is_ambiguous(passed).sum() > 0
    natural = passed["label"].mean()
    assert abs(natural - 0.5) > 0.1  # far from the 50% that class balancing used to force
    summary = splits_summary(processed, splits)["test"]
    assert summary["metastasis_fraction"] == round(natural, 4)
    assert summary["images"] == len(passed) and summary["ambiguous_images"] == is_ambiguous(passed).sum()


def test_the_manifest_records_the_crop_box_prepare_cut_from_each_slice(tmp_path, tiny_params):
    """A tiny prepare run on the phantom: each manifest row's crop box is the box prepare.crop gives the
    slice's liver mask, it survives the parquet file, and prepare_images makes the same arrays."""
    from crlm.core.io import read_parquet, write_parquet
    from crlm.data.slices import load_slice

    cfg = dataclasses.replace(tiny_params.phantom, n_patients=3, n_slices=6, defect_rate=0.0)
    phantom.write_phantom(cfg, tmp_path / "raw")
    slices = build_slices(volume_folder_cases("phantom", tmp_path / "raw"), tmp_path / "slices", min_tumor_px=30)
    kept = kept_slices(slices, run_qc(slices, tmp_path / "slices", tiny_params.qc))
    prepare = dataclasses.replace(tiny_params.prepare, crop="liver", crop_margin=0.1)
    arrays, boxes = prepare_slices(kept, tmp_path / "slices", prepare)
    write_parquet(tmp_path / "manifest.parquet", processed_manifest(kept, boxes))
    manifest = read_parquet(tmp_path / "manifest.parquet")

    expected = [
        CROPS["liver"](load_slice(tmp_path / "slices", row)["liver"], 0.1) for row in kept.itertuples(index=False)
    ]
    assert crop_boxes(manifest) == expected
    assert any(box[0] != slice(0, tiny_params.phantom.matrix) for box in expected)  # boxes, not whole slices
    for name, array in prepare_images(kept, tmp_path / "slices", prepare).items():
        np.testing.assert_array_equal(array, arrays[name])
