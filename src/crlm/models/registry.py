"""Arch name -> its module crlm/models/<arch>.py: `MODEL`, the network class (a crlm.models.base.Network,
built as MODEL(**kwargs)), and `CONFIG`, the dataclass of its params.yaml section model.<arch>.

Modules are imported by name, so a stage that builds one arch imports that arch's module alone (train@clmnet
reads CLM-Net's code and section, and a change to them retrains CLM-Net only); the list of archs is crlm.archs.
"""

from __future__ import annotations

import dataclasses
import importlib
import re
from types import ModuleType
from typing import Any

from crlm.core.config import ConfigError, build
from crlm.core.errors import UnknownArchError
from crlm.models.base import Network
from crlm.models.config import ModelConfig

__all__ = ["arch_config", "arch_module", "build_model", "model_kwargs"]


def arch_module(arch: str) -> ModuleType:
    """The module of `arch` (an UnknownArchError where crlm/models/<arch>.py does not exist)."""
    name = f"crlm.models.{arch}"
    if not re.fullmatch(r"[a-z][a-z0-9_]*", arch):
        raise UnknownArchError(f"unknown model arch {arch!r}: not a module name")
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name:
            raise
        raise UnknownArchError(f"unknown model arch {arch!r}: no module crlm/models/{arch}.py") from None
    if not (hasattr(module, "MODEL") and hasattr(module, "CONFIG")):
        raise UnknownArchError(f"unknown model arch {arch!r}: crlm/models/{arch}.py defines no MODEL and CONFIG")
    return module


def arch_config(model: ModelConfig, arch: str, source: str = "params") -> Any:
    """`arch`'s own section (model.<arch>) of the model section, checked like every params section."""
    if arch not in model.sections:
        raise ConfigError(f"{source}: missing section 'model.{arch}' (the params of arch {arch!r})")
    return build(arch_module(arch).CONFIG, model.sections[arch], prefix=f"model.{arch}.", source=source)


def model_kwargs(model: ModelConfig, arch: str, source: str = "params") -> dict[str, Any]:
    """The keyword arguments `arch`'s network is built with: the shared model keys, then model.<arch>'s."""
    return {**model.shared_kwargs(), **dataclasses.asdict(arch_config(model, arch, source))}


def build_model(arch: str, kwargs: dict[str, Any]) -> Network:
    """The network of `arch` built from `kwargs` (model_kwargs, or those a model file was saved with)."""
    return arch_module(arch).MODEL(**kwargs)
