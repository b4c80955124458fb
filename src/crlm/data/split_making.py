"""Making the split, the split stage's alone: the patient-level test set, the stratified grouped
cross-validation folds and their summary, and split's params section (SplitConfig). What the other stages
read of the split (data/splits/splits.json, split.folds) is crlm.data.splits, apart, so that a change to how
the split is made reruns the split stage and no train stage (they rerun when splits.json changes).

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
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold, train_test_split

from crlm.core.config import ConfigError, open_unit_interval
from crlm.core.errors import UserError
from crlm.data.labels import is_ambiguous
from crlm.data.splits import FoldsConfig, SplitError, check_no_leakage

NO_EXTERNAL = "none"
SITE_PREFIX = "site:"  # split.external = site:<name>, a phantom site (crlm.data.phantom's SITE_A, SITE_B)


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


class ExternalError(UserError, SplitError):
    """split.external names no patient of the data, or every one; the message names the value and the data's."""


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
