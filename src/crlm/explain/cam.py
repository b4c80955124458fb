"""Grad-CAM of the image-level metastasis logit, with captum, for one model and for a fold ensemble.

captum's `LayerGradCam` weighs each channel of a layer's output by the mean gradient of the logit with
respect to it (Selvaraju et al. 2017). The layer is the model's own choice: every arch module's network has
a `cam_layer()` method returning the layer whose output its head pools (crlm/models/<arch>.py), so a new arch
brings its own. The map is upsampled to the image with `LayerAttribution.interpolate` (bilinear), ReLU'd
(only evidence *for* metastasis) and divided by its maximum, per image.

The test predictions are the fold ensemble's, so the maps are too: the mean of the fold models' normalised
maps (each fold weighs the same), normalised again. On the CPU, in eval mode (no dropout, batch-norm
statistics fixed), on one thread and with a fixed batch size, two runs give identical maps. One thread is
also the fastest here: these small networks gain nothing from a second thread, and on a shared 2-core
machine two threads ran 5x slower.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import cast

import numpy as np
import torch
from captum.attr import LayerAttribution, LayerGradCam
from torch import nn
from torch.nn import functional as F

from crlm.core.arrays import blocks
from crlm.models.model_file import load_model

# fixed, so that two runs batch alike: another batch size moves a map by float rounding (< 1e-5 of its peak;
# 8 and 32 gave the same metrics/cam.json and figures); 8 keeps a batch's gradients at 256 px below the training's
BATCH_SIZE = 8
THREADS = 1  # fixed, for the same reason (and the speed: see above)
BLOCK = 8 * BATCH_SIZE  # images read and mapped at a time (whole batches: the maps of one call on them all)


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """torch's intra-op threads set to n inside the block, restored after it."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def cam_layer(model: nn.Module) -> nn.Module:
    """The layer whose output the maps weigh, as the model's arch chooses it (its `cam_layer()` method)."""
    choose = getattr(model, "cam_layer", None)
    if choose is None:
        raise TypeError(
            f"{type(model).__name__} has no cam_layer() method: add one to its arch module that "
            "returns the layer whose output the head pools (see crlm/models/vgg16.py)"
        )
    return choose()


def layer_name(model: nn.Module) -> str:
    """The dotted name of the model's CAM layer inside it (e.g. "decoder", "trunk.features.42")."""
    layer = cam_layer(model)
    return next(name for name, module in model.named_modules() if module is layer)


def normalise(maps: np.ndarray) -> np.ndarray:
    """Each (H, W) map divided by its maximum; a map without a positive value stays all zero."""
    if not len(maps):
        return maps.astype(np.float32)
    peak = maps.reshape(len(maps), -1).max(axis=1).reshape(-1, 1, 1)
    return np.where(peak > 0, maps / np.where(peak > 0, peak, 1.0), 0.0).astype(np.float32)


def grad_cam(model: nn.Module, images: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
    """Grad-CAM of `model`'s logit for (N, H, W) images in [0, 1], on the CPU: (N, H, W) maps, ReLU'd and
    normalised per image, and the (h, w) grid of the layer they were upsampled from."""
    model = model.cpu().eval()
    explainer = LayerGradCam(lambda x: model(x).logit, cam_layer(model))
    maps, grid = [], (0, 0)
    for start in range(0, len(images), BATCH_SIZE):
        x = torch.from_numpy(np.ascontiguousarray(images[start : start + BATCH_SIZE], dtype=np.float32)).unsqueeze(1)
        with torch.enable_grad(), torch_threads(THREADS):
            attribution = explainer.attribute(x).detach()  # (B, 1, h, w)
        grid = tuple(attribution.shape[-2:])
        upsampled = LayerAttribution.interpolate(attribution, tuple(images.shape[-2:]), interpolate_mode="bilinear")
        maps.append(F.relu(upsampled)[:, 0].numpy())
    if not maps:
        return np.zeros((0, *images.shape[-2:]), np.float32), grid
    return normalise(np.concatenate(maps)), grid


def grad_cam_blocks(
    model: nn.Module, rows: np.ndarray, images_at: Callable[[np.ndarray], np.ndarray]
) -> Iterator[tuple[slice, np.ndarray, tuple[int, int]]]:
    """grad_cam(model, images_at(rows)) a block of BLOCK images at a time (images_at: the images of some
    rows, crlm.data.dataset.ImageSet.images_at): for each block, its positions in `rows`, its maps and the
    layer's grid. A block is whole batches, so the maps are those of one call on every image."""
    for block in blocks(len(rows), BLOCK):
        maps, grid = grad_cam(model, images_at(rows[block]))
        yield block, maps, grid


class EnsembleSum:
    """The fold ensemble's maps of n images, as ensemble_of forms them, from each fold's maps added a block
    of images at a time, fold after fold: a float64 running sum 0 + m_0 + m_1 + ... (the very sum
    ensemble_of takes, in the same order), so that no fold's maps of every image need be kept. The sum lives
    in an anonymous temporary file, mapped: it grows with the test images, the stage's private memory does
    not."""

    def __init__(self, n: int, shape: tuple[int, int]) -> None:
        self._file = tempfile.TemporaryFile(prefix="crlm-cam-sum-")  # deleted when closed or collected
        self.total = np.memmap(self._file, dtype=np.float64, mode="w+", shape=(max(n, 1), *shape))[:n]
        self.folds = 0

    def add(self, positions: slice | np.ndarray, maps: np.ndarray) -> None:
        """One fold's maps of the images at `positions`."""
        self.total[positions] += maps.astype(np.float64)

    def fold_done(self) -> None:
        """Every image's maps of one more fold have been added."""
        self.folds += 1

    def maps(self, positions: slice | np.ndarray) -> np.ndarray:
        """The ensemble's maps of the images at `positions`: the mean of the folds' maps, normalised."""
        if not self.folds:
            raise ValueError("EnsembleSum: no fold's maps added")
        return normalise(self.total[positions] / self.folds)


def fold_cams(
    model_paths: Iterable[str | Path], images: np.ndarray, arch: str
) -> tuple[list[np.ndarray], str, tuple[int, int]]:
    """Each saved model's normalised Grad-CAM of `images`, in the order of `model_paths`; also the CAM
    layer's name and grid (those of the first model; every model must be an `arch`)."""
    maps, name, grid = [], "", (0, 0)
    for path in model_paths:
        model = load_model(path, expected_arch=arch)
        fold_maps, grid = grad_cam(model, images)
        name = name or layer_name(model)
        maps.append(fold_maps)
    if not maps:
        raise ValueError("fold_cams: no model paths given")
    return maps, name, grid


def ensemble_of(maps: list[np.ndarray]) -> np.ndarray:
    """The fold ensemble's maps: the mean of the folds' normalised maps, normalised per image (every fold's
    maps at once: the explain stage adds them up fold by fold in an EnsembleSum, to the same maps)."""
    # a sum of arrays is an array (sum()'s int start is left only for no maps, where / len(maps) fails)
    return normalise(cast(np.ndarray, sum(m.astype(np.float64) for m in maps) / len(maps)))


def ensemble_cam(
    model_paths: Iterable[str | Path], images: np.ndarray, arch: str
) -> tuple[np.ndarray, str, tuple[int, int]]:
    """The fold ensemble's maps: the mean of each saved model's normalised Grad-CAM, normalised per image;
    also the CAM layer's name and grid (those of the first model; every model must be an `arch`)."""
    maps, name, grid = fold_cams(model_paths, images, arch)
    return ensemble_of(maps), name, grid
