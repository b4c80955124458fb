"""Rule-based quality control: one reason per excluded slice, nothing dropped silently.

Rules, in the order they are checked (the first that fires is the reason):
  case-level (from the slices stage): unreadable, missing_mask (no label map / SEG), shape_mismatch
                  (NIfTI label shape), geometry_mismatch (SEG frames that do not align with the CT),
                  missing_ct (a SEG whose referenced CT is absent), mixed_spacing (uneven slice or pixel
                  spacing in a CT series), no_liver
  too_few_liver_slices: fewer than qc.min_liver_slices liver slices in the case (partial coverage)
  low_resolution: in-plane matrix below qc.min_matrix_px or spacing above qc.max_pixel_spacing_mm
  saturated:      more than qc.max_saturated_fraction of pixels at or above qc.saturation_hu
  blank:          HU standard deviation below qc.min_std_hu (an empty or constant slice)
  empty_liver:    liver cross-section below qc.min_liver_px

Every rule looks at the image and its acquisition, never at the label: a slice
excluded here is missing from training, validation and the test set alike, so
an exclusion by label would change the prevalence the test set is scored at.
Ambiguous slices (a tumour below slices.min_tumor_px, labelled non-metastasis;
labels.is_ambiguous) are therefore kept and counted (rows.ambiguous_kept); only
a fold's training sample leaves them out (train.exclude_ambiguous, sampling.py).

Notes do not exclude; metrics/qc.json counts them and names each patient:
  no_tumour_segment: a DICOM-SEG with a liver but no tumour segment, so every slice reads as
                  tumour-free (true for a lesion-free patient, wrong for an incomplete SEG)
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from crlm.data.clinical import SURVIVAL_COLUMNS, missing_counts
from crlm.data.config import QCConfig
from crlm.data.labels import is_ambiguous
from crlm.data.pool import ordered_map, pool_size
from crlm.data.slices import load_slice

# a slice takes about 1 ms (128 px) to 6 ms (512 px) and a pool worker about a second to start: at least this
# many rows per worker, so the default phantom's few thousand rows are checked in-process
MIN_ROWS_PER_WORKER = 1000
CHUNKS_PER_WORKER = 4  # contiguous chunks of rows, a few per worker to even out their work

REASONS = (
    "unreadable",
    "missing_mask",
    "shape_mismatch",
    "geometry_mismatch",
    "missing_ct",
    "mixed_spacing",
    "no_liver",
    "too_few_liver_slices",
    "low_resolution",
    "saturated",
    "blank",
    "empty_liver",
)


def slice_reason(row, image: np.ndarray | None, cfg: QCConfig) -> tuple[str, str]:
    """(reason, detail) for one manifest row; ("", "") when the slice is kept."""
    if row.case_error:
        return row.case_error, row.detail
    if row.matrix_px < cfg.min_matrix_px or row.spacing_mm > cfg.max_pixel_spacing_mm:
        return "low_resolution", f"matrix {row.matrix_px} px, spacing {row.spacing_mm:.2f} mm"
    assert image is not None  # None only with a case_error, returned above (the caller reads every other slice)
    saturated = float((image >= cfg.saturation_hu).mean())
    if saturated > cfg.max_saturated_fraction:
        return "saturated", f"{saturated:.1%} of pixels >= {cfg.saturation_hu:g} HU"
    std = float(image.std())
    if std < cfg.min_std_hu:
        return "blank", f"HU std {std:.2f}"
    if row.liver_area_px < cfg.min_liver_px:
        return "empty_liver", f"liver area {row.liver_area_px} px"
    return "", ""


def run_qc(manifest: pd.DataFrame, slices_dir: Path, cfg: QCConfig, workers: int = 1) -> pd.DataFrame:
    """One row per manifest row: kept, or the reason and detail; chunks of rows checked by up to `workers`
    processes (crlm.data.pool.cpu_budget)."""
    liver_slices = manifest[manifest["slice_index"] >= 0].groupby("patient_id").size()
    n_workers = pool_size(workers, len(manifest), MIN_ROWS_PER_WORKER)
    size = max(1, math.ceil(len(manifest) / (CHUNKS_PER_WORKER * n_workers)))
    chunks = []
    for start in range(0, len(manifest), size):
        rows = manifest.iloc[start : start + size]
        counts = {patient: int(liver_slices.get(patient, 0)) for patient in rows["patient_id"].unique()}
        chunks.append((rows, Path(slices_dir), cfg, counts))
    reasons: list[str] = []
    details: list[str] = []
    for chunk_reasons, chunk_details in ordered_map(_chunk_reasons, chunks, n_workers):
        reasons += chunk_reasons
        details += chunk_details
    return pd.DataFrame(
        {
            "image_id": manifest["image_id"].astype("string"),
            "patient_id": manifest["patient_id"].astype("string"),
            "kept": [r == "" for r in reasons],
            "reason": pd.array(reasons, dtype="string"),
            "detail": pd.array(details, dtype="string"),
        }
    )


def _chunk_reasons(chunk: tuple[pd.DataFrame, Path, QCConfig, dict[str, int]]) -> tuple[list[str], list[str]]:
    """(reasons, details) of a chunk of manifest rows, given each of its patients' liver-slice count."""
    rows, slices_dir, cfg, liver_slices = chunk
    reasons, details = [], []
    for row in rows.itertuples(index=False):
        n_liver = liver_slices[row.patient_id]
        if not row.case_error and n_liver < cfg.min_liver_slices:
            reasons.append("too_few_liver_slices")
            details.append(
                f"{row.patient_id}: {n_liver} liver slice(s), fewer than qc.min_liver_slices ({cfg.min_liver_slices})"
            )
            continue
        image = None if row.case_error else load_slice(slices_dir, row, keys=("image",))["image"]
        reason, detail = slice_reason(row, image, cfg)
        reasons.append(reason)
        details.append(detail)
    return reasons, details


def qc_summary(manifest: pd.DataFrame, qc: pd.DataFrame, clinical: pd.DataFrame) -> dict:
    excluded = qc[~qc["kept"]]
    by_reason = {reason: int((excluded["reason"] == reason).sum()) for reason in REASONS}
    case_errors = manifest[manifest["case_error"] != ""]
    image_patients = set(manifest["patient_id"])
    kept_patients = set(qc.loc[qc["kept"], "patient_id"])
    clinical_patients = set(clinical["patient_id"])
    survival_missing = clinical[list(c for c in SURVIVAL_COLUMNS if c in clinical)].isna().any(axis=1)
    return {
        "rows": {
            "slices": int((manifest["slice_index"] >= 0).sum()),
            "unusable_cases": int(len(case_errors)),
            "kept": int(qc["kept"].sum()),
            "excluded": int((~qc["kept"]).sum()),
            "ambiguous_kept": int((is_ambiguous(manifest) & qc["kept"].to_numpy()).sum()),
        },
        "excluded_by_reason": by_reason,
        "patients": {
            "total": len(image_patients),
            "kept": len(kept_patients),
            "lost_to_qc": sorted(image_patients - kept_patients),
        },
        "unusable_cases": {row.patient_id: f"{row.case_error}: {row.detail}" for row in case_errors.itertuples()},
        "notes": case_notes(manifest),
        "clinical": {
            "rows": int(len(clinical)),
            "without_images": sorted(clinical_patients - image_patients),
            "images_without_clinical": sorted(
                p for p in image_patients - clinical_patients if _has_clinical_source(p, clinical)
            ),
            "missing_survival": sorted(clinical.loc[survival_missing, "patient_id"]),
            "missing_values": missing_counts(clinical),
        },
    }


def case_notes(manifest: pd.DataFrame) -> dict:
    """{note kind: {"count": patients, "patients": {patient: the note}}} for the slices stage's notes."""
    noted = manifest[manifest["note"].fillna("") != ""].drop_duplicates("patient_id")
    notes: dict[str, dict] = {}
    for row in noted.sort_values("patient_id").itertuples():
        kind = row.note.split(":", 1)[0]
        entry = notes.setdefault(kind, {"count": 0, "patients": {}})
        entry["count"] += 1
        entry["patients"][row.patient_id] = row.note
    return notes


def _has_clinical_source(patient: str, clinical: pd.DataFrame) -> bool:
    """Image-only sources (LiTS) are not expected to have clinical rows."""
    return any(patient.startswith(f"{source}-") for source in set(clinical["source"]))
