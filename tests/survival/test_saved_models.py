"""crlm.survival.saved_models: the survival stage's classifiers and models.json, written from a real analysis
(the planted cohort of test_survival.py) and read back: each test patient's probability again from its
embeddings, the reference group, byte-stable reruns, and the no-classifier case."""

from __future__ import annotations

import json

import numpy as np
import pytest

from crlm.survival.analysis import analyse
from crlm.survival.saved_models import SavedModelsError, read_saved_models, write_saved_models
from crlm.survival.skops_file import sha256
from tests.survival.test_survival import _cohort, _fold_vectors, _splits, default_params  # noqa: F401

FOLDS = [str(k) for k in range(5)]


def written(tmp_path, params, name="unet", vectors=None):
    clinical, ids, burden = _cohort(params, 60, 3, survival_effect=0.8)
    vectors = vectors or _fold_vectors(ids, burden, 0)
    splits = _splits(ids, 0)
    analysis = analyse(vectors, splits, clinical, params.survival, params.stats, optimism_resamples=2)
    cnn = {}
    for fold in FOLDS:  # stand-ins for the CNN model.pt files: their bytes are hashed
        cnn[fold] = tmp_path / "cnn" / fold / "model.pt"
        cnn[fold].parent.mkdir(parents=True, exist_ok=True)
        cnn[fold].write_bytes(f"fold {fold}".encode())
    folder = tmp_path / name
    description = write_saved_models(folder, "unet", analysis, FOLDS, "mean", cnn)
    return folder, description, analysis, vectors, cnn


def test_the_saved_classifiers_give_each_test_patient_its_probability_again(tmp_path, default_params):  # noqa: F811
    folder, description, analysis, vectors, cnn = written(tmp_path, default_params)
    assert description == json.loads((folder / "models.json").read_text())
    saved = read_saved_models(folder)
    assert (saved.arch, saved.aggregation, saved.folds, saved.reason) == ("unet", "mean", FOLDS, "")
    assert saved.horizon_months == default_params.survival.horizon_months
    for entry, fold, chosen in zip(saved.classifiers, FOLDS, analysis.summary["classifier"]["chosen_per_fold"]):
        assert entry["file"] == f"fold{fold}.skops" and entry["chosen"] == chosen
        assert entry["sha256"] == sha256(folder / entry["file"]) and entry["cnn_model_sha256"] == sha256(cnn[fold])
    test = analysis.patients[analysis.patients["group"] == "test"]
    np.testing.assert_array_equal(saved.reference, np.sort(test["prob"].to_numpy()))
    classifiers = saved.load()
    for patient, prob in zip(test["patient_id"], test["prob"]):
        rows = {fold: vectors[fold].loc[[patient]].to_numpy() for fold in FOLDS}
        assert saved.probability(classifiers, rows) == pytest.approx(prob, abs=1e-12)


def test_a_rerun_writes_the_same_bytes(tmp_path, default_params):  # noqa: F811
    first, *_ = written(tmp_path, default_params, "first")
    second, *_ = written(tmp_path, default_params, "second")
    names = sorted(p.name for p in first.iterdir())
    assert (
        names
        == sorted(p.name for p in second.iterdir())
        == ["fold0.skops", "fold1.skops", "fold2.skops", "fold3.skops", "fold4.skops", "models.json"]
    )
    for name in names:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


def test_without_a_classifier_models_json_holds_the_reason_and_no_file_is_written(tmp_path, default_params):  # noqa: F811
    clinical, ids, burden = _cohort(default_params, 60, 3, survival_effect=0.8)
    flat = {fold: frame * 0.0 for fold, frame in _fold_vectors(ids, burden, 0).items()}  # no feature varies
    folder, description, analysis, *_ = written(tmp_path, default_params, vectors=flat)
    assert analysis.summary["reason"] and description["reason"] == analysis.summary["reason"]
    assert sorted(p.name for p in folder.iterdir()) == ["models.json"]
    saved = read_saved_models(folder)
    assert saved.reason == analysis.summary["reason"] and saved.load() == []


def test_a_damaged_models_json_is_named(tmp_path):
    (tmp_path / "models.json").write_text('{"arch": "unet"}')
    with pytest.raises(SavedModelsError, match="models.json: unreadable") as info:
        read_saved_models(tmp_path)
    assert str(tmp_path / "models.json") in str(info.value)
