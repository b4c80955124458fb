"""The lesions stage's parts (crlm.lesions): component matching on hand-made masks with known counts, the FROC
over the threshold, the prepared pixel size from prepare's crop box, equivalent diameters and size bands, the
3-D stacking, the rank AUC against scikit-learn, and the metrics and report section on a small synthetic set."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage
from sklearn.metrics import roc_auc_score

from crlm.core.arrays import RowBlocks
from crlm.data.prepare import CROPS, crop_boxes, prepare_slices
from crlm.lesions.matching import Detection, components, detect, froc, match_criteria, match_lesions
from crlm.lesions.report import report_section
from crlm.lesions.run import LesionInputs, arch_lesions, scan_maps
from crlm.lesions.size import band_names, equivalent_diameter_mm, prepared_pixel_mm, size_band
from crlm.lesions.summary import band_summary, rank_auc
from crlm.lesions.volumes import Built, largest_cross_section_px, patient_volumes, to_original


def _box(shape, rows, cols):
    """A mask of `shape` with ones in rows[0]..rows[1] x cols[0]..cols[1] (inclusive)."""
    mask = np.zeros(shape, bool)
    mask[rows[0] : rows[1] + 1, cols[0] : cols[1] + 1] = True
    return mask


# ---------------------------------------------------------------- matching


def test_detected_missed_false_positive_and_two_pieces_on_one_lesion():
    truth = _box((20, 20), (1, 4), (1, 4)) | _box((20, 20), (10, 11), (10, 11)) | _box((20, 20), (15, 18), (1, 4))
    pred = (
        _box((20, 20), (1, 4), (1, 1))
        | _box((20, 20), (1, 4), (3, 4))  # two pieces on lesion 1 (4x4)
        | _box((20, 20), (16, 16), (2, 2))  # one pixel inside lesion 3
        | _box((20, 20), (1, 2), (15, 16))
    )  # a false positive
    # lesion 2 (rows 10-11) is missed
    match = match_lesions(pred, truth)
    assert match.predicted == 4
    assert list(match.area_px) == [16, 4, 16]  # label order: raster order of the lesions' first pixels
    assert list(match.detected) == [True, False, True]
    assert match.false_positives == 1
    # lesion 1: the two pieces cover 12 of its 16 pixels and nothing else: Dice 2*12 / (16 + 12)
    # lesion 2 is missed: 0; lesion 3: one pixel: 2*1 / (16 + 1)
    assert match.dice == pytest.approx([24 / 28, 0.0, 2 / 17])


def test_eight_connectivity_joins_diagonal_pixels():
    diagonal = np.eye(4, dtype=bool)
    assert components(diagonal)[1] == 1  # 8-connectivity: one lesion
    assert ndimage.label(diagonal)[1] == 4  # scipy's default (4-connectivity) would give four
    volume = np.zeros((3, 4, 4), bool)
    volume[0, 0, 0] = volume[1, 1, 1] = True  # corner to corner across adjacent slices
    assert components(volume)[1] == 1  # 26-connectivity in 3-D


def test_one_predicted_component_across_two_lesions_detects_both_and_no_false_positive():
    truth = _box((10, 10), (2, 3), (1, 2)) | _box((10, 10), (2, 3), (6, 7))
    pred = _box((10, 10), (2, 3), (1, 7))  # bridges both
    match = match_lesions(pred, truth)
    assert list(match.detected) == [True, True] and match.false_positives == 0 and match.predicted == 1
    # each lesion (4 px) against the one component (14 px) on it
    assert match.dice == pytest.approx([8 / 18, 8 / 18])


def test_min_iou_decides_on_a_small_overlap():
    truth = _box((10, 10), (0, 3), (0, 3))  # 16 px
    pred = _box((10, 10), (3, 5), (3, 5))  # 9 px, 1 shared: IoU 1 / 24
    assert match_lesions(pred, truth, min_iou=0.0).detected.tolist() == [True]
    assert match_lesions(pred, truth, min_iou=0.04).detected.tolist() == [True]
    assert match_lesions(pred, truth, min_iou=0.05).detected.tolist() == [False]
    # a predicted component on a lesion it does not localise well enough: a miss and a false positive, Dice 0
    strict = match_lesions(pred, truth, min_iou=0.5)
    assert (strict.false_positives, strict.dice.tolist()) == (1, [0.0])
    assert match_lesions(pred, truth, min_iou=0.0).false_positives == 0


def test_empty_masks_and_shape_mismatch():
    empty = np.zeros((5, 5), bool)
    match = match_lesions(empty, empty)
    assert match.area_px.size == 0 and match.false_positives == 0 and match.predicted == 0
    assert match_lesions(_box((5, 5), (1, 1), (1, 1)), empty).false_positives == 1
    with pytest.raises(ValueError, match="differ in shape"):
        match_lesions(np.zeros((4, 4)), empty)


def test_detect_sums_false_positives_per_patient_over_every_patient():
    lesion = _box((8, 8), (2, 3), (2, 3))
    fp = _box((8, 8), (6, 6), (6, 6))
    empty = np.zeros((8, 8), bool)
    found = detect([lesion | fp, fp, empty, empty], [lesion, empty, lesion, empty], ["a", "a", "b", "c"])
    assert found.lesions["patient_id"].tolist() == ["a", "b"]
    assert found.lesions["detected"].tolist() == [True, False]
    assert found.fp_by_patient.to_dict() == {"a": 2, "b": 0, "c": 0}
    assert found.sensitivity == 0.5 and found.fp_per_patient == pytest.approx(2 / 3)


# ---------------------------------------------------------------- FROC


def test_froc_sensitivity_falls_with_the_threshold():
    rng = np.random.default_rng(0)
    maps = np.stack([ndimage.gaussian_filter(rng.random((32, 32)), 2.0) for _ in range(12)])
    maps = (maps - maps.min()) / (maps.max() - maps.min())
    truth = np.stack([ndimage.gaussian_filter(rng.random((32, 32)), 2.0) for _ in range(12)])
    truth = truth > np.quantile(truth, 0.85)
    patients = [f"p{i // 3}" for i in range(12)]
    cuts = np.linspace(0.05, 0.95, 19)
    points = froc(maps, truth, patients, cuts)
    assert points["threshold"].tolist() == pytest.approx(cuts.tolist())
    assert np.all(np.diff(points["sensitivity"]) <= 0)  # a higher cut keeps a subset of the mask
    assert points["sensitivity"].iloc[0] > points["sensitivity"].iloc[-1]
    # (the false positives need not fall: at the lowest cut the whole map is one component on the lesions;
    # see the next test)
    # the point at a cut is detect() on that cut's masks
    at = detect(maps >= cuts[9], truth, patients)
    assert points.loc[9, "sensitivity"] == at.sensitivity and points.loc[9, "fp_per_patient"] == at.fp_per_patient


def test_false_positives_need_not_fall_at_every_step():
    """A predicted component on a lesion that splits at a higher cut leaves a piece off the lesion: +1 FP."""
    truth = _box((5, 12), (1, 3), (0, 2))
    prob = np.zeros((5, 12))
    prob[1:4, 0:12] = 0.9
    prob[1:4, 5] = 0.4  # a weak neck between the lesion's side and the right-hand side
    points = froc([prob], [truth], ["a"], [0.3, 0.5])
    assert points["fp_per_patient"].tolist() == [0.0, 1.0]
    assert points["sensitivity"].tolist() == [1.0, 1.0]


# ---------------------------------------------------------------- size


def test_equivalent_diameter_of_a_disc():
    # 100 pixels of 2 x 2 mm = 400 mm^2: d = 2 sqrt(400 / pi) = 22.5676 mm
    assert equivalent_diameter_mm(100, 4.0) == pytest.approx(22.5676, abs=1e-4)
    # a rasterised disc of radius 40 px at 0.25 mm: 20 mm across; pixelation costs well under 1%
    yy, xx = np.mgrid[-50:51, -50:51]
    disc = (yy**2 + xx**2) <= 40**2
    assert equivalent_diameter_mm(disc.sum(), 0.25**2) == pytest.approx(20.0, rel=0.005)


def test_band_assignment_at_the_edges():
    edges = (10.0, 30.0)
    assert band_names(edges) == ["<=10mm", "10-30mm", ">30mm"]
    d = [0.0, 9.999, 10.0, 10.001, 29.999, 30.0, 30.001, 500.0]
    assert size_band(d, edges).tolist() == [0, 0, 0, 1, 1, 1, 2, 2]
    assert size_band(5.0, (10.0,)).tolist() == 0 and band_names((7.5,)) == ["<=7.5mm", ">7.5mm"]


def test_the_prepared_pixel_size_from_the_liver_box():
    liver = _box((128, 128), (40, 79), (30, 89))  # 40 rows x 60 columns
    # side = 60 * (1 + 2 * 0.1) = 72; centre (60, 60): rows 24..95, columns 24..95
    assert CROPS["liver"](liver, 0.1) == (slice(24, 96), slice(24, 96))
    # 72 px of 2.8 mm into 64 px: 72 * 2.8 / 64 = 3.15 mm
    assert prepared_pixel_mm(CROPS["liver"](liver, 0.1), 2.8, (64, 64)) == pytest.approx((3.15, 3.15))
    assert prepared_pixel_mm(CROPS["none"](liver, 0.1), 2.8, (64, 64)) == pytest.approx((5.6, 5.6))
    # a non-square slice kept whole: each axis its own scale
    assert prepared_pixel_mm(CROPS["none"](np.ones((100, 128)), 0.1), 2.8, (64, 64)) == pytest.approx((4.375, 5.6))


def test_prepared_lesion_area_times_the_pixel_area_is_the_lesion_area(tmp_path, tiny_params):
    """prepare itself: a 16 x 16 px tumour at 1 mm (256 mm^2) in a 64 px liver box resized to 32 px
    covers 8 x 8 prepared pixels of 2 x 2 mm: the same 256 mm^2 (the box as the manifest records it)."""
    liver = _box((128, 128), (30, 93), (20, 83))  # 64 x 64: with margin 0 the box is the liver
    tumour = _box((128, 128), (40, 55), (40, 55))
    image = np.where(liver, 60, -1000).astype(np.int16)
    np.savez_compressed(tmp_path / "s.npz", image=image, tumour=tumour.astype(np.uint8), liver=liver.astype(np.uint8))
    cfg = dataclasses.replace(tiny_params.prepare, image_size=32, crop="liver", crop_margin=0.0)
    prepared, boxes = prepare_slices(pd.DataFrame({"image_id": ["s"], "path": ["s.npz"]}), tmp_path, cfg)
    [box] = crop_boxes(boxes)
    assert box == (slice(30, 94), slice(20, 84))
    height, width = prepared_pixel_mm(box, 1.0, prepared["tumour"].shape[1:])
    assert (height, width) == (2.0, 2.0)
    assert prepared["tumour"].sum() * height * width == 256


# ---------------------------------------------------------------- 3-D


def test_to_original_puts_the_map_back_into_its_box():
    prepared = np.arange(4, dtype=float).reshape(2, 2)
    out = to_original(prepared, (slice(2, 6), slice(4, 8)), (8, 10))
    assert out.shape == (8, 10) and out[:2].sum() == 0 and out[:, :4].sum() == 0
    assert out[2:6, 4:8].tolist() == [[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3]]


def test_slices_stack_by_index_and_a_missing_index_separates_lesions():
    spot = _box((6, 6), (2, 3), (2, 3)).astype(np.uint8)
    whole = (slice(0, 6), slice(0, 6))
    # patient a: spots on slices 3 and 4 (adjacent: one 3-D lesion); patient b: on slices 3 and 5 (index 4
    # absent: two lesions)
    vols = patient_volumes(
        np.array(["a", "a", "b", "b"]), np.array([4, 3, 3, 5]), [whole] * 4, [spot] * 4, np.full(4, 1.5)
    )
    assert vols.patients == ["a", "b"] and vols.spacing_mm == [1.5, 1.5]
    assert [v.shape for v in vols.truth] == [(2, 6, 6), (3, 6, 6)]
    assert [components(v)[1] for v in vols.truth] == [1, 2]
    assert [largest_cross_section_px(v).tolist() for v in vols.truth] == [[4], [4, 4]]
    # prepared maps go back to the same places
    stacked = vols.stack(np.stack([spot] * 4).astype(float))
    assert all(np.array_equal(s > 0, t) for s, t in zip(stacked, vols.truth))


def test_match_criteria_is_match_lesions_at_each_cut_and_min_iou():
    rng = np.random.default_rng(3)
    prob = ndimage.gaussian_filter(rng.random((3, 24, 24)), 1.5)
    prob = (prob - prob.min()) / (prob.max() - prob.min())
    truth = ndimage.gaussian_filter(rng.random((3, 24, 24)), 1.5) > 0.52
    criteria = [(0.3, 0.0), (0.5, 0.1), (0.5, 0.0), (0.7, 0.2)]
    matches = match_criteria(prob, truth, criteria)
    assert list(matches) == criteria
    for key, match in matches.items():
        expected = match_lesions(prob >= key[0], truth, key[1])
        assert all(np.array_equal(a, b) for a, b in zip(dataclasses.astuple(match), dataclasses.astuple(expected)))


def _slices_case(order: np.ndarray):
    """Three patients' 20 x 20 slices, 5, 4 and 6 of them, one slice_index missing in the second; prepared
    12 x 12 maps and masks from boxes of 15 or 16 px inside the slices (nearest-neighbour resizing back);
    the images at the positions `order` (a permutation: the patients' images need not be adjacent)."""
    rng = np.random.default_rng(7)
    patients = np.array(["a"] * 5 + ["b"] * 4 + ["c"] * 6)[order]
    slice_index = np.array([3, 4, 5, 6, 7, 10, 11, 13, 14, 0, 1, 2, 3, 4, 5])[order]
    boxes = [(slice(2, 18), slice(3, 18)) if i % 2 else (slice(1, 17), slice(1, 17)) for i in range(15)]
    seg = ndimage.gaussian_filter(rng.random((15, 12, 12)), (0, 1.2, 1.2)).astype(np.float32)
    seg = (seg - seg.min()) / (seg.max() - seg.min())
    truth = ndimage.gaussian_filter(rng.random((15, 12, 12)), (0, 1.2, 1.2)) > 0.55
    tumours = [(ndimage.gaussian_filter(rng.random((20, 20)), 1.5) > 0.53).astype(np.uint8) for _ in range(15)]
    volumes = patient_volumes(patients, slice_index, boxes, tumours, np.full(15, 1.5))
    diameter_3d = np.concatenate([equivalent_diameter_mm(largest_cross_section_px(v), 2.25) for v in volumes.truth])
    inputs = LesionInputs(
        np.arange(15).astype(str), patients, truth, ~truth.any(axis=(1, 2)), np.full((15, 2), 1.5), volumes, diameter_3d
    )
    return seg, rng.random(15), inputs


def test_patient_volumes_are_built_one_at_a_time_as_the_whole_stack_and_read_their_slices_when_asked():
    seg, _, inputs = _slices_case(np.arange(15))
    vols = inputs.volumes
    reads = []
    lazy = patient_volumes(
        inputs.patients,
        np.concatenate([vols.depth_index[k] for k in range(3)]),
        vols.boxes,
        Built(15, lambda i: reads.append(i) or vols.tumours[i]),
        np.full(15, 1.5),
        [(20, 20)] * 15,
    )
    assert reads == []  # nothing read until a volume is built
    assert [v.shape for v in lazy.truth] == [(5, 20, 20), (5, 20, 20), (6, 20, 20)]  # b: 10..14, 12 absent
    assert all(np.array_equal(a, b) for a, b in zip(lazy.truth, vols.truth))
    assert sorted(reads) == sorted(2 * list(range(15)))
    whole = vols.stack(seg)
    by_patient = {int(u): seg[u] for u in range(15)}
    for k in range(3):
        assert np.array_equal(vols.volume(k, by_patient), whole[k]) and whole[k].dtype == np.float32
    assert lazy.truth[-1].shape == (6, 20, 20) and len(lazy.truth[0:2]) == 2
    with pytest.raises(IndexError):
        lazy.truth[3]


@pytest.mark.parametrize("order", [np.arange(15), np.random.default_rng(0).permutation(15)], ids=["grouped", "mixed"])
def test_the_streamed_scan_finds_what_whole_arrays_do(order, tiny_params):
    """scan_maps (a block of maps at a time, one patient's volumes at a time) against detect and froc on the
    whole stack of maps and every patient's volumes at once: the same lesions, false positives and FROC
    points, whatever the blocks and the order of the patients' images; and arch_lesions's metrics alike."""
    seg, prob, test = _slices_case(order)
    params = dataclasses.replace(tiny_params, lesions=dataclasses.replace(tiny_params.lesions, min_iou=0.1))
    cuts, cut = params.lesions.froc_thresholds, params.evaluate.threshold
    vols = test.volumes
    seg_3d, truth_3d = vols.stack(seg), list(vols.truth)
    criteria = [(cut, 0.1), *((c, 0.1) for c in cuts), (cut, 0.0)]
    criteria = list(dict.fromkeys(criteria))
    for rows in (1, 4, 15):
        per_slice, per_patient = scan_maps(RowBlocks.of(seg, rows), test, criteria)
        for c, min_iou in criteria:
            flat = detect(seg >= c, test.truth, test.patients, min_iou)
            deep = detect((v >= c for v in seg_3d), truth_3d, vols.patients, min_iou)
            for streamed, whole in ((per_slice, flat), (per_patient, deep)):
                found = streamed[(c, min_iou)].detection()
                pd.testing.assert_frame_equal(found.lesions, whole.lesions, check_exact=True)
                pd.testing.assert_series_equal(found.fp_by_patient, whole.fp_by_patient, check_exact=True)
    metrics, points, points_3d = arch_lesions(RowBlocks.of(seg, 4), prob, test, params)
    pd.testing.assert_frame_equal(points, froc(seg, test.truth, list(test.patients), cuts, 0.1), check_exact=True)
    pd.testing.assert_frame_equal(points_3d, froc(seg_3d, truth_3d, vols.patients, cuts, 0.1), check_exact=True)
    assert arch_lesions(seg, prob, test, params)[0] == metrics
    assert metrics["per_patient_3d"]["lesions"] > 3 and metrics["per_slice"]["false_positives"] > 0
    with pytest.raises(ValueError, match="14 tumour maps for 15"):
        scan_maps(RowBlocks.of(seg[:14], 4), test, criteria)


# ---------------------------------------------------------------- summaries, report


def test_rank_auc_is_scikit_learns_with_ties():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 200)
    scores = np.round(rng.random(200) + 0.3 * labels, 1)  # many ties
    assert rank_auc(labels, scores) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    assert rank_auc(np.ones(4), np.arange(4)) is None


def _synthetic():
    """Four patients with six 16 x 16 images each: a large lesion, a small one, tumour-free slices."""
    truth = np.zeros((24, 16, 16), bool)
    truth[0, 2:12, 2:12] = True  # large (100 px)
    truth[6, 3:5, 3:5] = True  # small (4 px)
    truth[12, 2:12, 2:12] = True
    truth[13, 6, 6] = True  # 1 px
    seg = np.zeros(truth.shape, np.float32)
    seg[0, 3:11, 3:11] = 0.9  # found
    seg[12, 2:12, 2:12] = 0.7  # found
    seg[18, 0:2, 0:2] = 0.8  # a false positive
    patients = np.repeat(["p0", "p1", "p2", "p3"], 6)
    tumour_free = ~truth.any(axis=(1, 2))
    prob = truth.any(axis=(1, 2)).astype(float) * 0.8 + 0.1
    boxes = [(slice(0, 16), slice(0, 16))] * 24
    volumes = patient_volumes(patients, np.tile(np.arange(6), 4), boxes, list(truth.astype(np.uint8)), np.full(24, 2.0))
    diameter_3d = np.concatenate([equivalent_diameter_mm(largest_cross_section_px(v), 4.0) for v in volumes.truth])
    inputs = LesionInputs(
        np.arange(24).astype(str), patients, truth, tumour_free, np.full((24, 2), 2.0), volumes, diameter_3d
    )
    return seg, prob, inputs


def test_arch_metrics_and_the_report_section(tiny_params):
    seg, prob, inputs = _synthetic()
    metrics, points, points_3d = arch_lesions(seg, prob, inputs, tiny_params)
    flat = metrics["per_slice"]
    assert (flat["lesions"], flat["detected"], flat["false_positives"], flat["patients"]) == (4, 2, 1, 4)
    assert flat["sensitivity"]["value"] == 0.5 and flat["fp_per_patient"]["value"] == 0.25
    # 3-D: p2's one-pixel cross-section lies on the slice next to its large lesion, inside its outline: one
    # lesion, detected (three lesions in all); the false positive is one in 3-D too
    deep = metrics["per_patient_3d"]
    assert (deep["lesions"], deep["detected"], deep["false_positives"]) == (3, 2, 1)
    # pixels of 2 x 2 mm: the 100 px lesions are 22.6 mm (10-30), the 4 px one 4.5 mm, the 1 px one 2.3 mm
    bands = metrics["size_bands"]
    assert [bands[b]["lesions"] for b in bands] == [2, 2, 0]
    assert bands["10-30mm"]["sensitivity"]["value"] == 1.0 and bands["<=10mm"]["sensitivity"]["value"] == 0.0
    assert bands[">30mm"]["sensitivity"]["value"] is None
    # slices: p2's slice 12 holds both a 10-30 and (on slice 13) a small lesion; 20 tumour-free slices
    assert bands["10-30mm"]["slices"] == 2 and bands["<=10mm"]["slices"] == 2
    assert bands["10-30mm"]["tumour_free_slices"] == 20 and bands["10-30mm"]["auc"]["value"] == 1.0
    assert [metrics["size_bands_3d"][b]["lesions"] for b in bands] == [1, 2, 0]
    assert len(points) == len(points_3d) == len(tiny_params.lesions.froc_thresholds)
    lesions = {
        "settings": {
            "threshold": 0.5,
            "min_iou": 0.0,
            "size_bands_mm": [10.0, 30.0],
            "size_bands": band_names((10.0, 30.0)),
            "test": {"pixel_mm_median": 2.0},
        },
        "unet": metrics,
    }
    lines = report_section(tiny_params, lesions)
    text = "\n".join(lines)
    assert lines[0].startswith("## Lesion-level detection")
    assert "| U-Net | 0.500 [" in text and "0.818 (81/99)" in text and "![FROC](../plots/lesions/froc.png)" in text
    assert "| U-Net | >30mm | 0 (0) | – | – |" in text


def test_band_summary_takes_each_slices_largest_lesion():
    lesions = pd.DataFrame(
        {
            "unit": [0, 0, 1],
            "patient_id": ["a", "a", "b"],
            "area_px": [4, 400, 4],
            "detected": [False, True, False],
            "dice": [0.0, 0.8, 0.0],
        }
    )
    found = Detection(lesions, pd.Series({"a": 0, "b": 0}))
    stats = dataclasses.make_dataclass("S", ["n_boot", "seed", "ci_level"])(20, 0, 0.95)
    out = band_summary(
        found,
        np.ones(4),
        np.array([False, False, True, True]),
        np.array(["a", "b", "c", "c"]),
        np.array([0.9, 0.2, 0.1, 0.3]),
        (10.0, 30.0),
        stats,
    )
    # 4 px of 1 mm^2: 2.26 mm; 400 px: 22.6 mm. Slice 0's largest is 10-30, slice 1's <= 10
    assert out["<=10mm"]["lesions"] == 2 and out["10-30mm"]["lesions"] == 1
    assert out["<=10mm"]["slices"] == 1 and out["10-30mm"]["slices"] == 1
    assert out["10-30mm"]["auc"]["value"] == 1.0 and out["<=10mm"]["auc"]["value"] == 0.5


def metrics_dice_of_slice_0(seg, inputs):
    predicted, truth = seg[0] >= 0.5, inputs.truth[0]
    return 2 * (predicted & truth).sum() / (predicted.sum() + truth.sum())


def test_a_stricter_localisation_criterion_reports_any_overlap_beside_it(tiny_params):
    seg, prob, inputs = _synthetic()
    seg[12] = 0.0
    seg[12, 2:4, 2:4] = 0.7  # 4 px on p2's 100 px lesion: touches it, IoU 0.04
    strict = dataclasses.replace(tiny_params, lesions=dataclasses.replace(tiny_params.lesions, min_iou=0.1))
    metrics, _, _ = arch_lesions(seg, prob, inputs, strict)
    assert (metrics["per_slice"]["detected"], metrics["per_slice"]["lesions"]) == (1, 4)
    # the touching piece localises nothing: a miss (Dice 0) and a false positive (p2's slice)
    assert metrics["per_slice"]["false_positives"] == 2
    assert metrics["per_slice"]["dice"]["value"] == pytest.approx(metrics_dice_of_slice_0(seg, inputs) / 4)
    lenient = metrics["any_overlap"]["per_slice"]
    assert (lenient["detected"], lenient["lesions"]) == (2, 4) and lenient["sensitivity"]["value"] == 0.5
    assert metrics["any_overlap"]["per_patient_3d"]["detected"] == 2
    assert metrics["per_patient_3d"]["detected"] == 1
    assert "any_overlap" not in arch_lesions(seg, prob, inputs, tiny_params)[0]  # min_iou 0: one criterion
    lesions = {
        "settings": {
            "threshold": 0.5,
            "min_iou": 0.1,
            "size_bands_mm": [10.0, 30.0],
            "size_bands": band_names((10.0, 30.0)),
            "test": {"pixel_mm_median": 2.0},
        },
        "unet": metrics,
    }
    text = "\n".join(report_section(strict, lesions))
    assert "IoU >= 0.1 with it (the stated localisation criterion" in text
    assert "| 0.500 (2/4) / 0.667 (2/3) |" in text
    assert "changes the per-slice detections (of 4 lesions): U-Net 2 -> 1" in text
