"""An arch's cross-validation fold models as the train stage leaves them, and their ensemble.

The layout, known here alone: <models>/<arch>/<fold>/ (models: data/models; fold: "0".."k-1", the folds of
crlm.data.splits.Splits) holds

    model.pt              the fold's model (crlm.models.model_file)
    predictions.npz       its predictions of its validation patients' images
    test_predictions.npz  its predictions of the test patients' images

each .npz with image_id (str), prob (float32, the image probability of metastasis) and, for an arch that
segments, seg_prob (float16, the tumour probability maps).

The fold ensemble (as nnU-Net forms it): the mean over the folds of the probabilities read back as float64
and of the tumour maps read back as float32 (`as_read`), averaged in fold order by `fold_mean`. The evaluate
stage forms the test set's from the saved files (FoldModels.test_ensemble) and writes it for the stages after
it (crlm.evaluation.predictions.write_ensemble); `crlm predict` forms a new CT's from the models' own
predictions, rounded to the saved dtypes first (`as_saved`), so that both average the same numbers.

This module imports no model code (nor torch): a model is loaded from its path here with
crlm.models.model_file.load_model(FoldModels.model_path(fold), expected_arch=arch), so that the stages that
read only the fold predictions (evaluate) do not depend on the networks' code.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, cast

import numpy as np

from crlm.core.io import load_npz
from crlm.core.paths import MODELS

MODEL = "model.pt"
PREDICTIONS = "predictions.npz"  # the fold's validation patients
TEST_PREDICTIONS = "test_predictions.npz"  # the test patients
PROB_DTYPE, SEG_DTYPE = np.float32, np.float16  # as the train stage saves them
PROB_READ_DTYPE, SEG_READ_DTYPE = np.float64, np.float32  # as the ensemble averages them


class Predictions(NamedTuple):
    """A model's (or the ensemble's) predictions of some images."""

    image_ids: np.ndarray
    prob: np.ndarray  # (N,) image probability of metastasis
    seg: np.ndarray | None  # (N, H, W) tumour probability maps; None for an arch that does not segment


def as_saved(prob: np.ndarray, seg: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    """Probabilities and maps in the dtypes the train stage saves them in."""
    return prob.astype(PROB_DTYPE), (None if seg is None else seg.astype(SEG_DTYPE))


def as_read(prob: np.ndarray, seg: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    """Saved probabilities and maps in the dtypes the ensemble averages them in."""
    return prob.astype(PROB_READ_DTYPE), (None if seg is None else seg.astype(SEG_READ_DTYPE))


def fold_mean(probs: list[np.ndarray], segs: list[np.ndarray] | None) -> tuple[np.ndarray, np.ndarray | None]:
    """The fold ensemble: the mean over the folds (in the given order) of their probabilities and, unless
    `segs` is None or empty, of their tumour maps, each as `as_read` gives them (float64, float32)."""
    return np.mean(probs, axis=0), (np.mean(segs, axis=0) if segs else None)


def load_predictions(path: Path) -> Predictions:
    """(image ids, probabilities as float64, tumour maps as float32 or None) as a fold's training wrote them."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found; run `dvc repro` (the train stages write it)")
    saved = load_npz(
        path,
        f"train@{path.parent.parent.name}",  # <arch>/<fold>/<name>.npz
        keys=("image_id", "prob"),
        optional=("seg_prob",),
    )
    prob, seg = as_read(saved["prob"], saved.get("seg_prob"))
    return Predictions(saved["image_id"], prob, seg)


def ensemble_predictions(paths: list[Path]) -> Predictions:
    """The fold ensemble (fold_mean) of several models' saved predictions of the same images."""
    loaded = [load_predictions(path) for path in paths]
    image_ids = loaded[0].image_ids
    for path, fold in zip(paths, loaded):
        if not np.array_equal(fold.image_ids, image_ids):
            raise ValueError(f"{path}: predicts other images than {paths[0]}; retrain the arch's folds together")
    # one arch's folds: every fold segments or none does, so loaded[0] speaks for all
    prob, seg = fold_mean(
        [fold.prob for fold in loaded],
        None if loaded[0].seg is None else cast(list[np.ndarray], [fold.seg for fold in loaded]),
    )
    return Predictions(image_ids, prob, seg)


def _fold_key(name: str) -> tuple:
    """Folds 0, 1, .., 10 in numeric order, any other names after them."""
    return (0, int(name), "") if name.isdigit() else (1, 0, name)


@dataclass(frozen=True)
class FoldModels:
    """The fold models of one arch: <models_dir>/<arch>/<fold>/ for each of `folds`."""

    arch: str
    folds: tuple[str, ...]
    models_dir: Path = MODELS

    @classmethod
    def of(cls, arch: str, fold_names: list[str], models_dir: str | Path = MODELS) -> FoldModels:
        """The arch's models of the folds `fold_names` (crlm.data.splits.Splits.fold_names)."""
        return cls(arch, tuple(fold_names), Path(models_dir))

    @classmethod
    def found(cls, arch_dir: str | Path) -> FoldModels:
        """The fold models on disk in an arch's folder (<arch_dir>/<fold>/model.pt), in fold order; the arch
        is the folder's name. No folds: an empty `folds` (the caller says what it expected)."""
        arch_dir = Path(arch_dir)
        folds = (
            sorted((fold.name for fold in arch_dir.iterdir() if (fold / MODEL).is_file()), key=_fold_key)
            if arch_dir.is_dir()
            else []
        )
        return cls(arch_dir.name, tuple(folds), arch_dir.parent)

    @property
    def arch_dir(self) -> Path:
        return self.models_dir / self.arch

    def fold_dir(self, fold: str) -> Path:
        return self.arch_dir / fold

    def model_path(self, fold: str) -> Path:
        return self.fold_dir(fold) / MODEL

    def predictions_path(self, fold: str) -> Path:
        return self.fold_dir(fold) / PREDICTIONS

    def test_predictions_path(self, fold: str) -> Path:
        return self.fold_dir(fold) / TEST_PREDICTIONS

    def model_paths(self) -> list[Path]:
        """Each fold's model.pt, in fold order."""
        return [self.model_path(fold) for fold in self.folds]

    def save_predictions(
        self, fold: str, test: bool, image_ids: np.ndarray, prob: np.ndarray, seg: np.ndarray | None
    ) -> Path:
        """Write a fold model's predictions of its validation images (test=False) or of the test images, in
        the saved dtypes (as_saved)."""
        path = self.test_predictions_path(fold) if test else self.predictions_path(fold)
        prob, seg = as_saved(prob, seg)
        arrays: dict[str, Any] = {"image_id": np.asarray(image_ids).astype(str), "prob": prob}
        if seg is not None:
            arrays["seg_prob"] = seg
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(path, **arrays)
        return path

    def validation_predictions(self, fold: str) -> Predictions:
        """Fold `fold`'s model's predictions of its validation patients' images."""
        return load_predictions(self.predictions_path(fold))

    def test_ensemble(self) -> Predictions:
        """The fold ensemble's predictions of the test images (fold_mean of each fold's, in fold order)."""
        return ensemble_predictions([self.test_predictions_path(fold) for fold in self.folds])
