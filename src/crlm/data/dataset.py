"""The prepared images as arrays, with checks, and patient-level subsets of them.

The prepare stage writes the arrays as .npy files (crlm.core.paths.PROCESSED_IMAGES, _TUMOUR, _LIVER) that
every reader memory-maps: the images stay float16 on disk and in the page cache, shared by every process
that reads them, and `images_at` converts only the rows asked for to float32 (exactly: every float16 is a
float32). Numpy arithmetic on the images goes through `images_at`, never on `images` itself, so that it is
float32 arithmetic whatever the array on disk is.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from crlm.core.arrays import blocks, map_npy
from crlm.core.io import read_parquet
from crlm.core.paths import PROCESSED, PROCESSED_IMAGES, PROCESSED_LIVER, PROCESSED_MANIFEST, PROCESSED_TUMOUR

IMAGE_DTYPE, MASK_DTYPE = np.float16, np.uint8  # as prepare writes them


class DatasetError(ValueError):
    """The prepared data cannot be used as it is (named file, named image)."""


@dataclass(frozen=True)
class ImageSet:
    manifest: pd.DataFrame  # one row per image, in array order
    images: np.ndarray  # (N, H, W) float in [0, 1]: float16 memory-mapped from disk, or any float array
    tumour: np.ndarray  # (N, H, W) uint8 {0, 1}

    def indices_of(self, patients: list[str]) -> np.ndarray:
        """Row indices of the images of these patients, in manifest order."""
        return np.flatnonzero(self.manifest["patient_id"].isin(set(patients)).to_numpy())

    @property
    def labels(self) -> np.ndarray:
        return self.manifest["label"].to_numpy().astype(np.float32)

    @property
    def image_shape(self) -> tuple[int, int]:
        height, width = self.images.shape[-2:]
        return height, width

    def images_at(self, rows) -> np.ndarray:
        """The images of `rows` (indices, a mask or a slice) as a float32 array of their own."""
        return np.array(self.images[rows], dtype=np.float32)

    def tumour_at(self, rows) -> np.ndarray:
        """The tumour masks of `rows` as a uint8 array of their own."""
        return np.array(self.tumour[rows], dtype=np.uint8)


def load_image_set(processed_dir: str | Path = PROCESSED) -> ImageSet:
    """The prepare stage's images and tumour masks in `processed_dir`, memory-mapped, and its manifest."""
    processed_dir = Path(processed_dir)
    manifest = read_parquet(processed_dir / PROCESSED_MANIFEST.name)
    images = map_npy(processed_dir / PROCESSED_IMAGES.name, "prepare", IMAGE_DTYPE, ndim=3)
    tumour = map_npy(processed_dir / PROCESSED_TUMOUR.name, "prepare", MASK_DTYPE, ndim=3)
    return check_image_set(ImageSet(manifest, images, tumour), str(processed_dir))


def load_liver(processed_dir: str | Path = PROCESSED) -> np.ndarray:
    """The prepare stage's liver masks (uint8 {0, 1}, row for row with the images), memory-mapped."""
    return map_npy(Path(processed_dir) / PROCESSED_LIVER.name, "prepare", MASK_DTYPE, ndim=3)


def check_image_set(data: ImageSet, source: str) -> ImageSet:
    """Refuse images with NaN/inf, masks that are not binary, or a manifest of another length (a block of
    rows at a time, so that a mapped set is never read into memory whole)."""
    n = len(data.manifest)
    if data.images.shape[0] != n or data.tumour.shape != data.images.shape:
        raise DatasetError(
            f"{source}: {data.images.shape[0]} images and masks of shape {data.tumour.shape} "
            f"do not match the manifest's {n} rows; rerun prepare"
        )
    bad = np.zeros(n, bool)
    highest = 0
    for block in blocks(n):
        bad[block] = ~np.isfinite(data.images[block]).reshape(block.stop - block.start, -1).all(axis=1)
        if data.tumour[block].size:
            highest = max(highest, int(data.tumour[block].max()))
    if bad.any():
        ids = data.manifest["image_id"].to_numpy()[bad][:5].tolist()
        raise DatasetError(f"{source}: {int(bad.sum())} image(s) contain NaN or inf values, e.g. {ids}")
    if highest > 1:
        raise DatasetError(f"{source}: tumour masks must be 0/1, found value {highest}")
    return data
