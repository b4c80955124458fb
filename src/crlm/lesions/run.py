"""Every segmenting arch's lesion-level evaluation on the independent test set, as the lesions stage writes it.

The tumour probability maps are the fold ensemble's: the mean of the fold models' maps of the test images
as the evaluate stage formed and scored it (data/predictions/<arch>/test_ensemble.npz,
crlm.evaluation.predictions.read_ensemble_blocks), thresholded at evaluate.threshold; every arch is scored on its
network's own map (evaluate's CRF refinement of CLM-Net's mask is not applied: it yields a mask, not a
probability to sweep for the FROC). The truth is the prepared tumour mask (data/processed) for the per-slice
lesions and the interim slice's own mask for the 3-D lesions (crlm.lesions.volumes), the prepared maps put
back into it through the crop box prepare recorded in the manifest. CIs: patient-level bootstrap
(crlm.evaluation.bootstrap) with the stats section's resamples, seed and level; a lesion's rows are resampled
with its patient's.

Each arch's maps are read in one pass, a block of images at a time (scan_maps): a slice is matched at every
probability cut as its block is read, and a patient's volumes (maps and truth in the original geometry) are
built as soon as its last image has been read, matched at every cut and dropped. The stage so holds a block
of maps, one patient's maps and volumes, and the per-image and per-lesion tables, whatever the test set's size.
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
from crlm.core.arrays import RowBlocks, npz_shape
from crlm.core.io import DataFileError, load_npz, rounded
from crlm.data.dataset import ImageSet
from crlm.data.prepare import crop_boxes
from crlm.evaluation.predictions import ensemble_file, manifest_rows, read_ensemble_blocks
from crlm.lesions.matching import Criterion, Detection, DetectionTally, LesionMatch, froc_frame, match_criteria
from crlm.lesions.size import band_names, equivalent_diameter_mm, prepared_pixel_mm, size_band
from crlm.lesions.summary import band_lesions, band_summary, detection_summary, sensitivity_ci
from crlm.lesions.volumes import Built, PatientVolumes, largest_cross_section_px, patient_volumes

DIGITS = 4  # decimals of every float in metrics/lesions.json


@dataclass(frozen=True)
class PreparedTruth:
    """The prepared tumour masks of the test images as bool, by position, read a block of positions at a
    time from the (memory-mapped) ImageSet: truth[start:stop]."""

    data: ImageSet
    rows: np.ndarray  # each position's row of `data`

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, positions: slice) -> np.ndarray:
        return self.data.tumour_at(self.rows[positions]).astype(bool)


@dataclass(frozen=True)
class LesionInputs:
    """The test images (in the ensemble's order) with what the lesion evaluation needs of each."""

    image_ids: np.ndarray
    patients: np.ndarray
    truth: PreparedTruth | np.ndarray  # (N, h, w) bool, the prepared tumour masks (read by blocks of positions)
    tumour_free: np.ndarray  # bool: no tumour pixel in the original slice (tumour_area_px == 0)
    pixel_mm: np.ndarray  # (N, 2): height and width in mm of a prepared pixel
    volumes: PatientVolumes  # the patients' slices in the original geometry (3-D lesions), built one at a time
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
    manifest) and the patients' original tumour masks (the interim slices'), read patient by patient when
    their volumes are built (the slices' shapes from the files' headers)."""
    rows, frame = manifest_rows(data, image_ids)
    interim = slices.set_index("image_id").loc[image_ids]
    boxes = crop_boxes(data.manifest.iloc[rows])
    paths = [Path(slices_dir) / path for path in interim["path"]]
    shapes = [_slice_shape(path) for path in paths]
    pixel_mm = [
        prepared_pixel_mm(box, float(spacing), data.image_shape) for box, spacing in zip(boxes, interim["spacing_mm"])
    ]
    patients = frame["patient_id"].to_numpy().astype(str)
    tumours = Built(len(paths), lambda i: load_npz(paths[i], "slices", keys=("tumour",))["tumour"])
    volumes = patient_volumes(
        patients, interim["slice_index"].to_numpy(), boxes, tumours, interim["spacing_mm"].to_numpy(), shapes
    )
    diameter_3d = [
        equivalent_diameter_mm(largest_cross_section_px(volume), spacing**2)
        for volume, spacing in zip(volumes.truth, volumes.spacing_mm)
    ]
    return LesionInputs(
        np.asarray(image_ids),
        patients,
        PreparedTruth(data, rows),
        (frame["tumour_area_px"] == 0).to_numpy(),
        np.array(pixel_mm, dtype=float),
        volumes,
        np.concatenate([np.zeros(0), *diameter_3d]),
    )


def _slice_shape(path: Path) -> tuple[int, int]:
    """The shape of an interim slice's tumour mask, from its file's header."""
    header = npz_shape(path, "slices", "tumour")
    if header is None:
        raise DataFileError(f"{path}: no array 'tumour'; rerun the stage that writes it (dvc repro -f slices)")
    rows, cols = header[0]
    return rows, cols


def froc_points(points: pd.DataFrame) -> dict:
    """The FROC points as lists for JSON, rounded to DIGITS."""
    return {
        column: [None if v is None or pd.isna(v) else round(float(v), DIGITS) for v in points[column]]
        for column in points.columns
    }


def arch_lesions(
    seg: RowBlocks | np.ndarray, prob: np.ndarray, test: LesionInputs, params: Params
) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    """One arch's lesion metrics (per slice, per patient in 3-D, per size band) and its FROC points (per
    slice, 3-D) from its ensemble's tumour maps `seg` (a block of images at a time, in the order of
    test.image_ids) and image probabilities `prob` of the test images."""
    cfg = params.lesions
    stats = params.stats
    cut = params.evaluate.threshold
    stated = (cut, cfg.min_iou)
    lenient = (cut, 0.0)
    frocs = [(c, cfg.min_iou) for c in cfg.froc_thresholds]
    criteria = list(dict.fromkeys([stated, *frocs, *([lenient] if cfg.min_iou > 0 else [])]))
    per_slice, per_patient = scan_maps(seg if isinstance(seg, RowBlocks) else RowBlocks.of(seg), test, criteria)
    found, found_3d = per_slice[stated].detection(), per_patient[stated].detection()
    slice_froc = froc_frame((c, per_slice[(c, cfg.min_iou)].detection()) for c in cfg.froc_thresholds)
    froc_3d = froc_frame((c, per_patient[(c, cfg.min_iou)].detection()) for c in cfg.froc_thresholds)
    metrics = {
        "per_slice": detection_summary(found, stats),
        "per_patient_3d": detection_summary(found_3d, stats),
        "size_bands": band_summary(
            found, test.pixel_area_mm2, test.tumour_free, test.patients, prob, cfg.size_bands_mm, stats
        ),
        "size_bands_3d": band_lesions(
            found_3d.lesions, size_band(test.diameter_3d, cfg.size_bands_mm), cfg.size_bands_mm, stats
        ),
        "froc": froc_points(slice_froc),
        "froc_3d": froc_points(froc_3d),
    }
    if cfg.min_iou > 0:  # the lenient criterion beside the stated one, for studies that count any overlap
        metrics["any_overlap"] = {
            "per_slice": _sensitivity_only(per_slice[lenient].detection(), stats),
            "per_patient_3d": _sensitivity_only(per_patient[lenient].detection(), stats),
        }
    return metrics, slice_froc, froc_3d


def scan_maps(
    seg: RowBlocks, test: LesionInputs, criteria: list[Criterion]
) -> tuple[dict[Criterion, DetectionTally], dict[Criterion, DetectionTally]]:
    """The per-slice and the 3-D detections (unit: image position; patient, in test.volumes's order) of the
    masks seg >= cut at each (cut, min_iou) of `criteria`, in one pass over the maps a block at a time:
    each slice is matched as its block is read, each patient's volume as soon as its last image has been
    read (one patient's maps kept until then, and one patient's volumes built at a time)."""
    vols = test.volumes
    patient_of = np.empty(len(test.image_ids), dtype=int)
    for k, units in enumerate(vols.units):
        patient_of[units] = k
    left = np.array([len(units) for units in vols.units])  # each patient's images not read yet
    per_slice = {key: DetectionTally() for key in criteria}
    matches_3d: dict[int, dict[Criterion, LesionMatch]] = {}
    pending: dict[int, np.ndarray] = {}  # the maps of the patients not complete yet, by position
    start = 0
    for block in seg:
        stop = start + len(block)
        if stop > len(test.image_ids):
            raise ValueError(f"{stop} or more tumour maps for {len(test.image_ids)} test images")
        truth = test.truth[start:stop]
        for unit, prob_map, true_mask in zip(range(start, stop), block, truth):
            for key, match in match_criteria(prob_map, true_mask, criteria).items():
                per_slice[key].add(unit, test.patients[unit], match)
            pending[unit] = prob_map.copy()
        complete, counts = np.unique(patient_of[start:stop], return_counts=True)
        left[complete] -= counts
        for k in complete[left[complete] == 0]:
            volume = vols.volume(int(k), pending)
            for unit in vols.units[k]:
                del pending[int(unit)]
            matches_3d[int(k)] = match_criteria(volume, vols.true_volume(int(k)), criteria)
        start = stop
    if start != len(test.image_ids):
        raise ValueError(f"{start} tumour maps for {len(test.image_ids)} test images")
    per_patient = {key: DetectionTally() for key in criteria}
    for k, patient in enumerate(vols.patients):  # every patient's volume in turn, as the units number them
        for key, match in matches_3d[k].items():
            per_patient[key].add(k, patient, match)
    return per_slice, per_patient


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
        image_ids, prob, seg = read_ensemble_blocks(ensemble_file(predictions_dir, arch))
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
