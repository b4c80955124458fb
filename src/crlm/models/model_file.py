"""The trained-model file: written and read here, and nowhere else.

A model file (data/models/<arch>/<fold>/model.pt) is a dict of plain values and tensors:

    arch        the registry name of the architecture ("unet", ...)
    model       the `model` section it was built with (dataclasses.asdict of ModelConfig)
    state_dict  its weights

It is read with torch.load(weights_only=True): a file fetched from a DVC remote
can hold data only, never code that runs when it is loaded.
"""

from __future__ import annotations

import dataclasses
import pickle
from pathlib import Path

import torch
from torch import nn

from crlm.archs import ARCHS
from crlm.config import ConfigError, ModelConfig, model_config_from_dict
from crlm.models.registry import build_model
from crlm.training.device import MEMORY_FORMAT

KEYS = ("arch", "model", "state_dict")


class ModelFileError(ValueError):
    """A model or checkpoint file that is not loaded as it is (the message names the file and why)."""


def read_data_only(path: Path):
    """torch.load(path) that accepts tensors and plain containers/numbers/strings only.

    Anything else (an arbitrary pickled object, whose unpickling could call any
    function) is refused with a ModelFileError naming the file.
    """
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        detail = next((line.strip() for line in str(exc).splitlines() if "GLOBAL" in line), "")
        raise ModelFileError(
            f"{path}: refused to load: it holds objects other than tensors and plain values, and "
            f"unpickling them could run code ({detail or 'not a weights-only file'}); "
            "delete it and rerun the stage that writes it") from None


def save_model(path: str | Path, arch: str, model_config: ModelConfig, model: nn.Module) -> None:
    """Write `model` (an `arch` built from `model_config`) to `path`, creating its folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"arch": arch, "model": dataclasses.asdict(model_config), "state_dict": model.state_dict()}, path)


def read_model_file(path: Path) -> tuple[str, ModelConfig, dict]:
    """The arch, model config and state dict of the model file at `path`, each checked (a ModelFileError
    names the file and why)."""
    saved = read_data_only(path)
    if not isinstance(saved, dict) or any(key not in saved for key in KEYS):
        found = sorted(saved) if isinstance(saved, dict) else type(saved).__name__
        raise ModelFileError(f"{path}: not a model file (expected keys {list(KEYS)}, found {found}); retrain")
    arch = saved["arch"]
    if arch not in ARCHS:
        raise ModelFileError(f"{path}: unknown model arch {arch!r}; this code knows {sorted(ARCHS)}; retrain")
    try:
        cfg = model_config_from_dict(saved["model"], str(path))
    except ConfigError as exc:
        raise ModelFileError(f"{path}: saved model config does not match this code ({exc}); retrain") from None
    return arch, cfg, saved["state_dict"]


def load_model(path: str | Path) -> nn.Module:
    """The model saved at `path` by save_model, rebuilt from its arch and config, in eval mode, channels_last
    as it was trained (the layout picks the convolution kernels: another layout rounds otherwise)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found; run `dvc repro` (the train stage writes it)")
    arch, cfg, state_dict = read_model_file(path)
    model = build_model(arch, cfg)
    try:
        model.load_state_dict(state_dict)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise ModelFileError(f"{path}: the saved weights do not fit arch {arch!r} as this code builds it "
                             f"({first}); retrain") from None
    return model.to(memory_format=MEMORY_FORMAT).eval()
