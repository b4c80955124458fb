"""The metrics/ summaries of evaluation (crlm.evaluation.summary): cross-validation over folds, the test set
with its bootstrap CIs, segmentation; values computed by hand."""

import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from crlm.evaluation.summary import classification_summary, segmentation_summary
from crlm.params import params_from_dict
from crlm.stats.proportion import korn_graubard
from tests.conftest import tiny_params_dict

CI_KEYS = ["value", "ci_low", "ci_high", "ci_level", "n_boot_valid"]


@pytest.fixture
def params():
    return params_from_dict(tiny_params_dict(evaluate={"threshold": 0.5}, stats={"n_boot": 50}))


def _rows(subset, fold, labels, probs, patients=None):
    return pd.DataFrame(
        {
            "patient_id": patients or [f"{subset}{fold}-{i}" for i in range(len(labels))],
            "label": labels,
            "prob": probs,
            "tumour_area_px": [100 * y for y in labels],
            "subset": subset,
            "fold": fold,
        }
    )


def _frame(*parts):
    frame = pd.concat(parts, ignore_index=True)
    frame["pred"] = (frame["prob"] >= 0.5).astype(int)
    return frame


TEST = _rows("test", "ensemble", [1, 0, 0], [0.8, 0.6, 0.3], ["t1", "t1", "t2"])


def test_the_cv_summary_is_the_mean_and_sd_over_folds_with_the_defined_folds_counted(params):
    frame = _frame(
        _rows("cv", "0", [1, 1, 0, 0], [0.9, 0.6, 0.4, 0.7]),  # accuracy 3/4, AUC 3/4, precision 2/3, recall 1
        _rows("cv", "1", [1, 0], [0.8, 0.2]),  # accuracy 1, AUC 1, precision 1, recall 1
        _rows("cv", "2", [0, 0], [0.1, 0.6]),  # accuracy 1/2, one class: no AUC, recall; precision 0
        TEST,
    )
    cv = classification_summary(frame, params)["cv"]
    assert cv["accuracy"] == {"mean": 0.75, "sd": 0.25, "folds": 3}
    assert cv["auc"] == {"mean": 0.875, "sd": 0.1768, "folds": 2}  # sd of 0.75, 1: 0.125 * sqrt(2)
    assert cv["precision"] == {"mean": 0.5556, "sd": 0.5092, "folds": 3}  # 2/3, 1, 0: sd sqrt(21) / 9
    assert cv["recall"] == {"mean": 1.0, "sd": 0.0, "folds": 2}


def test_the_out_of_fold_auc_pools_every_folds_validation_images_with_a_patient_bootstrap_ci(params):
    folds = [
        _rows("cv", "0", [1, 1, 0, 0], [0.9, 0.6, 0.4, 0.7], ["a", "a", "b", "b"]),
        _rows("cv", "1", [1, 0], [0.8, 0.2], ["c", "d"]),
        _rows("cv", "2", [0, 0], [0.1, 0.6], ["e", "e"]),
    ]
    oof = classification_summary(_frame(*folds, TEST), params)["cv"]["out_of_fold"]
    pooled = pd.concat(folds)
    # positives 0.9, 0.6, 0.8 against negatives 0.4, 0.7, 0.2, 0.1, 0.6: 13.5 of 15 pairs (0.6 ties 0.6)
    assert roc_auc_score(pooled["label"], pooled["prob"]) == pytest.approx(13.5 / 15)
    assert oof["auc"]["value"] == round(13.5 / 15, 4) and (oof["images"], oof["patients"]) == (8, 5)
    assert oof["auc"]["ci_low"] <= oof["auc"]["value"] <= oof["auc"]["ci_high"]
    assert list(oof["auc"]) == CI_KEYS and oof["auc"]["n_boot_valid"] <= 50


def test_one_fold_has_no_sd(params):
    cv = classification_summary(_frame(_rows("cv", "0", [1, 0], [0.8, 0.3]), TEST), params)["cv"]
    assert cv["accuracy"] == {"mean": 1.0, "sd": None, "folds": 1}


def test_the_test_summary_has_bootstrap_cis_rounded_to_4_digits_and_a_rounded_report(params):
    summary = classification_summary(_frame(_rows("cv", "0", [1, 0], [0.8, 0.3]), TEST), params)
    test = summary["test"]
    assert (test["images"], test["patients"], test["prevalence"]) == (3, 2, 0.3333)
    assert list(test["auc"]) == CI_KEYS
    assert list(test["accuracy"]) == [*CI_KEYS, "effective_n", "design_effect", "ci_method"]
    assert test["accuracy"]["value"] == 0.6667 and test["precision"]["value"] == 0.5
    assert test["auc"]["value"] == 1.0 and test["accuracy"]["ci_level"] == 0.95
    assert test["accuracy"]["ci_low"] <= test["accuracy"]["value"] <= test["accuracy"]["ci_high"]
    assert isinstance(test["f1"]["n_boot_valid"], int) and 0 < test["f1"]["n_boot_valid"] <= 50
    assert "undefined" not in test
    report = summary["classification_report"]
    assert report["metastasis"] == {"precision": 0.5, "recall": 1.0, "f1-score": 0.6667, "support": 1}
    assert report["no metastasis"] == {"precision": 1.0, "recall": 0.5, "f1-score": 0.6667, "support": 2}


def test_a_test_set_of_one_class_reports_what_is_undefined(params):
    test_rows = _rows("test", "ensemble", [0, 0], [0.2, 0.7], ["t1", "t2"])
    test = classification_summary(_frame(_rows("cv", "0", [1, 0], [0.8, 0.3]), test_rows), params)["test"]
    assert test["auc"]["value"] is None and test["auc"]["ci_low"] is None and test["recall"]["value"] is None
    assert set(test["undefined"]) == {"auc", "recall"} and test["f1"]["value"] == 0.0  # one false positive
    assert "only one class (no metastasis)" in test["undefined"]["auc"]
    assert test["precision"]["value"] == 0.0 and test["accuracy"]["value"] == 0.5


def _segmentation_frame():
    def rows(subset, fold, patients, areas, iou, dice, iou_crf):
        return pd.DataFrame(
            {
                "subset": subset,
                "fold": fold,
                "patient_id": patients,
                "tumour_area_px": areas,
                "iou": iou,
                "dice": dice,
                "iou_crf": iou_crf,
                "dice_crf": dice,
            }
        )

    return pd.concat(
        [
            rows("cv", "0", ["a", "a", "b"], [50, 80, 0], [0.5, 0.7, 1.0], [0.6, 0.8, 1.0], [0.6, 0.8, 1.0]),
            rows("cv", "1", ["c", "c", "d"], [60, 0, 0], [0.9, 0.0, 1.0], [1.0, 0.0, 1.0], [0.9, 1.0, 1.0]),
            rows(
                "test", "ensemble", ["t1", "t1", "t2"], [40, 70, 90], [0.4, 0.6, 0.8], [0.5, 0.7, 0.9], [0.5, 0.7, 0.9]
            ),
        ],
        ignore_index=True,
    )


def test_the_segmentation_summary_scores_tumour_images_and_counts_clean_tumour_free_ones(params):
    summary = segmentation_summary(_segmentation_frame(), params)
    cv, test = summary["cv"], summary["test"]
    assert cv["tumour_images"] == 3
    assert cv["tumour_free_images_predicted_clean"] == 0.6667  # 2 of the 3 tumour-free images
    assert cv["iou"] == {"mean": 0.7, "fold_sd": 0.2121}  # fold means 0.6, 0.9
    assert cv["dice"] == {"mean": 0.8, "fold_sd": 0.2121}  # fold means 0.7, 1.0
    assert test["tumour_images"] == 3 and test["tumour_free_images_predicted_clean"] is None
    assert list(test["iou"]) == CI_KEYS and test["iou"]["value"] == 0.6 and test["dice"]["value"] == 0.7
    assert test["iou"]["ci_low"] <= 0.6 <= test["iou"]["ci_high"]


def test_the_crf_summary_reads_the_crf_columns(params):
    summary = segmentation_summary(_segmentation_frame(), params, suffix="_crf")
    assert summary["cv"]["iou"] == {"mean": 0.7667, "fold_sd": 0.1414}  # fold means 0.7, 0.9 (without: 0.6, 0.9)
    assert summary["cv"]["tumour_free_images_predicted_clean"] == 1.0
    assert summary["test"]["iou"]["value"] == 0.7


def test_one_cv_fold_has_no_fold_sd(params):
    frame = _segmentation_frame()
    summary = segmentation_summary(frame[frame["fold"] != "1"], params)
    assert summary["cv"]["iou"] == {"mean": 0.6, "fold_sd": None}


def test_the_test_auc_under_each_reading_of_the_ambiguous_slices(params):
    # t1: a metastasis (0.9) and an ambiguous slice (tumour below min_tumor_px, labelled 0; 0.7); t2, t3:
    # tumour-free slices (0.8, 0.2) and a metastasis (0.6)
    test = pd.DataFrame(
        {
            "patient_id": ["t1", "t1", "t2", "t2", "t3"],
            "label": [1, 0, 0, 0, 1],
            "prob": [0.9, 0.7, 0.8, 0.2, 0.6],
            "tumour_area_px": [100, 5, 0, 0, 80],
            "subset": "test",
            "fold": "ensemble",
        }
    )
    summary = classification_summary(_frame(_rows("cv", "0", [1, 0], [0.8, 0.3]), test), params)["test"]
    labels, probs = test["label"].to_numpy(), test["prob"].to_numpy()
    kept = test["tumour_area_px"].to_numpy() == 0
    kept |= labels == 1
    assert summary["auc"]["value"] == round(roc_auc_score(labels, probs), 4)  # 4/6
    assert summary["auc_without_ambiguous"]["value"] == round(roc_auc_score(labels[kept], probs[kept]), 4)
    any_tumour = (test["tumour_area_px"] > 0).astype(int)
    assert summary["auc_any_tumour"]["value"] == round(roc_auc_score(any_tumour, probs), 4)  # 4/6
    assert summary["auc_without_ambiguous"]["value"] == 0.75
    assert summary["target_condition"] == f"tumour >= {params.slices.min_tumor_px} px"


def test_the_proportions_get_the_exact_clustered_interval_of_their_own_images(params):
    test = _rows(
        "test", "ensemble", [1, 1, 1, 0, 1, 0], [0.9, 0.8, 0.7, 0.2, 0.6, 0.7], ["t1", "t1", "t2", "t2", "t3", "t4"]
    )
    summary = classification_summary(_frame(_rows("cv", "0", [1, 0], [0.8, 0.3]), test), params)["test"]
    # recall: the 4 metastasis images of t1, t2, t3, all called; accuracy: all 6 images, 5 right
    assert summary["recall"] == {
        k: round(v, 4) if isinstance(v, float) else v
        for k, v in korn_graubard([1, 1, 1, 1], ["t1", "t1", "t2", "t3"]).items()
    }
    assert summary["recall"]["value"] == 1.0 and summary["recall"]["ci_high"] == 1.0
    expected = korn_graubard([1, 1, 1, 1, 1, 0], ["t1", "t1", "t2", "t2", "t3", "t4"])
    assert summary["accuracy"]["ci_low"] == round(expected["ci_low"], 4) and summary["accuracy"]["value"] == 0.8333
    assert "Korn-Graubard" in summary["precision"]["ci_method"]
    assert "ci_method" not in summary["f1"] and "ci_method" not in summary["auc"]  # a patient bootstrap
