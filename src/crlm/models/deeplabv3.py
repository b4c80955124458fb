"""DeepLab-v3 baseline on a VGG16 trunk.

segmentation-models-pytorch cannot put DeepLabV3 on a VGG encoder, and CLM-Net's
DeepLab branch sits on VGG16 features, so the baseline does the same: VGG16
blocks 1-4 (output stride 8, the fifth block's role taken by atrous
convolutions, as in DeepLab-LargeFOV), an atrous cascade and torchvision's
ASPP, logits upsampled bilinearly to the input size (DeepLab-v3 has no decoder).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from crlm.config import ModelConfig
from crlm.models.base import EmbeddingClassifierHead, GreyToImageNet, ModelOutput, scaled
from crlm.models.blocks import AtrousASPP, VGGTrunk
from crlm.models.pretrained import load_imagenet_vgg16


class DeepLabV3(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.normalise = GreyToImageNet()
        self.trunk = VGGTrunk(cfg.width, cfg.batch_norm, blocks=4)
        load_imagenet_vgg16(self.trunk, cfg)
        channels = scaled(256, cfg.width)
        self.context = AtrousASPP(self.trunk.channels[3], channels, cfg.deeplabv3.atrous_rates)
        self.classifier = nn.Conv2d(channels, 1, 1)
        self.head = EmbeddingClassifierHead(channels, cfg.embedding_dim, cfg.deeplabv3.dropout)

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


MODEL = DeepLabV3   # the network crlm.models.registry builds for model.arch 'deeplabv3'
