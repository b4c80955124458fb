"""crlm.evaluation.predictions and crlm.evaluation.run, on made-up fold predictions: the prediction table's
rows, columns and values, the CRF columns, and every arch's evaluation as the evaluate stage writes it."""

import numpy as np
import pandas as pd
import pytest

from crlm.archs import ARCHS
from crlm.data.dataset import ImageSet
from crlm.evaluation import predictions
from crlm.evaluation.run import evaluate_archs, overlay_rows
from crlm.models.folds import FoldModels
from crlm.params import params_from_dict
from tests.conftest import tiny_params_dict

SIZE = 8
# image_id -> (patient, subset: "cv<fold>" or "test", label, tumour side in px)
IMAGES = {
    "a-s000": ("a", "cv0", 1, 4),
    "a-s001": ("a", "cv0", 0, 0),
    "b-s000": ("b", "cv1", 1, 3),
    "b-s001": ("b", "cv1", 0, 0),
    "t-s000": ("t", "test", 1, 4),
    "t-s001": ("t", "test", 0, 0),
    "u-s000": ("u", "test", 1, 2),
}


@pytest.fixture
def data():
    ids = list(IMAGES)
    tumour = np.zeros((len(ids), SIZE, SIZE), np.uint8)
    for k, (_, _, _, side) in enumerate(IMAGES.values()):
        tumour[k, :side, :side] = 1
    manifest = pd.DataFrame(
        {
            "image_id": ids,
            "patient_id": [v[0] for v in IMAGES.values()],
            "label": [v[2] for v in IMAGES.values()],
            "tumour_area_px": [int(t.sum()) for t in tumour],
        }
    )
    images = np.random.default_rng(0).random((len(ids), SIZE, SIZE)).astype(np.float32)
    return ImageSet(manifest, images, tumour)


def _write_folds(model_dir, arch, data, segments=True):
    """Fold k predicts its validation images (listed in reverse manifest order) and the test images."""

    def save(path, ids, offset):
        rows = data.manifest.set_index("image_id").loc[ids]
        prob = np.where(rows["label"] == 1, 0.7 + offset, 0.3 - offset)
        arrays = {"image_id": np.array(ids), "prob": prob}
        if segments:
            idx = [list(IMAGES).index(i) for i in ids]
            arrays["seg_prob"] = (data.tumour[idx] * (0.6 + offset)).astype(np.float16)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, **arrays)

    test = [i for i, v in IMAGES.items() if v[1] == "test"]
    for fold in ("0", "1"):
        val = [i for i, v in IMAGES.items() if v[1] == f"cv{fold}"][::-1]
        save(model_dir / arch / fold / "predictions.npz", val, 0.1 * int(fold))
        save(model_dir / arch / fold / "test_predictions.npz", test, 0.1 * int(fold))


def _sources(model_dir, arch):
    return predictions.fold_sources(FoldModels.of(arch, ["0", "1"], model_dir))


def test_threshold_and_overlap_columns():
    assert predictions.threshold(np.array([0.49, 0.5, 0.9]), 0.5).tolist() == [False, True, True]
    mask = np.array([[[1, 1], [0, 0]]], bool)
    truth = np.array([[[1, 0], [0, 0]]], bool)
    columns = predictions.overlap_columns(mask, truth, suffix="_crf")
    assert list(columns) == ["iou_crf", "dice_crf"]
    assert columns["iou_crf"].tolist() == [0.5] and columns["dice_crf"].tolist() == pytest.approx([2 / 3])


def test_manifest_rows_follow_the_given_image_order(data):
    rows, frame = predictions.manifest_rows(data, np.array(["b-s001", "a-s000"]))
    assert rows.tolist() == [3, 0]
    assert list(frame.columns) == predictions.MANIFEST_COLUMNS and frame["image_id"].tolist() == ["b-s001", "a-s000"]


def test_the_prediction_table_has_cv_rows_per_fold_then_the_ensembles_test_rows(tmp_path, data, tiny_params):
    _write_folds(tmp_path, "unet", data)
    cfg = tiny_params.crf
    table, masks = predictions.prediction_frame("unet", _sources(tmp_path, "unet"), data, 0.5, cfg, refine=False)
    assert list(table.columns) == [*predictions.MANIFEST_COLUMNS, "subset", "fold", "prob", "pred", "iou", "dice"]
    assert table["image_id"].tolist() == ["a-s001", "a-s000", "b-s001", "b-s000", "t-s000", "t-s001", "u-s000"]
    assert table["fold"].tolist() == ["0", "0", "1", "1", "ensemble", "ensemble", "ensemble"]
    test = table[table["subset"] == "test"]
    np.testing.assert_allclose(test["prob"], [0.75, 0.25, 0.75])  # the mean of the two folds
    assert table["pred"].tolist() == table["label"].tolist()
    assert table["iou"].tolist() == [1.0] * 7  # maps >= 0.5 exactly on the tumour
    # the masks of the test images, in the test rows' order (those at the positions `keep`, when given)
    assert list(masks) == ["mask"] and masks["mask"].shape == (3, SIZE, SIZE)
    np.testing.assert_array_equal(masks["mask"][0], data.tumour[4].astype(bool))
    _, kept = predictions.prediction_frame("unet", _sources(tmp_path, "unet"), data, 0.5, cfg, False, keep=[2, 0])
    np.testing.assert_array_equal(kept["mask"], masks["mask"][[2, 0]])

    refined, refined_masks = predictions.prediction_frame(
        "unet", _sources(tmp_path, "unet"), data, 0.5, cfg, refine=True
    )
    assert list(refined.columns)[-2:] == ["iou_crf", "dice_crf"] and list(refined_masks) == ["mask", "mask_crf"]
    pd.testing.assert_frame_equal(refined.iloc[:, :-2], table)
    assert refined_masks["mask_crf"].shape == (3, SIZE, SIZE) and refined_masks["mask_crf"].dtype == bool


def test_an_arch_without_a_mask_head_gets_no_overlap_columns(tmp_path, data):
    _write_folds(tmp_path, "vgg16", data, segments=False)
    table, masks = predictions.prediction_frame("vgg16", _sources(tmp_path, "vgg16"), data, 0.5, None, refine=False)
    assert list(table.columns)[-2:] == ["prob", "pred"] and masks == {}


def _evaluate_every_arch(tmp_path, data, candidate: str, crf: bool):
    for arch, spec in ARCHS.items():
        _write_folds(tmp_path, arch, data, segments=spec.segments)
    params = params_from_dict(tiny_params_dict(model={"arch": candidate}, crf={"enabled": crf}, stats={"n_boot": 20}))
    return evaluate_archs(params, data, ["0", "1"], tmp_path, tmp_path / "predictions")


def test_every_arch_is_evaluated_with_the_candidate_keys_last(tmp_path, data):
    result = _evaluate_every_arch(tmp_path, data, "clmnet", crf=True)
    crf_names = [s.crf_name for s in ARCHS.values() if s.crf]
    segmenting = [a for a, s in ARCHS.items() if s.segments]
    masks = [name for a in segmenting for name in ([a, ARCHS[a].crf_name] if ARCHS[a].crf else [a])]
    assert list(result.classification) == ["candidate", *ARCHS, "candidate_test_auc"]
    assert list(result.segmentation) == ["candidate", *masks, "candidate_test_iou"]
    assert result.classification["candidate_test_auc"] == result.classification["clmnet"]["test"]["auc"]["value"]
    assert "classification_report" not in result.classification["unet"]
    assert set(result.reports) == set(ARCHS) == set(result.curves) == set(result.frames)
    ensembles = {a: predictions.read_ensemble(predictions.ensemble_file(tmp_path / "predictions", a)) for a in ARCHS}
    assert all((ensembles[a].seg is None) != (a in segmenting) for a in ARCHS)
    assert set(result.test_masks) == {*segmenting, *crf_names}
    assert result.test["image_id"].tolist() == ["t-s000", "t-s001", "u-s000"]
    chosen, rows = overlay_rows(result.test, data.manifest, 5)
    assert chosen.tolist() == [0, 2] and rows.tolist() == [4, 6]  # the largest tumour of each patient
    assert [r.tolist() for r in result.overlay] == [[0, 2], [4, 6]]
    assert all(m.shape == (2, SIZE, SIZE) for m in result.test_masks.values())  # the overlay's images only
    np.testing.assert_array_equal(result.test_masks["unet"], ensembles["unet"].seg[[0, 2]] >= 0.5)


def test_a_candidate_that_does_not_segment_gets_no_candidate_iou(tmp_path, data):
    result = _evaluate_every_arch(tmp_path, data, "vgg16", crf=False)
    assert "candidate_test_iou" not in result.segmentation and result.segmentation["candidate"] == "vgg16"
    assert not any(name.endswith("+crf") for name in result.segmentation)


def test_the_fold_ensemble_is_the_mean_of_two_fold_files_and_evaluate_writes_it_losslessly(tmp_path):
    """Two tiny fold files saved as the train stage saves them (FoldModels.save_predictions: prob float32,
    seg_prob float16): the ensemble is their hand-computed mean (prob in float64, maps in float32), the very
    arrays test_ensemble.npz then holds, bit for bit."""
    models = FoldModels.of("unet", ["0", "1"], tmp_path / "models")
    ids = np.array(["t-s000", "t-s001"])
    probs = [np.array([0.2, 0.9], np.float32), np.array([0.5, 0.4], np.float32)]
    maps = [np.array([[[0.1, 0.7]], [[1.0, 0.0]]], np.float32), np.array([[[0.3, 0.2]], [[0.5, 0.25]]], np.float32)]
    for fold, prob, seg in zip(models.folds, probs, maps):
        models.save_predictions(fold, True, ids, prob, seg)
    assert models.test_predictions_path("1") == tmp_path / "models" / "unet" / "1" / "test_predictions.npz"
    with np.load(models.test_predictions_path("0")) as saved:
        assert saved["prob"].dtype == np.float32 and saved["seg_prob"].dtype == np.float16

    ensemble = models.test_ensemble()
    hand_prob = (probs[0].astype(np.float64) + probs[1].astype(np.float64)) / 2
    hand_seg = (maps[0].astype(np.float16).astype(np.float32) + maps[1].astype(np.float16).astype(np.float32)) / 2
    np.testing.assert_array_equal(ensemble.image_ids, ids)
    assert ensemble.prob.dtype == np.float64 and ensemble.seg.dtype == np.float32
    np.testing.assert_array_equal(ensemble.prob, hand_prob)
    np.testing.assert_array_equal(ensemble.seg, hand_seg)

    path = predictions.ensemble_file(tmp_path / "predictions", "unet")
    assert path == tmp_path / "predictions" / "unet" / "test_ensemble.npz"
    predictions.write_ensemble(path, ensemble)
    read = predictions.read_ensemble(path)
    np.testing.assert_array_equal(read.image_ids, ids)
    assert read.prob.dtype == np.float64 and read.seg.dtype == np.float32
    assert read.prob.tobytes() == ensemble.prob.tobytes() and read.seg.tobytes() == ensemble.seg.tobytes()


def test_evaluate_keeps_each_archs_ensemble_as_its_test_rows_scored_it(tmp_path, data):
    _write_folds(tmp_path, "unet", data)
    sources = _sources(tmp_path, "unet")
    table, _ = predictions.prediction_frame("unet", sources, data, 0.5, None, refine=False)
    ensemble = sources[-1]
    assert (ensemble.subset, ensemble.fold) == ("test", predictions.ENSEMBLE)
    test = table[table["subset"] == "test"]
    np.testing.assert_array_equal(test["prob"].to_numpy(), ensemble.prob)
    np.testing.assert_array_equal(test["image_id"].to_numpy(), ensemble.image_ids)
    # without its tumour maps (a classifier), the file holds none
    _write_folds(tmp_path, "vgg16", data, segments=False)
    path = tmp_path / "vgg16.npz"
    predictions.write_ensemble(path, _sources(tmp_path, "vgg16")[-1])
    assert predictions.read_ensemble(path).seg is None


def test_the_fold_models_of_a_folder_in_fold_order(tmp_path):
    for fold in ("10", "2", "0", "x"):
        (tmp_path / "unet" / fold).mkdir(parents=True)
        (tmp_path / "unet" / fold / "model.pt").write_bytes(b"")
    (tmp_path / "unet" / "3").mkdir()  # no model: not a fold
    found = FoldModels.found(tmp_path / "unet")
    assert (found.arch, found.folds, found.models_dir) == ("unet", ("0", "2", "10", "x"), tmp_path)
    assert found.model_paths()[1] == tmp_path / "unet" / "2" / "model.pt"
    assert FoldModels.found(tmp_path / "vgg16").folds == ()


def test_fold_files_written_batch_by_batch_and_their_ensemble_averaged_block_by_block(tmp_path, monkeypatch):
    """The train stage writes a fold's maps as the model predicts them, a batch at a time: the file holds
    the same arrays as one written whole. The ensemble averaged a block of images at a time is the mean of
    the whole stacks, bit for bit (each pixel's mean is over the folds alone)."""
    from crlm.core import arrays

    rng = np.random.default_rng(7)
    folds = [str(k) for k in range(5)]
    whole = FoldModels.of("unet", folds, tmp_path / "whole")
    batched = FoldModels.of("unet", folds, tmp_path / "batched")
    ids = np.array([f"t-s{i:03d}" for i in range(23)])
    probs = [rng.random(23).astype(np.float32) for _ in folds]
    maps = [rng.random((23, 6, 5)).astype(np.float32) for _ in folds]
    for fold, prob, seg in zip(folds, probs, maps):
        whole.save_predictions(fold, True, ids, prob, seg)
        cuts = [0, 4, 9, 23]
        batches = [(prob[a:b], seg[a:b]) for a, b in zip(cuts, cuts[1:])]
        batched.write_predictions(fold, True, ids, batches, seg.shape[1:])
        assert batched.test_predictions_path(fold).read_bytes() == whole.test_predictions_path(fold).read_bytes()

    monkeypatch.setattr(arrays, "ROWS", 4)  # blocks of 4 images
    streamed = whole.streamed_test_ensemble()
    assert [len(block) for block in streamed.seg] == [4, 4, 4, 4, 4, 3]
    full = np.mean([seg.astype(np.float16).astype(np.float32) for seg in maps], axis=0)
    assert streamed.seg.gather().tobytes() == full.tobytes()
    assert whole.test_ensemble().seg.tobytes() == full.tobytes()
    np.testing.assert_array_equal(streamed.prob, np.mean([p.astype(np.float64) for p in probs], axis=0))
