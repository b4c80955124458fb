"""Builders that tests share and call with arguments (the argument-free ones are fixtures in conftest.py):
synthetic image sets of discs on a textured background, tiny training params, and random-init model files
saved as the train stage saves them. Each builder gives the same arrays and files for the same arguments."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from crlm.data.dataset import ImageSet
from crlm.models.model_file import save_model
from crlm.models.registry import build_model, model_kwargs
from crlm.params import params_from_dict
from tests.conftest import tiny_params_dict

FOLDS = 2  # the fold models save_fold_models writes: <models_dir>/<arch>/0 and /1


def disc_set(
    n: int,
    size: int,
    seed: int,
    *,
    mean: float,
    sd: float,
    contrast: float,
    radius_sq: int,
    margin: int = 8,
    grow: int = 0,
    patient: Callable[[int], str] = lambda i: f"p-{i // 3}",
    image_id: Callable[[int], str] = lambda i: f"img-{i}",
    area_column: bool = False,
) -> ImageSet:
    """n images of normal(mean, sd) texture; every other one (0, 2, ...) gets a disc of squared radius
    radius_sq + grow * i, centred at least `margin` px from the edge, its pixels shifted by `contrast` and
    marked as tumour. The manifest has image_id, patient_id and label (and tumour_area_px if asked)."""
    rng = np.random.default_rng(seed)
    images = rng.normal(mean, sd, (n, size, size)).astype(np.float32)
    tumour = np.zeros((n, size, size), np.uint8)
    yy, xx = np.mgrid[:size, :size]
    for i in range(0, n, 2):
        cy, cx = rng.integers(margin, size - margin, 2)
        disc = (yy - cy) ** 2 + (xx - cx) ** 2 <= radius_sq + grow * i
        images[i][disc] += contrast
        tumour[i][disc] = 1
    columns = {
        "image_id": [image_id(i) for i in range(n)],
        "patient_id": [patient(i) for i in range(n)],
        "label": (tumour.reshape(n, -1).sum(1) > 0).astype(int),
    }
    if area_column:
        columns["tumour_area_px"] = tumour.reshape(n, -1).sum(1)
    return ImageSet(pd.DataFrame(columns), np.clip(images, 0, 1), tumour)


def synthetic_set(n=24, size=32, seed=0) -> ImageSet:
    """Dark discs (tumour) on a textured liver for half of the images; 3 images per patient."""
    return disc_set(n, size, seed, mean=0.5, sd=0.05, contrast=-0.3, radius_sq=16)


def tiny_train_params(**train):
    """The tiny params (conftest.tiny_params_dict) with 3 epochs of batch 8, and `train` on top."""
    params = params_from_dict(tiny_params_dict())
    settings = {"epochs": 3, "batch_size": 8, **train}
    return dataclasses.replace(params, train=dataclasses.replace(params.train, **settings))


def save_random_model(path: Path, arch: str, cfg, seed: int) -> Path:
    """A model of `arch` (built from the model section `cfg`) initialised under torch seed `seed`, saved to
    `path` by the real save_model."""
    torch.manual_seed(seed)
    kwargs = model_kwargs(cfg, arch)
    save_model(path, arch, kwargs, build_model(arch, kwargs))
    return path


def save_fold_models(models_dir: Path, arch: str, params_dict: dict) -> Path:
    """FOLDS random-init models of `arch`, as the train stage saves them: <models_dir>/<arch>/<fold>/model.pt."""
    params = params_from_dict(params_dict)
    for fold in range(FOLDS):
        save_random_model(models_dir / arch / str(fold) / "model.pt", arch, params.model, seed=fold)
    return models_dir / arch


def write_image_set(processed_dir: Path, data: ImageSet, liver: np.ndarray | None = None) -> Path:
    """`data` written as the prepare stage writes it (images float16, masks uint8, the manifest) into
    processed_dir; the liver masks default to the tumour masks."""
    from crlm.core.io import write_parquet
    from crlm.core.paths import PROCESSED_IMAGES, PROCESSED_LIVER, PROCESSED_MANIFEST, PROCESSED_TUMOUR

    processed_dir = Path(processed_dir)
    processed_dir.mkdir(parents=True, exist_ok=True)
    np.save(processed_dir / PROCESSED_IMAGES.name, np.asarray(data.images, np.float16))
    np.save(processed_dir / PROCESSED_TUMOUR.name, np.asarray(data.tumour, np.uint8))
    np.save(processed_dir / PROCESSED_LIVER.name, np.asarray(data.tumour if liver is None else liver, np.uint8))
    write_parquet(processed_dir / PROCESSED_MANIFEST.name, data.manifest)
    return processed_dir


def spy_workers(monkeypatch, module) -> list[int]:
    """The worker counts `module` (a data stage's module) asks crlm.data.pool.ordered_map for, call by call."""
    calls: list[int] = []
    real = module.ordered_map

    def spy(fn, items, workers):
        calls.append(workers)
        return real(fn, items, workers)

    monkeypatch.setattr(module, "ordered_map", spy)
    return calls
