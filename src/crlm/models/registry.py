"""model.arch -> network. The arch names live in crlm.archs (the registry); the network of
arch `x` is the class `MODEL` of module crlm.models.x, built as MODEL(model_config)."""

from __future__ import annotations

import importlib

from torch import nn

from crlm.archs import get_arch
from crlm.config import ModelConfig

__all__ = ["build_model", "model_class"]


def model_class(arch: str) -> type[nn.Module]:
    """The network class of `arch` (an unknown name raises UnknownArchError listing the valid ones)."""
    return importlib.import_module(f"crlm.models.{get_arch(arch).name}").MODEL


def build_model(arch: str, cfg: ModelConfig) -> nn.Module:
    """The model named `arch` (not necessarily cfg.arch: every arch is trained)."""
    return model_class(arch)(cfg)
