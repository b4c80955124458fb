"""Cut each case into liver-containing axial slices with their tumour masks.

One manifest row per slice. A case that cannot be used at all (unreadable
volume, missing or mismatched label map) still gets one row, with
slice_index -1 and `case_error` set, so QC records it instead of it
vanishing.

Cases are cut by a pool of processes when there are enough of them to gain
from one (crlm.data.pool); each writes its own slices' files, and the manifest
is the same whatever the number of processes.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage

from crlm.core.arrays import NpzStreamWriter
from crlm.core.io import load_npz
from crlm.core.logs import progress
from crlm.data.labels import slice_label
from crlm.data.nifti import Volume, VolumeReadError
from crlm.data.pool import ordered_map, pool_size
from crlm.data.sources import SOURCES, Case, CaseError

LIVER, TUMOUR = 1, 2
# a case of the default phantom takes about 0.1 s, one of TCIA's size a few seconds, and a pool worker about
# a second to start: at least this many cases per worker, so a small cohort is cut in-process
MIN_CASES_PER_WORKER = 16
# zlib level 1: about 6x faster than np.savez_compressed's 6 on a CT slice, and a few percent larger; the
# compression is most of this stage's time
SLICE_ZLIB_LEVEL = 1
COLUMNS = {
    "image_id": "string",
    "patient_id": "string",
    "source": "string",
    "slice_index": "int64",
    "label": "int64",  # 1 metastasis, 0 non-metastasis, -1 case unusable (labels.py: slice_label)
    "tumour_area_px": "int64",
    "n_lesions": "int64",  # connected tumour components in the slice
    "liver_area_px": "int64",
    "spacing_mm": "float64",  # in-plane pixel spacing (mean of rows and columns)
    "matrix_px": "int64",  # smaller in-plane side
    "path": "string",  # npz relative to the slices folder
    "case_error": "string",  # "" or why the whole case is unusable: a case-level QC reason (see qc.py)
    "detail": "string",
    "note": "string",  # "" or a case-level remark that does not exclude, e.g. no_tumour_segment (see qc.py)
}


def read_case(case: Case) -> tuple[Volume, np.ndarray, str]:
    """The volume (HU), its label map (0 background, 1 liver, 2 tumour), aligned slice by slice, and a
    note, read by the case's source (Source.read); an unreadable case is a CaseError with its QC reason."""
    try:
        return SOURCES[case.source].read(case)
    except VolumeReadError as exc:
        raise CaseError(getattr(exc, "reason", "unreadable"), str(exc)) from None


def case_slices(case: Case, out_dir: Path, min_tumor_px: int) -> list[dict]:
    try:
        volume, label_map, note = read_case(case)
    except CaseError as exc:
        return [_error_row(case, exc.reason, str(exc))]

    rows = []
    spacing = float(np.mean(volume.spacing_mm[1:]))
    matrix = int(min(volume.array.shape[1:]))
    for z in range(volume.array.shape[0]):
        label_slice = label_map[z]
        liver = (label_slice == LIVER) | (label_slice == TUMOUR)
        if not liver.any():
            continue
        tumour = label_slice == TUMOUR
        image_id = f"{case.patient_id}-s{z:03d}"
        rel_path = f"{image_id}.npz"
        with NpzStreamWriter(out_dir / rel_path, level=SLICE_ZLIB_LEVEL) as npz:
            npz.add("image", volume.array[z].astype(np.int16))
            npz.add("tumour", tumour.astype(np.uint8))
            npz.add("liver", liver.astype(np.uint8))
        tumour_area = int(tumour.sum())
        rows.append(
            {
                "image_id": image_id,
                "patient_id": case.patient_id,
                "source": case.source,
                "slice_index": z,
                "label": slice_label(tumour_area, min_tumor_px),
                "tumour_area_px": tumour_area,
                "n_lesions": int(ndimage.label(tumour)[1]),
                "liver_area_px": int(liver.sum()),
                "spacing_mm": spacing,
                "matrix_px": matrix,
                "path": rel_path,
                "case_error": "",
                "detail": "",
                "note": note,
            }
        )
    if not rows:
        return [_error_row(case, "no_liver", f"{case.label_path}: no slice contains liver")]
    return rows


def _error_row(case: Case, reason: str, detail: str) -> dict:
    return {
        "image_id": f"{case.patient_id}-case",
        "patient_id": case.patient_id,
        "source": case.source,
        "slice_index": -1,
        "label": -1,
        "tumour_area_px": 0,
        "n_lesions": 0,
        "liver_area_px": 0,
        "spacing_mm": float("nan"),
        "matrix_px": 0,
        "path": "",
        "case_error": reason,
        "detail": detail,
        "note": "",
    }


def build_slices(cases: list[Case], out_dir: Path, min_tumor_px: int, workers: int = 1) -> pd.DataFrame:
    """Every case's slices written to out_dir and their manifest, by up to `workers` processes
    (crlm.data.pool.cpu_budget)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    cut = partial(case_slices, out_dir=out_dir, min_tumor_px=min_tumor_px)
    per_case = ordered_map(cut, cases, pool_size(workers, len(cases), MIN_CASES_PER_WORKER))
    rows = [row for case_rows in progress(per_case, "slices", total=len(cases), unit="case") for row in case_rows]
    return as_manifest(rows)


def as_manifest(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    frame = frame.astype(COLUMNS)
    return frame.sort_values("image_id", kind="stable").reset_index(drop=True)


def load_slice(slices_dir: Path, row, keys: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
    """The arrays `keys` (default: image, tumour and liver) of the manifest row's slice file."""
    return load_npz(Path(slices_dir) / row.path, "slices", keys)
