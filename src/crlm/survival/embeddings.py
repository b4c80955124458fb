"""Image embeddings from a trained model, and patient vectors aggregated from them.

data/embeddings/<arch>.parquet holds both levels: rows with level "image" (one per
prepared image) and level "patient" (one per patient: the mean or max over its
images), the vector in columns emb_0000 .. emb_<dim-1>.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from crlm.data.dataset import ImageSet
from crlm.models.inference import predict


class EmbeddingError(ValueError):
    """Embeddings cannot be made or read as they are (the message names the file or patient)."""


def embedding_columns(dim: int) -> list[str]:
    return [f"emb_{k:04d}" for k in range(dim)]


def embedding_frame(model: torch.nn.Module, data: ImageSet, batch_size: int, aggregation: str) -> pd.DataFrame:
    """Image rows then patient rows; patient rows aggregate that patient's image vectors."""
    vectors = predict(model, data, np.arange(len(data.manifest)), batch_size, embeddings=True).embedding
    columns = embedding_columns(vectors.shape[1])
    images = pd.DataFrame(vectors.astype(np.float32), columns=columns)
    images.insert(0, "level", "image")
    images.insert(1, "patient_id", data.manifest["patient_id"].to_numpy())
    images.insert(2, "image_id", data.manifest["image_id"].to_numpy())
    images.insert(3, "n_images", 1)
    grouped = images.groupby("patient_id", sort=True)[columns]
    patients = (grouped.mean() if aggregation == "mean" else grouped.max()).astype(np.float32).reset_index()
    patients.insert(0, "level", "patient")
    patients.insert(2, "image_id", "")
    patients.insert(3, "n_images", grouped.size().to_numpy())
    return pd.concat([images, patients], ignore_index=True)


def patient_vectors(frame: pd.DataFrame, source: str = "embeddings") -> tuple[np.ndarray, np.ndarray]:
    """(patient ids, matrix) from the patient rows of an embedding frame."""
    patients = frame[frame["level"] == "patient"]
    columns = [c for c in frame.columns if c.startswith("emb_")]
    if patients.empty or not columns:
        raise EmbeddingError(f"{source}: no patient-level embedding rows")
    matrix = patients[columns].to_numpy(np.float64)
    if not np.isfinite(matrix).all():
        bad = patients["patient_id"].to_numpy()[~np.isfinite(matrix).all(axis=1)][:5].tolist()
        raise EmbeddingError(f"{source}: non-finite embedding values for patient(s) {bad}")
    return patients["patient_id"].to_numpy(), matrix
