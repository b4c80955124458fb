"""Every segmenting arch's lesion-level evaluation on the independent test set, as the lesions stage writes it.

The tumour probability maps are the fold ensemble's: the mean of the fold models' maps of the test images
as the evaluate stage formed and scored it (data/predictions/<arch>/test_ensemble.npz,
crlm.evaluation.predictions.read_ensemble), thresholded at evaluate.threshold; every arch is scored on its
network's own map (evaluate's CRF refinement of CLM-Net's mask is not applied: it yields a mask, not a
probability to sweep for the FROC). The truth is the prepared tumour mask (data/processed) for the per-slice
lesions and the interim slice's own mask for the 3-D lesions (crlm.lesions.volumes), the prepared maps put
back into it through the crop box prepare recorded in the manifest. CIs: patient-level bootstrap
(crlm.evaluation.bootstrap) with the stats section's resamples, seed and level; a lesion's rows are resampled
with its patient's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from crlm.archs import ARCHS
from crlm.stats.config import StatsConfig

if TYPE_CHECKING:
    from crlm.params import Params
from crlm.core.io import rounded
from crlm.data.dataset import ImageSet
from crlm.data.prepare import crop_boxes
from crlm.data.slices import load_slice
from crlm.evaluation.predictions import ensemble_file, manifest_rows, read_ensemble, threshold
from crlm.lesions.matching import Detection, detect, froc
from crlm.lesions.size import band_names, equivalent_diameter_mm, prepared_pixel_mm, size_band
from crlm.lesions.summary import band_lesions, band_summary, detection_summary, sensitivity_ci
from crlm.lesions.volumes import PatientVolumes, largest_cross_section_px, patient_volumes

DIGITS = 4  # decimals of every float in metrics/lesions.json


@dataclass(frozen=True)
class LesionInputs:
    """The test images (in the ensemble's order) with what the lesion evaluation needs of each."""

    image_ids: np.ndarray
    patients: np.ndarray
    truth: np.ndarray  # (N, h, w) bool, the prepared tumour masks
    tumour_free: np.ndarray  # bool: no tumour pixel in the original slice (tumour_area_px == 0)
    pixel_mm: np.ndarray  # (N, 2): height and width in mm of a prepared pixel
    volumes: PatientVolumes  # the patients' slices in the original geometry (3-D lesions)
    # each 3-D lesion (by patient, then label): its largest cross-section's equivalent diameter in mm, at the
    # original spacing
    diameter_3d: np.ndarray

    @property
    def pixel_area_mm2(self) -> np.ndarray:
        return self.pixel_mm[:, 0] * self.pixel_mm[:, 1]


@dataclass
class LesionResult:
    metrics: dict  # metrics/lesions.json
    froc: dict[str, pd.DataFrame] = field(default_factory=dict)  # arch -> per-slice FROC points
    froc_3d: dict[str, pd.DataFrame] = field(default_factory=dict)


def lesion_inputs(data: ImageSet, slices: pd.DataFrame, slices_dir: Path, image_ids: np.ndarray) -> LesionInputs:
    """The test images' prepared truth, their prepared pixel size (from the crop box prepare recorded in the
    manifest) and the patients' original tumour masks (the interim slices') stacked into volumes."""
    rows, frame = manifest_rows(data, image_ids)
    interim = slices.set_index("image_id").loc[image_ids]
    truth = data.tumour_at(rows).astype(bool)
    boxes = crop_boxes(data.manifest.iloc[rows])
    tumours, pixel_mm = [], []
    for row, box in zip(interim.itertuples(), boxes):
        tumours.append(load_slice(slices_dir, row)["tumour"])
        pixel_mm.append(prepared_pixel_mm(box, float(row.spacing_mm), truth.shape[1:]))
    patients = frame["patient_id"].to_numpy().astype(str)
    volumes = patient_volumes(
        patients, interim["slice_index"].to_numpy(), boxes, tumours, interim["spacing_mm"].to_numpy()
    )
    diameter_3d = [
        equivalent_diameter_mm(largest_cross_section_px(volume), spacing**2)
        for volume, spacing in zip(volumes.truth, volumes.spacing_mm)
    ]
    return LesionInputs(
        np.asarray(image_ids),
        patients,
        truth,
        (frame["tumour_area_px"] == 0).to_numpy(),
        np.array(pixel_mm, dtype=float),
        volumes,
        np.concatenate([np.zeros(0), *diameter_3d]),
    )


def froc_points(points: pd.DataFrame) -> dict:
    """The FROC points as lists for JSON, rounded to DIGITS."""
    return {
        column: [None if v is None or pd.isna(v) else round(float(v), DIGITS) for v in points[column]]
        for column in points.columns
    }


def arch_lesions(
    seg: np.ndarray, prob: np.ndarray, test: LesionInputs, params: Params
) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    """One arch's lesion metrics (per slice, per patient in 3-D, per size band) and its FROC points (per
    slice, 3-D) from its ensemble's tumour maps `seg` and image probabilities `prob` of the test images."""
    cfg = params.lesions
    stats = params.stats
    cut = params.evaluate.threshold
    per_slice = detect(threshold(seg, cut), test.truth, test.patients, cfg.min_iou)
    vols = test.volumes
    seg_3d = vols.stack(seg)
    per_patient = detect((v >= cut for v in seg_3d), vols.truth, vols.patients, cfg.min_iou)
    slice_froc = froc(seg, test.truth, list(test.patients), cfg.froc_thresholds, cfg.min_iou)
    froc_3d = froc(seg_3d, vols.truth, vols.patients, cfg.froc_thresholds, cfg.min_iou)
    metrics = {
        "per_slice": detection_summary(per_slice, stats),
        "per_patient_3d": detection_summary(per_patient, stats),
        "size_bands": band_summary(
            per_slice, test.pixel_area_mm2, test.tumour_free, test.patients, prob, cfg.size_bands_mm, stats
        ),
        "size_bands_3d": band_lesions(
            per_patient.lesions, size_band(test.diameter_3d, cfg.size_bands_mm), cfg.size_bands_mm, stats
        ),
        "froc": froc_points(slice_froc),
        "froc_3d": froc_points(froc_3d),
    }
    if cfg.min_iou > 0:  # the lenient criterion beside the stated one, for studies that count any overlap
        lenient = {
            "per_slice": detect(threshold(seg, cut), test.truth, test.patients, 0.0),
            "per_patient_3d": detect((v >= cut for v in seg_3d), vols.truth, vols.patients, 0.0),
        }
        metrics["any_overlap"] = {name: _sensitivity_only(found, stats) for name, found in lenient.items()}
    return metrics, slice_froc, froc_3d


def _sensitivity_only(found: Detection, stats: StatsConfig) -> dict:
    """A detection's counts and sensitivity (with its CI) alone."""
    lesions = found.lesions
    return {
        "lesions": int(len(lesions)),
        "detected": int(lesions["detected"].sum()),
        "sensitivity": sensitivity_ci(lesions["detected"].to_numpy(), lesions["patient_id"].to_numpy(), stats),
    }


def lesion_metrics(
    params: Params, data: ImageSet, slices: pd.DataFrame, slices_dir: Path, predictions_dir: Path
) -> LesionResult:
    """Every segmenting arch of crlm.archs, from its fold ensemble's test predictions under predictions_dir
    (the evaluate stage's <arch>/test_ensemble.npz)."""
    test = None
    pixel = {}
    result = LesionResult({})
    for arch, spec in ARCHS.items():
        if not spec.segments:
            continue
        image_ids, prob, seg = read_ensemble(ensemble_file(predictions_dir, arch))
        if seg is None:
            raise ValueError(
                f"{ensemble_file(predictions_dir, arch)}: no tumour maps (seg_prob) of segmenting arch "
                f"{arch}; rerun the stage that writes it (dvc repro -f evaluate)"
            )
        if test is None:
            test = lesion_inputs(data, slices, slices_dir, image_ids)
            area = test.pixel_area_mm2
            pixel = {
                "images": int(len(image_ids)),
                "patients": int(len(set(test.patients))),
                "pixel_mm_median": float(np.median(test.pixel_mm)),
                "pixel_mm_min": float(test.pixel_mm.min()),
                "pixel_mm_max": float(test.pixel_mm.max()),
                "pixel_area_mm2_median": float(np.median(area)),
            }
        elif not np.array_equal(image_ids, test.image_ids):
            raise ValueError(
                f"{arch}: its fold ensemble predicts other test images than the first arch's; "
                "retrain the archs on the same splits"
            )
        metrics, result.froc[arch], result.froc_3d[arch] = arch_lesions(seg, prob, test, params)
        result.metrics[arch] = rounded(metrics, DIGITS)
    result.metrics = {
        "settings": rounded(
            {
                "threshold": params.evaluate.threshold,
                "min_iou": params.lesions.min_iou,
                "connectivity": "8 (per slice), 26 (3-D)",
                "size_bands_mm": list(params.lesions.size_bands_mm),
                "size_bands": band_names(params.lesions.size_bands_mm),
                "test": pixel,
            },
            DIGITS,
        ),
        **result.metrics,
    }
    return result
