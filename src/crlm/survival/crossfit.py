"""Cross-fitted survival probabilities: one (CNN_k, classifier_k) pair per cross-validation fold.

For each CNN fold k, a classifier is tuned and fitted on fold k's training patients whose
class at the horizon is known, as CNN_k embeds them, and predicts fold k's validation
patients (all of them, censored or not) through the same CNN_k: no patient is predicted by
a CNN or classifier that saw them. A test patient gets the mean probability of the k pairs.
Embeddings of different CNNs are never pooled into one classifier: their coordinates differ.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from crlm.survival.classifiers import fit_tuned
from crlm.survival.config import SurvivalConfig

TEST = "test"  # the group of the test patients; validation patients are in group "fold<k>"


@dataclass(frozen=True)
class CrossFit:
    prob: pd.Series  # P(short-term) per patient_id (NaN where undefined)
    group: pd.Series  # the patient's prediction group: "fold<k>" (validation) or "test"
    chosen: list[str]  # the classifier chosen in each fold
    reason: str = ""  # why no probabilities could be made, else ""
    models: tuple[Pipeline, ...] = ()  # the fitted classifier of each fold, in fold order (none with a reason)


def cross_fit(vectors: dict[str, pd.DataFrame], splits: dict, labels: pd.Series, cfg: SurvivalConfig) -> CrossFit:
    """vectors: fold -> embedding matrix indexed by patient_id (crlm.embedding.table.fold_vectors);
    splits: data/splits/splits.json; labels: the binary endpoint per analysed patient (NaN: unknown)."""
    patients = labels.index
    prob = pd.Series(np.nan, index=patients)
    group = pd.Series("", index=patients, dtype=object)
    test = patients.intersection(splits["test"])
    group[test] = TEST
    chosen: list[str]
    test_probs, chosen, models = [], [], []
    for k, fold in enumerate(splits["folds"]):
        x = vectors[str(k)]
        train = patients.intersection(fold["train"])
        train = train[labels[train].notna().to_numpy()]
        val = patients.intersection(fold["val"])
        try:
            model, description = fit_tuned(x.loc[train].to_numpy(), labels[train].to_numpy(int), cfg)
        except ValueError as exc:
            return CrossFit(pd.Series(np.nan, index=patients), group, chosen, reason=f"fold {k}: {exc}")
        chosen.append(description)
        models.append(model)
        prob[val] = model.predict_proba(x.loc[val].to_numpy())[:, 1]
        group[val] = f"fold{k}"
        if len(test):
            test_probs.append(model.predict_proba(x.loc[test].to_numpy())[:, 1])
    if len(test):
        prob[test] = ensemble_probability(test_probs)
    unplaced = group[group == ""].index.tolist()
    if unplaced:
        raise ValueError(
            f"patient(s) {unplaced[:5]} are in no fold's validation set nor the test set of "
            "splits.json; rerun the split stage"
        )
    return CrossFit(prob, group, chosen, models=tuple(models))


def ensemble_probability(probs: list[np.ndarray]) -> np.ndarray:
    """A test patient's probability: the mean of the fold classifiers' (each through its own CNN), in fold order
    (crlm predict scores a new patient by this too)."""
    return np.mean(probs, axis=0)
