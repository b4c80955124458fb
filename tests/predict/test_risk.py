"""`crlm predict`'s survival risk: on phantom patients embedded by the tiny fold CNNs, the survival stage's
cross-fitting and saved classifiers; predict on a test patient's NIfTI gives that patient's cross-fitted
probability (1e-6), placed among the test patients; a modified classifier file is refused."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pandas as pd
import pytest
import yaml

from crlm.cli import main
from crlm.data import phantom
from crlm.data.clinical import normalise_clinical
from crlm.data.dataset import ImageSet
from crlm.data.prepare import prepare_images
from crlm.data.slices import as_manifest, case_slices
from crlm.data.sources.base import Case
from crlm.embedding.extract import patient_embeddings
from crlm.embedding.table import fold_vectors
from crlm.models.model_file import load_model
from crlm.params import params_from_dict
from crlm.survival.analysis import DIED, MONTHS, analyse
from crlm.survival.risk_groups import place
from crlm.survival.saved_models import write_saved_models
from tests.conftest import tiny_params_dict
from tests.factories import FOLDS, save_fold_models
from tests.predict.test_predict import write_phantom_case

N_PATIENTS = 14  # 4 test patients, 2 folds of 5 validation patients


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> dict:
    """Phantom patients through slices -> prepare -> each fold CNN's embeddings -> the survival analysis ->
    the saved classifiers, as the stages make them."""
    root = tmp_path_factory.mktemp("risk")
    params = params_from_dict(tiny_params_dict())
    params_path = root / "params.yaml"
    params_path.write_text(yaml.safe_dump(tiny_params_dict()))
    models = save_fold_models(root / "models", "unet", tiny_params_dict())
    manifests, images, cases, volumes = [], [], [], {}
    (root / "cases").mkdir()
    for index in range(N_PATIENTS):
        volume, labels, case = write_phantom_case(root / "cases", index)
        manifest = as_manifest(
            case_slices(Case("phantom", case.case_id, volume, labels), root / "slices", params.slices.min_tumor_px)
        )
        manifests.append(manifest)
        images.append(prepare_images(manifest, root / "slices", params.prepare)["images"])
        cases.append(case)
        volumes[manifest["patient_id"].iloc[0]] = (volume, labels)
    manifest = pd.concat(manifests, ignore_index=True)
    stacked = np.concatenate(images)
    data = ImageSet(manifest, stacked, np.zeros(stacked.shape, np.uint8))  # float16, as images.npy
    frames = [
        patient_embeddings(
            load_model(models / str(fold) / "model.pt"), data, params.embed.batch_size, params.embed.aggregation
        ).assign(fold=str(fold))
        for fold in range(FOLDS)
    ]
    ids = sorted(volumes)
    summaries = [
        phantom.CaseSummary(c.case_id, c.n_lesions, c.tumour_volume_ml, c.lesion_diameters_mm, "") for c in cases
    ]
    clinical = normalise_clinical(phantom.clinical_table(params.phantom, summaries), "phantom")
    test, development = ids[:4], ids[4:]
    val = [development[k::FOLDS] for k in range(FOLDS)]
    # each fold's training patients hold both classes: died at 6 months, or followed 40 months
    short = {p for v in val for p in v[::2]} | set(test[:2])
    clinical[MONTHS] = [6.0 if p in short else 40.0 for p in clinical["patient_id"]]
    clinical[DIED] = [1 if p in short else 0 for p in clinical["patient_id"]]
    splits = {"test": test, "folds": [{"train": sorted(set(development) - set(v)), "val": v} for v in val]}
    analysis = analyse(
        fold_vectors(pd.concat(frames, ignore_index=True)), splits, clinical, params.survival, params.stats, 2
    )
    assert analysis.summary["reason"] == ""
    folds = [str(k) for k in range(FOLDS)]
    survival = root / "survival" / "unet"
    write_saved_models(
        survival, "unet", analysis, folds, params.embed.aggregation, {f: models / f / "model.pt" for f in folds}
    )
    return {"params": params_path, "models": models, "survival": survival, "analysis": analysis, "volumes": volumes}


def predict(cohort, patient, out, survival=None) -> int:
    volume, labels = cohort["volumes"][patient]
    args = ["predict", volume, "--mask", labels, "--out", out, "--params", cohort["params"]]
    args += ["--models", cohort["models"], "--survival-models", survival or cohort["survival"], "--device", "cpu"]
    return main([str(a) for a in args])


def test_predict_gives_a_test_patients_cross_fitted_probability(tmp_path, cohort, caplog):
    patients = cohort["analysis"].patients
    test = patients[patients["group"] == "test"]
    reference = np.sort(test["prob"].to_numpy())
    assert test["prob"].nunique() == len(test)  # the patients' probabilities differ: a constant would not pass
    for patient, expected in zip(test["patient_id"][:2], test["prob"][:2]):
        out = tmp_path / patient
        with caplog.at_level("INFO"):
            assert predict(cohort, patient, out) == 0
        risk = json.loads((out / "risk.json").read_text())
        assert risk["available"] and risk["probability"] == pytest.approx(expected, abs=1e-6)
        placed = place(risk["probability"], reference)
        assert (risk["percentile"], risk["risk_group"]) == (placed.percentile, placed.group)
        assert risk["reference_n"] == len(test) and risk["horizon_months"] == 24.0
        assert f"probability {risk['probability']:.3f} of death before 24 months" in caplog.text


def test_without_survival_models_the_risk_is_unavailable_and_says_why(tmp_path, cohort, caplog):
    patient = cohort["analysis"].patients["patient_id"][0]
    with caplog.at_level("INFO"):
        assert predict(cohort, patient, tmp_path / "out", survival=tmp_path / "none") == 0
    risk = json.loads((tmp_path / "out" / "risk.json").read_text())
    assert not risk["available"] and risk["probability"] is None
    assert "models.json: not found" in risk["reason"] and "survival risk: not available" in caplog.text


def test_a_modified_classifier_file_stops_predict_before_anything_is_scored(tmp_path, cohort, capsys):
    import shutil

    survival = tmp_path / "survival"
    shutil.copytree(cohort["survival"], survival)
    with zipfile.ZipFile(survival / "fold1.skops", "a") as archive:
        archive.writestr("extra.npy", b"")
    patient = cohort["analysis"].patients["patient_id"][0]
    assert predict(cohort, patient, tmp_path / "out", survival=survival) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("crlm predict: error:") and str(survival / "fold1.skops") in err and "sha256" in err
    assert not any((tmp_path / "out").iterdir())
