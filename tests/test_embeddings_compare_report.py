"""embed (vectors from a saved model), compare (paired DeLong, discordant log-rank) and the report text."""

import numpy as np
import pandas as pd
import pytest
import torch

from crlm.comparison import delong_between, discordant_logrank, paired
from crlm.config import params_from_dict
from crlm.data.dataset import ImageSet
from crlm.models import build_model
from crlm.models.model_file import ModelFileError, load_model, save_model
from crlm.report import render
from crlm.stability import spread
from crlm.stats import delong_test
from crlm.survival.embeddings import EmbeddingError, embedding_frame, patient_vectors
from tests.conftest import tiny_params_dict


@pytest.fixture
def params():
    return params_from_dict(tiny_params_dict())


def _images(n=6, size=32):
    rng = np.random.default_rng(0)
    manifest = pd.DataFrame({"image_id": [f"img{i}" for i in range(n)],
                             "patient_id": ["p1", "p1", "p1", "p2", "p2", "p3"][:n], "label": [0, 1] * (n // 2)})
    return ImageSet(manifest, rng.random((n, size, size)).astype(np.float32), np.zeros((n, size, size), np.uint8))


def test_saved_model_gives_1024_d_image_and_patient_vectors(tmp_path, params):
    torch.manual_seed(0)
    model = build_model("clmnet", params.model)
    save_model(tmp_path / "model.pt", "clmnet", params.model, model)
    frame = embedding_frame(load_model(tmp_path / "model.pt"), _images(), 4, "mean")
    images, patients = frame[frame["level"] == "image"], frame[frame["level"] == "patient"]
    columns = [c for c in frame.columns if c.startswith("emb_")]
    assert len(columns) == 1024 and len(images) == 6 and list(patients["patient_id"]) == ["p1", "p2", "p3"]
    assert list(patients["n_images"]) == [3, 2, 1]
    np.testing.assert_allclose(patients[columns].iloc[0], images[columns].iloc[:3].mean(), rtol=1e-5, atol=1e-6)
    ids, matrix = patient_vectors(frame)
    assert matrix.shape == (3, 1024) and list(ids) == ["p1", "p2", "p3"]
    maxed = embedding_frame(load_model(tmp_path / "model.pt"), _images(), 4, "max")
    np.testing.assert_allclose(maxed[maxed["level"] == "patient"][columns].iloc[1],
                               images[columns].iloc[3:5].max(), rtol=1e-5, atol=1e-6)


def test_missing_or_stale_model_files_get_a_clear_error(tmp_path, params):
    with pytest.raises(FileNotFoundError, match="model.pt: not found"):
        load_model(tmp_path / "model.pt")
    torch.save({"arch": "clmnet", "model": {"width": 1.0}, "state_dict": {}}, tmp_path / "old.pt")
    with pytest.raises(ModelFileError, match="old.pt: saved model config does not match"):
        load_model(tmp_path / "old.pt")
    with pytest.raises(EmbeddingError, match="non-finite embedding values for patient"):
        patient_vectors(pd.DataFrame({"level": ["patient"], "patient_id": ["p1"], "emb_0000": [np.nan]}))


def _predictions(prob, labels, patients):
    return pd.DataFrame({"image_id": [f"i{k}" for k in range(len(prob))], "patient_id": patients,
                         "label": labels, "prob": prob})


def test_compare_pairs_predictions_and_refuses_mismatches(params):
    rng = np.random.default_rng(1)
    labels = (rng.random(40) < 0.5).astype(int)
    patients = np.repeat([f"p{k}" for k in range(10)], 4)
    frames = {"clmnet": _predictions(labels + rng.normal(size=40), labels, patients),
              "unet": _predictions(0.3 * labels + rng.normal(size=40), labels, patients)}
    out = delong_between(frames, "clmnet", "unet", "image_id", params.stats)
    direct = delong_test(labels, frames["clmnet"]["prob"], frames["unet"]["prob"])
    assert out["p_value"] == pytest.approx(direct.p_value) and out["diff"] == pytest.approx(direct.diff)
    low, high = out["patient_bootstrap_diff_ci"]
    assert low < out["diff"] < high
    undefined = delong_between({**frames, "unet": frames["unet"].iloc[:0]}, "clmnet", "unet", "image_id",
                               params.stats)
    assert undefined["p_value"] is None and "no predictions from ['unet']" in undefined["reason"]
    frames["unet"] = frames["unet"].iloc[:30]
    with pytest.raises(ValueError, match="predicted different image_ids"):
        paired(frames, "clmnet", "unet", "image_id")
    frames["unet"] = _predictions(np.zeros(40), 1 - labels, patients)
    with pytest.raises(ValueError, match="disagree on the true labels"):
        paired(frames, "clmnet", "unet", "image_id")


def test_discordant_logrank_favours_the_arch_that_is_right_where_they_disagree():
    n = 60
    months = np.r_[np.full(20, 5.0), np.full(20, 50.0), np.linspace(10, 40, 20)]
    died = np.r_[np.ones(20), np.zeros(20), np.ones(20)]
    truth_group = np.r_[["high"] * 20, ["low"] * 20, ["low"] * 20]
    wrong_group = np.r_[["low"] * 20, ["high"] * 20, ["low"] * 20]
    frame = pd.DataFrame({"patient_id": [f"p{k}" for k in range(n)], "overall_survival_months": months,
                          "vital_status": died})
    out = discordant_logrank(frame.assign(risk_group=truth_group), frame.assign(risk_group=wrong_group))
    assert out["n_discordant"] == 40 and out["logrank"]["p_value"] < 1e-6 and out["hr_candidate_high"] > 1
    same = discordant_logrank(frame.assign(risk_group=truth_group), frame.assign(risk_group=truth_group))
    assert same["n_discordant"] == 0 and same["logrank"] is None and "agree" in same["reason"]


def _metric(value):
    return {"value": value, "ci_low": value - 0.05, "ci_high": value + 0.05}


def test_report_puts_the_papers_numbers_beside_ours_and_says_why_they_differ(params):
    archs = ["vgg16", "deeplabv3", "unet", "clmnet"]
    test = {"images": 10, "patients": 4, **{m: _metric(0.7) for m in ("accuracy", "recall", "f1", "auc")}}
    classification = {a: {"test": test} for a in archs}
    segmentation = {a: {"test": {"iou": _metric(0.5), "dice": _metric(0.6)}} for a in archs[1:]}
    cox = {"covariates": {"risk_score": {"hr": 1.5, "hr_low": 1.1, "hr_high": 2.0}}, "concordance": 0.7}
    survival = {a: {"auc": _metric(0.75), "logrank": {"p_value": 0.0004, "n": {"high": 5, "low": 6}},
                    "cox_model": cox, "cox_clinical": {"concordance": 0.65}, "n_analysed": 11, "n_binary_task": 9,
                    "n_short_term": 3, "n_long_term": 6, "n_censored_before_horizon": 2} for a in archs}
    delong = {"p_value": 0.03}
    discordant = {"n_discordant": 3, "n_patients": 11, "logrank": {"p_value": 0.2}, "hr_candidate_high": 1.2}
    compare = {"recognition_delong": {a: delong for a in archs[:3]}, "survival_delong": {a: delong for a in archs[:3]},
               "discordant_logrank": {a: discordant for a in archs[:3]}}
    text = render(params, classification, segmentation, survival, compare)
    assert "| CLM-Net | 0.700 | 0.700 | 0.700 | 0.700 [0.650, 0.750] | – | (candidate) | 0.940 / 0.920 / 0.930 | " \
           "0.960 [0.941, 0.975] |" in text
    assert "| CLM-Net | 0.750 [0.700, 0.800] | – | (candidate) | < .001 | – | 5 / 6 | 1.50 [1.10, 2.00] | 0.700 | " \
           "0.864 [0.832, 0.892] | < .001 |" in text
    assert "Seed SD: not measured" in text
    stability = {"seeds": [0, 1, 2], "commit": "abc1234",
                 "metrics": {"clmnet.test_auc": spread([0.70, 0.72, 0.74]), "clmnet.test_iou": spread([0.5, 0.6, None]),
                             "clmnet.survival_logrank_p": spread([0.0004, 0.03, 0.2])}}
    text = render(params, classification, segmentation, survival, compare, stability)
    assert "| CLM-Net | 0.700 | 0.700 | 0.700 | 0.700 [0.650, 0.750] | 0.020 | (candidate) |" in text
    assert "| CLM-Net | 0.500 [0.450, 0.550] | 0.071 |" in text          # SD of the two defined seeds
    assert "| CLM-Net | 0.750 [0.700, 0.800] | – | (candidate) | < .001 | < .001 – 0.200 | 5 / 6 |" in text
    assert "train.seed 0, 1, 2 (commit abc1234)" in text
    assert "Ours (0.700) is below the paper's 0.960" in text
    assert "../plots/survival/km_clmnet.png" in text


def test_seed_spread_is_the_mean_sample_sd_and_range_of_the_defined_values():
    row = spread([0.90, 0.92, 0.94])
    assert (row["mean"], row["sd"], row["range"]) == (0.92, 0.02, 0.04)    # statistics.stdev: n - 1
    assert spread([0.5, None, 0.7])["sd"] == pytest.approx(0.1414, abs=1e-4)
    assert spread([None, 0.5, None]) == {"values": [None, 0.5, None], "mean": 0.5, "sd": None, "range": None}
