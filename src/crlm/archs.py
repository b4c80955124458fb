"""The one arch registry: each architecture's name, title and outputs.

Everything that handles every arch asks here (params validation, evaluation, the report, the benchmarks);
nothing else lists them. The train stage does not: it builds one arch from its own module
(crlm.models.registry), so that adding an arch retrains no other. Torch-free, so that the report reads it
without loading the networks.

Adding an arch `toy` takes one entry below, one module `crlm/models/toy.py` with its network class `MODEL`
(a crlm.models.base.Network, built as `MODEL(**kwargs)`) and its params dataclass `CONFIG`, one `model.toy`
section in params.yaml, and the dvc.yaml lines that tests/pipeline/test_dvc_yaml_archs.py prints when they
are missing (the train matrix and the per-arch plot files).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from crlm.core.config import ConfigError
from crlm.core.errors import UnknownArchError


@dataclass(frozen=True)
class Arch:
    name: str  # its key in params.yaml (model.arch, model.<name>), module crlm/models/<name>.py, output paths
    title: str  # as the paper writes it
    segments: bool  # has a tumour-mask head, scored by IoU and Dice
    crf: bool  # its mask is refined by a dense CRF at inference when crf.enabled (the paper's CLM-Net)
    min_image_size: int  # the smallest prepared image side its network takes (its deepest feature map 1 px)

    @property
    def crf_name(self) -> str:
        """The name of its CRF-refined masks in metrics/segmentation.json."""
        return f"{self.name}+crf"


ARCHS: dict[str, Arch] = {
    arch.name: arch
    for arch in (
        Arch("vgg16", "VGG16", segments=False, crf=False, min_image_size=32),
        Arch("deeplabv3", "DeepLab-v3", segments=True, crf=False, min_image_size=8),
        Arch("unet", "U-Net", segments=True, crf=False, min_image_size=16),
        Arch("clmnet", "CLM-Net", segments=True, crf=True, min_image_size=16),
    )
}
ARCH_NAMES = tuple(ARCHS)


def get_arch(name: str) -> Arch:
    """The registry entry of `name`; an unknown name raises an error listing the valid ones."""
    if name not in ARCHS:
        raise UnknownArchError(f"unknown model arch {name!r}; valid: {sorted(ARCHS)}")
    return ARCHS[name]


def title(name: str) -> str:
    """The title of an arch or of its CRF-refined masks ("clmnet+crf" -> "CLM-Net + CRF")."""
    base, crf, _ = name.partition("+crf")
    return get_arch(base).title + (" + CRF" if crf else "")


@dataclass(frozen=True)
class CandidateConfig:
    """model.arch alone: the candidate arch that evaluate, survival, compare and calibration single out (they read
    no other key of the model section, so an arch's own params do not rerun them before its models change)."""

    SECTION: ClassVar[str] = "model"
    PARTIAL: ClassVar[bool] = True
    arch: str

    def __post_init__(self) -> None:
        if self.arch not in ARCHS:
            raise ConfigError(f"model.arch: unknown architecture {self.arch!r}; valid: {list(ARCH_NAMES)}")
