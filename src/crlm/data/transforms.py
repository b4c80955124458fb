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
blend. The crop is drawn as torchvision draws it: a size in whole pixels
from up to ten (area, ratio) candidates, the first that fits, else the whole
image; a top-left corner in whole pixels. Draws come from torch's global
generator: a seed makes them repeatable.

In a distributed training (crlm.training.distributed) every process draws the
whole global batch's transforms from the same seeded generator and applies the
rows of its own shard (`rows`), so each image gets the draw it would get in a
single process.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch.nn import functional as F
from torchvision.transforms.v2 import functional as TF

from crlm.core.config import ordered_pair, unit_interval


@dataclass(frozen=True)
class TransformConfig:
    """The keys of params.yaml's `augment` section that shape the transforms (what training reads: it draws
    from train.seed, and augment.preview_images is the augment stage's)."""

    SECTION: ClassVar[str] = "augment"
    PARTIAL: ClassVar[bool] = True
    rotation_deg: float
    hflip_p: float
    crop_scale: tuple[float, float]
    scale: tuple[float, float]
    elastic_alpha: float
    elastic_sigma: float
    elastic_p: float

    def __post_init__(self) -> None:
        unit_interval("augment.hflip_p", self.hflip_p)
        unit_interval("augment.elastic_p", self.elastic_p)
        ordered_pair("augment.crop_scale", self.crop_scale)
        ordered_pair("augment.scale", self.scale)


@dataclass(frozen=True)
class AugmentConfig(TransformConfig):
    """params.yaml's `augment` section: the transforms, and the augment stage's preview."""

    PARTIAL: ClassVar[bool] = False
    seed: int
    preview_images: int


CROP_RATIO = (0.9, 1.1)
CROP_TRIES = 10  # torchvision's RandomResizedCrop


def augment_batch(
    images: torch.Tensor, masks: torch.Tensor, cfg: AugmentConfig, batch: int | None = None, rows: slice | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """images (B, 1, S, S) float, masks (B, 1, S, S) -> the same shapes, each pair transformed together.

    With `batch` and `rows`: the images are rows `rows` of a global batch of `batch` images, and get those
    rows' draws."""
    n, _, height, width = images.shape
    if height != width:
        raise ValueError(f"augment_batch: square images expected, got {height} x {width}")
    batch, rows = (n, slice(None)) if batch is None else (batch, rows)
    assert rows is not None  # `batch` and `rows` are given together
    grid = sampling_grids(batch, width, cfg, images.device, rows)
    if len(grid) != n:
        raise ValueError(f"augment_batch: {n} images but rows {rows} of a batch of {batch}")
    out_images = F.grid_sample(images.float(), grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    out_masks = F.grid_sample(masks.float(), grid, mode="nearest", padding_mode="zeros", align_corners=False)
    return out_images, out_masks.to(masks.dtype)


def sampling_grids(
    n: int, size: int, cfg: AugmentConfig, device: torch.device | str = "cpu", rows: slice = slice(None)
) -> torch.Tensor:
    """(n, size, size, 2) grid_sample coordinates in [-1, 1] for n independent draws of the transforms
    (the `rows` of them only: every draw is made, the grids of those rows are built)."""

    def uniform(low: float, high: float) -> torch.Tensor:
        return low + (high - low) * torch.rand(n, device=device)

    flip = torch.rand(n, device=device) < cfg.hflip_p
    angle = uniform(-cfg.rotation_deg, cfg.rotation_deg)
    scale = uniform(*cfg.scale)
    crop, centre = crop_draws(n, size, cfg.crop_scale, device)
    displacement = None
    if cfg.elastic_alpha > 0 and cfg.elastic_p > 0:
        applied = torch.rand(n, device=device) < cfg.elastic_p
        noise = torch.rand(int(applied.sum()), 2, size, size, device=device) * 2 - 1  # blurred for those only
        if rows != slice(None):
            noise = noise[applied.cumsum(0)[rows][applied[rows]] - 1]  # the noise of the applied rows among `rows`
            applied = applied[rows]
        kernel = int(8 * cfg.elastic_sigma + 1) | 1  # odd, as torchvision
        displacement = torch.zeros(len(applied), size, size, 2, device=device)
        displacement[applied] = (
            TF.gaussian_blur(noise, [kernel, kernel], [cfg.elastic_sigma] * 2) * cfg.elastic_alpha / size
        ).permute(0, 2, 3, 1)
    return compose_grid(size, flip[rows], angle[rows], scale[rows], crop[rows], centre[rows], displacement)


def crop_draws(
    n: int, size: int, crop_scale: tuple[float, float], device: torch.device | str = "cpu"
) -> tuple[torch.Tensor, torch.Tensor]:
    """n RandomResizedCrop draws as torchvision makes them (v2 RandomResizedCrop._get_params), batched:
    (width, height) as fractions of the side (n, 2) and the crop's centre in grid units (n, 2)."""
    area = crop_scale[0] + (crop_scale[1] - crop_scale[0]) * torch.rand(n, CROP_TRIES, device=device)
    log_ratio = math.log(CROP_RATIO[0]) + math.log(CROP_RATIO[1] / CROP_RATIO[0]) * torch.rand(
        n, CROP_TRIES, device=device
    )
    ratio = torch.exp(log_ratio)
    sides = torch.stack([torch.sqrt(area * ratio), torch.sqrt(area / ratio)], -1).mul(size).round()  # px (w, h)
    fits = ((sides > 0) & (sides <= size)).all(-1)
    first = fits.int().argmax(1)  # the first candidate that fits
    sides = sides[torch.arange(n, device=device), first]
    sides = torch.where(fits.any(1, keepdim=True), sides, float(size))  # none fits: the whole image
    corner = torch.floor(torch.rand(n, 2, device=device) * (size - sides + 1))  # top-left (x, y) px
    return sides / size, (2 * corner + sides) / size - 1


def compose_grid(
    size: int,
    flip: torch.Tensor,
    angle_deg: torch.Tensor,
    scale: torch.Tensor,
    crop: torch.Tensor,
    centre: torch.Tensor,
    displacement: torch.Tensor | None = None,
) -> torch.Tensor:
    """Where each output pixel reads the input, for: a horizontal flip (n,) bool, then a rotation
    (degrees, counter-clockwise as torchvision's) and scaling about the centre (n,), then a crop of
    (width, height) = crop (n, 2) centred at centre (n, 2) (fractions of the half-side) resized back to
    size, then an elastic displacement (n, size, size, 2) in grid units (torchvision's)."""
    n, device = len(flip), flip.device
    steps = torch.linspace(-1 + 1 / size, 1 - 1 / size, size, device=device)  # pixel centres, as torchvision
    y, x = torch.meshgrid(steps, steps, indexing="ij")
    grid = torch.stack([x, y], dim=-1).expand(n, size, size, 2)
    if displacement is not None:  # applied last, so looked up first
        grid = grid + displacement
    grid = grid * crop.view(n, 1, 1, 2) + centre.view(n, 1, 1, 2)
    theta = torch.deg2rad(angle_deg)
    cos, sin = torch.cos(theta) / scale, torch.sin(theta) / scale
    # the input point that lands on p: the inverse rotation, then 1 / s (x right, y down the image)
    inverse = torch.stack([torch.stack([cos, sin], -1), torch.stack([-sin, cos], -1)], -2)
    grid = torch.einsum("nij,nhwj->nhwi", inverse, grid)
    sign = torch.where(flip, -1.0, 1.0)
    return grid * torch.stack([sign, torch.ones_like(sign)], dim=-1).view(n, 1, 1, 2)
