"""DeepLab-v3 baseline on a VGG16 trunk.

segmentation-models-pytorch cannot put DeepLabV3 on a VGG encoder, and CLM-Net's
DeepLab branch sits on VGG16 features, so the baseline does the same: VGG16
blocks 1-4 (output stride 8, the fifth block's role taken by atrous
convolutions, as in DeepLab-LargeFOV), an atrous cascade and torchvision's
ASPP, logits upsampled bilinearly to the input size (DeepLab-v3 has no decoder).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from crlm.models.base import EmbeddingClassifierHead, ModelOutput, scaled
from crlm.models.blocks import AtrousASPP
from crlm.models.network import VGGNetwork


@dataclass(frozen=True)
class DeepLabV3Config:
    """params.yaml's model.deeplabv3."""

    dropout: float
    atrous_rates: tuple[int, ...]


class DeepLabV3(VGGNetwork):
    def __init__(
        self,
        *,
        width: float,
        embedding_dim: int,
        pretrained: str,
        batch_norm: bool,
        dropout: float,
        atrous_rates: tuple[int, ...],
    ) -> None:
        super().__init__(
            width=width, embedding_dim=embedding_dim, pretrained=pretrained, batch_norm=batch_norm, trunk_blocks=4
        )
        channels = scaled(256, width)
        self.context = AtrousASPP(self.trunk.channels[3], channels, atrous_rates)
        self.classifier = nn.Conv2d(channels, 1, 1)
        self.head = EmbeddingClassifierHead(channels, embedding_dim, dropout)

    def forward(self, x: torch.Tensor) -> ModelOutput:
        features = self.trunk(self.normalise(x))
        context = self.context(features[-1])
        seg = F.interpolate(self.classifier(context), size=x.shape[-2:], mode="bilinear", align_corners=False)
        logit, embedding = self.head(context)
        return ModelOutput(logit=logit, seg_logits=seg, embedding=embedding)

    def cam_layer(self) -> nn.Module:
        """The layer whose output the class activation maps weigh (crlm.explain): the ASPP context at
        stride 8, the feature map the head pools."""
        return self.context


MODEL = DeepLabV3  # what crlm.models.registry builds for arch 'deeplabv3'
CONFIG = DeepLabV3Config  # its params.yaml section, model.deeplabv3
