"""The explain stage's parts: Grad-CAM (captum) of a network whose logit depends on a known region, the
localisation scores on hand-made maps with known answers, determinism, and every arch end to end on tiny
untrained fold models."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from crlm.archs import ARCHS
from crlm.config import params_from_dict
from crlm.data.dataset import ImageSet
from crlm.evaluation.overlay import overlay_rows
from crlm.explain.cam import ensemble_cam, grad_cam, layer_name, normalise
from crlm.explain.localisation import (area_share, chance_levels, grown, image_scores, localisation_summary,
                                       mass_share, pointing_hit)
from crlm.explain.report import report_section
from crlm.explain.run import explain_archs
from crlm.models import ModelOutput, build_model
from crlm.models.model_file import load_model, save_model
from tests.conftest import tiny_params_dict


# ------------------------------------------------------------------ a network with a known answer


class BlobNet(nn.Module):
    """Channel 0 responds to bright pixels, channel 1 to dark ones; each is a 2x2 mean at stride 2 (an 8x8
    grid on a 16 px image). The logit is the global mean of channel 0 only (channel 1's weight is 0), so on
    an image that is dark but for a bright blob, the logit depends on the blob's region alone."""

    def __init__(self, dark_weight: float = 0.0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 2, stride=2)
        with torch.no_grad():
            self.conv.weight.copy_(torch.stack([torch.full((1, 2, 2), 0.25), torch.full((1, 2, 2), -0.25)]))
            self.conv.bias.copy_(torch.tensor([0.0, 1.0]))
        self.act = nn.ReLU()
        self.weights = torch.tensor([4.0, dark_weight])

    def forward(self, x: torch.Tensor) -> ModelOutput:
        features = self.act(self.conv(x))
        pooled = features.mean(dim=(2, 3))
        return ModelOutput(logit=pooled @ self.weights - 1.0, seg_logits=None, embedding=pooled)

    def cam_layer(self) -> nn.Module:
        return self.act


def blob_image(size: int = 16) -> tuple[np.ndarray, np.ndarray]:
    image = np.zeros((size, size), np.float32)
    mask = np.zeros((size, size), bool)
    mask[4:8, 8:12] = True
    image[mask] = 1.0
    return image, mask


def test_grad_cam_concentrates_on_the_region_the_logit_depends_on():
    image, mask = blob_image()
    cams, grid = grad_cam(BlobNet(), image[None])
    assert grid == (8, 8)
    assert cams.shape == (1, 16, 16)
    assert cams.max() == pytest.approx(1.0) and cams.min() >= 0
    share = mass_share(cams[0], mask)
    assert share > 0.6 > area_share(mask) == pytest.approx(16 / 256)   # far above chance (0.0625)
    assert pointing_hit(cams[0], mask, 0) == 1.0
    # the blob's own 2x2 cells hold the most: the map is higher inside than anywhere outside
    assert cams[0][mask].min() > cams[0][~grown(mask, 2)].max()


def test_a_channel_the_logit_ignores_does_not_show():
    """Channel 1 fires on the dark background; with weight 0 it gets no Grad-CAM weight, while with a
    positive weight the map spreads over the background and the share falls."""
    image, mask = blob_image()
    ignored = mass_share(grad_cam(BlobNet(dark_weight=0.0), image[None])[0][0], mask)
    counted = mass_share(grad_cam(BlobNet(dark_weight=4.0), image[None])[0][0], mask)
    assert counted < 0.5 * ignored


def test_grad_cam_is_deterministic_and_independent_of_the_other_images():
    rng = np.random.default_rng(0)
    images = rng.random((5, 16, 16)).astype(np.float32)
    a, _ = grad_cam(BlobNet(dark_weight=1.0), images)
    b, _ = grad_cam(BlobNet(dark_weight=1.0), images)
    assert np.array_equal(a, b)
    alone, _ = grad_cam(BlobNet(dark_weight=1.0), images[2:3])
    np.testing.assert_allclose(alone[0], a[2], atol=1e-6)


def test_a_model_without_cam_layer_is_refused_naming_its_class():
    class NoLayer(nn.Module):
        def forward(self, x):
            return ModelOutput(logit=x.mean(dim=(1, 2, 3)), seg_logits=None, embedding=x.flatten(1))

    with pytest.raises(TypeError, match="NoLayer has no cam_layer"):
        grad_cam(NoLayer(), np.zeros((1, 8, 8), np.float32))


def test_normalise_divides_by_each_maximum_and_keeps_empty_maps_zero():
    maps = np.array([[[0.0, 2.0], [1.0, 4.0]], [[0.0, 0.0], [0.0, 0.0]]])
    np.testing.assert_array_equal(normalise(maps), [[[0, 0.5], [0.25, 1]], [[0, 0], [0, 0]]])


# ------------------------------------------------------------------ scores on hand-made maps


def test_mass_share_by_hand():
    cam = np.array([[1.0, 0.0], [0.0, 3.0]])
    assert mass_share(cam, np.array([[1, 0], [0, 0]], bool)) == 0.25
    assert mass_share(cam, np.array([[0, 0], [0, 1]], bool)) == 0.75
    assert mass_share(np.array([[-5.0, 1.0]]), np.array([[1, 0]], bool)) == 0.0   # negative values are not mass
    assert mass_share(np.zeros((2, 2)), np.ones((2, 2), bool)) is None
    uniform = np.ones((10, 10))
    mask = np.zeros((10, 10), bool)
    mask[2:5, 3:7] = True
    assert mass_share(uniform, mask) == pytest.approx(area_share(mask)) == pytest.approx(0.12)   # chance


def test_pointing_game_by_hand():
    mask = np.zeros((7, 7), bool)
    mask[2:4, 2:4] = True
    cam = np.zeros((7, 7))
    cam[3, 3] = 1.0                              # inside
    assert pointing_hit(cam, mask, 0) == 1.0
    cam = np.zeros((7, 7))
    cam[4, 4] = 1.0                              # diagonal neighbour of (3, 3)
    assert pointing_hit(cam, mask, 0) == 0.0
    assert pointing_hit(cam, mask, 1) == 1.0     # a tolerance of 1 px includes the diagonal
    cam = np.zeros((7, 7))
    cam[5, 3] = 1.0                              # 2 px below
    assert pointing_hit(cam, mask, 1) == 0.0
    assert pointing_hit(cam, mask, 2) == 1.0
    cam = np.zeros((7, 7))
    cam[2, 2] = cam[6, 6] = cam[0, 6] = cam[6, 0] = 0.9   # four tied maxima, one inside
    cam[5, 5] = 0.5
    assert pointing_hit(cam, mask, 0) == 0.25
    assert pointing_hit(np.zeros((7, 7)), mask, 1) is None


def test_grown_mask_is_a_square_of_side_2t_plus_1():
    mask = np.zeros((9, 9), bool)
    mask[4, 4] = True
    assert grown(mask, 0).sum() == 1
    assert grown(mask, 1).sum() == 9
    assert grown(mask, 2).sum() == 25
    assert area_share(grown(mask, 1)) == pytest.approx(9 / 81)
    assert not grown(np.zeros((3, 3), bool), 1).any()


def test_summary_means_leave_empty_maps_out_and_count_them():
    masks = np.zeros((3, 4, 4), bool)
    masks[:, 0, 0] = True                          # each tumour covers 1 of 16 px
    cams = np.zeros((3, 4, 4))
    cams[0, 0, 0] = 1.0                            # all mass inside, peak inside
    cams[1, 0, 0], cams[1, 3, 3] = 1.0, 3.0        # a quarter inside, peak outside
    scores = image_scores(cams, masks, 0)          # cams[2]: empty
    np.testing.assert_array_equal(scores["mass_share"], [1.0, 0.25, np.nan])
    np.testing.assert_array_equal(scores["pointing_hit"], [1.0, 0.0, np.nan])
    summary = localisation_summary(scores, np.array(["a", "b", "c"]), n_boot=200, seed=0, level=0.95)
    assert summary["mass_share"]["value"] == pytest.approx(0.625)
    assert summary["mass_share_minus_chance"]["value"] == pytest.approx(0.625 - 1 / 16)
    assert summary["pointing_hit_rate"]["value"] == pytest.approx(0.5)
    assert summary["empty_maps"] == 1
    assert 0.25 <= summary["mass_share"]["ci_low"] <= 0.625 <= summary["mass_share"]["ci_high"] <= 1.0
    assert chance_levels(scores) == {"mass_share": pytest.approx(1 / 16), "pointing_hit_rate": pytest.approx(1 / 16)}
    assert chance_levels(image_scores(cams, masks, 1))["pointing_hit_rate"] == pytest.approx(4 / 16)


# ------------------------------------------------------------------ every arch, end to end


def discs(n: int = 12, size: int = 32, seed: int = 0) -> ImageSet:
    """Bright discs (tumour) on a dark textured background in every other image; 2 images per patient."""
    rng = np.random.default_rng(seed)
    images = rng.normal(0.3, 0.03, (n, size, size)).astype(np.float32)
    tumour = np.zeros((n, size, size), np.uint8)
    yy, xx = np.mgrid[:size, :size]
    for i in range(0, n, 2):
        cy, cx = rng.integers(8, size - 8, 2)
        disc = (yy - cy) ** 2 + (xx - cx) ** 2 <= 9 + i
        images[i][disc] += 0.5
        tumour[i][disc] = 1
    manifest = pd.DataFrame({"image_id": [f"img-{i:02d}" for i in range(n)],
                             "patient_id": [f"p-{i // 2}" for i in range(n)],
                             "label": (tumour.reshape(n, -1).sum(1) > 0).astype(int),
                             "tumour_area_px": tumour.reshape(n, -1).sum(1)})
    return ImageSet(manifest, np.clip(images, 0, 1), tumour)


@pytest.fixture(scope="module")
def fold_models(tmp_path_factory):
    """Two untrained fold models of every arch, saved as the train stage saves them."""
    root = tmp_path_factory.mktemp("models")
    cfg = params_from_dict(tiny_params_dict()).model
    for arch in ARCHS:
        for fold in range(2):
            torch.manual_seed(fold)
            save_model(root / arch / str(fold) / "model.pt", arch, cfg, build_model(arch, cfg))
    return root


def test_every_arch_names_its_cam_layer():
    cfg = params_from_dict(tiny_params_dict()).model
    for arch in ARCHS:
        model = build_model(arch, cfg)
        assert isinstance(model.cam_layer(), nn.Module)
        assert layer_name(model)


def test_explain_every_arch_on_the_overlay_images_deterministically(fold_models):
    params = params_from_dict(tiny_params_dict())
    params = dataclasses.replace(params, stats=dataclasses.replace(params.stats, n_boot=20))
    data = discs()
    test_patients = ["p-1", "p-2", "p-3", "p-4"]
    first = explain_archs(params, data, test_patients, 2, fold_models)
    second = explain_archs(params, data, test_patients, 2, fold_models)
    assert first.metrics == second.metrics
    for arch in ARCHS:
        assert np.array_equal(first.cams[arch], second.cams[arch])

    test = data.indices_of(test_patients)
    _, rows = overlay_rows(data.manifest.iloc[test], data.manifest, params.evaluate.overlay_images)
    assert np.array_equal(first.rows, rows)
    m = first.metrics
    positives = test[data.manifest["label"].to_numpy()[test] == 1]
    assert (m["images"], m["patients"]) == (len(positives), 4)
    assert m["chance"]["mass_share"] == pytest.approx(round(data.tumour[positives].mean(), 4))
    for arch in ARCHS:
        assert set(m[arch]) == {"layer", "layer_grid", "mass_share", "mass_share_minus_chance",
                                "pointing_hit_rate", "empty_maps"}
        assert first.cams[arch].shape == (len(rows), 32, 32)
        assert 0 <= first.cams[arch].min() and first.cams[arch].max() <= 1
        assert first.shares[arch].shape == (len(rows),)
    lines = report_section(params, m)
    assert sum(line.startswith("| ") for line in lines) == 2 + len(ARCHS)   # header, one row per arch, chance
    assert any("cam.png" in line for line in lines)


def test_the_ensemble_is_the_normalised_mean_of_the_fold_maps(fold_models):
    images = discs().images[:3]
    paths = [fold_models / "unet" / str(k) / "model.pt" for k in range(2)]
    per_fold = [grad_cam(load_model(p), images)[0] for p in paths]
    ensemble, layer, grid = ensemble_cam(paths, images, "unet")
    np.testing.assert_allclose(ensemble, normalise((per_fold[0] + per_fold[1]) / 2), atol=1e-6)
    assert layer == "decoder" and grid == (32, 32)
