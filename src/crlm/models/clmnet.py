"""CLM-Net (the paper's "Design of the CLM-Net Model").

VGG16 trunk for low-level texture -> two parallel branches on its features:
  DeepLab-v3 branch: atrous cascade (rates 1, 2, 4, 8) + ASPP on the stride-8 features;
  U-Net branch: an encoder of double convolutions from the stride-2 features,
  whose outputs also join the decoder's skip connections;
-> mid-level fusion: concatenation of the VGG16, DeepLab-v3 and U-Net bottlenecks
   (all at stride 16) -> squeeze-and-excitation (r = 16) -> 1x1 projection
-> shared U-Net decoder with skips -> tumour mask, and the 1024-d embedding
   from the pooled fused bottleneck and decoder output -> image logit.
Dense-CRF refinement of the mask happens at inference (crlm.models.crf).
Each branch, SE and the CRF can be switched off in params (model.clmnet.*).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from segmentation_models_pytorch.decoders.unet.decoder import UnetDecoder
from torch import nn
from torch.nn import functional as F

from crlm.core.config import ConfigError
from crlm.models.base import EmbeddingClassifierHead, ModelOutput, scaled
from crlm.models.blocks import AtrousASPP, conv_bn_relu, double_conv, squeeze_excitation
from crlm.models.network import VGGNetwork


@dataclass(frozen=True)
class CLMNetConfig:
    """params.yaml's model.clmnet."""

    dropout: float
    atrous_rates: tuple[int, ...]
    decoder_channels: tuple[int, ...]  # strides 8, 4, 2, 1
    se: bool
    se_reduction: int
    aspp_branch: bool
    unet_branch: bool

    def __post_init__(self) -> None:
        if len(self.decoder_channels) != 4:
            raise ConfigError("model.clmnet.decoder_channels needs 4 values (strides 8, 4, 2, 1)")


class UNetBranch(nn.Module):
    """Encoder path of a U-Net from the stride-2 features: outputs at strides 2, 4, 8, 16."""

    def __init__(self, in_channels: int, channels: list[int]) -> None:
        super().__init__()
        self.stages = nn.ModuleList()
        for out_channels in channels:
            self.stages.append(double_conv(in_channels, out_channels))
            in_channels = out_channels
        self.channels = channels

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outputs = []
        for i, stage in enumerate(self.stages):
            x = stage(x if i == 0 else F.max_pool2d(x, 2))
            outputs.append(x)
        return outputs


class CLMNet(VGGNetwork):
    def __init__(
        self,
        *,
        width: float,
        embedding_dim: int,
        pretrained: str,
        batch_norm: bool,
        dropout: float,
        atrous_rates: tuple[int, ...],
        decoder_channels: Sequence[int],
        se: bool,
        se_reduction: int,
        aspp_branch: bool,
        unet_branch: bool,
    ) -> None:
        super().__init__(width=width, embedding_dim=embedding_dim, pretrained=pretrained, batch_norm=batch_norm)
        trunk_ch = self.trunk.channels  # strides 1, 2, 4, 8, 16
        fused_ch = trunk_ch[4]

        self.deeplab = None
        if aspp_branch:
            deeplab_ch = scaled(256, width)
            self.deeplab = AtrousASPP(trunk_ch[3], deeplab_ch, atrous_rates)
            fused_ch += deeplab_ch

        self.unet = None
        skip_ch = list(trunk_ch[:4])
        if unet_branch:
            unet_ch = [scaled(n, width) for n in (64, 128, 256, 512)]  # strides 2, 4, 8, 16
            self.unet = UNetBranch(trunk_ch[1], unet_ch)
            fused_ch += unet_ch[3]
            skip_ch = [skip_ch[0], skip_ch[1] + unet_ch[0], skip_ch[2] + unet_ch[1], skip_ch[3] + unet_ch[2]]

        self.se = squeeze_excitation(fused_ch, se_reduction) if se else nn.Identity()
        bottleneck_ch = trunk_ch[4]
        self.project = nn.Sequential(
            nn.Conv2d(fused_ch, bottleneck_ch, 1, bias=False), nn.BatchNorm2d(bottleneck_ch), nn.ReLU(inplace=True)
        )
        decoder_channels = [scaled(n, width) for n in decoder_channels]
        self.decoder = UnetDecoder([1, *skip_ch, bottleneck_ch], decoder_channels, n_blocks=4)
        self.segment = nn.Sequential(
            conv_bn_relu(decoder_channels[-1], decoder_channels[-1]), nn.Conv2d(decoder_channels[-1], 1, 1)
        )
        self.head = EmbeddingClassifierHead(bottleneck_ch + decoder_channels[-1], embedding_dim, dropout)

    def forward(self, x: torch.Tensor) -> ModelOutput:
        f1, f2, f3, f4, f5 = self.trunk(self.normalise(x))
        bottlenecks = [f5]
        skips = [f1, f2, f3, f4]
        if self.deeplab is not None:
            bottlenecks.append(F.avg_pool2d(self.deeplab(f4), 2))  # stride 8 -> 16
        if self.unet is not None:
            u2, u4, u8, u16 = self.unet(f2)
            bottlenecks.append(u16)
            skips = [f1, torch.cat([f2, u2], 1), torch.cat([f3, u4], 1), torch.cat([f4, u8], 1)]
        fused = self.project(self.se(torch.cat(bottlenecks, 1)))
        decoded = self.decoder([x, *skips, fused])
        logit, embedding = self.head(fused, decoded)
        return ModelOutput(logit=logit, seg_logits=self.segment(decoded), embedding=embedding)

    def cam_layer(self) -> nn.Module:
        """The layer whose output the class activation maps weigh (crlm.explain): the decoder, the last
        convolutional features before the logit, at full resolution (the head pools them and the stride-16
        fused bottleneck)."""
        return self.decoder


MODEL = CLMNet  # what crlm.models.registry builds for arch 'clmnet'
CONFIG = CLMNetConfig  # its params.yaml section, model.clmnet
