"""Training-time augmentation from params (the paper's list): a batch at once, image and mask together.

Each image gets its own random draw of the paper's transforms, in
torchvision.transforms.v2's order and with its parameters: RandomHorizontalFlip
(augment.hflip_p), RandomAffine (rotation up to augment.rotation_deg, scale in
augment.scale), RandomResizedCrop (area fraction in augment.crop_scale, aspect
ratio 0.9-1.1) and ElasticTransform (augment.elastic_alpha in pixels,
augment.elastic_sigma, with probability augment.elastic_p). The four are
composed into one sampling grid per image and applied to the whole batch with a
single grid_sample, on the device the batch is on (resampled once instead of
four times): bilinear for images, nearest neighbour for masks, so labels never
blend. A crop draw that does not fit in the image falls back to the whole
image (torchvision first redraws up to ten times). Draws come from torch's
global generator: a seed makes them repeatable.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F
from torchvision.transforms.v2 import functional as TF

from crlm.config import AugmentConfig

CROP_RATIO = (0.9, 1.1)


def augment_batch(images: torch.Tensor, masks: torch.Tensor, cfg: AugmentConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """images (B, 1, S, S) float, masks (B, 1, S, S) -> the same shapes, each pair transformed together."""
    n, _, height, width = images.shape
    if height != width:
        raise ValueError(f"augment_batch: square images expected, got {height} x {width}")
    grid = sampling_grids(n, width, cfg, images.device)
    out_images = F.grid_sample(images.float(), grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    out_masks = F.grid_sample(masks.float(), grid, mode="nearest", padding_mode="zeros", align_corners=False)
    return out_images, out_masks.to(masks.dtype)


def sampling_grids(n: int, size: int, cfg: AugmentConfig, device: torch.device | str = "cpu") -> torch.Tensor:
    """(n, size, size, 2) grid_sample coordinates in [-1, 1] for n independent draws of the transforms."""
    def uniform(low: float, high: float) -> torch.Tensor:
        return low + (high - low) * torch.rand(n, device=device)

    flip = torch.rand(n, device=device) < cfg.hflip_p
    angle = uniform(-cfg.rotation_deg, cfg.rotation_deg)
    scale = uniform(*cfg.scale)
    area = uniform(*cfg.crop_scale)
    ratio = torch.exp(uniform(math.log(CROP_RATIO[0]), math.log(CROP_RATIO[1])))
    crop = torch.stack([torch.sqrt(area * ratio), torch.sqrt(area / ratio)], dim=-1)
    crop = torch.where((crop <= 1).all(-1, keepdim=True), crop, 1.0)   # does not fit: the whole image
    centre = (torch.rand(n, 2, device=device) * 2 - 1) * (1 - crop)
    displacement = None
    if cfg.elastic_alpha > 0 and cfg.elastic_p > 0:
        applied = torch.rand(n, device=device) < cfg.elastic_p
        noise = torch.rand(int(applied.sum()), 2, size, size, device=device) * 2 - 1   # blurred for those only
        kernel = int(8 * cfg.elastic_sigma + 1) | 1       # odd, as torchvision
        displacement = torch.zeros(n, size, size, 2, device=device)
        displacement[applied] = (TF.gaussian_blur(noise, [kernel, kernel], [cfg.elastic_sigma] * 2)
                                 * cfg.elastic_alpha / size).permute(0, 2, 3, 1)
    return compose_grid(size, flip, angle, scale, crop, centre, displacement)


def compose_grid(size: int, flip: torch.Tensor, angle_deg: torch.Tensor, scale: torch.Tensor, crop: torch.Tensor,
                 centre: torch.Tensor, displacement: torch.Tensor | None = None) -> torch.Tensor:
    """Where each output pixel reads the input, for: a horizontal flip (n,) bool, then a rotation
    (degrees, counter-clockwise as torchvision's) and scaling about the centre (n,), then a crop of
    (width, height) = crop (n, 2) centred at centre (n, 2) (fractions of the half-side) resized back to
    size, then an elastic displacement (n, size, size, 2) in grid units (torchvision's)."""
    n, device = len(flip), flip.device
    steps = torch.linspace(-1 + 1 / size, 1 - 1 / size, size, device=device)   # pixel centres, as torchvision
    y, x = torch.meshgrid(steps, steps, indexing="ij")
    grid = torch.stack([x, y], dim=-1).expand(n, size, size, 2)
    if displacement is not None:              # applied last, so looked up first
        grid = grid + displacement
    grid = grid * crop.view(n, 1, 1, 2) + centre.view(n, 1, 1, 2)
    theta = torch.deg2rad(angle_deg)
    cos, sin = torch.cos(theta) / scale, torch.sin(theta) / scale
    # the input point that lands on p: the inverse rotation, then 1 / s (x right, y down the image)
    inverse = torch.stack([torch.stack([cos, sin], -1), torch.stack([-sin, cos], -1)], -2)
    grid = torch.einsum("nij,nhwj->nhwi", inverse, grid)
    sign = torch.where(flip, -1.0, 1.0)
    return grid * torch.stack([sign, torch.ones_like(sign)], dim=-1).view(n, 1, 1, 2)
