import dataclasses

import torch

from crlm.data.transforms import augment_pair, training_transform


def _pair():
    image = torch.zeros(1, 32, 32)
    mask = torch.zeros(1, 32, 32, dtype=torch.uint8)
    image[0, 8:16, 4:10] = 1.0
    mask[0, 8:16, 4:10] = 1
    return image, mask


def test_flip_moves_image_and_mask_together(tiny_params):
    cfg = dataclasses.replace(tiny_params.augment, hflip_p=1.0, rotation_deg=0.0, scale=(1.0, 1.0),
                              crop_scale=(1.0, 1.0), elastic_alpha=0.0)
    image, mask = _pair()
    out_image, out_mask = augment_pair(training_transform(cfg, 32), image, mask)
    assert torch.equal(out_mask, mask.flip(-1))
    assert torch.allclose(out_image, image.flip(-1))


def test_full_pipeline_keeps_mask_binary_and_aligned(tiny_params):
    torch.manual_seed(0)
    transform = training_transform(tiny_params.augment, 32)
    image, mask = _pair()
    for _ in range(20):
        out_image, out_mask = augment_pair(transform, image, mask)
        assert out_image.shape == (1, 32, 32) and out_mask.shape == (1, 32, 32)
        assert set(out_mask.unique().tolist()) <= {0, 1}
        if out_mask.sum() > 4:  # the bright square and its mask stay on top of each other
            assert out_image[out_mask.bool()].mean() > 0.5


def test_seed_makes_augmentation_repeatable(tiny_params):
    transform = training_transform(tiny_params.augment, 32)
    image, mask = _pair()
    torch.manual_seed(7)
    a = augment_pair(transform, image, mask)
    torch.manual_seed(7)
    b = augment_pair(transform, image, mask)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
