"""The trained-model file: written and read here, and nowhere else.

A model file (data/models/<arch>/<fold>/model.pt) is a dict of plain values and tensors:

    arch        the registry name of the architecture ("unet", ...)
    model       the `model` section it was built with (dataclasses.asdict of ModelConfig)
    state_dict  its weights

It is read with torch.load(weights_only=True): a file fetched from a DVC remote
can hold data only, never code that runs when it is loaded. A reader of a models folder
passes the folder's arch (load_model(path, expected_arch=...)): a file of another arch
there is refused, not used in its place.
"""

from __future__ import annotations

import dataclasses
import pickle
import re
import zipfile
from pathlib import Path

import torch
from torch import nn

from crlm.archs import ARCHS
from crlm.config import ConfigError, ModelConfig, model_config_from_dict
from crlm.errors import UserError
from crlm.models.registry import build_model
from crlm.training.device import MEMORY_FORMAT

KEYS = ("arch", "model", "state_dict")


class ModelFileError(UserError, ValueError):
    """A model or checkpoint file that is not loaded as it is (the message names the file and why)."""


class UnreadableFileError(ModelFileError):
    """A model or checkpoint file that is truncated or damaged (`detail`: what the reader hit)."""

    def __init__(self, message: str, detail: str):
        super().__init__(message)
        self.detail = detail


def folder_arch(path: str | Path) -> str | None:
    """The arch of the models folder <arch>/<fold>/model.pt that `path` lies in, or None where the folder is
    not named after an arch."""
    name = Path(path).parent.parent.name
    return name if name in ARCHS else None


def train_stage(path: str | Path) -> str:
    """The stage that writes the file <arch>/<fold>/<name> (a model, or its checkpoint)."""
    return f"train@{folder_arch(path) or '<arch>'}"


# what torch.load raises for a truncated, emptied or overwritten file (measured with torch 2.14): the zip
# reader's RuntimeError ("PytorchStreamReader failed ..."), EOFError for an empty file, OSError for some
# cuts, and for damage inside the pickled part, or bytes that are no zip at all, any of the others
DAMAGED = (RuntimeError, EOFError, OSError, ValueError, KeyError, IndexError, zipfile.BadZipFile)
ZIP_MAGIC = b"PK\x03\x04"   # torch.save has written zip archives since torch 1.6


def read_data_only(path: Path, what: str = "model file"):
    """torch.load(path) that accepts tensors and plain containers/numbers/strings only.

    Anything else (an arbitrary pickled object, whose unpickling could call any
    function) is refused with a ModelFileError naming the file; a truncated or
    damaged file is an UnreadableFileError naming it and the stage to rerun.
    """
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (FileNotFoundError, PermissionError, IsADirectoryError):
        raise
    except pickle.UnpicklingError as exc:
        lines = [line.strip() for line in str(exc).splitlines()]
        detail = next((line for line in lines if "GLOBAL" in line), "")
        damage = next((line for line in lines if line.startswith("Unsupported operand")), "")
        if not detail and (damage or not _is_zip(path)):
            raise _unreadable(path, what, _damage(path, damage)) from None
        raise ModelFileError(
            f"{path}: refused to load: it holds objects other than tensors and plain values, and "
            f"unpickling them could run code ({detail or 'not a weights-only file'}); "
            "delete it and rerun the stage that writes it") from None
    except DAMAGED as exc:
        raise _unreadable(path, what, _damage(path, _first_sentence(exc))) from None


def _is_zip(path: Path) -> bool:
    with open(path, "rb") as file:
        return file.read(len(ZIP_MAGIC)) == ZIP_MAGIC


def _damage(path: Path, reader_says: str) -> str:
    if path.stat().st_size == 0:
        return "empty file"
    return reader_says if _is_zip(path) else "not a torch file: no zip archive"


def _first_sentence(exc: Exception) -> str:
    """The reader's own words, without torch's advice that follows them ("This is an internal miniz error ...")."""
    text = re.sub(r"^\[enforce fail at [^\]]*\]\s*\.?\s*", "", str(exc).strip())
    return text.splitlines()[0].split(". ")[0].rstrip(".") if text else type(exc).__name__


def _unreadable(path: Path, what: str, detail: str) -> UnreadableFileError:
    return UnreadableFileError(f"{path}: unreadable {what} (truncated or damaged: {detail}); rerun the stage that "
                               f"writes it (dvc repro -f {train_stage(path)})", detail)


def save_model(path: str | Path, arch: str, model_config: ModelConfig, model: nn.Module) -> None:
    """Write `model` (an `arch` built from `model_config`) to `path`, creating its folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"arch": arch, "model": dataclasses.asdict(model_config), "state_dict": model.state_dict()}, path)


def read_model_file(path: Path, expected_arch: str | None = None) -> tuple[str, ModelConfig, dict]:
    """The arch, model config and state dict of the model file at `path`, each checked, the arch against
    `expected_arch` where given (a ModelFileError names the file and why)."""
    saved = read_data_only(path)
    if not isinstance(saved, dict) or any(key not in saved for key in KEYS):
        found = sorted(saved) if isinstance(saved, dict) else type(saved).__name__
        raise ModelFileError(f"{path}: not a model file (expected keys {list(KEYS)}, found {found}); retrain")
    arch = saved["arch"]
    if arch not in ARCHS:
        raise ModelFileError(f"{path}: unknown model arch {arch!r}; this code knows {sorted(ARCHS)}; retrain")
    if expected_arch is not None and arch != expected_arch:
        raise ModelFileError(f"{path}: a model of arch {arch!r} where arch {expected_arch!r} is expected (the "
                             f"models folder's); rerun the stage that writes it (dvc repro -f train@{expected_arch})")
    try:
        cfg = model_config_from_dict(saved["model"], str(path))
    except ConfigError as exc:
        raise ModelFileError(f"{path}: saved model config does not match this code ({exc}); retrain") from None
    return arch, cfg, saved["state_dict"]


def load_model(path: str | Path, expected_arch: str | None = None) -> nn.Module:
    """The model saved at `path` by save_model, rebuilt from its arch and config, in eval mode, channels_last
    as it was trained (the layout picks the convolution kernels: another layout rounds otherwise). A reader
    of a models folder passes its arch as `expected_arch`: a model of another arch is refused."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found; run `dvc repro` (the train stage writes it)")
    arch, cfg, state_dict = read_model_file(path, expected_arch)
    model = build_model(arch, cfg)
    try:
        model.load_state_dict(state_dict)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise ModelFileError(f"{path}: the saved weights do not fit arch {arch!r} as this code builds it "
                             f"({first}); retrain") from None
    return model.to(memory_format=MEMORY_FORMAT).eval()
