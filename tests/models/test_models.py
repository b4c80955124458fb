"""Every arch: forward and backward on CPU, output shapes, the embedding size, the registry, ImageNet loading."""

import pytest
import torch
from torchvision.models import vgg16_bn

from crlm.archs import ARCHS, get_arch
from crlm.core.config import ConfigError
from crlm.core.errors import UnknownArchError
from crlm.models.pretrained import PretrainedWeightsError, cache_file
from crlm.models.registry import build_model, model_kwargs
from crlm.params import params_from_dict
from tests.conftest import tiny_params_dict


def model_args(arch, **overrides):
    """The network arguments of `arch` from the tiny params, with `overrides`."""
    return {**model_kwargs(params_from_dict(tiny_params_dict()).model, arch), **overrides}


@pytest.mark.parametrize("arch", list(ARCHS))
def test_forward_backward_shapes_and_embedding(arch):
    torch.manual_seed(0)
    model = build_model(arch, model_args(arch, embedding_dim=40))  # the embedding has model.embedding_dim values
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
    model = build_model(arch, model_args(arch)).eval()
    smallest = ARCHS[arch].min_image_size
    with torch.no_grad():
        model(torch.rand(2, 1, smallest, smallest))
        with pytest.raises(RuntimeError):
            model(torch.rand(2, 1, smallest - 1, smallest - 1))


def test_unknown_arch_lists_the_valid_ones():
    with pytest.raises(UnknownArchError, match="valid: .*clmnet.*deeplabv3.*unet.*vgg16"):
        get_arch("resnet50")
    with pytest.raises(UnknownArchError, match="'resnet50': no module crlm/models/resnet50.py"):
        build_model("resnet50", {})
    with pytest.raises(ConfigError, match="model.arch: unknown architecture 'resnet'"):
        params_from_dict(tiny_params_dict(model={"arch": "resnet"}))


def test_width_scales_the_number_of_parameters():
    small = sum(p.numel() for p in build_model("clmnet", model_args("clmnet", width=0.125)).parameters())
    large = sum(p.numel() for p in build_model("clmnet", model_args("clmnet", width=0.25)).parameters())
    assert large > 2.5 * small


@pytest.mark.parametrize("switch", ["se", "aspp_branch", "unet_branch"])
def test_each_clmnet_component_can_be_switched_off(switch):
    full = build_model("clmnet", model_args("clmnet"))
    ablated = build_model("clmnet", model_args("clmnet", **{switch: False}))
    n_full = sum(p.numel() for p in full.parameters())
    n_ablated = sum(p.numel() for p in ablated.parameters())
    assert n_ablated < n_full
    out = ablated(torch.rand(2, 1, 32, 32))
    assert out.seg_logits.shape == (2, 1, 32, 32) and out.embedding.shape == (2, model_args("clmnet")["embedding_dim"])
    modules = {type(m).__name__ for m in full.modules()}
    assert {"SEModule", "ASPP", "UnetDecoder", "UNetBranch"} <= modules


def test_imagenet_needs_full_width():
    with pytest.raises(PretrainedWeightsError, match="needs model.width: 1.0"):
        build_model("vgg16", model_args("vgg16", pretrained="imagenet", width=0.5))


@pytest.mark.parametrize("arch", ["vgg16", "deeplabv3"])
def test_imagenet_weights_load_from_the_torch_hub_cache(arch, tmp_path, monkeypatch):
    """A weights file in the cache (written here, as torchvision would have downloaded it) is loaded, offline."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    torch.manual_seed(1)
    reference = vgg16_bn(weights=None).state_dict()
    path = cache_file(batch_norm=True)
    path.parent.mkdir(parents=True)
    torch.save(reference, path)
    model = build_model(arch, model_args(arch, pretrained="imagenet", width=1.0, batch_norm=True))
    loaded = model.trunk.features.state_dict()
    assert loaded, "the trunk has no weights"
    for name, value in loaded.items():
        assert torch.equal(value, reference[f"features.{name}"]), name
    # the deeplabv3 trunk keeps four blocks; vgg16 all five
    assert len(loaded) < len([k for k in reference if k.startswith("features.")]) or arch == "vgg16"
