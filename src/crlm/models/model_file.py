"""The trained-model file: written and read here, and nowhere else.

A model file (data/models/<arch>/<fold>/model.pt) is a dict of plain values and tensors:

    arch        the registry name of the architecture ("unet", ...; its module crlm/models/<arch>.py)
    kwargs      the keyword arguments its network was built with (crlm.models.registry.model_kwargs: the
                shared model keys and its own model.<arch> section, plain values)
    state_dict  its weights

so a saved model stays loadable when another arch is added or another arch's params change.

It is read with torch.load(weights_only=True): a file fetched from a DVC remote
can hold data only, never code that runs when it is loaded. A reader of a models folder
passes the folder's arch (load_model(path, expected_arch=...)): a file of another arch
there is refused, not used in its place.
"""

from __future__ import annotations

import pickle
import re
import zipfile
from pathlib import Path

import torch
from torch import nn

from crlm.core.errors import UnknownArchError, UserError
from crlm.models.base import Network
from crlm.models.registry import arch_module, build_model
from crlm.training.device import MEMORY_FORMAT

KEYS = ("arch", "kwargs", "state_dict")


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
    try:
        arch_module(name)
    except UnknownArchError:
        return None
    return name


def train_stage(path: str | Path) -> str:
    """The stage that writes the file <arch>/<fold>/<name> (a model, or its checkpoint)."""
    return f"train@{folder_arch(path) or '<arch>'}"


# what torch.load raises for a truncated, emptied or overwritten file (measured with torch 2.14): the zip
# reader's RuntimeError ("PytorchStreamReader failed ..."), EOFError for an empty file, OSError for some
# cuts, and for damage inside the pickled part, or bytes that are no zip at all, any of the others
DAMAGED = (RuntimeError, EOFError, OSError, ValueError, KeyError, IndexError, zipfile.BadZipFile)
ZIP_MAGIC = b"PK\x03\x04"  # torch.save has written zip archives since torch 1.6


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
            "delete it and rerun the stage that writes it"
        ) from None
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
    return UnreadableFileError(
        f"{path}: unreadable {what} (truncated or damaged: {detail}); rerun the stage that "
        f"writes it (dvc repro -f {train_stage(path)})",
        detail,
    )


def save_model(path: str | Path, arch: str, kwargs: dict, model: nn.Module) -> None:
    """Write `model` (an `arch` built from `kwargs`) to `path`, creating its folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"arch": arch, "kwargs": dict(kwargs), "state_dict": model.state_dict()}, path)


def read_model_file(path: Path, expected_arch: str | None = None) -> tuple[str, dict, dict]:
    """The arch, network arguments and state dict of the model file at `path`, each checked, the arch against
    `expected_arch` where given (a ModelFileError names the file and why)."""
    saved = read_data_only(path)
    if isinstance(saved, dict) and "model" in saved and "kwargs" not in saved:
        raise ModelFileError(
            f"{path}: a model file of an older format (its network under 'model', not 'kwargs'); "
            f"retrain (dvc repro -f {train_stage(path)})"
        )
    if not isinstance(saved, dict) or any(key not in saved for key in KEYS):
        found = sorted(saved) if isinstance(saved, dict) else type(saved).__name__
        raise ModelFileError(f"{path}: not a model file (expected keys {list(KEYS)}, found {found}); retrain")
    arch = saved["arch"]
    try:
        arch_module(arch)
    except UnknownArchError as exc:
        raise ModelFileError(f"{path}: {exc}; retrain") from None
    if expected_arch is not None and arch != expected_arch:
        raise ModelFileError(
            f"{path}: a model of arch {arch!r} where arch {expected_arch!r} is expected (the "
            f"models folder's); rerun the stage that writes it (dvc repro -f train@{expected_arch})"
        )
    if not isinstance(saved["kwargs"], dict):
        raise ModelFileError(f"{path}: its network arguments are no mapping; retrain")
    return arch, saved["kwargs"], saved["state_dict"]


def load_model(path: str | Path, expected_arch: str | None = None) -> Network:
    """The model saved at `path` by save_model, rebuilt from its arch and arguments (without fetching ImageNet
    weights: the saved weights replace them), in eval mode, channels_last
    as it was trained (the layout picks the convolution kernels: another layout rounds otherwise). A reader
    of a models folder passes its arch as `expected_arch`: a model of another arch is refused."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found; run `dvc repro` (the train stage writes it)")
    arch, kwargs, state_dict = read_model_file(path, expected_arch)
    try:
        model = build_model(arch, {**kwargs, "pretrained": "none"})
    except TypeError as exc:  # an argument the network no longer takes, or a new one it needs
        raise ModelFileError(
            f"{path}: the saved network arguments do not fit arch {arch!r} as this code builds it ({exc}); retrain"
        ) from None
    try:
        model.load_state_dict(state_dict)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise ModelFileError(
            f"{path}: the saved weights do not fit arch {arch!r} as this code builds it ({first}); retrain"
        ) from None
    return model.to(memory_format=MEMORY_FORMAT).eval()
