"""The preamble the four paper archs share: a VGG16 trunk after the normalisation, ImageNet weights or not."""

from __future__ import annotations

from crlm.models.base import Network
from crlm.models.blocks import VGGTrunk
from crlm.models.pretrained import load_imagenet_vgg16


class VGGNetwork(Network):
    """A Network on a VGG16 trunk (`trunk_blocks` of its five blocks), initialised as `pretrained` says.

    A subclass builds its own layers after this __init__ (the initialisation order, and so the random
    weights of a seed, are normalise, trunk, then the subclass's)."""

    def __init__(
        self, *, width: float, embedding_dim: int, pretrained: str, batch_norm: bool, trunk_blocks: int = 5
    ) -> None:
        super().__init__()
        self.trunk = VGGTrunk(width, batch_norm, blocks=trunk_blocks)
        load_imagenet_vgg16(self.trunk, pretrained, width, batch_norm)
        self.width = width
        self.embedding_dim = embedding_dim
