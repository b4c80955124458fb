"""Training-time augmentation from params (the paper's list), image and mask together.

Built from torchvision.transforms.v2, which applies one random draw to the
image and to its masks (wrapped as tv_tensors.Mask: nearest-neighbour, no
blending of labels).
"""

from __future__ import annotations

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from crlm.config import AugmentConfig


def training_transform(cfg: AugmentConfig, image_size: int) -> v2.Compose:
    steps: list = [
        v2.RandomHorizontalFlip(p=cfg.hflip_p),
        v2.RandomAffine(degrees=cfg.rotation_deg, scale=cfg.scale),
        v2.RandomResizedCrop(image_size, scale=cfg.crop_scale, ratio=(0.9, 1.1), antialias=True),
    ]
    if cfg.elastic_alpha > 0 and cfg.elastic_p > 0:
        steps.append(v2.RandomApply([v2.ElasticTransform(alpha=cfg.elastic_alpha, sigma=cfg.elastic_sigma)],
                                    p=cfg.elastic_p))
    return v2.Compose(steps)


def augment_pair(transform: v2.Compose, image: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """image (1, H, W) float in [0, 1], mask (1, H, W) uint8 -> the same, transformed together."""
    out_image, out_mask = transform(tv_tensors.Image(image), tv_tensors.Mask(mask))
    return out_image.as_subclass(torch.Tensor), out_mask.as_subclass(torch.Tensor)
