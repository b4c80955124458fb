"""Inference: a model's image-level probabilities, tumour maps and embeddings for a set of images."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from crlm.data.dataset import ImageSet
from crlm.training.device import MEMORY_FORMAT, autocast


@dataclass
class Predictions:
    prob: np.ndarray  # (N,) image-level metastasis probability
    seg_prob: np.ndarray | None  # (N, H, W) tumour probability, None for classifiers
    embedding: np.ndarray | None = None  # (N, embedding_dim) when asked for


@torch.no_grad()
def predict(
    model: nn.Module,
    data: ImageSet,
    idx: np.ndarray,
    batch_size: int,
    device: torch.device | None = None,
    embeddings: bool = False,
) -> Predictions:
    """Probabilities (and tumour maps, embeddings) for data[idx], in that order."""
    device = device or next(model.parameters()).device
    model.eval()
    probs, segs, embeds = [], [], []
    for chunk in np.array_split(idx, max(1, int(np.ceil(len(idx) / batch_size)))):
        if len(chunk) == 0:
            continue
        images = torch.from_numpy(data.images[chunk]).unsqueeze(1).float().to(device)
        images = images.contiguous(memory_format=MEMORY_FORMAT)
        with autocast(device):
            out = model(images)
        probs.append(torch.sigmoid(out.logit.float()).cpu().numpy())
        if out.seg_logits is not None:
            segs.append(torch.sigmoid(out.seg_logits.float())[:, 0].cpu().numpy())
        if embeddings:
            embeds.append(out.embedding.float().cpu().numpy())
    return Predictions(
        prob=np.concatenate(probs) if probs else np.zeros(0, np.float32),
        seg_prob=np.concatenate(segs) if segs else None,
        embedding=np.concatenate(embeds) if embeds else None,
    )
