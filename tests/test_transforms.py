"""The batched augmentation against torchvision's own transforms, on fixed draws, and its random draws."""

import dataclasses

import torch
from torch.nn import functional as F
from torchvision.transforms.v2 import functional as TF

from crlm.data.transforms import augment_batch, compose_grid

SIZE = 32


def _pairs(n=1):
    images = torch.zeros(n, 1, SIZE, SIZE)
    masks = torch.zeros(n, 1, SIZE, SIZE, dtype=torch.uint8)
    images[:, 0, 6:12, 4:20] = 1.0
    masks[:, 0, 6:12, 4:20] = 1
    return images, masks


def _grid(flip=False, angle=0.0, scale=1.0, crop=(1.0, 1.0), centre=(0.0, 0.0), displacement=None):
    return compose_grid(SIZE, torch.tensor([flip]), torch.tensor([angle]), torch.tensor([scale]),
                        torch.tensor([crop]), torch.tensor([centre]), displacement)


def _apply(grid, image):
    return F.grid_sample(image, grid, mode="bilinear", align_corners=False)


def test_each_transform_matches_torchvision_on_a_fixed_draw():
    image = _pairs()[0]
    torch.testing.assert_close(_apply(_grid(), image), image)                              # identity
    torch.testing.assert_close(_apply(_grid(flip=True), image), TF.horizontal_flip(image))
    for angle, scale in ((30.0, 1.0), (-12.5, 1.1), (0.0, 0.9)):
        theirs = TF.affine(image, angle=angle, translate=[0, 0], scale=scale, shear=[0.0, 0.0],
                           interpolation=TF.InterpolationMode.BILINEAR)
        torch.testing.assert_close(_apply(_grid(angle=angle, scale=scale), image), theirs, atol=1e-5, rtol=0)
    # a 16 x 16 crop with its top-left pixel at (row 4, column 8), resized back to 32 x 32
    theirs = TF.resized_crop(image, top=4, left=8, height=16, width=16, size=[SIZE, SIZE], antialias=False)
    ours = _apply(_grid(crop=(0.5, 0.5), centre=((8 + 8) / 16 - 1, (4 + 8) / 16 - 1)), image)
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=0)
    displacement = TF.gaussian_blur(torch.rand(1, 2, SIZE, SIZE) * 2 - 1, [9, 9], [1.0, 1.0]) * 4.0 / SIZE
    displacement = displacement.permute(0, 2, 3, 1)
    theirs = TF.elastic(image, displacement, interpolation=TF.InterpolationMode.BILINEAR)
    torch.testing.assert_close(_apply(_grid(displacement=displacement), image), theirs, atol=1e-5, rtol=0)


def test_masks_stay_binary_and_on_their_image(tiny_params):
    torch.manual_seed(0)
    images, masks = _pairs(64)
    out_images, out_masks = augment_batch(images, masks, tiny_params.augment)
    assert out_images.shape == images.shape and out_masks.dtype == masks.dtype
    assert set(out_masks.unique().tolist()) <= {0, 1}
    inside = out_masks.bool() & (out_masks.sum(dim=(1, 2, 3), keepdim=True) > 4)
    assert out_images[inside].mean() > 0.8        # the bright bar and its mask move together


def test_each_image_of_a_batch_gets_its_own_draw_and_a_seed_repeats_them(tiny_params):
    images, masks = _pairs(8)
    torch.manual_seed(7)
    first = augment_batch(images, masks, tiny_params.augment)
    torch.manual_seed(7)
    second = augment_batch(images, masks, tiny_params.augment)
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])
    assert len({tuple(m.flatten().tolist()) for m in first[1]}) == 8    # eight copies, eight different results


def test_with_every_transform_off_nothing_moves(tiny_params):
    off = dataclasses.replace(tiny_params.augment, hflip_p=0.0, rotation_deg=0.0, scale=(1.0, 1.0),
                              crop_scale=(1.0, 1.0), elastic_alpha=0.0)
    images, masks = _pairs(4)
    out_images, out_masks = augment_batch(images, masks, off)    # a crop that cannot fit: the whole image
    torch.testing.assert_close(out_images, images)
    assert torch.equal(out_masks, masks)
