"""The headline numbers, named in one place: which value of which metrics file each one is.

CANDIDATE: the candidate_* keys that evaluate and survival append to their metrics file, taken from
the candidate arch's (model.arch) entry. PER_ARCH: the numbers `make stability` follows over
training seeds for every arch (crlm.stability.headline), PER_CRF those of each CRF-refined
mask ("<arch>+crf" in metrics/segmentation.json), and BEYOND those of the analyses the paper did
not make (lesions, Grad-CAM, calibration), for every arch with an entry in that file. A path is
the keys into an arch's entry, joined by dots. Dict order is the order of the JSON keys.
"""

from __future__ import annotations

from crlm.archs import ARCHS

# metrics file -> {key appended to it: path in the candidate's entry}
CANDIDATE = {
    "classification": {"candidate_test_auc": "test.auc.value"},
    "segmentation": {"candidate_test_iou": "test.iou.value"},   # only where the candidate segments
    "survival": {"candidate_auc": "auc.value", "candidate_logrank_p": "logrank.p_value"},
}
# name -> (metrics file, path in the arch's entry); segmentation only for the archs that segment
PER_ARCH = {
    "test_auc": ("classification", "test.auc.value"),
    "cv_auc": ("classification", "cv.auc.mean"),
    "test_accuracy": ("classification", "test.accuracy.value"),
    "test_iou": ("segmentation", "test.iou.value"),
    "test_dice": ("segmentation", "test.dice.value"),
    "survival_auc": ("survival", "auc.value"),
    "survival_auc_ipcw": ("survival", "auc_ipcw.value"),
    "survival_c_harrell": ("survival", "c_index.harrell"),
    "survival_logrank_p": ("survival", "logrank.p_value"),
}
PER_CRF = {"test_iou": ("segmentation", "test.iou.value")}
# name -> (metrics file, path), for the archs in that file (lesions: the archs that segment)
BEYOND = {
    "lesion_sensitivity_3d": ("lesions", "per_patient_3d.sensitivity.value"),
    "lesion_fp_per_patient_3d": ("lesions", "per_patient_3d.fp_per_patient.value"),
    "lesion_sensitivity_slice": ("lesions", "per_slice.sensitivity.value"),
    "lesion_fp_per_patient_slice": ("lesions", "per_slice.fp_per_patient.value"),
    "cam_mass_share": ("cam", "mass_share.value"),
    "cam_pointing_hit_rate": ("cam", "pointing_hit_rate.value"),
    "image_brier": ("calibration", "images.brier.value"),
    "image_calibration_slope": ("calibration", "images.slope.value"),
    "survival_brier": ("calibration", "survival.brier.value"),
    "survival_calibration_slope": ("calibration", "survival.slope.value"),
}


def value_at(entry: dict, path: str):
    """entry["a"]["b"]... for the path "a.b..."."""
    for key in path.split("."):
        entry = entry[key]
    return entry


def value_or_none(entry: dict, path: str):
    """value_at, or None where the stage wrote no such number (calibration with no rows writes its reason alone)."""
    try:
        return value_at(entry, path)
    except KeyError:
        return None


def candidate_keys(kind: str, metrics: dict, candidate: str) -> dict:
    """The candidate_* entries of metrics/<kind>.json from its `candidate` entry, in CANDIDATE's order; none
    for the segmentation of a candidate that does not segment (a missing entry of another kind is an error)."""
    if kind == "segmentation" and candidate not in metrics:
        return {}
    return {key: value_at(metrics[candidate], path) for key, path in CANDIDATE[kind].items()}


def per_arch(metrics: dict[str, dict]) -> dict[str, float | None]:
    """Flat "<arch>.<name>" -> value for every arch (PER_ARCH), then "<arch>+crf.<name>" for every CRF entry of
    the segmentation metrics (PER_CRF), then the BEYOND numbers of every arch in the files of them that are
    given, from metrics = {"classification": ..., "segmentation": ..., "survival": ..., ["lesions": ...,
    "cam": ..., "calibration": ...]}."""
    out: dict[str, float | None] = {}
    for arch in ARCHS:
        for name, (kind, path) in PER_ARCH.items():
            if kind != "segmentation" or ARCHS[arch].segments:
                out[f"{arch}.{name}"] = value_at(metrics[kind][arch], path)
    for name in metrics["segmentation"]:
        if name.endswith("+crf"):
            for metric, (kind, path) in PER_CRF.items():
                out[f"{name}.{metric}"] = value_at(metrics[kind][name], path)
    for arch in ARCHS:
        for name, (kind, path) in BEYOND.items():
            if arch in metrics.get(kind, {}):
                out[f"{arch}.{name}"] = value_or_none(metrics[kind][arch], path)
    return out
