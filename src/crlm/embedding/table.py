"""The embeddings table (data/embeddings/<arch>.parquet): its columns, and reading it back per fold.

One row per (fold, patient): fold, patient_id, n_images and emb_0000 .. emb_<dim-1>. Written by the embed
stage (crlm.embedding.extract), read by the survival stage. Torch-free.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


class EmbeddingError(ValueError):
    """Embeddings cannot be made or read as they are (the message names the file or patient)."""


def embedding_columns(dim: int) -> list[str]:
    return [f"emb_{k:04d}" for k in range(dim)]


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
            raise EmbeddingError(
                f"{source}: non-finite embedding values for patient(s) {bad[:5].tolist()} (fold {fold})"
            )
        out[fold] = matrix.sort_index()
    first = next(iter(out.values())).index
    for fold, matrix in out.items():
        if not matrix.index.equals(first):
            raise EmbeddingError(f"{source}: fold {fold} embeds other patients than fold {next(iter(out))}")
    return out
