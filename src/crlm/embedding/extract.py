"""Patient embeddings from each fold's trained model, for cross-fitted survival (the embed stage).

data/embeddings/<arch>.parquet has one row per (fold, patient): the fold's model embeds
every prepared image of the patient and the vectors are aggregated (embed.aggregation:
mean or max over the patient's images) into columns emb_0000 .. emb_<dim-1>. Every fold's
model embeds every patient, so the survival stage can fit a classifier on fold k's
training patients and predict the others with the same network (crlm.survival.crossfit). The table's
layout is crlm.embedding.table's.
"""

from __future__ import annotations

from typing import cast

import numpy as np
import pandas as pd
import torch

from crlm.core.options import look_up
from crlm.data.dataset import ImageSet
from crlm.embedding.table import embedding_columns
from crlm.models.inference import predict


def mean_of(grouped) -> pd.DataFrame:
    return grouped.mean()


def max_of(grouped) -> pd.DataFrame:
    return grouped.max()


# embed.aggregation -> the per-patient aggregate of its images' vectors (from a pandas groupby)
AGGREGATIONS = {"mean": mean_of, "max": max_of}


def patient_embeddings(model: torch.nn.Module, data: ImageSet, batch_size: int, aggregation: str) -> pd.DataFrame:
    """One row per patient (sorted): patient_id, n_images and the aggregate of its images' vectors."""
    aggregate = look_up("embed.aggregation", aggregation, AGGREGATIONS)
    # embeddings=True: an array (None only for no images, which fails below as it did)
    vectors = cast(
        np.ndarray,
        predict(model, data, np.arange(len(data.manifest)), batch_size, embeddings=True, maps=False).embedding,
    )
    columns = embedding_columns(vectors.shape[1])
    images = pd.DataFrame(vectors.astype(np.float32), columns=columns)
    images.insert(0, "patient_id", data.manifest["patient_id"].to_numpy())
    grouped = images.groupby("patient_id", sort=True)[columns]
    patients = aggregate(grouped).astype(np.float32).reset_index()
    patients.insert(1, "n_images", grouped.size().to_numpy())
    return patients
