"""Every QC-passed slice -> a windowed, resized image, at the data's natural prevalence.

Nothing here looks at the label: no per-patient cap, no class balancing, no
exclusion of ambiguous slices. Those choose what a model trains on, so they
belong to each fold's training sample (crlm.data.sampling); validation folds
and the test set are scored on every image of their patients.

HU windowing maps [centre - width/2, centre + width/2] to [0, 1]: a fixed
normalisation that uses no statistics of the data, so nothing leaks from the
test set into training. Models apply their own input normalisation.

The processed manifest records each image's crop box, the rows and columns of its slice that prepare kept
(CROP_COLUMNS, start inclusive, stop exclusive: the box is rows crop_row_start:crop_row_stop, columns
crop_col_start:crop_col_stop), after the slices table's columns; crop_boxes reads them back.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from crlm.core.arrays import blocks, create_npy
from crlm.core.options import look_up
from crlm.core.paths import PROCESSED_IMAGES, PROCESSED_LIVER, PROCESSED_TUMOUR
from crlm.data.config import PrepareConfig
from crlm.data.pool import ordered_map, pool_size
from crlm.data.slices import load_slice

MANIFEST_COLUMNS = ["image_id", "patient_id", "source", "slice_index", "label", "tumour_area_px", "n_lesions"]
CROP_COLUMNS = ["crop_row_start", "crop_row_stop", "crop_col_start", "crop_col_stop"]
Box = tuple[slice, slice]  # (rows, columns) of a slice
# the arrays prepare writes, their files (in the output folder) and dtypes
ARRAYS = {
    "images": (PROCESSED_IMAGES.name, np.float16),
    "tumour": (PROCESSED_TUMOUR.name, np.uint8),
    "liver": (PROCESSED_LIVER.name, np.uint8),
}
BLOCK_ROWS = 256  # slices per unit of work (a worker's block: about 256 x 3 x S x S bytes in memory)
MIN_BLOCKS_PER_WORKER = 2  # a smaller set is prepared in this process: a worker costs about a second to start


def window(hu: np.ndarray, centre: float, width: float) -> np.ndarray:
    low = centre - width / 2.0
    return np.clip((hu.astype(np.float32) - low) / width, 0.0, 1.0)


def resize(image: np.ndarray, size: int, mask: bool = False) -> np.ndarray:
    """Antialiased bilinear for images, nearest neighbour for masks."""
    # Image.NEAREST/BILINEAR exist (Pillow sets them with setattr from Resampling); Pillow's own types miss them
    if mask:
        return np.asarray(Image.fromarray(image.astype(np.uint8)).resize((size, size), Image.NEAREST))  # type: ignore[attr-defined]
    return np.asarray(Image.fromarray(image.astype(np.float32), mode="F").resize((size, size), Image.BILINEAR))  # type: ignore[attr-defined]


def whole_slice(liver: np.ndarray, margin: float) -> tuple[slice, slice]:
    """The whole image: no crop."""
    return slice(0, liver.shape[0]), slice(0, liver.shape[1])


def liver_box(liver: np.ndarray, margin: float) -> tuple[slice, slice]:
    """A square box around the liver, widened by `margin` (a fraction of its side), inside the image."""
    ys, xs = np.nonzero(liver)
    if len(ys) == 0:
        return slice(0, liver.shape[0]), slice(0, liver.shape[1])
    cy, cx = (ys.min() + ys.max() + 1) / 2, (xs.min() + xs.max() + 1) / 2
    side = max(ys.max() - ys.min() + 1, xs.max() - xs.min() + 1) * (1 + 2 * margin)
    side = int(min(np.ceil(side), *liver.shape))
    y0 = int(np.clip(round(cy - side / 2), 0, liver.shape[0] - side))
    x0 = int(np.clip(round(cx - side / 2), 0, liver.shape[1] - side))
    return slice(y0, y0 + side), slice(x0, x0 + side)


# prepare.crop -> the box (rows, columns) of a slice that is kept, from its liver mask and prepare.crop_margin
CROPS = {"none": whole_slice, "liver": liver_box}


def prepare_images(kept: pd.DataFrame, slices_dir: Path, cfg: PrepareConfig) -> dict:
    """The prepared arrays (images, tumour, liver) of the slices `kept` (prepare_slices without the boxes)."""
    return prepare_slices(kept, slices_dir, cfg)[0]


def prepare_slices(kept: pd.DataFrame, slices_dir: Path, cfg: PrepareConfig) -> tuple[dict, pd.DataFrame]:
    """The prepared arrays (images, tumour, liver) of the slices `kept`, and each one's crop box as the
    columns CROP_COLUMNS (int64), row for row."""
    crop = look_up("prepare.crop", cfg.crop, CROPS)
    image_size = cfg.image_size
    n = len(kept)
    images = np.zeros((n, image_size, image_size), dtype=np.float16)
    tumour = np.zeros((n, image_size, image_size), dtype=np.uint8)
    liver = np.zeros((n, image_size, image_size), dtype=np.uint8)
    boxes = np.zeros((n, len(CROP_COLUMNS)), dtype=np.int64)
    for i, row in enumerate(kept.itertuples(index=False)):
        arrays = load_slice(slices_dir, row)
        box = crop(arrays["liver"], cfg.crop_margin)
        boxes[i] = (box[0].start, box[0].stop, box[1].start, box[1].stop)
        arrays = {name: array[box] for name, array in arrays.items()}
        images[i] = resize(window(arrays["image"], cfg.window_center_hu, cfg.window_width_hu), image_size)
        tumour[i] = resize(arrays["tumour"], image_size, mask=True)
        liver[i] = resize(arrays["liver"], image_size, mask=True)
    return {"images": images, "tumour": tumour, "liver": liver}, pd.DataFrame(boxes, columns=CROP_COLUMNS)


def write_prepared(
    kept: pd.DataFrame, slices_dir: Path, cfg: PrepareConfig, out_dir: Path, workers: int = 1
) -> pd.DataFrame:
    """prepare_slices of `kept`, written into the .npy files of ARRAYS in out_dir a block of rows at a time
    (by up to `workers` processes: the same bytes as one), so that no process holds the whole set; returns
    the crop boxes. Each file is written under a temporary name and renamed when whole."""
    out_dir = Path(out_dir)
    shape = (len(kept), cfg.image_size, cfg.image_size)
    temporary = {name: out_dir / f".{file}.tmp" for name, (file, _) in ARRAYS.items()}
    for name, (_, dtype) in ARRAYS.items():
        create_npy(temporary[name], dtype, shape).flush()  # the file at its full size, closed again
    jobs = [(kept.iloc[rows], Path(slices_dir), cfg, temporary, rows.start) for rows in blocks(len(kept), BLOCK_ROWS)]
    boxes = list(ordered_map(_prepare_block, jobs, pool_size(workers, len(jobs), MIN_BLOCKS_PER_WORKER)))
    for name, (file, _) in ARRAYS.items():
        os.replace(temporary[name], out_dir / file)
    if not boxes:
        return pd.DataFrame(np.zeros((0, len(CROP_COLUMNS)), np.int64), columns=CROP_COLUMNS)
    return pd.concat(boxes, ignore_index=True)


def _prepare_block(job: tuple[pd.DataFrame, Path, PrepareConfig, dict[str, Path], int]) -> pd.DataFrame:
    """One block of write_prepared: its slices prepared and written at their rows of the mapped files."""
    kept, slices_dir, cfg, files, start = job
    arrays, boxes = prepare_slices(kept, slices_dir, cfg)
    for name, array in arrays.items():
        mapped = np.load(files[name], mmap_mode="r+")
        mapped[start : start + len(array)] = array
        mapped.flush()
        del mapped
    return boxes


def kept_slices(manifest: pd.DataFrame, qc: pd.DataFrame) -> pd.DataFrame:
    """Every slice QC kept, in image_id order (the order of the prepared arrays)."""
    kept = manifest[manifest["image_id"].isin(qc.loc[qc["kept"], "image_id"])]
    return kept.sort_values("image_id", kind="stable").reset_index(drop=True)


def processed_manifest(kept: pd.DataFrame, boxes: pd.DataFrame) -> pd.DataFrame:
    """The slices table's MANIFEST_COLUMNS of the kept slices, then their crop boxes (prepare_slices)."""
    manifest = kept[MANIFEST_COLUMNS].reset_index(drop=True)
    if len(boxes) != len(manifest):
        raise ValueError(f"processed_manifest: {len(boxes)} crop boxes for {len(manifest)} slices")
    return pd.concat([manifest, boxes[CROP_COLUMNS].reset_index(drop=True)], axis=1)


def crop_boxes(manifest: pd.DataFrame) -> list[Box]:
    """Each image's crop box (rows, columns) as the processed manifest records it (CROP_COLUMNS)."""
    missing = [column for column in CROP_COLUMNS if column not in manifest.columns]
    if missing:
        raise ValueError(
            f"the processed manifest has no column(s) {missing}; rerun the stage that writes it (dvc repro -f prepare)"
        )
    return [
        (slice(int(r0), int(r1)), slice(int(c0), int(c1)))
        for r0, r1, c0, c1 in manifest[CROP_COLUMNS].itertuples(index=False)
    ]
