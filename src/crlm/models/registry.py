"""model.arch -> model builder. An unknown name raises an error listing the valid ones."""

from __future__ import annotations

from torch import nn

from crlm.config import ARCH_NAMES, ModelConfig
from crlm.models.clmnet import CLMNet
from crlm.models.deeplabv3 import DeepLabV3
from crlm.models.unet import UNet
from crlm.models.vgg16 import VGG16

ARCHS: dict[str, type[nn.Module]] = {"vgg16": VGG16, "deeplabv3": DeepLabV3, "unet": UNet, "clmnet": CLMNet}
assert tuple(ARCHS) == ARCH_NAMES

SEGMENTING = tuple(name for name in ARCHS if name != "vgg16")
CRF_REFINED = ("clmnet",)   # the paper refines CLM-Net's masks with a dense CRF (crf.enabled)


class UnknownArchError(KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


def build_model(arch: str, cfg: ModelConfig) -> nn.Module:
    """The model named `arch` (not necessarily cfg.arch: every arch is trained)."""
    if arch not in ARCHS:
        raise UnknownArchError(f"unknown model arch {arch!r}; valid: {sorted(ARCHS)}")
    return ARCHS[arch](cfg)
