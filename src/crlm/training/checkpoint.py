"""A checkpoint after every epoch, so an interrupted training resumes where it stopped.

A checkpoint carries a fingerprint of everything that shapes the training
(params, arch, the training images); a checkpoint from another setting is
ignored rather than resumed.

A checkpoint holds tensors and plain values only (state dicts, the epoch, the
history as floats, the fingerprint) and is read with torch.load(weights_only=True),
like a model file: a checkpoint that holds anything else is refused, never unpickled.
A truncated or damaged checkpoint (a disk error, a partial copy) is set
aside as <name>.unreadable, with a warning, and the training starts afresh.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np
import torch

from crlm.models.model_file import UnreadableFileError, read_data_only


def fingerprint(payload: dict) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def save_checkpoint(path: Path, *, model, optimizer, scheduler, epoch: int, history: list[dict], key: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(
        {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "epoch": epoch,
            "history": [_plain(row) for row in history],
            "fingerprint": key,
        },
        tmp,
    )
    tmp.replace(path)  # atomic: an interruption never leaves half a checkpoint


def load_checkpoint(path: Path, key: str) -> dict | None:
    """The checkpoint at `path` if it belongs to this training, else None."""
    if not path.is_file():
        return None
    try:
        state = read_data_only(path, what="checkpoint")
    except FileNotFoundError:
        return None  # set aside meanwhile by another process of the same (distributed) training
    except UnreadableFileError as exc:
        aside = path.with_name(path.name + ".unreadable")
        try:
            path.replace(aside)
        except FileNotFoundError:
            pass  # another process of the same training set it aside first
        logging.getLogger(__name__).warning(
            f"{path}: unreadable checkpoint (truncated or damaged: {exc.detail}); "
            f"set aside as {aside}; training starts afresh"
        )
        return None
    if not isinstance(state, dict) or state.get("fingerprint") != key:
        logging.getLogger(__name__).info(f"ignoring {path}: it belongs to another setting")
        return None
    return state


def _plain(row: dict) -> dict:
    """A history row with numpy scalars as Python numbers (weights_only loading refuses numpy objects)."""
    return {name: value.item() if isinstance(value, np.generic) else value for name, value in row.items()}
