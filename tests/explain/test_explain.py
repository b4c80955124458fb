"""The explain stage's parts: Grad-CAM (captum) of a network whose logit depends on a known region, the
localisation scores and baselines on hand-made maps with known answers, the model-randomisation check on a
briefly trained tiny model, determinism, and every arch end to end on tiny untrained fold models."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from crlm.archs import ARCHS
from crlm.data.dataset import ImageSet
from crlm.evaluation.overlay import overlay_rows
from crlm.explain import cam as cam_module
from crlm.explain import sanity as sanity_module
from crlm.explain.cam import EnsembleSum, ensemble_cam, ensemble_of, fold_cams, grad_cam, layer_name, normalise
from crlm.explain.localisation import (
    area_share,
    centre_prior,
    chance_levels,
    grown,
    image_scores,
    liver_share,
    localisation_summary,
    mass_share,
    pointing_hit,
)
from crlm.explain.report import report_section
from crlm.explain.run import explain_archs, fold_maps
from crlm.explain.sanity import (
    SEED,
    map_similarity,
    randomisation_check,
    randomised_model,
    randomised_similarity,
    similarity_summary,
    spearman,
)
from crlm.models.base import ModelOutput
from crlm.models.model_file import load_model, save_model
from crlm.models.registry import build_model, model_kwargs
from crlm.params import params_from_dict
from crlm.stats.proportion import korn_graubard
from tests.conftest import tiny_params_dict
from tests.factories import disc_set, save_fold_models

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
    assert share > 0.6 > area_share(mask) == pytest.approx(16 / 256)  # far above chance (0.0625)
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
    assert mass_share(np.array([[-5.0, 1.0]]), np.array([[1, 0]], bool)) == 0.0  # negative values are not mass
    assert mass_share(np.zeros((2, 2)), np.ones((2, 2), bool)) is None
    uniform = np.ones((10, 10))
    mask = np.zeros((10, 10), bool)
    mask[2:5, 3:7] = True
    assert mass_share(uniform, mask) == pytest.approx(area_share(mask)) == pytest.approx(0.12)  # chance


def test_pointing_game_by_hand():
    mask = np.zeros((7, 7), bool)
    mask[2:4, 2:4] = True
    cam = np.zeros((7, 7))
    cam[3, 3] = 1.0  # inside
    assert pointing_hit(cam, mask, 0) == 1.0
    cam = np.zeros((7, 7))
    cam[4, 4] = 1.0  # diagonal neighbour of (3, 3)
    assert pointing_hit(cam, mask, 0) == 0.0
    assert pointing_hit(cam, mask, 1) == 1.0  # a tolerance of 1 px includes the diagonal
    cam = np.zeros((7, 7))
    cam[5, 3] = 1.0  # 2 px below
    assert pointing_hit(cam, mask, 1) == 0.0
    assert pointing_hit(cam, mask, 2) == 1.0
    cam = np.zeros((7, 7))
    cam[2, 2] = cam[6, 6] = cam[0, 6] = cam[6, 0] = 0.9  # four tied maxima, one inside
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
    masks[:, 0, 0] = True  # each tumour covers 1 of 16 px
    cams = np.zeros((3, 4, 4))
    cams[0, 0, 0] = 1.0  # all mass inside, peak inside
    cams[1, 0, 0], cams[1, 3, 3] = 1.0, 3.0  # a quarter inside, peak outside
    scores = image_scores(cams, masks, 0)  # cams[2]: empty
    np.testing.assert_array_equal(scores["mass_share"], [1.0, 0.25, np.nan])
    np.testing.assert_array_equal(scores["pointing_hit"], [1.0, 0.0, np.nan])
    summary = localisation_summary(scores, np.array(["a", "b", "c"]), n_boot=200, seed=0, level=0.95)
    assert summary["mass_share"]["value"] == pytest.approx(0.625)
    assert summary["mass_share_minus_chance"]["value"] == pytest.approx(0.625 - 1 / 16)
    assert summary["pointing_hit_rate"]["value"] == pytest.approx(0.5)
    assert summary["empty_maps"] == 1
    assert 0.25 <= summary["mass_share"]["ci_low"] <= 0.625 <= summary["mass_share"]["ci_high"] <= 1.0
    assert chance_levels(scores) == {
        "whole_image": {"mass_share": pytest.approx(1 / 16), "pointing_hit_rate": pytest.approx(1 / 16)}
    }
    assert chance_levels(image_scores(cams, masks, 1))["whole_image"]["pointing_hit_rate"] == pytest.approx(4 / 16)


def liver_case() -> tuple[np.ndarray, np.ndarray]:
    """A 10 x 10 image, the liver a 4 x 5 rectangle (rows 2-5, columns 2-6), the tumour 2 px inside it."""
    liver = np.zeros((10, 10), bool)
    liver[2:6, 2:7] = True
    tumour = np.zeros((10, 10), bool)
    tumour[3, 3:5] = True
    return tumour, liver


def test_liver_chance_by_hand():
    tumour, liver = liver_case()
    assert liver_share(tumour, liver) == pytest.approx(2 / 20)
    # grown by 1 px: rows 2-4, columns 2-5, all in the liver: 12 of its 20 px
    assert liver_share(grown(tumour, 1), liver) == pytest.approx(12 / 20)
    # what a map uniform over the liver scores: the same, its maxima tied over the whole liver
    uniform = liver.astype(float)
    assert mass_share(uniform, tumour) == pytest.approx(2 / 20)
    assert pointing_hit(uniform, tumour, 1) == pytest.approx(12 / 20)
    # a tumour pixel outside the liver is not part of the liver's share
    outside = tumour.copy()
    outside[8, 8] = True
    assert liver_share(outside, liver) == pytest.approx(2 / 20)
    assert liver_share(tumour, np.zeros((10, 10), bool)) is None


def test_liver_chance_per_image_falls_back_to_the_whole_image_for_an_empty_liver_and_counts_it():
    tumour, liver = liver_case()
    cams = np.zeros((2, 10, 10))
    cams[:, 3, 3] = 1.0  # all mass on the tumour, peak on it
    cams[:, 0, 0] = 1.0  # half of it outside, a tied peak outside
    masks, livers = np.stack([tumour, tumour]), np.stack([liver, np.zeros((10, 10), bool)])
    scores = image_scores(cams, masks, 1, livers)
    np.testing.assert_allclose(scores["liver_share"], [2 / 20, 2 / 100])
    np.testing.assert_allclose(scores["grown_liver_share"], [12 / 20, 12 / 100])
    np.testing.assert_array_equal(scores["empty_liver"], [False, True])
    levels = chance_levels(scores)["liver"]
    assert levels["mass_share"] == pytest.approx((0.1 + 0.02) / 2)
    assert levels["pointing_hit_rate"] == pytest.approx((0.6 + 0.12) / 2)
    assert levels["liver_area_share"] == pytest.approx((0.2 + 0.0) / 2)
    assert levels["empty_liver_masks"] == 1
    assert levels["tumour_px_outside_liver"] == 2  # the second image's tumour, its liver empty
    summary = localisation_summary(scores, np.array(["a", "b"]), n_boot=50, seed=0, level=0.95)
    # each map: mass share 0.5, pointing hit 0.5 (one of two tied peaks inside)
    assert summary["mass_share_minus_liver_chance"]["value"] == pytest.approx(((0.5 - 0.1) + (0.5 - 0.02)) / 2)
    assert summary["pointing_hit_rate_minus_liver_chance"]["value"] == pytest.approx(((0.5 - 0.6) + (0.5 - 0.12)) / 2)
    with pytest.raises(ValueError, match="1 liver masks for 2"):
        image_scores(cams, masks, 1, livers[:1])


def test_centre_prior_mass_share_against_a_direct_loop():
    size, sigma = 16, 0.25 * 16
    prior = centre_prior((size, size))
    mask = np.zeros((size, size), bool)
    mask[3:9, 5:12] = True
    inside = total = 0.0
    for i in range(size):
        for j in range(size):
            value = np.exp(-((i - 7.5) ** 2 + (j - 7.5) ** 2) / (2 * sigma**2))
            total += value
            inside += value * mask[i, j]
    assert mass_share(prior, mask) == pytest.approx(inside / total, rel=1e-12)
    # an even side: four pixels tie for the peak at the centre; a mask on one of them hits a quarter
    corner = np.zeros((size, size), bool)
    corner[7, 8] = True
    assert pointing_hit(prior, corner, 0) == 0.25
    assert pointing_hit(prior, corner, 1) == 1.0


def test_spearman_of_a_map_with_itself_is_one_and_of_a_constant_map_undefined():
    rng = np.random.default_rng(0)
    maps = rng.random((3, 8, 8))
    np.testing.assert_allclose(map_similarity(maps, maps), 1.0)
    assert spearman(maps[0], maps[0] ** 3) == pytest.approx(1.0)  # a rank correlation: monotone is 1
    assert spearman(maps[0], -maps[0]) == pytest.approx(-1.0)
    assert spearman(maps[0], np.zeros((8, 8))) is None
    summary = similarity_summary(np.array([0.2, -0.6, np.nan]), fold_models=1)
    assert summary["spearman_mean"] == pytest.approx(-0.2)
    assert summary["spearman_abs_mean"] == pytest.approx(0.4)
    assert (summary["passes"], summary["images"], summary["undefined"]) == (True, 2, 1)
    assert similarity_summary(np.array([0.9, -0.6]), fold_models=1)["passes"] is False


@pytest.fixture(scope="module")
def trained_clmnet(tmp_path_factory):
    """A tiny CLM-Net initialised under seed 0, then trained to call the discs (30 Adam steps), saved."""
    cfg = params_from_dict(tiny_params_dict()).model
    data = discs(n=24)
    x = torch.from_numpy(data.images).unsqueeze(1)
    y = torch.from_numpy(data.manifest["label"].to_numpy()).float()
    torch.manual_seed(0)
    model = build_model("clmnet", model_kwargs(cfg, "clmnet")).train()
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(30):
        optimiser.zero_grad()
        nn.functional.binary_cross_entropy_with_logits(model(x).logit, y).backward()
        optimiser.step()
    path = tmp_path_factory.mktemp("trained") / "clmnet" / "0" / "model.pt"
    save_model(path, "clmnet", model_kwargs(cfg, "clmnet"), model)
    return path, data


def test_the_randomised_model_is_the_arch_s_own_initialisation_without_the_saved_weights(trained_clmnet, tiny_params):
    path, _ = trained_clmnet
    cfg = tiny_params.model
    torch.manual_seed(0)
    fresh = build_model("clmnet", model_kwargs(cfg, "clmnet")).state_dict()
    torch.manual_seed(123)
    before = torch.rand(3)
    torch.manual_seed(123)
    randomised = randomised_model(path, "clmnet", seed=0).state_dict()
    assert torch.equal(torch.rand(3), before)  # the global RNG is left as it was
    trained = load_model(path).state_dict()
    assert all(torch.equal(randomised[k], fresh[k]) for k in fresh)
    learned = [k for k in trained if trained[k].is_floating_point() and not torch.equal(trained[k], fresh[k])]
    assert learned and not any(torch.equal(randomised[k], trained[k]) for k in learned)


def test_the_trained_maps_differ_from_the_randomised_ones_and_pass_the_check(trained_clmnet):
    path, data = trained_clmnet
    images = data.images[data.manifest["label"].to_numpy() == 1]
    trained = grad_cam(load_model(path), images)[0]
    result = randomisation_check([trained], [path], images, "clmnet")
    assert (result["images"], result["undefined"], result["fold_models"]) == (len(images), 0, 1)
    assert result["spearman_abs_mean"] < 0.5 and result["passes"] is True
    # the same check of the trained maps against themselves fails
    assert similarity_summary(map_similarity(trained, trained), 1) == {
        **result,
        "spearman_mean": 1.0,
        "spearman_abs_mean": 1.0,
        "passes": False,
    }


def test_the_report_says_which_maps_beat_the_liver_level_which_fall_below_and_which_fail_randomisation(tiny_params):
    def ci(value, low, high):
        return {"value": value, "ci_low": low, "ci_high": high, "ci_level": 0.95, "n_boot_valid": 50}

    def arch(minus_liver, minus_centre, spearman_abs, undefined=0):
        return {
            "layer": "decoder",
            "layer_grid": [32, 32],
            "mass_share": ci(0.3, 0.2, 0.4),
            "mass_share_minus_chance": ci(0.2, 0.1, 0.3),
            "mass_share_minus_liver_chance": minus_liver,
            "mass_share_minus_centre_prior": minus_centre,
            "pointing_hit_rate": ci(0.5, 0.4, 0.6),
            "pointing_hit_rate_minus_liver_chance": minus_liver,
            "empty_maps": 0,
            "randomisation": {
                "spearman_mean": spearman_abs,
                "spearman_abs_mean": spearman_abs,
                "threshold": 0.5,
                "passes": spearman_abs < 0.5,
                "images": 10 - undefined,
                "undefined": undefined,
                "fold_models": 1,
                "seed": 0,
            },
        }

    cam = {
        "images": 10,
        "patients": 3,
        "pointing_tolerance_px": 1,
        "chance": {
            "whole_image": {"mass_share": 0.04, "pointing_hit_rate": 0.06},
            "liver": {
                "mass_share": 0.09,
                "pointing_hit_rate": 0.13,
                "liver_area_share": 0.45,
                "tumour_px_outside_liver": 0,
                "empty_liver_masks": 0,
            },
        },
        "centre_prior": {
            "sigma_fraction": 0.25,
            "sigma_px": 8.0,
            "mass_share": ci(0.07, 0.05, 0.09),
            "mass_share_minus_liver_chance": ci(-0.02, -0.03, -0.01),
            "pointing_hit_rate": ci(0.07, 0.02, 0.12),
            "pointing_hit_rate_minus_liver_chance": ci(-0.06, -0.08, -0.04),
        },
        "vgg16": arch(ci(-0.017, -0.028, -0.007), ci(0.004, -0.003, 0.011), 0.7),
        "deeplabv3": arch(ci(0.01, -0.01, 0.03), ci(-0.05, -0.07, -0.02), 0.2, undefined=4),
        "unet": arch(ci(0.56, 0.53, 0.58), ci(0.58, 0.54, 0.60), 0.1),
    }
    text = " ".join(report_section(tiny_params, cam))
    assert "The maps of U-Net put more of their mass on the tumour than a map uniform over the liver" in text
    assert (
        "The maps of VGG16 (-0.017 [-0.028, -0.007]) put less of their mass on the tumour than a map uniform "
        "over the liver (the CI lies below 0)"
    ) in text
    assert (
        "The mass shares of DeepLab-v3 (0.010 [-0.010, 0.030]) are not distinguishable from a map uniform over "
        "the liver's (the CI holds 0)"
    ) in text
    assert (
        "the maps of U-Net put more of their mass on the tumour than it (paired CI above 0); those of "
        "DeepLab-v3 (-0.050 [-0.070, -0.020]) less (CI below 0); those of VGG16 (0.004 [-0.003, 0.011]) "
        "not distinguishably more or less"
    ) in text
    assert "The maps of DeepLab-v3 (0.20) and U-Net (0.10) change when the weights are randomised" in text
    assert "The maps of VGG16 (0.70) stay alike" in text and "fail the check" in text
    assert "left out: DeepLab-v3 4 of 10." in text
    assert "every tumour lies in it" in text
    assert "| centre prior (a Gaussian, sigma 8 px) | | 0.070 [0.050, 0.090] | -0.020 [-0.030, -0.010] |" in text
    assert "| chance: a map uniform over the liver | | 0.090 | 0 | 0.130 | 0 |" in text
    assert "| chance: a map uniform over the image | | 0.040 | -0.050 | 0.060 | -0.070 |" in text


# ------------------------------------------------------------------ every arch, end to end


def discs(n: int = 12, size: int = 32, seed: int = 0) -> ImageSet:
    """Bright discs (tumour) on a dark textured background in every other image; 2 images per patient."""
    return disc_set(
        n,
        size,
        seed,
        mean=0.3,
        sd=0.03,
        contrast=0.5,
        radius_sq=9,
        grow=1,
        patient=lambda i: f"p-{i // 2}",
        image_id=lambda i: f"img-{i:02d}",
        area_column=True,
    )


def liver_masks(data: ImageSet) -> np.ndarray:
    """A liver for every image of discs(): a centred square of half the side, joined by each image's
    tumour so that every tumour lies in it."""
    liver = np.zeros(data.tumour.shape, np.uint8)
    size = liver.shape[-1]
    liver[:, size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = 1
    return liver | data.tumour


@pytest.fixture(scope="module")
def fold_models(tmp_path_factory):
    """Two untrained fold models of every arch, saved as the train stage saves them."""
    root = tmp_path_factory.mktemp("models")
    for arch in ARCHS:
        save_fold_models(root, arch, tiny_params_dict())
    return root


def test_every_arch_names_its_cam_layer(tiny_params):
    cfg = tiny_params.model
    for arch in ARCHS:
        model = build_model(arch, model_kwargs(cfg, arch))
        assert isinstance(model.cam_layer(), nn.Module)
        assert layer_name(model)


def test_explain_every_arch_on_the_overlay_images_deterministically(fold_models, tiny_params):
    params = tiny_params
    params = dataclasses.replace(params, stats=dataclasses.replace(params.stats, n_boot=20))
    data = discs()
    test_patients = ["p-1", "p-2", "p-3", "p-4"]
    liver = liver_masks(data)
    first = explain_archs(params, data, liver, test_patients, ["0", "1"], fold_models)
    second = explain_archs(params, data, liver, test_patients, ["0", "1"], fold_models)
    assert first.metrics == second.metrics
    for arch in ARCHS:
        assert np.array_equal(first.cams[arch], second.cams[arch])

    test = data.indices_of(test_patients)
    _, rows = overlay_rows(data.manifest.iloc[test], data.manifest, params.evaluate.overlay_images)
    assert np.array_equal(first.rows, rows)
    m = first.metrics
    positives = test[data.manifest["label"].to_numpy()[test] == 1]
    assert (m["images"], m["patients"]) == (len(positives), 4)
    assert m["chance"]["whole_image"]["mass_share"] == pytest.approx(round(data.tumour[positives].mean(), 4))
    tumour, inside = data.tumour[positives].astype(bool), liver[positives].astype(bool)
    by_hand = ((tumour & inside).sum((1, 2)) / inside.sum((1, 2))).mean()
    assert m["chance"]["liver"]["mass_share"] == pytest.approx(round(by_hand, 4))
    assert m["chance"]["liver"]["empty_liver_masks"] == 0
    assert m["centre_prior"]["sigma_px"] == 8
    assert 0 < m["centre_prior"]["mass_share"]["value"] < 1
    for arch in ARCHS:
        assert set(m[arch]) == {
            "layer",
            "layer_grid",
            "mass_share",
            "mass_share_minus_chance",
            "mass_share_minus_liver_chance",
            "mass_share_minus_centre_prior",
            "pointing_hit_rate",
            "pointing_hit_rate_minus_liver_chance",
            "empty_maps",
            "randomisation",
        }
        assert m[arch]["randomisation"]["fold_models"] == 2
        assert m[arch]["randomisation"]["images"] + m[arch]["randomisation"]["undefined"] == 2 * len(positives)
        assert first.cams[arch].shape == (len(rows), 32, 32)
        assert 0 <= first.cams[arch].min() and first.cams[arch].max() <= 1
        assert first.shares[arch].shape == (len(rows),)
    lines = report_section(params, m)
    # header and rule, one row per arch, the centre prior and the two chance levels
    assert sum(line.startswith("| ") for line in lines) == 1 + len(ARCHS) + 3
    assert any("cam.png" in line for line in lines)
    with pytest.raises(ValueError, match="liver masks of shape"):
        explain_archs(params, data, liver[:, :16], test_patients, ["0", "1"], fold_models)


def test_the_ensemble_is_the_normalised_mean_of_the_fold_maps(fold_models):
    images = discs().images[:3]
    paths = [fold_models / "unet" / str(k) / "model.pt" for k in range(2)]
    per_fold = [grad_cam(load_model(p), images)[0] for p in paths]
    ensemble, layer, grid = ensemble_cam(paths, images, "unet")
    np.testing.assert_allclose(ensemble, normalise((per_fold[0] + per_fold[1]) / 2), atol=1e-6)
    assert layer == "decoder" and grid == (32, 32)


def test_the_running_ensemble_sum_is_ensemble_of_exactly():
    """Folds added a block of images at a time (in any blocks, fold after fold) give ensemble_of's maps, bit
    for bit, of every image and of any subset."""
    rng = np.random.default_rng(2)
    folds = [normalise(rng.random((11, 6, 5)).astype(np.float32) ** (k + 1)) for k in range(3)]
    folds[1][4] = 0.0  # an empty map
    running = EnsembleSum(11, (6, 5))
    for k, maps in enumerate(folds):
        edges = [0, *sorted(rng.choice(np.arange(1, 11), size=k + 1, replace=False)), 11]
        for start, stop in zip(edges, edges[1:]):
            running.add(slice(start, stop), maps[start:stop])
        running.fold_done()
    whole = ensemble_of(folds)
    assert running.maps(slice(None)).dtype == whole.dtype == np.float32
    assert np.array_equal(running.maps(slice(None)), whole)
    assert np.array_equal(running.maps(np.array([7, 2, 4])), whole[[7, 2, 4]])
    with pytest.raises(ValueError, match="no fold"):
        EnsembleSum(2, (6, 5)).maps(slice(None))
    empty = EnsembleSum(0, (6, 5))  # no test image: an empty sum, not a zero-length map that fails
    empty.fold_done()
    assert empty.maps(slice(None)).shape == (0, 6, 5)


def test_the_running_sum_is_kept_in_a_file_not_in_private_memory():
    running = EnsembleSum(3, (4, 4))
    assert isinstance(running.total.base, np.memmap) or isinstance(running.total, np.memmap)


@pytest.mark.parametrize("arch", ["unet", "vgg16"])
def test_grad_cam_maps_do_not_depend_on_the_batch_size(arch, fold_models, monkeypatch):
    """BATCH_SIZE is a memory setting: the maps of batches of 2 and of 8 images differ by float rounding
    (< 1e-5 of the map's peak)."""
    images = discs().images[:8]
    model = load_model(fold_models / arch / "0" / "model.pt")
    monkeypatch.setattr(cam_module, "BATCH_SIZE", 8)
    whole, grid = grad_cam(model, images)
    monkeypatch.setattr(cam_module, "BATCH_SIZE", 2)
    pairs, pairs_grid = grad_cam(model, images)
    np.testing.assert_allclose(pairs, whole, rtol=0, atol=1e-5)
    assert grid == pairs_grid and whole.max() == 1.0


def test_the_randomisation_check_pairs_maps_arriving_in_any_chunks(trained_clmnet):
    path, data = trained_clmnet
    images = np.asarray(data.images)
    trained = grad_cam(load_model(path), images)[0]
    whole = map_similarity(trained, grad_cam(randomised_model(path, "clmnet", SEED + 1), images)[0])
    rows = np.arange(len(images))
    chunks = [trained[:1], trained[1:1], trained[1:9], trained[9:]]
    streamed = randomised_similarity(iter(chunks), path, "clmnet", SEED + 1, rows, lambda at: images[at])
    assert np.array_equal(streamed, whole, equal_nan=True)
    with pytest.raises(ValueError, match="23 trained maps for 24"):
        randomised_similarity([trained[:-1]], path, "clmnet", SEED + 1, rows, lambda at: images[at])
    pieces = sanity_module._rechunked(iter([np.arange(3), np.arange(0), np.arange(3, 9)]), 4)
    assert [piece.tolist() for piece in pieces] == [[0, 1, 2, 3], [4, 5, 6, 7], [8]]


def _whole_array_fold_maps(paths: list[Path], arch: str, images: np.ndarray, positive: np.ndarray):
    """The maps of every fold of every image at once, their ensemble and the randomisation check (before
    the explain stage went fold by fold a block at a time)."""
    per_fold, layer, grid = fold_cams(paths, images, arch)
    rho = [
        map_similarity(maps[positive], grad_cam(randomised_model(p, arch, SEED + k), images[positive])[0])
        for k, (maps, p) in enumerate(zip(per_fold, paths))
    ]
    return ensemble_of(per_fold), layer, grid, similarity_summary(np.concatenate(rho), len(paths))


@pytest.mark.parametrize("arch", ["unet", "vgg16"])
def test_fold_by_fold_blocks_give_the_whole_array_maps_and_check(arch, fold_models, monkeypatch):
    """fold_maps (each fold's maps a block at a time, into a running sum, the randomisation check per block)
    against every fold's maps of every image at once: the same ensemble, bit for bit, and the same check,
    over several blocks (batches of 2, blocks of 4 images here)."""
    monkeypatch.setattr(cam_module, "BATCH_SIZE", 2)
    monkeypatch.setattr(cam_module, "BLOCK", 4)
    monkeypatch.setattr(sanity_module, "BLOCK", 4)
    data = discs(n=14)
    rows = np.array([0, 1, 3, 4, 5, 8, 9, 10, 11, 13])
    is_positive = data.manifest["label"].to_numpy()[rows] == 1
    paths = [fold_models / arch / str(k) / "model.pt" for k in range(2)]
    ensemble, layer, grid, check = fold_maps(paths, arch, data, rows, is_positive)
    whole, whole_layer, whole_grid, whole_check = _whole_array_fold_maps(paths, arch, data.images[rows], is_positive)
    assert np.array_equal(ensemble.maps(slice(None)), whole)
    assert (layer, grid, check) == (whole_layer, whole_grid, whole_check)
    assert check["images"] + check["undefined"] == 2 * is_positive.sum() > 4


def test_the_metrics_do_not_depend_on_the_blocks_the_images_are_scored_in(fold_models, tiny_params, monkeypatch):
    params = dataclasses.replace(tiny_params, stats=dataclasses.replace(tiny_params.stats, n_boot=20))
    data = discs()
    args = (params, data, liver_masks(data), ["p-1", "p-2", "p-3", "p-4"], ["0", "1"], fold_models)
    whole = explain_archs(*args)
    monkeypatch.setattr("crlm.core.arrays.ROWS", 1)
    one_by_one = explain_archs(*args)
    assert one_by_one.metrics == whole.metrics
    assert all(np.array_equal(one_by_one.cams[arch], whole.cams[arch]) for arch in ARCHS)


def test_the_pointing_game_has_the_exact_clustered_interval_which_leaves_1():
    n = 9
    scores = {"mass_share": np.full(n, 0.5), "pointing_hit": np.ones(n), "area_share": np.full(n, 0.1)}
    patients = np.repeat(["a", "b", "c"], 3)
    hit = localisation_summary(scores, patients, 50, 0, 0.95)["pointing_hit_rate"]
    assert hit == korn_graubard(np.ones(n), patients, 0.95)
    assert hit["value"] == 1.0 and hit["ci_high"] == 1.0 and hit["ci_low"] < 0.9
    scores["mass_share"][0] = np.nan  # an empty map has no hit: left out of the rate
    scores["pointing_hit"][0] = np.nan
    assert localisation_summary(scores, patients, 50, 0, 0.95)["pointing_hit_rate"] == korn_graubard(
        np.ones(n - 1), patients[1:], 0.95
    )
