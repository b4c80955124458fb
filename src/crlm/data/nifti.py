"""NIfTI volumes in and out, in one axial convention shared by every source.

Inside the pipeline a volume is a numpy array indexed (z, y, x):
z runs inferior -> superior, y runs anterior -> posterior (image top is
anterior) and x runs patient right -> left (radiological display: the
patient's right is on the image's left). Any NIfTI orientation is brought to
this convention through nibabel's canonical (RAS+) reorientation.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np


class VolumeReadError(RuntimeError):
    """A volume or label map cannot be read; the message names the file."""


@dataclass(frozen=True)
class Volume:
    array: np.ndarray  # (z, y, x)
    spacing_mm: tuple[float, float, float]  # (z, y, x)


def read_nifti(path: str | Path) -> Volume:
    path = Path(path)
    if not path.is_file():
        raise VolumeReadError(f"{path}: file not found")
    try:
        image = nib.as_closest_canonical(nib.load(str(path)))
        data = np.asanyarray(image.dataobj)
    except Exception as exc:  # nibabel raises many types for a corrupt file
        raise VolumeReadError(f"{path}: cannot read NIfTI ({type(exc).__name__}: {exc})") from exc
    if data.ndim != 3:
        raise VolumeReadError(f"{path}: expected a 3-D volume, got shape {data.shape}")
    sx, sy, sz = (float(v) for v in image.header.get_zooms()[:3])
    # canonical RAS+ array is [i -> Right, j -> Anterior, k -> Superior]
    axial = np.ascontiguousarray(data[::-1, ::-1, :].transpose(2, 1, 0))
    return Volume(array=axial, spacing_mm=(sz, sy, sx))


def write_nifti(path: str | Path, axial: np.ndarray, spacing_mm: tuple[float, float, float]) -> None:
    """Write an axial (z, y, x) array the way LiTS stores its volumes.

    LiTS volumes use an LPS-like affine (negative x and y steps), array
    [i -> patient left, j -> posterior, k -> superior]; writing the phantom the
    same way exercises the reorientation in `read_nifti`.
    """
    sz, sy, sx = spacing_mm
    affine = np.diag([-sx, -sy, sz, 1.0])
    data = np.ascontiguousarray(axial.transpose(2, 1, 0))
    image = nib.Nifti1Image(data, affine)
    image.header.set_xyzt_units("mm")
    image.set_qform(affine, code=1)
    image.set_sform(affine, code=1)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(image, str(path))
