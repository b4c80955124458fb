"""The images one cross-validation fold trains on: the only place labels choose images.

From the fold's training patients' prepared images: ambiguous slices are left
out (train.exclude_ambiguous; labels.is_ambiguous), each patient is capped at
train.max_slices_per_patient images drawn regardless of label, and the
majority class is undersampled to train.majority_per_minority images per
minority image (train.balance). Validation and test images are never sampled:
they are scored at their natural prevalence.

Deterministic from (train.seed, fold): the same fold draws the same sample in
every run, and the folds draw independently of one another.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from crlm.data.labels import is_ambiguous
from crlm.training.config import TrainConfig


def training_sample(manifest: pd.DataFrame, train_patients: list[str], cfg: TrainConfig, fold: str | int) -> np.ndarray:
    """Row positions in `manifest` (ascending) of fold `fold`'s training images."""
    rng = np.random.default_rng([cfg.seed, int(fold)])
    frame = manifest.reset_index(drop=True)
    candidates = frame["patient_id"].isin(set(train_patients))
    if cfg.exclude_ambiguous:
        candidates &= ~is_ambiguous(frame)
    rows = frame[candidates].sort_values("image_id", kind="stable")
    capped = []
    for _, patient in rows.groupby("patient_id", sort=True):
        if len(patient) > cfg.max_slices_per_patient:
            patient = patient.iloc[np.sort(rng.choice(len(patient), cfg.max_slices_per_patient, replace=False))]
        capped.append(patient)
    selected = pd.concat(capped) if capped else rows
    if cfg.balance:
        counts = selected["label"].value_counts()
        if len(counts) == 2:
            minority = counts.idxmin()
            target = int(round(counts.min() * cfg.majority_per_minority))
            majority = selected[selected["label"] != minority]
            if len(majority) > target:
                keep = np.sort(rng.choice(len(majority), target, replace=False))
                selected = pd.concat([selected[selected["label"] == minority], majority.iloc[keep]])
    return np.sort(selected.index.to_numpy())
