"""U-Net baseline: a VGG16 encoder (as in TernausNet) and smp's U-Net decoder with skips."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from segmentation_models_pytorch.decoders.unet.decoder import UnetDecoder
from torch import nn

from crlm.core.config import ConfigError
from crlm.models.base import EmbeddingClassifierHead, ModelOutput, scaled
from crlm.models.network import VGGNetwork


@dataclass(frozen=True)
class UNetConfig:
    """params.yaml's model.unet."""

    dropout: float
    decoder_channels: tuple[int, ...]  # strides 8, 4, 2, 1

    def __post_init__(self) -> None:
        if len(self.decoder_channels) != 4:
            raise ConfigError("model.unet.decoder_channels needs 4 values (strides 8, 4, 2, 1)")


class UNet(VGGNetwork):
    def __init__(
        self,
        *,
        width: float,
        embedding_dim: int,
        pretrained: str,
        batch_norm: bool,
        dropout: float,
        decoder_channels: Sequence[int],
    ) -> None:
        super().__init__(width=width, embedding_dim=embedding_dim, pretrained=pretrained, batch_norm=batch_norm)
        decoder_channels = [scaled(c, width) for c in decoder_channels]
        # the first entry only lends its spatial size (smp drops it); skips at strides 8, 4, 2, 1
        self.decoder = UnetDecoder([1, *self.trunk.channels], decoder_channels, n_blocks=4)
        self.segment = nn.Conv2d(decoder_channels[-1], 1, 3, padding=1)
        self.head = EmbeddingClassifierHead(self.trunk.channels[-1] + decoder_channels[-1], embedding_dim, dropout)

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


MODEL = UNet  # what crlm.models.registry builds for arch 'unet'
CONFIG = UNetConfig  # its params.yaml section, model.unet
