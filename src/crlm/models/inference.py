"""Inference: a model's image-level probabilities, tumour maps and embeddings for a set of images.

`predict_batches` yields them a batch at a time, for the callers that must not hold every tumour map of a
large set (the train stage writes them as they come); `predict` gathers them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from crlm.data.dataset import ImageSet
from crlm.training.device import MEMORY_FORMAT, autocast


@dataclass
class Predictions:
    prob: np.ndarray  # (N,) image-level metastasis probability
    seg_prob: np.ndarray | None  # (N, H, W) tumour probability, None for classifiers (or when not asked for)
    embedding: np.ndarray | None = None  # (N, embedding_dim) when asked for


def batch_rows(idx: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """`idx` cut into batches of at most batch_size rows, as even as possible (the batches predict uses)."""
    return [chunk for chunk in np.array_split(idx, max(1, int(np.ceil(len(idx) / batch_size)))) if len(chunk)]


@torch.no_grad()
def predict_batches(
    model: nn.Module,
    data: ImageSet,
    idx: np.ndarray,
    batch_size: int,
    device: torch.device | None = None,
    embeddings: bool = False,
    maps: bool = True,
) -> Iterator[Predictions]:
    """The predictions of data[idx] a batch (batch_rows) at a time, in that order; tumour maps unless `maps`
    is False."""
    device = device or next(model.parameters()).device
    model.eval()
    for chunk in batch_rows(idx, batch_size):
        images = torch.from_numpy(data.images_at(chunk)).unsqueeze(1).to(device)
        images = images.contiguous(memory_format=MEMORY_FORMAT)
        with autocast(device):
            out = model(images)
        yield Predictions(
            prob=torch.sigmoid(out.logit.float()).cpu().numpy(),
            seg_prob=(
                torch.sigmoid(out.seg_logits.float())[:, 0].cpu().numpy()
                if maps and out.seg_logits is not None
                else None
            ),
            embedding=out.embedding.float().cpu().numpy() if embeddings else None,
        )


def predict(
    model: nn.Module,
    data: ImageSet,
    idx: np.ndarray,
    batch_size: int,
    device: torch.device | None = None,
    embeddings: bool = False,
    maps: bool = True,
) -> Predictions:
    """Probabilities (and tumour maps unless `maps` is False, embeddings when asked for) for data[idx], in
    that order."""
    probs, segs, embeds = [], [], []
    for batch in predict_batches(model, data, idx, batch_size, device, embeddings, maps):
        probs.append(batch.prob)
        if batch.seg_prob is not None:
            segs.append(batch.seg_prob)
        if batch.embedding is not None:
            embeds.append(batch.embedding)
    return Predictions(
        prob=np.concatenate(probs) if probs else np.zeros(0, np.float32),
        seg_prob=np.concatenate(segs) if segs else None,
        embedding=np.concatenate(embeds) if embeds else None,
    )
