"""The batched augmentation against torchvision's own transforms, on fixed draws and in distribution,
and its random draws."""

import dataclasses
import functools

import pytest
import torch
from scipy.stats import ks_2samp
from torch.nn import functional as F
from torchvision.transforms.v2 import functional as TF

from crlm.data.transforms import augment_batch, compose_grid
from crlm.data.transforms_reference import torchvision_pipeline

SIZE = 32


def _pairs(n=1):
    images = torch.zeros(n, 1, SIZE, SIZE)
    masks = torch.zeros(n, 1, SIZE, SIZE, dtype=torch.uint8)
    images[:, 0, 6:12, 4:20] = 1.0
    masks[:, 0, 6:12, 4:20] = 1
    return images, masks


def _grid(flip=False, angle=0.0, scale=1.0, crop=(1.0, 1.0), centre=(0.0, 0.0), displacement=None):
    return compose_grid(
        SIZE,
        torch.tensor([flip]),
        torch.tensor([angle]),
        torch.tensor([scale]),
        torch.tensor([crop]),
        torch.tensor([centre]),
        displacement,
    )


def _apply(grid, image):
    return F.grid_sample(image, grid, mode="bilinear", align_corners=False)


def test_each_transform_matches_torchvision_on_a_fixed_draw():
    image = _pairs()[0]
    torch.testing.assert_close(_apply(_grid(), image), image)  # identity
    torch.testing.assert_close(_apply(_grid(flip=True), image), TF.horizontal_flip(image))
    for angle, scale in ((30.0, 1.0), (-12.5, 1.1), (0.0, 0.9)):
        theirs = TF.affine(
            image,
            angle=angle,
            translate=[0, 0],
            scale=scale,
            shear=[0.0, 0.0],
            interpolation=TF.InterpolationMode.BILINEAR,
        )
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
    assert out_images[inside].mean() > 0.8  # the bright bar and its mask move together


def test_each_image_of_a_batch_gets_its_own_draw_and_a_seed_repeats_them(tiny_params):
    images, masks = _pairs(8)
    torch.manual_seed(7)
    first = augment_batch(images, masks, tiny_params.augment)
    torch.manual_seed(7)
    second = augment_batch(images, masks, tiny_params.augment)
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])
    assert len({tuple(m.flatten().tolist()) for m in first[1]}) == 8  # eight copies, eight different results


def test_with_every_transform_off_nothing_moves(tiny_params):
    off = dataclasses.replace(
        tiny_params.augment, hflip_p=0.0, rotation_deg=0.0, scale=(1.0, 1.0), crop_scale=(1.0, 1.0), elastic_alpha=0.0
    )
    images, masks = _pairs(4)
    out_images, out_masks = augment_batch(images, masks, off)  # a crop that cannot fit: the whole image
    torch.testing.assert_close(out_images, images)
    assert torch.equal(out_masks, masks)


# --- equal in distribution to torchvision's own per-image pipeline (issue 16) ---------------------------------

DIST_SIZE, DRAWS, ALPHA = 64, 400, 1e-3
# every draw of this crop fits in the image (0.9 x 1.1 < 1); the paper's (0.8, 1.0) does not: see the xfail below
FITTING_CROP = (0.7, 0.9)


def _rectangle(n):
    """An off-centre bright rectangle, wider than tall, above and left of the centre, and its mask."""
    images = torch.zeros(n, 1, DIST_SIZE, DIST_SIZE)
    masks = torch.zeros(n, 1, DIST_SIZE, DIST_SIZE, dtype=torch.uint8)
    images[:, 0, 8:20, 12:36] = 1.0
    masks[:, 0, 8:20, 12:36] = 1
    return images, masks


def _statistics(images, masks):
    """Per output: mask area, the rectangle's centroid x and y (px from the centre), its orientation (rad),
    its left-right mass balance and the image mean. Position and shape are read from the image (bilinear on
    both sides): torchvision resizes masks with floor-nearest, which moves them about half a pixel down-right
    of their images (ours stay on theirs: test below)."""
    image = images[:, 0].float()
    mass = image.sum((1, 2)).clamp(min=1e-6)
    pos = torch.arange(DIST_SIZE) + 0.5 - DIST_SIZE / 2
    x = (image.sum(1) * pos).sum(1) / mass
    y = (image.sum(2) * pos).sum(1) / mass
    xx = (image.sum(1) * pos**2).sum(1) / mass - x**2
    yy = (image.sum(2) * pos**2).sum(1) / mass - y**2
    xy = (image * pos.view(-1, 1) * pos.view(1, -1)).sum((1, 2)) / mass - x * y
    half = DIST_SIZE // 2
    return {
        "mask_area": masks[:, 0].float().sum((1, 2)),
        "centroid_x": x,
        "centroid_y": y,
        "orientation": 0.5 * torch.atan2(2 * xy, xx - yy),
        "left_right_balance": (image[:, :, :half].sum((1, 2)) - image[:, :, half:].sum((1, 2))) / mass,
        "image_mean": image.mean((1, 2)),
    }


@pytest.fixture
def one_thread():
    """Small tensors, hundreds of calls: one thread is the fastest, and much faster on a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _ours(cfg, seed=0):
    torch.manual_seed(seed)
    return _statistics(*augment_batch(*_rectangle(DRAWS), cfg))


@functools.lru_cache(maxsize=4)
def _theirs(cfg, seed=1):
    from torchvision import tv_tensors

    torch.manual_seed(seed)
    pipeline = torchvision_pipeline(cfg, DIST_SIZE)
    image, mask = (t[0] for t in _rectangle(1))
    outs = [pipeline(tv_tensors.Image(image), tv_tensors.Mask(mask)) for _ in range(DRAWS)]
    return _statistics(torch.stack([o[0] for o in outs]), torch.stack([o[1] for o in outs]))


def _p_values(ours, theirs):
    return {name: ks_2samp(ours[name].numpy(), theirs[name].numpy()).pvalue for name in ours}


def test_augmentation_is_distributed_as_torchvisions_per_image_pipeline(tiny_params, one_thread):
    cfg = dataclasses.replace(tiny_params.augment, crop_scale=FITTING_CROP)
    p = _p_values(_ours(cfg), _theirs(cfg))
    assert min(p.values()) > ALPHA, p


def test_the_distribution_test_rejects_other_parameters(tiny_params, one_thread):
    """It has power: the same comparison against torchvision at the right parameters rejects wrong ones."""
    cfg = dataclasses.replace(tiny_params.augment, crop_scale=FITTING_CROP)
    theirs = _theirs(cfg)
    wrong = {
        "rotation doubled": ("orientation", dict(rotation_deg=2 * cfg.rotation_deg)),
        "no flips": ("left_right_balance", dict(hflip_p=0.0)),
        "always flipped": ("centroid_x", dict(hflip_p=1.0)),
        "wider scale": ("mask_area", dict(scale=(0.75, 1.25))),
    }
    for name, (statistic, change) in wrong.items():
        p = _p_values(_ours(dataclasses.replace(cfg, **change)), theirs)
        assert p[statistic] < ALPHA, (name, p)


def test_the_papers_crop_is_distributed_as_torchvisions(tiny_params, one_thread):
    """At crop_scale (0.8, 1.0) a quarter of the (area, ratio) draws do not fit and are redrawn, as
    torchvision does (keeping the whole image instead measured p = 1e-11 on the image mean). The mask's
    pixel count is left out: crops of 0.9-1.0 of the side are upscaled by 1.0-1.1, where the nearest-neighbour
    rule decides whether a row is doubled, and torchvision's rule (floor, half a pixel off its image) and
    grid_sample's (pixel centres, on the image) differ by ~1.5% in area (329 vs 324 px) for the same draws."""
    crop_only = dataclasses.replace(
        tiny_params.augment, hflip_p=0.0, rotation_deg=0.0, scale=(1.0, 1.0), elastic_p=0.0, crop_scale=(0.8, 1.0)
    )
    for cfg in (crop_only, dataclasses.replace(tiny_params.augment, crop_scale=(0.8, 1.0))):
        p = _p_values(_ours(cfg), _theirs(cfg))
        del p["mask_area"]
        assert min(p.values()) > ALPHA, p


def test_masks_move_with_their_images(tiny_params):
    torch.manual_seed(3)
    images, masks = augment_batch(*_rectangle(64), tiny_params.augment)
    from_images, from_masks = _statistics(images, masks), _statistics(masks.float(), masks)
    for axis in ("centroid_x", "centroid_y"):
        offset = from_masks[axis] - from_images[axis]  # px; nearest-neighbour edges: up to half a pixel
        assert offset.abs().max() < 0.6 and abs(offset.mean()) < 0.1, (axis, offset)  # no systematic shift


def _ramps():
    """Channels: the column, the row (linear, so bilinear resampling reproduces them exactly) and ones
    (below 1 wherever a resampling read outside the image)."""
    steps = torch.arange(SIZE, dtype=torch.float32)
    return torch.stack([steps.expand(SIZE, SIZE), steps.view(-1, 1).expand(SIZE, SIZE), torch.ones(SIZE, SIZE)])


def test_the_transforms_compose_in_the_documented_order():
    """Flip, then affine, then crop, then elastic (transforms.py's docstring, torchvision's Compose order): one
    fixed draw of all four through compose_grid reads the input where torchvision's four steps, in that order,
    read it; another order reads it elsewhere."""
    bilinear = TF.InterpolationMode.BILINEAR
    angle, scale, top, left, height, width = 30.0, 1.1, 0, 6, 24, 26  # a crop well off the centre
    rows, cols = torch.meshgrid(torch.linspace(0, 3, SIZE), torch.linspace(0, 3, SIZE), indexing="ij")
    displacement = 0.06 * torch.stack([torch.sin(rows), torch.cos(cols)], dim=-1)[None]  # about 1 px
    steps = {
        "flip": TF.horizontal_flip,
        "affine": lambda t: TF.affine(
            t, angle=angle, translate=[0, 0], scale=scale, shear=[0.0, 0.0], interpolation=bilinear
        ),
        "crop": lambda t: TF.resized_crop(
            t, top, left, height, width, [SIZE, SIZE], interpolation=bilinear, antialias=False
        ),
        "elastic": lambda t: TF.elastic(t, displacement, interpolation=bilinear),
    }
    grid = _grid(
        flip=True,
        angle=angle,
        scale=scale,
        crop=(width / SIZE, height / SIZE),
        centre=((left + width / 2) / (SIZE / 2) - 1, (top + height / 2) / (SIZE / 2) - 1),
        displacement=displacement,
    )
    ours = _apply(grid, _ramps()[None])[0]

    def read_from(order):
        """Where each output pixel read the input (column, row), and where that is known exactly: inside the
        image at every step and away from the output's border (resize clamps at the crop's edge)."""
        out = _ramps()
        for name in order:
            out = steps[name](out)
        exact = (out[2] > 1 - 1e-4) & (ours[2] > 1 - 1e-4)
        exact[:3], exact[-3:], exact[:, :3], exact[:, -3:] = False, False, False, False
        return out[:2], exact

    theirs, exact = read_from(["flip", "affine", "crop", "elastic"])
    assert exact.float().mean() > 0.4
    torch.testing.assert_close(ours[:2][:, exact], theirs[:, exact], atol=1e-3, rtol=0)
    for order in (
        ["flip", "crop", "affine", "elastic"],
        ["elastic", "flip", "affine", "crop"],
        ["affine", "flip", "crop", "elastic"],
    ):
        theirs, exact = read_from(order)
        assert (ours[:2][:, exact] - theirs[:, exact]).abs().max() > 1.0, order  # px


def test_a_seed_repeats_a_batch_and_each_epoch_draws_anew(tiny_params):
    """The loop seeds each epoch with torch.manual_seed(train.seed * 100_003 + epoch)
    (crlm.training.loop._train_epoch): one epoch's seed repeats its batch, another epoch's draws differ."""
    images, masks = _rectangle(8)

    def epoch(seed, number):
        torch.manual_seed(seed * 100_003 + number)
        return augment_batch(images, masks, tiny_params.augment)

    first, again, second = epoch(0, 1), epoch(0, 1), epoch(0, 2)
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    for a, b in zip(first[1], second[1]):
        assert not torch.equal(a, b)  # every image of the batch, a new draw
    assert not torch.equal(epoch(1, 1)[0], first[0])
