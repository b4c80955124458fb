"""Model-randomisation sanity check of the maps (Adebayo et al. 2018, "Sanity checks for saliency maps").

A map that explains a model must change when the model's learned weights are replaced by random ones. Every
weight of a fold model is re-initialised at once (the "full randomisation"): a fresh network of the same arch
is built from the model file's own config, with the arch's own initialisation under a fixed torch seed, and
no saved weights are loaded (an ImageNet-initialised trunk is built randomly too: those weights are learned).
Its Grad-CAM maps of the same images are compared with the trained model's, image by image, by the Spearman
rank correlation of the pixel values.

Each fold model is randomised (fold k under seed SEED + k) and compared with its own trained maps, not the
ensemble's; the summary is over every (fold, image) pair. The check passes when the mean |Spearman| is below
0.5, a threshold fixed before any map was computed. A pair where either map is constant (an empty map: no
positive Grad-CAM anywhere) has no rank correlation: it is left out and counted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr
from torch import nn

from crlm.explain.cam import BLOCK, grad_cam
from crlm.models.model_file import read_model_file
from crlm.models.registry import build_model
from crlm.training.device import MEMORY_FORMAT

SEED = 0  # torch seed of fold 0's re-initialised network (fold k: SEED + k)
THRESHOLD = 0.5  # the maps depend on the learned weights when the mean |Spearman| lies below this


def randomised_model(path: str | Path, arch: str, seed: int = SEED) -> nn.Module:
    """A network of the arch and config of the model file at `path`, every weight freshly initialised
    under torch seed `seed` (the saved weights are not loaded), in eval mode and channels_last as load_model
    gives the trained one. The global torch RNG is left as it was."""
    arch, kwargs, _ = read_model_file(Path(path), expected_arch=arch)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_model(arch, {**kwargs, "pretrained": "none"})
    return model.to(memory_format=MEMORY_FORMAT).eval()


def spearman(a: np.ndarray, b: np.ndarray) -> float | None:
    """Spearman rank correlation of two maps' pixel values; None where either map is constant."""
    a, b = np.ravel(a), np.ravel(b)
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    return float(spearmanr(a, b).statistic)


def map_similarity(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Per image of two (N, H, W) stacks of maps: their Spearman rank correlation (NaN where undefined)."""
    if first.shape != second.shape:
        raise ValueError(f"map_similarity: maps of shapes {first.shape} and {second.shape}")
    return np.array([np.nan if (r := spearman(a, b)) is None else r for a, b in zip(first, second)], dtype=np.float64)


def similarity_summary(rho: np.ndarray, fold_models: int, threshold: float = THRESHOLD) -> dict:
    """The check's entry of metrics/cam.json from the per-image correlations (NaN: undefined, left out)."""
    kept = rho[np.isfinite(rho)]
    abs_mean = float(np.abs(kept).mean()) if len(kept) else None
    return {
        "spearman_mean": float(kept.mean()) if len(kept) else None,
        "spearman_abs_mean": abs_mean,
        "threshold": threshold,
        "passes": None if abs_mean is None else bool(abs_mean < threshold),
        "images": int(len(kept)),
        "undefined": int(len(rho) - len(kept)),
        "fold_models": fold_models,
        "seed": SEED,
    }


def randomised_similarity(
    trained: Iterable[np.ndarray],
    model_path: str | Path,
    arch: str,
    seed: int,
    rows: np.ndarray,
    images_at: Callable[[np.ndarray], np.ndarray],
) -> np.ndarray:
    """One fold model's check, image by image: its trained maps of the images `rows` (`trained`: arrays of
    consecutive images' maps, in the order of `rows`, in any chunks, e.g. as they are computed) against the
    maps of its re-initialised network (randomised_model under `seed`) of the same images, computed a block
    of BLOCK images at a time (images_at: the images of some rows); the Spearman correlation of each pair
    (NaN where undefined). Only a block's maps are kept, of either model."""
    model = randomised_model(model_path, arch, seed)
    rho, done = [], 0
    for maps in _rechunked(trained, BLOCK):
        block = rows[done : done + len(maps)]
        if len(block) != len(maps):
            raise ValueError(f"randomised_similarity: more trained maps than the {len(rows)} images")
        rho.append(map_similarity(maps, grad_cam(model, images_at(block))[0]))
        done += len(maps)
    if done != len(rows):
        raise ValueError(f"randomised_similarity: {done} trained maps for {len(rows)} images")
    return np.concatenate([np.zeros(0), *rho])


def _rechunked(chunks: Iterable[np.ndarray], size: int) -> Iterator[np.ndarray]:
    """The rows of `chunks` (arrays of consecutive rows, every one read) in arrays of `size` rows, the last
    one what is left."""
    waiting: list[np.ndarray] = []
    have = 0
    for chunk in chunks:
        waiting.append(chunk)
        have += len(chunk)
        while have >= size:
            joined = np.concatenate(waiting)
            yield joined[:size]
            waiting, have = [joined[size:]], have - size
    if have:
        yield np.concatenate(waiting)


def randomisation_check(
    trained_maps: list[np.ndarray], model_paths: Sequence[str | Path], images: np.ndarray, arch: str
) -> dict:
    """The check for one arch: each fold model's maps of `images` (trained_maps[k], of the model file
    model_paths[k]) against those of its re-initialised network (seed SEED + k)."""
    if len(trained_maps) != len(model_paths):
        raise ValueError(f"randomisation_check: {len(trained_maps)} sets of maps for {len(model_paths)} models")
    rows = np.arange(len(images))
    rho = [
        randomised_similarity([maps], path, arch, SEED + k, rows, lambda at: images[at])
        for k, (maps, path) in enumerate(zip(trained_maps, model_paths))
    ]
    return similarity_summary(np.concatenate(rho), len(model_paths))
