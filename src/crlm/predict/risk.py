"""The new patient's survival risk: the survival stage's saved fold classifiers (crlm.survival.saved_models)
applied as the survival stage applies them to a test patient.

Each fold's CNN embeds the patient's prepared slices as the embed stage does (crlm.embedding.extract: on the
CPU, in fp32, its images' vectors pooled by the aggregation the classifiers were fitted with); the fold's
classifier gives the probability of death before the horizon; the folds' probabilities are averaged
(crlm.survival.crossfit.ensemble_probability). The result is placed among the test patients' probabilities
(crlm.survival.risk_groups.place): its percentile and the risk group it would join.

A folder without models.json, an analysis that had no classifier, or CNN models other than those the
classifiers were fitted on leave the risk unavailable, with the reason. A classifier file that was modified or
names an untrusted type is an error (crlm.survival.skops_file).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
from sklearn.pipeline import Pipeline

from crlm.core.io import write_json
from crlm.embedding.extract import patient_embeddings
from crlm.embedding.table import embedding_columns
from crlm.models.model_file import load_model
from crlm.predict import PredictError
from crlm.predict.ensemble import image_set
from crlm.survival.risk_groups import place
from crlm.survival.saved_models import MODELS_DIR, SavedModels, SavedModelsError, read_saved_models
from crlm.survival.skops_file import sha256


@dataclass(frozen=True)
class SurvivalRisk:
    """risk.json: the probability of death before horizon_months, its percentile among the reference group
    (the survival stage's test patients) and the risk group it would join; None with `reason` when
    unavailable."""

    models_dir: str
    available: bool
    reason: str = ""
    horizon_months: float | None = None
    probability: float | None = None
    percentile: float | None = None
    risk_group: str | None = None
    reference_group: str = "test"
    reference_n: int = 0
    classifiers: list[str] = field(default_factory=list)  # the classifier of each fold, in fold order

    def to_dict(self) -> dict:
        return asdict(self)

    def message(self) -> str:
        if not self.available:
            return f"patient-level survival risk: not available. {self.reason}"
        return (
            f"patient-level survival risk: probability {self.probability:.3f} of death before "
            f"{self.horizon_months:g} months, percentile {self.percentile:.1f} of the survival stage's "
            f"{self.reference_n} {self.reference_group} patients: {self.risk_group} risk group"
        )


@dataclass(frozen=True)
class SurvivalModels:
    """The survival models predict will apply: the classifiers, loaded and checked, or why there are none."""

    folder: Path
    saved: SavedModels | None = None
    classifiers: list[Pipeline] = field(default_factory=list)
    reason: str = ""


def load_survival(arch: str, cnn_paths: list[Path], survival_dir: str | Path | None) -> SurvivalModels:
    """The survival models of `arch` in `survival_dir` (default data/survival_models/<arch>) for the fold CNNs
    `cnn_paths` (<fold>/model.pt), checked before any slice is scored: a modified or untrusted classifier file
    or an unreadable models.json is a PredictError naming it."""
    folder = Path(survival_dir) if survival_dir is not None else MODELS_DIR / arch
    try:
        saved = read_saved_models(folder)
    except FileNotFoundError as exc:
        return SurvivalModels(
            folder,
            reason=f"{exc}: the survival stage writes each arch's survival models there (dvc repro survival); "
            "--survival-models names another folder",
        )
    except SavedModelsError as exc:
        raise PredictError(str(exc)) from None
    if saved.arch != arch:
        raise PredictError(f"{folder}: survival models of {saved.arch}, not of the {arch} fold models")
    if saved.reason:
        return SurvivalModels(
            folder, saved, reason=f"{folder}: the survival analysis of {arch} had no classifier: {saved.reason}"
        )
    mismatch = _cnn_mismatch(saved, cnn_paths)
    if mismatch:
        return SurvivalModels(folder, saved, reason=mismatch)
    try:
        return SurvivalModels(folder, saved, saved.load())
    except SavedModelsError as exc:
        raise PredictError(str(exc)) from None


def survival_risk(models: SurvivalModels, cnn_paths: list[Path], images: np.ndarray, batch_size: int) -> SurvivalRisk:
    """The risk of the patient whose prepared slices are `images`, by the fold CNNs `cnn_paths` and `models`
    (the embed batch `batch_size`)."""
    shown, saved = str(models.folder), models.saved
    if saved is None or models.reason:
        return SurvivalRisk(shown, False, models.reason)
    cnn = {path.parent.name: path for path in cnn_paths}
    vectors = {fold: _embedding(cnn[fold], saved.arch, images, batch_size, saved.aggregation) for fold in saved.folds}
    probability = saved.probability(models.classifiers, vectors)
    risk = SurvivalRisk(
        shown,
        True,
        horizon_months=saved.horizon_months,
        probability=probability,
        reference_n=len(saved.reference),
        classifiers=[entry["chosen"] for entry in saved.classifiers],
    )
    if not len(saved.reference):
        return replace(risk, available=False, reason=f"{shown}: no test patient to place the probability among")
    placed = place(probability, saved.reference)
    return replace(risk, percentile=placed.percentile, risk_group=placed.group)


def _cnn_mismatch(saved: SavedModels, cnn_paths: list[Path]) -> str:
    """Why the fold CNNs are not those the classifiers were fitted on, or ""."""
    cnn = {path.parent.name: path for path in cnn_paths}
    if sorted(cnn) != sorted(saved.folds):
        return f"{saved.arch_dir}: classifiers of folds {saved.folds}, but the fold models are of folds {sorted(cnn)}"
    for entry in saved.classifiers:
        if sha256(cnn[entry["fold"]]) != entry["cnn_model_sha256"]:
            return (
                f"{saved.arch_dir}: its classifiers were fitted on the embeddings of other CNN models than "
                f"{cnn[entry['fold']]} (fold {entry['fold']}); rerun the survival stage for these models, or "
                "pass their experiment's survival models (--survival-models)"
            )
    return ""


def _embedding(path: Path, arch: str, images: np.ndarray, batch_size: int, aggregation: str) -> np.ndarray:
    """The patient's 1 x dim embedding by the fold model at `path`, as the embed stage makes it."""
    frame = patient_embeddings(load_model(path, expected_arch=arch), image_set(images), batch_size, aggregation)
    columns = embedding_columns(sum(c.startswith("emb_") for c in frame.columns))
    return frame[columns].to_numpy(np.float64)


def write_risk(path: Path, risk: SurvivalRisk) -> None:
    write_json(path, risk.to_dict())
