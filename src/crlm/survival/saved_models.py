"""Each arch's fitted survival classifiers, kept so that `crlm predict` can score a new patient as the survival
stage scores a test patient: data/survival_models/<arch>/fold<k>.skops (crlm.survival.skops_file) and
models.json describing them.

models.json: the arch, the horizon, the embed aggregation the classifiers' embeddings were made with, the fold
order; per fold its file and sha256, the classifier the inner CV chose and the sha256 of the CNN model.pt whose
embeddings it was fitted on (predict refuses to pair it with another CNN); and the reference group a new
patient is placed in (crlm.survival.risk_groups): the test patients, the only ones scored as a new patient is,
by the mean of the fold classifiers (a development patient's probability comes from one fold's classifier, on
its own scale), their probabilities sorted. When the analysis had no classifier (a fold could not fit one),
models.json holds the reason and there are no model files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import numpy as np
from sklearn.pipeline import Pipeline

from crlm.core.errors import UserError
from crlm.core.io import write_json
from crlm.core.paths import SURVIVAL_MODELS
from crlm.embedding.config import Aggregation
from crlm.survival.crossfit import TEST, ensemble_probability
from crlm.survival.risk_groups import RISK_GROUP_RULE
from crlm.survival.skops_file import dump_pipeline, load_pipeline, sha256

if TYPE_CHECKING:  # predict reads the models without the analysis' statistics
    from crlm.survival.analysis import SurvivalAnalysis

MODELS_DIR = SURVIVAL_MODELS  # <arch>/models.json and <arch>/fold<k>.skops
DESCRIPTION = "models.json"
ENDPOINT = "death before horizon_months (the binary endpoint's short-term class, crlm.survival.endpoint)"


@dataclass(frozen=True)
class EmbedAggregationConfig:
    """embed.aggregation alone: how the embed stage pooled a patient's image vectors, which the saved
    classifiers need a new patient's embedding pooled by."""

    SECTION: ClassVar[str] = "embed"
    PARTIAL: ClassVar[bool] = True
    aggregation: Aggregation


class SavedModelsError(UserError, ValueError):
    """A survival models folder that cannot be used as it is (the message names the file)."""


def fold_file(fold: str) -> str:
    return f"fold{fold}.skops"


def write_saved_models(
    arch_dir: str | Path,
    arch: str,
    analysis: SurvivalAnalysis,
    folds: list[str],
    aggregation: str,
    cnn_models: dict[str, Path],
) -> dict:
    """Write `analysis`'s classifiers (fold order `folds`) and models.json into arch_dir; return models.json's
    content. cnn_models: fold -> the CNN model.pt whose embeddings the fold's classifier was fitted on."""
    arch_dir = Path(arch_dir)
    reason = analysis.summary["reason"]
    classifiers = []
    if not reason:
        chosen = analysis.summary["classifier"]["chosen_per_fold"]
        for fold, model, description in zip(folds, analysis.classifiers, chosen, strict=True):
            classifiers.append(
                {
                    "fold": fold,
                    "file": fold_file(fold),
                    "sha256": dump_pipeline(arch_dir / fold_file(fold), model),
                    "chosen": description,
                    "cnn_model_sha256": sha256(cnn_models[fold]),
                }
            )
    reference = analysis.patients.loc[analysis.patients["group"] == TEST, "prob"].dropna()
    description = {
        "arch": arch,
        "endpoint": ENDPOINT,
        "horizon_months": analysis.summary["horizon_months"],
        "embed_aggregation": aggregation,
        "folds": list(folds),
        "classifiers": classifiers,
        "reason": reason,
        "reference": {
            "group": TEST,
            "rule": RISK_GROUP_RULE,
            "probabilities": sorted(float(p) for p in reference) if not reason else [],
        },
    }
    write_json(arch_dir / DESCRIPTION, description)
    return description


@dataclass(frozen=True)
class SavedModels:
    """An arch's saved survival classifiers, as models.json describes them (read_saved_models)."""

    arch_dir: Path
    arch: str
    horizon_months: float
    aggregation: str
    folds: list[str]
    classifiers: list[dict]  # models.json's entries: fold, file, sha256, chosen, cnn_model_sha256
    reason: str
    reference: np.ndarray  # the reference group's probabilities, sorted

    def load(self) -> list[Pipeline]:
        """Each fold's classifier, in fold order, each file checked (crlm.survival.skops_file.load_pipeline)."""
        try:
            return [load_pipeline(self.arch_dir / entry["file"], entry["sha256"]) for entry in self.classifiers]
        except ValueError as exc:
            raise SavedModelsError(str(exc)) from None

    def probability(self, classifiers: list[Pipeline], vectors: dict[str, np.ndarray]) -> float:
        """The mean over the folds of classifier_k's probability of the endpoint for the patient's embedding by
        CNN_k (vectors: fold -> a 1 x dim row), as the survival stage scores a test patient."""
        probs = [model.predict_proba(vectors[fold])[:, 1] for fold, model in zip(self.folds, classifiers)]
        return float(ensemble_probability(probs)[0])


def read_saved_models(arch_dir: str | Path) -> SavedModels:
    """models.json of an arch's survival models folder; FileNotFoundError when it is absent, SavedModelsError
    naming the file when it cannot be read."""
    arch_dir = Path(arch_dir)
    path = arch_dir / DESCRIPTION
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found")
    try:
        raw = json.loads(path.read_text())
        reason = str(raw["reason"])
        folds = [str(f) for f in raw["folds"]]
        classifiers = [dict(entry) for entry in raw["classifiers"]]
        for entry in classifiers:
            for key in ("fold", "file", "sha256", "cnn_model_sha256"):
                if not isinstance(entry[key], str):
                    raise TypeError(f"classifier entry {key!r} is not a string")
            if Path(entry["file"]).name != entry["file"]:
                raise ValueError(f"classifier file {entry['file']!r} is not a file name in the folder")
        saved = SavedModels(
            arch_dir=arch_dir,
            arch=str(raw["arch"]),
            horizon_months=float(raw["horizon_months"]),
            aggregation=str(raw["embed_aggregation"]),
            folds=folds,
            classifiers=classifiers,
            reason=reason,
            reference=np.sort(np.asarray(raw["reference"]["probabilities"], dtype=float)),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise SavedModelsError(
            f"{path}: unreadable survival models description ({type(exc).__name__}: {exc})"
        ) from None
    if not reason and [entry["fold"] for entry in classifiers] != folds:
        raise SavedModelsError(f"{path}: its classifiers' folds {[e['fold'] for e in classifiers]} are not {folds}")
    return saved
