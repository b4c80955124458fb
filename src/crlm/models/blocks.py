"""Building blocks from library parts: torchvision's VGG layers and ASPP, timm's SE."""

from __future__ import annotations

import torch
from timm.layers import SEModule
from torch import nn
from torchvision.models import vgg
from torchvision.models.segmentation.deeplabv3 import ASPP

from crlm.models.base import scaled

# VGG16 is torchvision's configuration "D": channels per conv, "M" = 2x2 max pool
VGG16_CFG = vgg.cfgs["D"]


class VGGTrunk(nn.Module):
    """VGG16's 13 conv layers in five blocks; returns each block's output before its pool.

    Strides of the outputs: 1, 2, 4, 8, 16 (the last pool is left to the caller);
    `blocks` < 5 keeps only the first blocks.
    `features` is indexed exactly like torchvision's `vgg16(_bn).features`, so
    ImageNet weights load into it unchanged at width 1.
    """

    def __init__(self, width: float, batch_norm: bool, blocks: int = 5) -> None:
        super().__init__()
        cfg = [v if v == "M" else scaled(int(v), width) for v in VGG16_CFG]
        layers = vgg.make_layers(cfg, batch_norm=batch_norm)
        pools = [i for i, m in enumerate(layers) if isinstance(m, nn.MaxPool2d)]
        self.features = layers[: pools[blocks - 1] + 1]
        self._block_ends = pools[:blocks]
        self.channels = [c for c, nxt in zip(cfg, cfg[1:] + ["M"]) if c != "M" and nxt == "M"][:blocks]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outputs = []
        start = 0
        for end in self._block_ends:
            for layer in self.features[start:end]:
                x = layer(x)
            outputs.append(x)
            if len(outputs) < len(self._block_ends):
                x = self.features[end](x)
            start = end + 1
        return outputs

    def block_output(self, block: int = -1) -> nn.Module:
        """The layer whose output is block `block`'s output (its last ReLU, before the pool)."""
        return self.features[self._block_ends[block] - 1]


def conv_bn_relu(in_channels: int, out_channels: int, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=dilation, dilation=dilation, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


def double_conv(in_channels: int, out_channels: int) -> nn.Sequential:
    """U-Net's two 3x3 convolutions."""
    return nn.Sequential(conv_bn_relu(in_channels, out_channels), conv_bn_relu(out_channels, out_channels))


class AtrousASPP(nn.Module):
    """DeepLab-v3's context module: a cascade of atrous convolutions, then ASPP.

    The cascade uses every rate in `rates` (the paper: 1, 2, 4, 8); torchvision's
    ASPP adds a 1x1 branch and image pooling to one 3x3 branch per rate above 1.
    """

    def __init__(self, in_channels: int, out_channels: int, rates: tuple[int, ...]) -> None:
        super().__init__()
        layers = []
        channels = in_channels
        for rate in rates:
            layers.append(conv_bn_relu(channels, out_channels, dilation=rate))
            channels = out_channels
        self.cascade = nn.Sequential(*layers)
        self.aspp = ASPP(channels, [r for r in rates if r > 1] or [1], out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.aspp(self.cascade(x))


def squeeze_excitation(channels: int, reduction: int) -> nn.Module:
    """timm's SE block with reduction ratio r (the paper: 16)."""
    return SEModule(channels, rd_ratio=1.0 / reduction, rd_divisor=1)
