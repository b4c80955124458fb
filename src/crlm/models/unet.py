"""U-Net baseline: a VGG16 encoder (as in TernausNet) and smp's U-Net decoder with skips."""

from __future__ import annotations

import torch
from segmentation_models_pytorch.decoders.unet.decoder import UnetDecoder
from torch import nn

from crlm.config import ModelConfig
from crlm.models.base import EmbeddingClassifierHead, GreyToImageNet, ModelOutput, scaled
from crlm.models.blocks import VGGTrunk
from crlm.models.pretrained import load_imagenet_vgg16


class UNet(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.normalise = GreyToImageNet()
        self.trunk = VGGTrunk(cfg.width, cfg.batch_norm)
        load_imagenet_vgg16(self.trunk, cfg)
        decoder_channels = [scaled(c, cfg.width) for c in cfg.unet.decoder_channels]
        # the first entry only lends its spatial size (smp drops it); skips at strides 8, 4, 2, 1
        self.decoder = UnetDecoder([1, *self.trunk.channels], decoder_channels, n_blocks=4)
        self.segment = nn.Conv2d(decoder_channels[-1], 1, 3, padding=1)
        self.head = EmbeddingClassifierHead(self.trunk.channels[-1] + decoder_channels[-1], cfg.embedding_dim,
                                  cfg.unet.dropout)

    def forward(self, x: torch.Tensor) -> ModelOutput:
        features = self.trunk(self.normalise(x))
        decoded = self.decoder([x, *features])
        logit, embedding = self.head(features[-1], decoded)
        return ModelOutput(logit=logit, seg_logits=self.segment(decoded), embedding=embedding)

    def cam_layer(self) -> nn.Module:
        """The layer whose output the class activation maps weigh (crlm.explain): the decoder, the last
        convolutional features before the logit, at full resolution (the head pools them and the stride-16
        bottleneck)."""
        return self.decoder


MODEL = UNet   # the network crlm.models.registry builds for model.arch 'unet'
