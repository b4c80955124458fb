"""The one arch registry: each architecture's name, title and outputs, and its params section.

Everything that needs to know the archs asks here (config validation, training,
evaluation, the report, the benchmarks); nothing else lists them. Torch-free, so
that config and report can read it without loading the networks.

Adding an arch `toy` takes one entry below, one module `crlm/models/toy.py` whose
`MODEL` is the network class (built as `MODEL(model_config)`), one `model.toy`
section in params.yaml, and the dvc.yaml lines that tests/test_dvc_yaml_archs.py
prints when they are missing (the train matrix and the per-arch plot files).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class VGG16Config:
    dropout: float


@dataclass(frozen=True)
class DeepLabV3Config:
    dropout: float
    atrous_rates: tuple[int, ...]


@dataclass(frozen=True)
class UNetConfig:
    dropout: float
    decoder_channels: tuple[int, ...]   # strides 8, 4, 2, 1


@dataclass(frozen=True)
class CLMNetConfig:
    dropout: float
    atrous_rates: tuple[int, ...]
    decoder_channels: tuple[int, ...]   # strides 8, 4, 2, 1
    se: bool
    se_reduction: int
    aspp_branch: bool
    unet_branch: bool


@dataclass(frozen=True)
class Arch:
    name: str            # the key in params.yaml (model.arch, model.<name>) and in every output path
    title: str           # as the paper writes it
    segments: bool       # has a tumour-mask head, scored by IoU and Dice
    crf: bool            # its mask is refined by a dense CRF at inference when crf.enabled (the paper's CLM-Net)
    config: type         # the dataclass of its params.yaml section model.<name>
    min_image_size: int  # the smallest prepared image side its network takes (its deepest feature map 1 px)

    @property
    def crf_name(self) -> str:
        """The name of its CRF-refined masks in metrics/segmentation.json."""
        return f"{self.name}+crf"


ARCHS: dict[str, Arch] = {arch.name: arch for arch in (
    Arch("vgg16", "VGG16", segments=False, crf=False, config=VGG16Config, min_image_size=32),
    Arch("deeplabv3", "DeepLab-v3", segments=True, crf=False, config=DeepLabV3Config, min_image_size=8),
    Arch("unet", "U-Net", segments=True, crf=False, config=UNetConfig, min_image_size=16),
    Arch("clmnet", "CLM-Net", segments=True, crf=True, config=CLMNetConfig, min_image_size=16),
)}
ARCH_NAMES = tuple(ARCHS)


class UnknownArchError(KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


def get_arch(name: str) -> Arch:
    """The registry entry of `name`; an unknown name raises an error listing the valid ones."""
    if name not in ARCHS:
        raise UnknownArchError(f"unknown model arch {name!r}; valid: {sorted(ARCHS)}")
    return ARCHS[name]


def title(name: str) -> str:
    """The title of an arch or of its CRF-refined masks ("clmnet+crf" -> "CLM-Net + CRF")."""
    base, crf, _ = name.partition("+crf")
    return get_arch(base).title + (" + CRF" if crf else "")
