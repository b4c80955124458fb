"""torchvision's own per-image pipeline with the augment section's parameters, in crlm.data.transforms'
order: the reference the batched augmentation is tested against (tests/data/test_transforms.py) and timed
against (scripts/bench.py). Training never uses it."""

from __future__ import annotations

from crlm.data.transforms import CROP_RATIO, AugmentConfig


def torchvision_pipeline(cfg: AugmentConfig, size: int):
    """A torchvision.transforms.v2.Compose for one (tv_tensors.Image, tv_tensors.Mask) pair of side `size`;
    masks always get nearest neighbour (torchvision's rule for tv_tensors.Mask)."""
    from torchvision.transforms import v2

    bilinear = v2.InterpolationMode.BILINEAR
    return v2.Compose(
        [
            v2.RandomHorizontalFlip(cfg.hflip_p),
            v2.RandomAffine(degrees=cfg.rotation_deg, scale=cfg.scale, interpolation=bilinear),
            v2.RandomResizedCrop(size, scale=cfg.crop_scale, ratio=CROP_RATIO, interpolation=bilinear, antialias=False),
            v2.RandomApply(
                [v2.ElasticTransform(cfg.elastic_alpha, cfg.elastic_sigma, interpolation=bilinear)], p=cfg.elastic_p
            ),
        ]
    )
