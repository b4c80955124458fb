"""embed (vectors from saved models), compare (clustered AUC tests, paired C-index) and the report text."""

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from crlm.comparison import auc_between, c_index_between, intersection_union, paired
from crlm.data.dataset import ImageSet
from crlm.embedding.extract import patient_embeddings
from crlm.embedding.table import EmbeddingError, fold_vectors
from crlm.explain.report import report_section as cam_section
from crlm.headline import BEYOND
from crlm.models.inference import predict
from crlm.models.model_file import ModelFileError, load_model
from crlm.report import PAPER_RECOGNITION, render
from crlm.report_seeds import BEYOND_TITLES, SeedSpread, beyond_section
from crlm.report_survival import PAPER_SURVIVAL
from crlm.stability import spread, times_ahead
from crlm.stats.clustered_auc import clustered_auc_test
from crlm.stats.discrimination import harrell_c
from tests.factories import save_random_model


@pytest.fixture
def params(tiny_params):
    return tiny_params


def _images(n=6, size=32):
    rng = np.random.default_rng(0)
    manifest = pd.DataFrame(
        {
            "image_id": [f"img{i}" for i in range(n)],
            "patient_id": ["p1", "p1", "p1", "p2", "p2", "p3"][:n],
            "label": [0, 1] * (n // 2),
        }
    )
    return ImageSet(manifest, rng.random((n, size, size)).astype(np.float32), np.zeros((n, size, size), np.uint8))


def test_each_fold_model_gives_embedding_dim_patient_vectors(tmp_path, params):
    save_random_model(tmp_path / "model.pt", "clmnet", params.model, seed=0)
    data = _images()
    images = predict(load_model(tmp_path / "model.pt"), data, np.arange(6), 4, embeddings=True).embedding
    frame = patient_embeddings(load_model(tmp_path / "model.pt"), data, 4, "mean")
    columns = [c for c in frame.columns if c.startswith("emb_")]
    assert len(columns) == params.model.embedding_dim and list(frame["patient_id"]) == ["p1", "p2", "p3"]
    assert list(frame["n_images"]) == [3, 2, 1]
    np.testing.assert_allclose(frame[columns].iloc[0], images[:3].mean(axis=0), rtol=1e-5, atol=1e-6)
    maxed = patient_embeddings(load_model(tmp_path / "model.pt"), data, 4, "max")
    np.testing.assert_allclose(maxed[columns].iloc[1], images[3:5].max(axis=0), rtol=1e-5, atol=1e-6)
    two_folds = pd.concat([frame.assign(fold="0"), maxed.assign(fold="1")])
    vectors = fold_vectors(two_folds)
    assert list(vectors) == ["0", "1"] and vectors["1"].shape == (3, params.model.embedding_dim)
    np.testing.assert_allclose(vectors["1"].loc["p2"], maxed[columns].iloc[1], rtol=1e-6)
    with pytest.raises(EmbeddingError, match="fold 1 embeds other patients than fold 0"):
        fold_vectors(pd.concat([frame.assign(fold="0"), maxed.iloc[:2].assign(fold="1")]))


def test_missing_or_stale_model_files_get_a_clear_error(tmp_path, params):
    with pytest.raises(FileNotFoundError, match="model.pt: not found"):
        load_model(tmp_path / "model.pt")
    torch.save({"arch": "clmnet", "model": {"width": 1.0}, "state_dict": {}}, tmp_path / "old.pt")
    with pytest.raises(
        ModelFileError,
        match=r"old.pt: a model file of an older format \(its network under 'model', "
        r"not 'kwargs'\); retrain",
    ):
        load_model(tmp_path / "old.pt")
    with pytest.raises(EmbeddingError, match=r"non-finite embedding values for patient\(s\) \['p1'\] \(fold 0\)"):
        fold_vectors(pd.DataFrame({"fold": ["0"], "patient_id": ["p1"], "emb_0000": [np.nan]}))


def _predictions(prob, labels, patients):
    return pd.DataFrame(
        {"image_id": [f"i{k}" for k in range(len(prob))], "patient_id": patients, "label": labels, "prob": prob}
    )


def test_compare_pairs_predictions_and_refuses_mismatches(params):
    rng = np.random.default_rng(1)
    labels = (rng.random(40) < 0.5).astype(int)
    patients = np.repeat([f"p{k}" for k in range(10)], 4)
    frames = {
        "clmnet": _predictions(labels + rng.normal(size=40), labels, patients),
        "unet": _predictions(0.3 * labels + rng.normal(size=40), labels, patients),
    }
    out = auc_between(frames, "clmnet", "unet", "image_id", "prob", params.stats)
    direct = clustered_auc_test(labels, frames["clmnet"]["prob"], frames["unet"]["prob"], patients)
    assert out["p_value"] == pytest.approx(direct.p_value) and out["diff"] == pytest.approx(direct.diff)
    assert out["n_clusters"] == 10
    low, high = out["patient_bootstrap_diff_ci"]
    assert low < out["diff"] < high
    undefined = auc_between(
        {**frames, "unet": frames["unet"].iloc[:0]}, "clmnet", "unet", "image_id", "prob", params.stats
    )
    assert undefined["p_value"] is None and "no predictions from ['unet']" in undefined["reason"]
    frames["unet"] = frames["unet"].iloc[:30]
    with pytest.raises(ValueError, match="predicted different image_ids"):
        paired(frames, "clmnet", "unet", "image_id", "prob")
    frames["unet"] = _predictions(np.zeros(40), 1 - labels, patients)
    with pytest.raises(ValueError, match="disagree on the true labels"):
        paired(frames, "clmnet", "unet", "image_id", "prob")


def test_c_index_comparison_pairs_patients_and_favours_the_score_that_ranks_survival(params):
    rng = np.random.default_rng(2)
    months = rng.exponential(30.0, 80)
    died = (rng.random(80) < 0.7).astype(float)
    frame = pd.DataFrame(
        {"patient_id": [f"p{k}" for k in range(80)], "overall_survival_months": months, "vital_status": died}
    )
    good = frame.assign(risk_score=-months + rng.normal(0, 5, 80))
    noise = frame.assign(risk_score=rng.normal(size=80)).sample(frac=1.0, random_state=0)  # order must not matter
    out = c_index_between(good, noise, params.stats)
    assert out["c_a"] == pytest.approx(harrell_c(months, died, good["risk_score"].to_numpy()).value)
    assert out["diff"] > 0.3 and out["p_value"] < 1e-3 and out["n"] == 80
    claim = intersection_union({"a": out, "b": {**out, "diff": -0.01}})
    assert claim == {"all_differences_positive": False, "largest_p": out["p_value"]}


def _metric(value):
    return {"value": value, "ci_low": value - 0.05, "ci_high": value + 0.05}


def test_report_puts_the_papers_numbers_beside_ours_and_says_why_they_differ(params):
    archs = ["vgg16", "deeplabv3", "unet", "clmnet"]
    groups = {
        "metastasis": {"images": 3, "called_metastasis": 0.9},
        "ambiguous": {"images": 2, "called_metastasis": 0.5},
        "tumour_free": {"images": 5, "called_metastasis": 0.1},
    }
    test = {
        "images": 10,
        "patients": 4,
        "prevalence": 0.3,
        "groups": groups,
        **{m: _metric(0.7) for m in ("accuracy", "recall", "f1", "auc")},
    }
    cv = {"out_of_fold": {"images": 40, "patients": 12, "auc": _metric(0.8)}}
    classification = {a: {"test": test, "cv": cv} for a in archs}
    segmentation = {a: {"test": {"iou": _metric(0.5), "dice": _metric(0.6)}} for a in archs[1:]}
    cox = {"covariates": {"risk_score": {"hr": 1.5, "hr_low": 1.1, "hr_high": 2.0}}, "reason": "", "n_events": 29}
    survival = {
        a: {
            "auc": _metric(0.75),
            "auc_ipcw": {"value": 0.74},
            "c_index": {"harrell": 0.68, "uno": 0.67},
            "logrank": {"p_value": 0.0004, "n": {"high": 5, "low": 6}},
            "cox_model": cox,
            "cox_clinical": {"reason": ""},
            "cox_lr_test": {"p_value": 0.02},
            "cox_concordance_optimism_corrected": {
                "clinical": {"apparent": 0.62, "corrected": 0.61, "n_resamples": 200, "n_refused": 0},
                "clinical_plus_image": {
                    "apparent": 0.70,
                    "corrected": {"deeplabv3": 0.67, "unet": 0.60}.get(a, 0.66),
                    "n_resamples": 200,
                    "n_refused": 1,
                },
            },
            "cox_risk_score_sd": 0.82,
            "risk_groups": {"high_share_per_group": {"fold0": 0.5, "test": 0.4}},
            "by_set": {
                "development": {
                    "n": 8,
                    "n_events": 4,
                    "n_binary_task": 7,
                    "n_short_term": 2,
                    "auc": _metric(0.8),
                    "c_index": {"harrell": 0.71, "uno": 0.72},
                },
                "test": {
                    "n": 3,
                    "n_events": 1,
                    "n_binary_task": 2,
                    "n_short_term": 1,
                    "auc": {"value": None},
                    "c_index": {"harrell": 0.5, "uno": None},
                },
            },
            "n_analysed": 11,
            "n_binary_task": 9,
            "n_short_term": 3,
            "n_long_term": 6,
            "n_censored_before_horizon": 2,
        }
        for a in archs
    }
    test_p = {"p_value": 0.03, "p_holm": 0.09, "diff": 0.05}
    compare = {
        family: {a: test_p for a in archs[:3]} for family in ("recognition_auc", "survival_auc", "survival_c_index")
    }
    compare.update(
        {
            "logrank_p": {a: 0.0004 for a in archs},
            "logrank_p_holm": {a: 0.0016 for a in archs},
            "better_than_every_baseline": {
                "recognition_auc": {"all_differences_positive": True, "largest_p": 0.03},
                "survival_auc": {"all_differences_positive": False, "largest_p": 0.2},
            },
        }
    )
    text = render(params, classification, segmentation, survival, compare)
    # the paper's cells: the numbers of PAPER_*[arch], 3 decimals
    accuracy, recall, f1, auc, (low, high) = PAPER_RECOGNITION["clmnet"]
    survival_auc, (survival_low, survival_high), logrank_p = PAPER_SURVIVAL["clmnet"]
    assert (
        "| CLM-Net | 0.700 | 0.700 [0.650, 0.750] | 0.700 | 0.700 [0.650, 0.750] | – | (candidate) | – | – | "
        f"{accuracy:.3f} / {recall:.3f} / {f1:.3f} | {auc:.3f} [{low:.3f}, {high:.3f}] |" in text
    )
    assert "| VGG16 | 0.700 | 0.700 [0.650, 0.750] | 0.700 | 0.700 [0.650, 0.750] | – | 0.030 (0.090) |" in text
    assert "Target condition" not in text  # the metrics give no other reading of the ambiguous slices
    readings = {
        "target_condition": "tumour >= 40 px",
        "auc_without_ambiguous": _metric(0.98),
        "auc_any_tumour": _metric(0.9),
    }
    other = render(
        params, {a: {"test": {**test, **readings}, "cv": cv} for a in archs}, segmentation, survival, compare
    )
    assert "| (candidate) | 0.980 [0.930, 1.030] | 0.900 [0.850, 0.950] |" in other
    assert (
        "Target condition: tumour >= 40 px; a smaller tumour makes an ambiguous slice. The candidate's test AUC "
        "with the ambiguous slices as no metastasis (the table's AUC): 0.700; left out: 0.980; as metastasis "
        "(target condition: any tumour): 0.900. It is at or above the paper's 0.960 under 1 of these 3 "
        "readings (ambiguous slices left out)."
    ) in other
    assert (
        "| CLM-Net | 0.750 [0.700, 0.800] | – | 0.740 | 0.680 | 0.670 | (candidate) | (candidate) | "
        f"{survival_auc:.3f} [{survival_low:.3f}, {survival_high:.3f}] |" in text
    )
    assert (
        "| CLM-Net | 5 / 6 | < .001 (0.002) | – | – | 1.50 [1.10, 2.00] | 0.020 | 0.610 (0.620) / 0.660 (0.700) | "
        f"{logrank_p} |" in text
    )
    assert "## Table 4. Risk groups (upper half of the risk score within each prediction group)" in text
    assert "not because of the log-rank results" in text and "per prediction group: 40% to 50%." in text
    assert "| CLM-Net | 8 (4) | 0.800 [0.750, 0.850] | 0.710 / 0.720 | 3 (1) | undefined | 0.500 / – |" in text
    assert "Table 3 pools both sets: 8 of its 11 patients are development patients" in text
    assert "neither the cross-validation estimate nor the test estimate; read Table 3b" in text
    assert "Uno's C is truncated at the horizon" in text and "(ddof 1; the candidate's: 0.82)" in text
    assert "1 resample(s) gave no fit" in text and "descriptive, not a test" in text
    assert (
        "Descriptively, with the risk score the corrected C is higher than the clinical model's for VGG16, "
        "DeepLab-v3 and CLM-Net (by 0.050 to 0.060); not higher for U-Net."
    ) in text
    assert "natural prevalence (0.300 metastasis)" in text and "ambiguous: 2 images, called metastasis 0.500" in text
    assert "largest p (0.030) decides; here it holds" in text
    assert "largest p (0.200) decides; here it does not hold" in text
    assert "Seed SD: not measured" in text
    # Table 1b: out of fold beside the test set, an internal hold-out by default
    assert "## Table 1b. Recognition AUC: cross-validation (out of fold) vs the test set, internal hold-out" in text
    assert "| CLM-Net | 40 (12) | 0.800 [0.750, 0.850] | – | 10 (4) | 0.700 [0.650, 0.750] | – |" in text
    assert (
        "Test set: an internal hold-out, 0.25 of the patients drawn at random from the same sources (phantom)" in text
    )
    external = dataclasses.replace(
        params,
        data=dataclasses.replace(params.data, sources=("tcia", "lits")),
        split=dataclasses.replace(params.split, external="lits"),
    )
    lits_by_set = {
        **survival["clmnet"]["by_set"],
        "test": {**survival["clmnet"]["by_set"]["test"], "n": 0, "reason": "none of its 3 patients (why)"},
    }
    unscored = {**survival, "clmnet": {**survival["clmnet"], "by_set": lits_by_set}}
    text_external = render(external, classification, segmentation, unscored, compare)
    assert (
        "## Table 1b. Recognition AUC: cross-validation (out of fold) vs the test set, external (lits)" in text_external
    )
    assert (
        "Test set: external, every patient of the source lits (`split.external: lits`); the folds, and so every "
        "model, hold the other patients only."
    ) in text_external
    assert "No survival numbers for the test set: none of its 3 patients (why)." in text_external
    assert "Table 3 pools both sets" not in text_external
    assert "higher test AUC than the candidate" not in text  # every arch ties with the candidate
    classification = {**classification, "vgg16": {"test": {**test, "auc": _metric(0.72)}, "cv": cv}}
    stability = {
        "seeds": [0, 1, 2],
        "commit": "abc1234",
        "metrics": {
            "clmnet.test_auc": spread([0.70, 0.72, 0.74]),
            "vgg16.test_auc": spread([0.71, 0.70, 0.69]),
            "clmnet.test_iou": spread([0.5, 0.6, None]),
            "clmnet.survival_logrank_p": spread([0.0004, 0.03, 0.2]),
        },
    }
    text = render(params, classification, segmentation, survival, compare, stability)
    assert "| CLM-Net | 0.700 | 0.700 [0.650, 0.750] | 0.700 | 0.700 [0.650, 0.750] | 0.020 | (candidate) |" in text
    assert "| CLM-Net | 0.500 [0.450, 0.550] | 0.071 |" in text  # SD of the two defined seeds
    assert "| CLM-Net | 40 (12) | 0.800 [0.750, 0.850] | – | 10 (4) | 0.700 [0.650, 0.750] | 0.020 |" in text
    assert "| CLM-Net | 5 / 6 | < .001 (0.002) | < .001 – 0.200 | – |" in text
    assert "train.seed 0, 1, 2 (commit abc1234)" in text
    # VGG16's test AUC is the highest of this run; over the seeds it leads once
    assert (
        "VGG16 has a higher test AUC than the candidate here (point estimates; the clustered test's p is beside "
        "each). VGG16 is ahead of CLM-Net at 1 "
        "of `make stability`'s 3 training seeds: the order depends on the seed, not a finding."
    ) in text
    classification = {**classification, "unet": {"test": {**test, "auc": _metric(0.71)}, "cv": cv}}
    text = render(params, classification, segmentation, survival, compare, stability)
    assert (
        "VGG16 and U-Net have a higher test AUC than the candidate here (point estimates; the clustered test's p "
        "is beside each). VGG16 is ahead of "
        "CLM-Net at 1 of"
    ) in text and "U-Net is ahead" not in text  # U-Net's seeds not in this stability
    assert f"Ours (0.700) is below the paper's {auc:.3f}" in text and "has not been measured" in text
    assert "../plots/survival/km_clmnet.png" in text


def test_the_beyond_table_gives_each_lesion_cam_and_calibration_number_its_seed_sd_and_range():
    assert "Not measured" in "\n".join(beyond_section(SeedSpread(None)))
    stability = {
        "seeds": [0, 1, 2],
        "metrics": {
            "clmnet.test_auc": spread([0.7, 0.72, 0.74]),
            "clmnet.lesion_sensitivity_3d": spread([0.6, 0.7, 0.8]),
            "vgg16.cam_mass_share": spread([0.07, 0.08, None]),
        },
    }
    assert "Not measured" in "\n".join(
        beyond_section(SeedSpread({**stability, "metrics": {"clmnet.test_auc": spread([0.7, 0.72, 0.74])}}))
    )  # the paper's numbers alone: not this table
    lines = beyond_section(SeedSpread(stability))
    head = next(line for line in lines if line.startswith("| model |"))
    assert head.split(" | ")[1:4] == ["3-D lesion sensitivity", "3-D FP per patient", "per-slice sensitivity"]
    assert len(head.split(" | ")) == len(BEYOND_TITLES) + 1
    dash = ["–"] * len(BEYOND_TITLES)
    clmnet = ["0.100 (0.200)"] + dash[1:]  # SD 0.1, range 0.2
    vgg16 = dash[:4] + ["0.007 (0.010)"] + dash[5:]  # the two defined seeds: SD 0.00707, range 0.01
    assert f"| CLM-Net | {' | '.join(clmnet)} |" in lines and f"| VGG16 | {' | '.join(vgg16)} |" in lines


def test_times_ahead_counts_the_seeds_where_one_number_exceeds_another():
    stability = {
        "metrics": {
            "unet.test_auc": spread([0.90, 0.95, None, 0.93, 0.97]),
            "clmnet.test_auc": spread([0.91, 0.94, 0.99, 0.93, 0.96]),
        }
    }
    # seed 2 undefined for U-Net, so 4 seeds count; seed 3 a tie, ahead in neither direction
    assert times_ahead(stability, "unet.test_auc", "clmnet.test_auc") == (2, 4)
    assert times_ahead(stability, "clmnet.test_auc", "unet.test_auc") == (1, 4)
    assert times_ahead(stability, "unet.test_auc", "vgg16.test_auc") is None  # not followed
    assert times_ahead(None, "unet.test_auc", "clmnet.test_auc") is None


def _cam(shares: dict[str, float]) -> dict:
    entry = {"value": 0.5, "ci_low": 0.4, "ci_high": 0.6}
    return {
        "images": 4,
        "patients": 2,
        "pointing_tolerance_px": 1,
        "chance": {"mass_share": 0.05},
        **{
            arch: {
                "layer": "decoder",
                "layer_grid": [32, 32],
                "mass_share": {**entry, "value": share},
                "mass_share_minus_chance": entry,
                "pointing_hit_rate": entry,
            }
            for arch, share in shares.items()
        },
    }


def test_a_ranking_sentence_says_whether_the_order_holds_at_every_training_seed(params):
    assert params.model.arch == "clmnet"
    assert "cam_mass_share" in BEYOND
    cam = _cam({"vgg16": 0.1, "deeplabv3": 0.2, "unet": 0.65, "clmnet": 0.46})
    flips = {
        "seeds": [0, 1, 2],
        "metrics": {
            "unet.cam_mass_share": spread([0.65, 0.69, 0.16]),
            "clmnet.cam_mass_share": spread([0.46, 0.54, 0.70]),
        },
    }
    text = " ".join(cam_section(params, cam, SeedSpread(flips).ahead))
    assert (
        "U-Net puts the most (0.650). U-Net is ahead of CLM-Net at 2 of `make stability`'s 3 training seeds: "
        "the order depends on the seed, not a finding."
    ) in text
    holds = {**flips, "metrics": {**flips["metrics"], "unet.cam_mass_share": spread([0.65, 0.69, 0.71])}}
    assert (
        "U-Net is ahead of CLM-Net at every one of `make stability`'s 3 training seeds: consistent, though 3 "
        "seeds on one test set are weak evidence of an order."
    ) in " ".join(cam_section(params, cam, SeedSpread(holds).ahead))
    stale = {**flips, "metrics": {**flips["metrics"], "unet.cam_mass_share": spread([0.1, 0.2, 0.3])}}
    assert "U-Net is ahead of CLM-Net at none of `make stability`'s 3 training seeds" in " ".join(
        cam_section(params, cam, SeedSpread(stale).ahead)
    )
    unmeasured = cam_section(params, cam)  # no seed spread: the one-run sentence alone
    assert any(line.endswith("U-Net puts the most (0.650).") for line in unmeasured)
    assert "is ahead of" not in " ".join(unmeasured)


def test_seed_spread_is_the_mean_sample_sd_and_range_of_the_defined_values():
    row = spread([0.90, 0.92, 0.94])
    assert (row["mean"], row["sd"], row["range"]) == (0.92, 0.02, 0.04)  # statistics.stdev: n - 1
    assert spread([0.5, None, 0.7])["sd"] == pytest.approx(0.1414, abs=1e-4)
    assert spread([None, 0.5, None]) == {"values": [None, 0.5, None], "mean": 0.5, "sd": None, "range": None}
