"""ImageNet initialisation of the VGG16 trunk through torchvision's weights API."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torchvision.models import VGG16_BN_Weights, VGG16_Weights

from crlm.core.options import look_up

if TYPE_CHECKING:
    from crlm.models.blocks import VGGTrunk


class PretrainedWeightsError(RuntimeError):
    """ImageNet weights were asked for but cannot be had."""


def imagenet_weights(batch_norm: bool):
    return VGG16_BN_Weights.IMAGENET1K_V1 if batch_norm else VGG16_Weights.IMAGENET1K_V1


def cache_file(batch_norm: bool) -> Path:
    """Where torch.hub keeps (and first looks for) the weights file."""
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(imagenet_weights(batch_norm).url).name


def load_imagenet_vgg16(trunk: VGGTrunk, pretrained: str, width: float, batch_norm: bool) -> None:
    """Initialise the VGG16 trunk (built at `width`, with or without batch norm) as `pretrained`
    (model.pretrained) says: torchvision's ImageNet conv weights into `trunk.features`, or the random
    initialisation it was built with."""
    look_up("model.pretrained", pretrained, PRETRAINED)(trunk, width, batch_norm)


def keep_random_init(trunk: VGGTrunk, width: float, batch_norm: bool) -> None:
    """The trunk as built: randomly initialised."""


def imagenet_init(trunk: VGGTrunk, width: float, batch_norm: bool) -> None:
    """torchvision's ImageNet VGG16 conv weights into `trunk.features` (the first blocks of a truncated trunk)."""
    if width != 1.0:
        raise PretrainedWeightsError(
            f"model.pretrained: imagenet needs model.width: 1.0 (ImageNet weights exist only at full "
            f"width), got model.width: {width}; set model.width: 1.0 or model.pretrained: none"
        )
    weights = imagenet_weights(batch_norm)
    try:
        # weights_only: torch.hub's default is a full unpickle; the cached file (downloaded, or copied
        # there by hand as the message below suggests) must not be able to run code
        state = weights.get_state_dict(progress=False, weights_only=True)
    except Exception as error:  # offline: URLError, socket errors, hub errors
        raise PretrainedWeightsError(
            f"ImageNet weights {weights} could not be loaded ({error}). torchvision downloads them "
            f"once to {cache_file(batch_norm)}; offline, fetch {weights.url} elsewhere and copy it "
            f"there (or set TORCH_HOME), or set model.pretrained: none"
        ) from error
    features = {k.removeprefix("features."): v for k, v in state.items() if k.startswith("features.")}
    wanted = trunk.features.state_dict()  # a truncated trunk takes the first blocks only
    trunk.features.load_state_dict({k: v for k, v in features.items() if k in wanted})


# model.pretrained -> how the trunk is initialised
PRETRAINED = {"none": keep_random_init, "imagenet": imagenet_init}
