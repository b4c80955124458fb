"""Every arch: forward and backward on CPU, output shapes, the embedding size, the registry, ImageNet loading."""

import dataclasses

import pytest
import torch
from torchvision.models import vgg16_bn

from crlm.config import ConfigError, params_from_dict
from crlm.archs import ARCHS
from crlm.models import build_model
from crlm.models.pretrained import PretrainedWeightsError, cache_file
from crlm.archs import UnknownArchError
from tests.conftest import tiny_params_dict


def model_cfg(**overrides):
    return dataclasses.replace(params_from_dict(tiny_params_dict()).model, **overrides)


@pytest.mark.parametrize("arch", list(ARCHS))
def test_forward_backward_shapes_and_embedding(arch):
    torch.manual_seed(0)
    model = build_model(arch, model_cfg(embedding_dim=40))   # the embedding has model.embedding_dim values
    x = torch.rand(3, 1, 32, 32)
    out = model(x)
    assert out.logit.shape == (3,)
    assert out.embedding.shape == (3, 40)
    if arch == "vgg16":
        assert out.seg_logits is None
    else:
        assert out.seg_logits.shape == (3, 1, 32, 32)
    loss = out.logit.sum() + (out.seg_logits.mean() if out.seg_logits is not None else 0)
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert missing == [], f"parameters without gradient: {missing[:5]}"


@pytest.mark.parametrize("arch", list(ARCHS))
def test_min_image_size_is_the_smallest_image_the_network_takes(arch):
    model = build_model(arch, model_cfg()).eval()
    smallest = ARCHS[arch].min_image_size
    with torch.no_grad():
        model(torch.rand(2, 1, smallest, smallest))
        with pytest.raises(RuntimeError):
            model(torch.rand(2, 1, smallest - 1, smallest - 1))


def test_unknown_arch_lists_the_valid_ones():
    with pytest.raises(UnknownArchError, match="valid: .*clmnet.*deeplabv3.*unet.*vgg16"):
        build_model("resnet50", model_cfg())
    with pytest.raises(ConfigError, match="model.arch: unknown architecture 'resnet'"):
        params_from_dict(tiny_params_dict(model={"arch": "resnet"}))


def test_width_scales_the_number_of_parameters():
    small = sum(p.numel() for p in build_model("clmnet", model_cfg(width=0.125)).parameters())
    large = sum(p.numel() for p in build_model("clmnet", model_cfg(width=0.25)).parameters())
    assert large > 2.5 * small


@pytest.mark.parametrize("switch", ["se", "aspp_branch", "unet_branch"])
def test_each_clmnet_component_can_be_switched_off(switch):
    cfg = model_cfg()
    full = build_model("clmnet", cfg)
    ablated = build_model("clmnet", dataclasses.replace(cfg, clmnet=dataclasses.replace(cfg.clmnet, **{switch: False})))
    n_full = sum(p.numel() for p in full.parameters())
    n_ablated = sum(p.numel() for p in ablated.parameters())
    assert n_ablated < n_full
    out = ablated(torch.rand(2, 1, 32, 32))
    assert out.seg_logits.shape == (2, 1, 32, 32) and out.embedding.shape == (2, cfg.embedding_dim)
    modules = {type(m).__name__ for m in full.modules()}
    assert {"SEModule", "ASPP", "UnetDecoder", "UNetBranch"} <= modules


def test_imagenet_needs_full_width():
    with pytest.raises(PretrainedWeightsError, match="needs model.width: 1.0"):
        build_model("vgg16", model_cfg(pretrained="imagenet", width=0.5))


@pytest.mark.parametrize("arch", ["vgg16", "deeplabv3"])
def test_imagenet_weights_load_from_the_torch_hub_cache(arch, tmp_path, monkeypatch):
    """A weights file in the cache (written here, as torchvision would have downloaded it) is loaded, offline."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    torch.manual_seed(1)
    reference = vgg16_bn(weights=None).state_dict()
    path = cache_file(batch_norm=True)
    path.parent.mkdir(parents=True)
    torch.save(reference, path)
    model = build_model(arch, model_cfg(pretrained="imagenet", width=1.0, batch_norm=True))
    loaded = model.trunk.features.state_dict()
    assert loaded, "the trunk has no weights"
    for name, value in loaded.items():
        assert torch.equal(value, reference[f"features.{name}"]), name
    # the deeplabv3 trunk keeps four blocks; vgg16 all five
    assert len(loaded) < len([k for k in reference if k.startswith("features.")]) or arch == "vgg16"
