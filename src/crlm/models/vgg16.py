"""VGG16 classifier baseline: the 13 conv layers, global pooling, a 1024-d embedding, a logit."""

from __future__ import annotations

import torch
from torch import nn

from crlm.config import ModelConfig
from crlm.models.base import EmbeddingClassifierHead, GreyToImageNet, ModelOutput
from crlm.models.blocks import VGGTrunk
from crlm.models.pretrained import load_imagenet_vgg16


class VGG16(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.normalise = GreyToImageNet()
        self.trunk = VGGTrunk(cfg.width, cfg.batch_norm)
        load_imagenet_vgg16(self.trunk, cfg)
        self.pool = nn.MaxPool2d(2)
        self.head = EmbeddingClassifierHead(self.trunk.channels[-1], cfg.embedding_dim, cfg.vgg16.dropout)

    def forward(self, x: torch.Tensor) -> ModelOutput:
        features = self.trunk(self.normalise(x))
        logit, embedding = self.head(self.pool(features[-1]))
        return ModelOutput(logit=logit, seg_logits=None, embedding=embedding)

    def cam_layer(self) -> nn.Module:
        """The layer whose output the class activation maps weigh (crlm.explain): the last conv block's
        output, at stride 16, the only feature map the head pools (after a 2x2 max pool)."""
        return self.trunk.block_output(-1)


MODEL = VGG16   # the network crlm.models.registry builds for model.arch 'vgg16'
