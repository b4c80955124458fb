"""Patient-level test set and stratified grouped cross-validation folds.

The split is made over every prepared image (every QC-passed slice: prepare
samples nothing), so the test set and the validation folds hold all the images
of their patients at the natural prevalence; the training sample of each fold
is drawn later, by the train stage (crlm.data.sampling).

A patient's label is 1 when any of their prepared images shows a metastasis.
The test set is drawn over patients, stratified by that label; because
patients contribute different numbers of images, TEST_CANDIDATES seeded
draws are made and the one whose image-level metastasis fraction is closest
to the whole set's is kept (a constrained randomisation, deterministic from
split.seed). The folds are scikit-learn's StratifiedGroupKFold over the
remaining images (grouped by patient, stratified by image label).

metrics/splits.json (splits_summary) gives, for every subset (all, development,
test, each fold's train and val patients), the images, patients, metastasis and
ambiguous images and the prevalence (metastasis fraction), over all the
prepared images of its patients.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold, train_test_split

from crlm.core.config import ConfigError, open_unit_interval
from crlm.data.labels import is_ambiguous


@dataclass(frozen=True)
class FoldsConfig:
    """split.folds alone (what the train stage reads of the split section)."""
    SECTION: ClassVar[str] = "split"
    PARTIAL: ClassVar[bool] = True
    folds: int

    def __post_init__(self) -> None:
        if self.folds < 2:
            raise ConfigError(f"split.folds must be >= 2, got {self.folds}")


@dataclass(frozen=True)
class SplitConfig(FoldsConfig):
    """params.yaml's `split` section."""
    PARTIAL: ClassVar[bool] = False
    seed: int
    test_fraction: float

    def __post_init__(self) -> None:
        super().__post_init__()
        open_unit_interval("split.test_fraction", self.test_fraction)


TEST_CANDIDATES = 100


class LeakageError(RuntimeError):
    """A patient appears in two subsets that must be disjoint."""


class SplitError(ValueError):
    """The data cannot be split as asked; the message says why."""


def patient_labels(manifest: pd.DataFrame) -> pd.Series:
    return manifest.groupby("patient_id", sort=True)["label"].max()


def make_splits(manifest: pd.DataFrame, cfg: SplitConfig) -> dict:
    labels = patient_labels(manifest)
    counts = labels.value_counts()
    if len(counts) < 2 or counts.min() < 2:
        raise SplitError(f"need at least 2 patients of each class to stratify the test set; "
                         f"patients per class: {counts.to_dict()}")
    train_patients, test_patients = _balanced_test_draw(manifest, labels, cfg)
    development = manifest[manifest["patient_id"].isin(train_patients)].reset_index(drop=True)
    n_dev_patients = development["patient_id"].nunique()
    if n_dev_patients < cfg.folds:
        raise SplitError(f"{n_dev_patients} development patients cannot fill {cfg.folds} folds")
    splitter = StratifiedGroupKFold(n_splits=cfg.folds, shuffle=True, random_state=cfg.seed)
    folds = []
    for train_idx, val_idx in splitter.split(development, development["label"], development["patient_id"]):
        folds.append({
            "train": sorted(development.loc[train_idx, "patient_id"].unique().tolist()),
            "val": sorted(development.loc[val_idx, "patient_id"].unique().tolist()),
        })
    splits = {"test": sorted(test_patients), "folds": folds}
    check_no_leakage(splits)
    return splits


def _balanced_test_draw(manifest: pd.DataFrame, labels: pd.Series, cfg: SplitConfig) -> tuple[list, list]:
    image_labels = manifest.groupby("patient_id", sort=True)["label"].agg(["sum", "count"])
    overall = image_labels["sum"].sum() / image_labels["count"].sum()
    best, best_gap = None, float("inf")
    for k in range(TEST_CANDIDATES):
        train, test = train_test_split(labels.index.to_list(), test_size=cfg.test_fraction,
                                       stratify=labels.to_list(), random_state=cfg.seed * TEST_CANDIDATES + k)
        chosen = image_labels.loc[test]
        gap = abs(chosen["sum"].sum() / chosen["count"].sum() - overall)
        if gap < best_gap:
            best, best_gap = (train, test), gap
    return best


def check_no_leakage(splits: dict) -> None:
    """Raise LeakageError naming the patient and subsets when any two that must be disjoint overlap."""
    test = set(splits["test"])
    seen_val: dict[str, int] = {}
    for k, fold in enumerate(splits["folds"]):
        train, val = set(fold["train"]), set(fold["val"])
        for name, subset, other, other_name in (
            ("train", train, val, "val"), ("train", train, test, "test"), ("val", val, test, "test")
        ):
            shared = sorted(subset & other)
            if shared:
                raise LeakageError(f"fold {k}: patient(s) {shared} in both {name} and {other_name}")
        for patient in val:
            if patient in seen_val:
                raise LeakageError(f"patient {patient} is in the validation set of folds {seen_val[patient]} and {k}")
            seen_val[patient] = k


def subset_summary(manifest: pd.DataFrame, patients: list[str]) -> dict:
    rows = manifest[manifest["patient_id"].isin(patients)]
    n = len(rows)
    return {
        "images": int(n),
        "patients": int(rows["patient_id"].nunique()),
        "metastasis_images": int(rows["label"].sum()),
        "ambiguous_images": int(is_ambiguous(rows).sum()),
        "metastasis_fraction": round(float(rows["label"].mean()), 4) if n else None,   # the prevalence
    }


def splits_summary(manifest: pd.DataFrame, splits: dict) -> dict:
    development = sorted(set(manifest["patient_id"]) - set(splits["test"]))
    return {
        "all": subset_summary(manifest, sorted(set(manifest["patient_id"]))),
        "development": subset_summary(manifest, development),
        "test": subset_summary(manifest, splits["test"]),
        "folds": {f"fold{k}": {"train": subset_summary(manifest, fold["train"]),
                               "val": subset_summary(manifest, fold["val"])}
                  for k, fold in enumerate(splits["folds"])},
    }


def fold_patients(splits: dict, fold: str) -> tuple[list[str], list[str]]:
    """(training patients, validation patients) of fold "0".."k-1"."""
    n_folds = len(splits["folds"])
    if not fold.isdigit() or int(fold) >= n_folds:
        raise SplitError(f"fold {fold!r}: splits.json has folds 0..{n_folds - 1}; "
                         "dvc.yaml's train matrix and split.folds must agree")
    chosen = splits["folds"][int(fold)]
    return list(chosen["train"]), list(chosen["val"])
