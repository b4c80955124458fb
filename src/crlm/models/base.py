"""What every model shares: the network contract (Network), its output, input normalisation and the heads."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

# torchvision's ImageNet statistics; the grey image is repeated to three channels
# so that ImageNet VGG16 weights load unchanged
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class ModelOutput:
    logit: torch.Tensor  # (B,) image-level metastasis logit
    seg_logits: torch.Tensor | None  # (B, 1, H, W) tumour logits; None for classifiers
    embedding: torch.Tensor  # (B, embedding_dim)


def scaled(channels: int, width: float) -> int:
    """A channel count scaled by model.width, never below 8."""
    return max(8, int(round(channels * width)))


class GreyToImageNet(nn.Module):
    """(B, 1, H, W) in [0, 1] -> (B, 3, H, W) normalised like ImageNet inputs."""

    mean: torch.Tensor  # buffers, registered in __init__
    std: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != 1:
            raise ValueError(f"expected a (B, 1, H, W) image batch, got shape {tuple(x.shape)}")
        return (x.expand(-1, 3, -1, -1) - self.mean) / self.std


class Network(nn.Module):
    """The contract of every arch's network (crlm/models/<arch>.py's MODEL).

    Built from explicit keyword arguments (the shared model.* keys and its own model.<arch> section, as
    crlm.models.registry.model_kwargs gives them), so that a saved model is rebuilt from the arguments it
    was saved with. Takes (B, 1, H, W) images in [0, 1], normalised by `normalise` (the first module, so
    that every arch's weights initialise in one order), and returns a ModelOutput; `cam_layer` names the
    layer whose output Grad-CAM weighs (crlm.explain).
    """

    def __init__(self) -> None:
        super().__init__()
        self.normalise = GreyToImageNet()

    def forward(self, x: torch.Tensor) -> ModelOutput:
        raise NotImplementedError

    def cam_layer(self) -> nn.Module:
        raise NotImplementedError


class EmbeddingClassifierHead(nn.Module):
    """Feature maps -> global pooling -> the embedding (kept for survival) -> the image-level logit.

    `in_channels` is the total channel count of the feature maps passed to forward().
    """

    def __init__(self, in_channels: int, embedding_dim: int, dropout: float) -> None:
        super().__init__()
        self.embed = nn.Sequential(nn.Linear(2 * in_channels, embedding_dim), nn.ReLU(inplace=True))
        self.classify = nn.Sequential(nn.Dropout(dropout), nn.Linear(embedding_dim, 1))

    def forward(self, *features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        embedding = self.embed(global_pool(*features))
        return self.classify(embedding).squeeze(1), embedding


def global_pool(*features: torch.Tensor) -> torch.Tensor:
    """Global average and max pooling of each feature map, concatenated along channels.

    The max keeps a small lesion visible that the average over a whole slice dilutes.
    """
    return torch.cat([torch.cat([f.mean(dim=(2, 3)), f.amax(dim=(2, 3))], dim=1) for f in features], dim=1)
