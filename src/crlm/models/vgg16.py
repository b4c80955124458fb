"""VGG16 classifier baseline: the 13 conv layers, global pooling, a 1024-d embedding, a logit."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from crlm.models.base import EmbeddingClassifierHead, ModelOutput
from crlm.models.network import VGGNetwork


@dataclass(frozen=True)
class VGG16Config:
    """params.yaml's model.vgg16."""

    dropout: float


class VGG16(VGGNetwork):
    def __init__(self, *, width: float, embedding_dim: int, pretrained: str, batch_norm: bool, dropout: float) -> None:
        super().__init__(width=width, embedding_dim=embedding_dim, pretrained=pretrained, batch_norm=batch_norm)
        self.pool = nn.MaxPool2d(2)
        self.head = EmbeddingClassifierHead(self.trunk.channels[-1], embedding_dim, dropout)

    def forward(self, x: torch.Tensor) -> ModelOutput:
        features = self.trunk(self.normalise(x))
        logit, embedding = self.head(self.pool(features[-1]))
        return ModelOutput(logit=logit, seg_logits=None, embedding=embedding)

    def cam_layer(self) -> nn.Module:
        """The layer whose output the class activation maps weigh (crlm.explain): the last conv block's
        output, at stride 16, the only feature map the head pools (after a 2x2 max pool)."""
        return self.trunk.block_output(-1)


MODEL = VGG16  # what crlm.models.registry builds for arch 'vgg16'
CONFIG = VGG16Config  # its params.yaml section, model.vgg16
