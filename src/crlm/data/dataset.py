"""The prepared images as arrays, with checks, and patient-level subsets of them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from crlm.core.io import load_npz, read_parquet


class DatasetError(ValueError):
    """The prepared data cannot be used as it is (named file, named image)."""


@dataclass(frozen=True)
class ImageSet:
    manifest: pd.DataFrame     # one row per image, in array order
    images: np.ndarray         # (N, H, W) float in [0, 1]
    tumour: np.ndarray         # (N, H, W) uint8 {0, 1}

    def indices_of(self, patients: list[str]) -> np.ndarray:
        """Row indices of the images of these patients, in manifest order."""
        return np.flatnonzero(self.manifest["patient_id"].isin(set(patients)).to_numpy())

    @property
    def labels(self) -> np.ndarray:
        return self.manifest["label"].to_numpy().astype(np.float32)


def load_image_set(arrays_path: str | Path, manifest_path: str | Path) -> ImageSet:
    manifest = read_parquet(manifest_path)
    arrays = load_npz(arrays_path, "prepare", keys=("images", "tumour"))
    images = arrays["images"].astype(np.float32)
    tumour = arrays["tumour"].astype(np.uint8)
    return check_image_set(ImageSet(manifest, images, tumour), str(arrays_path))


def check_image_set(data: ImageSet, source: str) -> ImageSet:
    """Refuse images with NaN/inf, masks that are not binary, or a manifest of another length."""
    n = len(data.manifest)
    if data.images.shape[0] != n or data.tumour.shape != data.images.shape:
        raise DatasetError(f"{source}: {data.images.shape[0]} images and masks of shape {data.tumour.shape} "
                           f"do not match the manifest's {n} rows; rerun prepare")
    bad = ~np.isfinite(data.images).reshape(n, -1).all(axis=1)
    if bad.any():
        ids = data.manifest["image_id"].to_numpy()[bad][:5].tolist()
        raise DatasetError(f"{source}: {int(bad.sum())} image(s) contain NaN or inf values, e.g. {ids}")
    if data.tumour.size and data.tumour.max() > 1:
        raise DatasetError(f"{source}: tumour masks must be 0/1, found value {int(data.tumour.max())}")
    return data
