"""The headline numbers, named in one place: which value of which metrics file each one is.

CANDIDATE: the candidate_* keys that evaluate and survival append to their metrics file, taken from
the candidate arch's (model.arch) entry. PER_ARCH: the numbers `make stability` follows over
training seeds for every arch (crlm.stability.headline), PER_CRF those of each CRF-refined
mask ("<arch>+crf" in metrics/segmentation.json), and BEYOND those of the analyses the paper did
not make (lesions, Grad-CAM, calibration), for every arch with an entry in that file. A path is
the keys into an arch's entry, joined by dots. Dict order is the order of the JSON keys.

REVIEW: the few numbers a reviewer decides on, written by the headline stage to metrics/headline.json,
the one file DVC knows as metrics (`dvc metrics diff`, `dvc exp show`, `crlm review`); the detailed
files stay git-tracked outputs that the report and `make stability` read. Each name is the one
metrics/stability.json uses for the same number, so a change can be read against its seed SD.
"""

from __future__ import annotations

from crlm.archs import ARCHS

# metrics file -> {key appended to it: path in the candidate's entry}
CANDIDATE = {
    "classification": {"candidate_test_auc": "test.auc.value"},
    "segmentation": {"candidate_test_iou": "test.iou.value"},  # only where the candidate segments
    "survival": {"candidate_auc": "auc.value", "candidate_logrank_p": "logrank.p_value"},
}
# name -> (metrics file, path in the arch's entry); segmentation only for the archs that segment
PER_ARCH = {
    "test_auc": ("classification", "test.auc.value"),
    "test_auc_any_tumour": ("classification", "test.auc_any_tumour.value"),
    "cv_auc": ("classification", "cv.auc.mean"),
    "test_accuracy": ("classification", "test.accuracy.value"),
    "test_iou": ("segmentation", "test.iou.value"),
    "test_dice": ("segmentation", "test.dice.value"),
    "survival_auc": ("survival", "auc.value"),
    "survival_auc_ipcw": ("survival", "auc_ipcw.value"),
    "survival_c_harrell": ("survival", "c_index.harrell"),
    "survival_logrank_p": ("survival", "logrank.p_value"),
}
PER_CRF = {"test_iou": ("segmentation", "test.iou.value"), "test_dice": ("segmentation", "test.dice.value")}
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


# name -> (metrics file, path in the arch's entry), for every arch with an entry in that file
REVIEW = {
    "test_auc": ("classification", "test.auc.value"),
    "test_auc_ci_low": ("classification", "test.auc.ci_low"),
    "test_auc_ci_high": ("classification", "test.auc.ci_high"),
    "cv_auc": ("classification", "cv.auc.mean"),
    "test_iou": ("segmentation", "test.iou.value"),
    "test_dice": ("segmentation", "test.dice.value"),
    "survival_auc": ("survival", "auc.value"),
    "survival_c_harrell": ("survival", "c_index.harrell"),
    "survival_logrank_p": ("survival", "logrank.p_value"),
    "lesion_sensitivity_3d": ("lesions", "per_patient_3d.sensitivity.value"),
    "lesion_fp_per_patient_3d": ("lesions", "per_patient_3d.fp_per_patient.value"),
    "image_brier": ("calibration", "images.brier.value"),
    "survival_brier": ("calibration", "survival.brier.value"),
    "cam_mass_share": ("cam", "mass_share.value"),
}
# the candidate against each other arch (metrics/compare.json): name -> (comparison, key)
REVIEW_COMPARE = {
    "test_auc_diff": ("recognition_auc", "diff"),
    "test_auc_p_holm": ("recognition_auc", "p_holm"),
    "survival_c_diff": ("survival_c_index", "diff"),
    "survival_c_p_holm": ("survival_c_index", "p_holm"),
}
# the cohort (named so as not to read as the params' data section): name -> (metrics file, path); fixed by
# the data stages, so no training seed moves them
REVIEW_COHORT = {
    "patients": ("qc", "patients.kept"),
    "slices": ("qc", "rows.kept"),
    "test_patients": ("splits", "test.patients"),
}
REVIEW_FILES = (
    "qc",
    "splits",
    "classification",
    "segmentation",
    "survival",
    "compare",
    "lesions",
    "cam",
    "calibration",
)


def review_numbers(metrics: dict[str, dict]) -> dict:
    """metrics/headline.json from metrics = {name: contents of metrics/<name>.json} (REVIEW_FILES):
    {"cohort": {...}, "<arch>": {...} for every arch (and CRF entry) in the arch files, "<candidate>_vs":
    {"<other arch>": {...}}}. A number a stage did not write (e.g. calibration with no rows) is None."""
    out: dict = {"cohort": {name: value_at(metrics[kind], path) for name, (kind, path) in REVIEW_COHORT.items()}}
    names = [*ARCHS, *(name for name in metrics["segmentation"] if name.endswith("+crf"))]
    for name in names:
        entry = {
            metric: value_or_none(metrics[kind][name], path)
            for metric, (kind, path) in REVIEW.items()
            if name in metrics[kind]
        }
        out[name] = {metric: value for metric, value in entry.items() if value is not None}
    compare = metrics["compare"]
    out[f"{compare['candidate']}_vs"] = {
        other: {name: compare[family][other][key] for name, (family, key) in REVIEW_COMPARE.items()}
        for other in compare[next(iter(REVIEW_COMPARE.values()))[0]]
    }
    return out


def source_file(name: str) -> str:
    """The metrics file a flat headline name comes from: "cohort.slices" -> "qc", "clmnet.test_auc" ->
    "classification", "clmnet_vs.unet.test_auc_p_holm" -> "compare"."""
    group, metric = name.split(".")[0], name.split(".")[-1]
    if group == "cohort":
        return REVIEW_COHORT[metric][0]
    return "compare" if group.endswith("_vs") else REVIEW[metric][0]


def flat(tree: dict, prefix: str = "") -> dict:
    """{"a": {"b": 1}} -> {"a.b": 1}: the names DVC gives the numbers of a metrics file."""
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


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
