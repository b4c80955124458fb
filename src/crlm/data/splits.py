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

External validation (split.external, not `none`): the test set is every patient of one source (the
manifest's `source`: tcia, lits, phantom) or of one phantom site (`site:A`, `site:B`: the clinical table's
`site` column, which the phantom writes when phantom.site_b.share > 0), and the folds are made over the
other patients as above; split.test_fraction does not apply.

metrics/splits.json (splits_summary) gives, for every subset (all, development,
test, each fold's train and val patients), the images, patients, metastasis and
ambiguous images and the prevalence (metastasis fraction), over all the
prepared images of its patients.

data/splits/splits.json, {"test": [patient, ...], "folds": [{"train": [...], "val": [...]}, ...]}, is read
once, checked, by Splits.read: every other module takes the fold names ("0".."k-1"), the fold count (the
file's; split.folds must agree where a stage also takes it), the test patients and each fold's training and
validation patients from a Splits.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold, train_test_split

from crlm.core.config import ConfigError, open_unit_interval
from crlm.core.errors import UserError
from crlm.core.io import read_json, write_json
from crlm.core.paths import SPLITS
from crlm.data.labels import is_ambiguous

NO_EXTERNAL = "none"
SITE_PREFIX = "site:"  # split.external = site:<name>, a phantom site (crlm.data.phantom's SITE_A, SITE_B)


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
    test_fraction: float  # the internal hold-out's share of the patients (split.external none)
    # none, or whose patients are the test set: a source or site:<phantom site> (which ones: crlm.params checks
    # them against data.sources and the phantom's sites)
    external: str

    def __post_init__(self) -> None:
        super().__post_init__()
        open_unit_interval("split.test_fraction", self.test_fraction)
        if not self.external.strip() or self.external == SITE_PREFIX:
            raise ConfigError(
                f"split.external: {self.external!r} names nothing; valid: none, a source of data.sources, or "
                "site:A / site:B"
            )

    @property
    def site(self) -> str | None:
        """The phantom site of split.external = site:<name>, else None."""
        return self.external.removeprefix(SITE_PREFIX) if self.external.startswith(SITE_PREFIX) else None


TEST_CANDIDATES = 100


class LeakageError(RuntimeError):
    """A patient appears in two subsets that must be disjoint."""


class SplitError(ValueError):
    """The data cannot be split as asked; the message says why."""


class SplitsFileError(UserError, SplitError):
    """splits.json is malformed, or disagrees with the params or the fold asked for; the message says how."""


class ExternalError(UserError, SplitError):
    """split.external names no patient of the data, or every one; the message names the value and the data's."""


FIX = "rerun the stage that writes it (dvc repro -f split)"


def patient_labels(manifest: pd.DataFrame) -> pd.Series:
    return manifest.groupby("patient_id", sort=True)["label"].max()


def external_patients(manifest: pd.DataFrame, cfg: SplitConfig, sites: pd.Series | None = None) -> list[str]:
    """The patients of split.external in the manifest: those of its source, or of its phantom site by `sites`
    (patient_id -> site, the clinical table's `site` column). An error names the value and what the data
    holds when none matches."""
    patients = set(manifest["patient_id"])
    if cfg.site is None:
        chosen = set(manifest.loc[manifest["source"] == cfg.external, "patient_id"])
        present = f"the prepared images' sources: {sorted(set(manifest['source']))}"
    else:
        if sites is None:
            raise ExternalError(
                f"split.external {cfg.external!r}: the clinical table has no site column (the phantom writes one "
                "when phantom.site_b.share > 0)"
            )
        chosen = patients & set(sites.index[sites == cfg.site])
        present = f"the prepared patients' sites: {sorted(set(sites[sites.index.isin(patients)].dropna()))}"
    if not chosen:
        raise ExternalError(f"split.external {cfg.external!r}: no prepared patient is of it; {present}")
    if chosen == patients:
        raise ExternalError(
            f"split.external {cfg.external!r}: every prepared patient is of it, none is left for the folds"
        )
    return sorted(chosen)


def make_splits(manifest: pd.DataFrame, cfg: SplitConfig, sites: pd.Series | None = None) -> dict:
    """The test set and folds: an internal hold-out (split.external none) or the external patients
    (external_patients; `sites` for a phantom site)."""
    if cfg.external != NO_EXTERNAL:
        test = external_patients(manifest, cfg, sites)
        development = sorted(set(manifest["patient_id"]) - set(test))
        return _with_folds(manifest, cfg, development, test)
    labels = patient_labels(manifest)
    counts = labels.value_counts()
    if len(counts) < 2 or counts.min() < 2:
        raise SplitError(
            f"need at least 2 patients of each class to stratify the test set; patients per class: {counts.to_dict()}"
        )
    train_patients, test_patients = _balanced_test_draw(manifest, labels, cfg)
    return _with_folds(manifest, cfg, train_patients, test_patients)


def _with_folds(manifest: pd.DataFrame, cfg: SplitConfig, train_patients: list, test_patients: list) -> dict:
    """StratifiedGroupKFold's folds over the images of `train_patients`, beside the test set."""
    development = manifest[manifest["patient_id"].isin(train_patients)].reset_index(drop=True)
    n_dev_patients = development["patient_id"].nunique()
    if n_dev_patients < cfg.folds:
        raise SplitError(f"{n_dev_patients} development patients cannot fill {cfg.folds} folds")
    splitter = StratifiedGroupKFold(n_splits=cfg.folds, shuffle=True, random_state=cfg.seed)
    folds = []
    for train_idx, val_idx in splitter.split(development, development["label"], development["patient_id"]):
        folds.append(
            {
                "train": sorted(development.loc[train_idx, "patient_id"].unique().tolist()),
                "val": sorted(development.loc[val_idx, "patient_id"].unique().tolist()),
            }
        )
    splits = {"test": sorted(test_patients), "folds": folds}
    check_no_leakage(splits)
    return splits


def _balanced_test_draw(manifest: pd.DataFrame, labels: pd.Series, cfg: SplitConfig) -> tuple[list, list]:
    image_labels = manifest.groupby("patient_id", sort=True)["label"].agg(["sum", "count"])
    overall = image_labels["sum"].sum() / image_labels["count"].sum()
    best, best_gap = None, float("inf")
    for k in range(TEST_CANDIDATES):
        train, test = train_test_split(
            labels.index.to_list(),
            test_size=cfg.test_fraction,
            stratify=labels.to_list(),
            random_state=cfg.seed * TEST_CANDIDATES + k,
        )
        chosen = image_labels.loc[test]
        gap = abs(chosen["sum"].sum() / chosen["count"].sum() - overall)
        if gap < best_gap:
            best, best_gap = (train, test), gap
    assert best is not None  # TEST_CANDIDATES > 0 draws; the first gap is finite (every patient has images)
    return best


def check_no_leakage(splits: dict) -> None:
    """Raise LeakageError naming the patient and subsets when any two that must be disjoint overlap."""
    test = set(splits["test"])
    seen_val: dict[str, int] = {}
    for k, fold in enumerate(splits["folds"]):
        train, val = set(fold["train"]), set(fold["val"])
        for name, subset, other, other_name in (
            ("train", train, val, "val"),
            ("train", train, test, "test"),
            ("val", val, test, "test"),
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
        "metastasis_fraction": round(float(rows["label"].mean()), 4) if n else None,  # the prevalence
    }


def splits_summary(manifest: pd.DataFrame, splits: dict) -> dict:
    development = sorted(set(manifest["patient_id"]) - set(splits["test"]))
    return {
        "all": subset_summary(manifest, sorted(set(manifest["patient_id"]))),
        "development": subset_summary(manifest, development),
        "test": subset_summary(manifest, splits["test"]),
        "folds": {
            f"fold{k}": {"train": subset_summary(manifest, fold["train"]), "val": subset_summary(manifest, fold["val"])}
            for k, fold in enumerate(splits["folds"])
        },
    }


def fold_names(n_folds: int) -> list[str]:
    """The folds' names, "0".."k-1" (the folders under data/models/<arch>/)."""
    return [str(k) for k in range(n_folds)]


@dataclass(frozen=True)
class Fold:
    """One cross-validation fold: its training and validation patients."""

    train: tuple[str, ...]
    val: tuple[str, ...]


@dataclass(frozen=True)
class Splits:
    """The patient-level test set and the cross-validation folds of data/splits/splits.json."""

    test: tuple[str, ...]
    folds: tuple[Fold, ...]
    source: str = str(SPLITS)  # where they were read from, for messages

    @classmethod
    def from_dict(cls, splits: dict, source: str = str(SPLITS)) -> Splits:
        """From the JSON form, checked: a test list, at least one fold, each with train and val lists of
        patient ids, and no patient where two subsets must be disjoint (LeakageError)."""
        if (
            not isinstance(splits, dict)
            or not isinstance(splits.get("test"), list)
            or not isinstance(splits.get("folds"), list)
            or not splits["folds"]
        ):
            raise SplitsFileError(
                f'{source}: expected {{"test": [patients], "folds": [{{"train": [...], '
                f'"val": [...]}}, ...]}} with at least one fold; {FIX}'
            )
        folds = []
        for k, fold in enumerate(splits["folds"]):
            if not isinstance(fold, dict) or not all(isinstance(fold.get(key), list) for key in ("train", "val")):
                raise SplitsFileError(f'{source}: fold {k} is not {{"train": [patients], "val": [patients]}}; {FIX}')
            folds.append(Fold(tuple(map(str, fold["train"])), tuple(map(str, fold["val"]))))
        check_no_leakage(splits)
        return cls(tuple(map(str, splits["test"])), tuple(folds), source)

    @classmethod
    def read(cls, path: str | Path = SPLITS) -> Splits:
        """data/splits/splits.json (or `path`), checked (from_dict)."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: not found; run the stage that writes it (dvc repro split)")
        return cls.from_dict(read_json(path), str(path))

    def to_dict(self) -> dict:
        """The JSON form, as the split stage writes it."""
        return {"test": list(self.test), "folds": [{"train": list(f.train), "val": list(f.val)} for f in self.folds]}

    def write(self, path: str | Path = SPLITS) -> None:
        write_json(path, self.to_dict())

    @property
    def n_folds(self) -> int:
        return len(self.folds)

    @property
    def fold_names(self) -> list[str]:
        """ "0".."k-1"."""
        return fold_names(self.n_folds)

    def check_fold_count(self, folds: int) -> None:
        """Raise SplitsFileError unless the file has `folds` (params split.folds) folds."""
        if folds != self.n_folds:
            raise SplitsFileError(
                f"params split.folds is {folds} but {self.source} has {self.n_folds} folds; "
                "rerun the split stage (dvc repro split) after changing split.folds"
            )

    def fold(self, name: str) -> Fold:
        """Fold "0".."k-1"."""
        if name not in self.fold_names:
            raise SplitsFileError(
                f"fold {name!r}: {self.source} has folds 0..{self.n_folds - 1}; "
                "dvc.yaml's train matrix and split.folds must agree"
            )
        return self.folds[int(name)]
