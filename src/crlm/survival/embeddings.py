"""Patient embeddings from each fold's trained model, for cross-fitted survival.

data/embeddings/<arch>.parquet has one row per (fold, patient): the fold's model embeds
every prepared image of the patient and the vectors are aggregated (embed.aggregation:
mean or max over the patient's images) into columns emb_0000 .. emb_<dim-1>. Every fold's
model embeds every patient, so the survival stage can fit a classifier on fold k's
training patients and predict the others with the same network (crlm.survival.crossfit).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from crlm.data.dataset import ImageSet
from crlm.models.inference import predict
from crlm.options import look_up


class EmbeddingError(ValueError):
    """Embeddings cannot be made or read as they are (the message names the file or patient)."""


def embedding_columns(dim: int) -> list[str]:
    return [f"emb_{k:04d}" for k in range(dim)]


def mean_of(grouped) -> pd.DataFrame:
    return grouped.mean()


def max_of(grouped) -> pd.DataFrame:
    return grouped.max()


# embed.aggregation -> the per-patient aggregate of its images' vectors (from a pandas groupby)
AGGREGATIONS = {"mean": mean_of, "max": max_of}


def patient_embeddings(model: torch.nn.Module, data: ImageSet, batch_size: int, aggregation: str) -> pd.DataFrame:
    """One row per patient (sorted): patient_id, n_images and the aggregate of its images' vectors."""
    aggregate = look_up("embed.aggregation", aggregation, AGGREGATIONS)
    vectors = predict(model, data, np.arange(len(data.manifest)), batch_size, embeddings=True).embedding
    columns = embedding_columns(vectors.shape[1])
    images = pd.DataFrame(vectors.astype(np.float32), columns=columns)
    images.insert(0, "patient_id", data.manifest["patient_id"].to_numpy())
    grouped = images.groupby("patient_id", sort=True)[columns]
    patients = aggregate(grouped).astype(np.float32).reset_index()
    patients.insert(1, "n_images", grouped.size().to_numpy())
    return patients


def fold_vectors(frame: pd.DataFrame, source: str = "embeddings") -> dict[str, pd.DataFrame]:
    """fold -> float64 matrix indexed by patient_id; every fold must embed the same patients."""
    columns = [c for c in frame.columns if c.startswith("emb_")]
    if frame.empty or not columns or "fold" not in frame.columns:
        raise EmbeddingError(f"{source}: no (fold, patient) embedding rows; rerun the embed stage")
    out = {}
    for fold, rows in frame.groupby(frame["fold"].astype(str), sort=True):
        matrix = rows.set_index("patient_id")[columns].astype(np.float64)
        bad = matrix.index[~np.isfinite(matrix.to_numpy()).all(axis=1)]
        if len(bad):
            raise EmbeddingError(f"{source}: non-finite embedding values for patient(s) {bad[:5].tolist()} "
                                 f"(fold {fold})")
        out[fold] = matrix.sort_index()
    first = next(iter(out.values())).index
    for fold, matrix in out.items():
        if not matrix.index.equals(first):
            raise EmbeddingError(f"{source}: fold {fold} embeds other patients than fold {next(iter(out))}")
    return out
