"""data/splits/splits.json, the split stage's patient-level test set and cross-validation folds (made by
crlm.data.split_making), as every other stage reads it, and split.folds (FoldsConfig, what the train stage
reads of the split section).

{"test": [patient, ...], "folds": [{"train": [...], "val": [...]}, ...]} is read once, checked, by
Splits.read: every other module takes the fold names ("0".."k-1"), the fold count (the file's; split.folds
must agree where a stage also takes it), the test patients and each fold's training and validation patients
from a Splits. The check (check_no_leakage, also run by the split stage on what it makes): no patient in two
subsets that must be disjoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from crlm.core.config import ConfigError
from crlm.core.errors import UserError
from crlm.core.io import read_json, write_json
from crlm.core.paths import SPLITS


@dataclass(frozen=True)
class FoldsConfig:
    """split.folds alone (what the train stage reads of the split section)."""

    SECTION: ClassVar[str] = "split"
    PARTIAL: ClassVar[bool] = True
    folds: int

    def __post_init__(self) -> None:
        if self.folds < 2:
            raise ConfigError(f"split.folds must be >= 2, got {self.folds}")


class LeakageError(RuntimeError):
    """A patient appears in two subsets that must be disjoint."""


class SplitError(ValueError):
    """The data cannot be split as asked; the message says why."""


class SplitsFileError(UserError, SplitError):
    """splits.json is malformed, or disagrees with the params or the fold asked for; the message says how."""


FIX = "rerun the stage that writes it (dvc repro -f split)"


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
