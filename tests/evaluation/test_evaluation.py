"""Classification and segmentation metrics, the patient bootstrap, the CRF."""

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score

from crlm.data.splits import SplitError, Splits
from crlm.evaluation.bootstrap import patient_bootstrap
from crlm.evaluation.classification import classification_metrics
from crlm.evaluation.segmentation import dice_per_image, iou_per_image
from crlm.models.crf import crf_refine
from crlm.params import params_from_dict
from tests.conftest import tiny_params_dict


def test_classification_metrics_match_scikit_learn():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, 200)
    probs = np.clip(labels * 0.3 + rng.uniform(0, 0.7, 200), 0, 1)
    m = classification_metrics(labels, probs, 0.5)
    pred = probs >= 0.5
    assert m["accuracy"] == pytest.approx(accuracy_score(labels, pred))
    assert m["precision"] == pytest.approx(precision_score(labels, pred))
    assert m["recall"] == pytest.approx(recall_score(labels, pred))
    assert m["f1"] == pytest.approx(f1_score(labels, pred))
    assert m["auc"] == pytest.approx(roc_auc_score(labels, probs))
    assert m["undefined"] == {}


def test_one_class_gives_an_undefined_auc_with_the_reason():
    m = classification_metrics(np.ones(5), np.array([0.9, 0.8, 0.2, 0.7, 0.6]))
    assert m["auc"] is None
    assert "only one class (metastasis)" in m["undefined"]["auc"]
    assert m["recall"] == pytest.approx(0.8)
    m = classification_metrics(np.zeros(4), np.array([0.1, 0.2, 0.3, 0.4]))
    assert m["precision"] is None and m["recall"] is None and m["accuracy"] == 1.0
    assert set(m["undefined"]) == {"precision", "recall", "f1", "auc"}


def test_nan_probabilities_are_refused():
    with pytest.raises(ValueError, match="NaN"):
        classification_metrics(np.array([0, 1]), np.array([0.2, np.nan]))


def test_iou_and_dice_on_known_masks_and_empty_masks():
    truth = np.zeros((3, 4, 4), bool)
    pred = np.zeros((3, 4, 4), bool)
    truth[0, :2, :2] = True  # 4 px
    pred[0, :2, :3] = True  # 6 px, 4 shared -> IoU 4/6, Dice 8/10
    pred[1, 0, 0] = True  # truth empty, prediction made -> 0
    np.testing.assert_allclose(iou_per_image(pred, truth), [4 / 6, 0.0, 1.0])  # both empty -> 1
    np.testing.assert_allclose(dice_per_image(pred, truth), [0.8, 0.0, 1.0])
    with pytest.raises(ValueError, match="differ in shape"):
        iou_per_image(pred[:, :3], truth)


def _mean_metric(values):
    return lambda idx: float(values[idx].mean())


def test_patient_bootstrap_contains_its_estimate_and_narrows_with_more_patients():
    rng = np.random.default_rng(0)

    def ci_width(n_patients):
        patients = np.repeat(np.arange(n_patients), 4)
        values = rng.normal(0, 1, n_patients)[patients] + rng.normal(0, 0.5, len(patients))
        ci = patient_bootstrap(_mean_metric(values), patients, n_boot=500, seed=1)
        assert ci.ci_low <= ci.value <= ci.ci_high
        assert ci.value == pytest.approx(values.mean())
        return ci.ci_high - ci.ci_low

    small, large = ci_width(10), ci_width(160)
    assert large < small / 2.5  # width shrinks like 1/sqrt(n): 4x fewer -> about 4x narrower


def test_patient_bootstrap_resamples_patients_not_images():
    """All images of a patient share one value: an image bootstrap would be far too narrow."""
    patients = np.repeat(np.arange(8), 50)
    values = np.repeat(np.arange(8, dtype=float), 50)
    ci = patient_bootstrap(_mean_metric(values), patients, n_boot=400, seed=0)
    # the SD of a mean of 8 patients drawn from 0..7 is about 0.8; image resampling would give ~0.1
    assert ci.ci_high - ci.ci_low > 2.0


def test_bootstrap_skips_undefined_resamples_and_counts_them():
    labels = np.array([0, 0, 1, 1])
    probs = np.array([0.1, 0.4, 0.6, 0.9])
    patients = np.array(["a", "a", "b", "b"])  # every resample of one patient has one class
    ci = patient_bootstrap(
        lambda idx: classification_metrics(labels[idx], probs[idx])["auc"], patients, n_boot=200, seed=0
    )
    assert ci.value == 1.0
    assert 0 < ci.n_boot_valid < 200


def test_crf_keeps_or_improves_the_iou_of_a_noisy_mask(tiny_params):
    params = tiny_params
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:48, :48]
    truth = (yy - 24) ** 2 + (xx - 20) ** 2 <= 100
    image = np.where(truth, 0.25, 0.6) + rng.normal(0, 0.03, truth.shape)
    prob = np.where(truth, 0.7, 0.3) + rng.normal(0, 0.25, truth.shape)
    prob = np.clip(prob, 0.01, 0.99)
    noisy_iou = iou_per_image((prob >= 0.5)[None], truth[None])[0]
    refined = crf_refine(image, prob, params.crf)
    crf_iou = iou_per_image((refined >= 0.5)[None], truth[None])[0]
    assert noisy_iou < 0.8
    assert crf_iou >= noisy_iou
    assert crf_iou > 0.9


def test_a_folds_patients_and_an_unknown_fold():
    splits = {"test": ["t"], "folds": [{"train": ["a", "b"], "val": ["c"]}, {"train": ["a", "c"], "val": ["b"]}]}
    fold = Splits.from_dict(splits).fold("1")
    assert (list(fold.train), list(fold.val)) == (["a", "c"], ["b"])
    for unknown in ("2", "final"):
        with pytest.raises(SplitError, match="folds 0..1"):
            Splits.from_dict(splits).fold(unknown)


def test_the_test_set_is_predicted_by_the_mean_of_the_fold_models(tmp_path):
    from crlm.models.folds import ensemble_predictions

    ids = np.array(["p1-s000", "p1-s001", "p2-s000"])
    probs = [np.array([0.2, 0.9, 0.4]), np.array([0.4, 0.7, 0.8])]
    maps = [np.full((3, 2, 2), 0.25, np.float16), np.full((3, 2, 2), 0.75, np.float16)]
    for k, (prob, seg) in enumerate(zip(probs, maps)):
        np.savez(tmp_path / f"{k}.npz", image_id=ids, prob=prob, seg_prob=seg)
    image_ids, prob, seg = ensemble_predictions([tmp_path / "0.npz", tmp_path / "1.npz"])
    np.testing.assert_array_equal(image_ids, ids)
    np.testing.assert_allclose(prob, [0.3, 0.8, 0.6])
    np.testing.assert_allclose(seg, 0.5)
    np.savez(tmp_path / "other.npz", image_id=ids[::-1], prob=probs[0], seg_prob=maps[0])
    with pytest.raises(ValueError, match="other.npz: predicts other images"):
        ensemble_predictions([tmp_path / "0.npz", tmp_path / "other.npz"])


def test_the_test_summary_scores_each_group_of_images_on_its_own():
    """Metastasis, ambiguous (a tumour below slices.min_tumor_px, label 0) and tumour-free test images."""
    import pandas as pd

    from crlm.evaluation.summary import classification_summary

    params = params_from_dict(tiny_params_dict(evaluate={"threshold": 0.5}))
    test = pd.DataFrame(
        {
            "patient_id": ["t1", "t1", "t2", "t2", "t3", "t1", "t2", "t3"],
            "label": [1, 1, 1, 0, 0, 0, 0, 0],
            "tumour_area_px": [100, 60, 80, 10, 2, 0, 0, 0],
            "prob": [0.9, 0.4, 0.8, 0.6, 0.2, 0.1, 0.3, 0.7],
        }
    ).assign(subset="test", fold="ensemble")
    cv = pd.DataFrame(
        {
            "patient_id": ["v1", "v2"],
            "label": [1, 0],
            "tumour_area_px": [90, 0],
            "prob": [0.8, 0.3],
            "subset": "cv",
            "fold": "0",
        }
    )
    frame = pd.concat([cv, test], ignore_index=True)
    frame["pred"] = (frame["prob"] >= 0.5).astype(int)
    summary = classification_summary(frame, params)["test"]
    assert summary["images"] == 8 and summary["patients"] == 3 and summary["prevalence"] == 0.375
    assert summary["accuracy"]["value"] == pytest.approx(5 / 8)  # the ambiguous slices count as label 0
    assert summary["groups"] == {
        "metastasis": {"images": 3, "patients": 2, "mean_prob": 0.7, "called_metastasis": 0.6667},
        "ambiguous": {"images": 2, "patients": 2, "mean_prob": 0.4, "called_metastasis": 0.5},
        "tumour_free": {"images": 3, "patients": 3, "mean_prob": 0.3667, "called_metastasis": 0.3333},
    }
