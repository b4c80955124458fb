"""An arch's cross-validation fold models as the train stage leaves them, and their ensemble.

The layout, known here alone: <models>/<arch>/<fold>/ (models: data/models; fold: "0".."k-1", the folds of
crlm.data.splits.Splits) holds

    model.pt              the fold's model (crlm.models.model_file)
    predictions.npz       its predictions of its validation patients' images
    test_predictions.npz  its predictions of the test patients' images

each .npz with image_id (str), seg_prob (float16, the tumour probability maps; only for an arch that
segments) and prob (float32, the image probability of metastasis). The maps are written as the model
predicts them and read a block of images at a time (`map_blocks`, crlm.core.arrays), so that neither the
train stage nor evaluate holds every map of a large cohort.

The fold ensemble (as nnU-Net forms it): the mean over the folds of the probabilities read back as float64
and of the tumour maps read back as float32 (`as_read`), averaged in fold order by `fold_mean`. The evaluate
stage forms the test set's from the saved files (FoldModels.test_ensemble, a block of images at a time:
the mean of each pixel does not depend on the other images) and writes it for the stages after
it (crlm.evaluation.predictions.write_ensemble); `crlm predict` forms a new CT's from the models' own
predictions, rounded to the saved dtypes first (`as_saved`), so that both average the same numbers.

This module imports no model code (nor torch): a model is loaded from its path here with
crlm.models.model_file.load_model(FoldModels.model_path(fold), expected_arch=arch), so that the stages that
read only the fold predictions (evaluate) do not depend on the networks' code.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from crlm.core.arrays import NpzStreamWriter, RowBlocks, npz_rows, npz_shape
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


class StreamedPredictions(NamedTuple):
    """Predictions whose tumour maps are read a block of images at a time."""

    image_ids: np.ndarray
    prob: np.ndarray
    seg: RowBlocks | None


def as_saved(prob: np.ndarray, seg: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    """Probabilities and maps in the dtypes the train stage saves them in."""
    return prob.astype(PROB_DTYPE), (None if seg is None else seg.astype(SEG_DTYPE))


def as_read(prob: np.ndarray, seg: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    """Saved probabilities and maps in the dtypes the ensemble averages them in."""
    return prob.astype(PROB_READ_DTYPE), (None if seg is None else seg.astype(SEG_READ_DTYPE))


def fold_mean(probs: list[np.ndarray], segs: list[np.ndarray] | None) -> tuple[np.ndarray, np.ndarray | None]:
    """The fold ensemble: the mean over the folds (in the given order) of their probabilities and, unless
    `segs` is None or empty, of their tumour maps, each as `as_read` gives them (float64, float32)."""
    return np.mean(probs, axis=0), (maps_mean(segs) if segs else None)


def maps_mean(segs: list[np.ndarray]) -> np.ndarray:
    """The folds' tumour maps averaged (fold_mean), pixel by pixel in fold order: the same numbers for a
    block of the images as for all of them."""
    return np.mean(segs, axis=0)


def _stage(path: Path) -> str:
    return f"train@{path.parent.parent.name}"  # <arch>/<fold>/<name>.npz


def load_predictions(path: Path) -> Predictions:
    """(image ids, probabilities as float64, tumour maps as float32 or None) as a fold's training wrote them."""
    streamed = streamed_predictions(path)
    return Predictions(streamed.image_ids, streamed.prob, None if streamed.seg is None else streamed.seg.gather())


def streamed_predictions(path: Path) -> StreamedPredictions:
    """load_predictions with the maps read a block of images at a time."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found; run `dvc repro` (the train stages write it)")
    saved = load_npz(path, _stage(path), keys=("image_id", "prob"))
    prob, _ = as_read(saved["prob"], None)
    header = npz_shape(path, _stage(path), "seg_prob")
    seg = None
    if header is not None:
        if header[0][0] != len(prob):
            raise ValueError(f"{path}: {header[0][0]} tumour maps for {len(prob)} images; rerun the train stage")
        seg = RowBlocks(
            len(prob), lambda: (block.astype(SEG_READ_DTYPE) for block in npz_rows(path, _stage(path), "seg_prob"))
        )
    return StreamedPredictions(saved["image_id"], prob, seg)


def ensemble_predictions(paths: list[Path]) -> Predictions:
    """The fold ensemble (fold_mean) of several models' saved predictions of the same images."""
    streamed = streamed_ensemble(paths)
    return Predictions(streamed.image_ids, streamed.prob, None if streamed.seg is None else streamed.seg.gather())


def streamed_ensemble(paths: list[Path]) -> StreamedPredictions:
    """ensemble_predictions with the maps averaged a block of images at a time."""
    loaded = [streamed_predictions(path) for path in paths]
    image_ids = loaded[0].image_ids
    for path, fold in zip(paths, loaded):
        if not np.array_equal(fold.image_ids, image_ids):
            raise ValueError(f"{path}: predicts other images than {paths[0]}; retrain the arch's folds together")
    prob, _ = fold_mean([fold.prob for fold in loaded], None)
    # one arch's folds: every fold segments or none does, so loaded[0] speaks for all
    if loaded[0].seg is None:
        return StreamedPredictions(image_ids, prob, None)
    maps = [fold.seg for fold in loaded if fold.seg is not None]
    if len(maps) != len(loaded):
        raise ValueError(f"{paths}: some folds have tumour maps and some do not; retrain the arch's folds together")
    seg = RowBlocks(len(prob), lambda: (maps_mean(list(blocks)) for blocks in zip(*maps)))
    return StreamedPredictions(image_ids, prob, seg)


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
        return self.write_predictions(fold, test, image_ids, [(prob, seg)], None if seg is None else seg.shape[1:])

    def write_predictions(
        self,
        fold: str,
        test: bool,
        image_ids: np.ndarray,
        batches: Iterable[tuple[np.ndarray, np.ndarray | None]],
        map_shape: tuple[int, ...] | None,
    ) -> Path:
        """save_predictions from (probabilities, maps) batches of consecutive images, written as they come:
        the maps (of shape map_shape each; None for an arch that does not segment) go into the file before
        the probabilities, so that no more than a batch of them is ever in memory."""
        path = self.test_predictions_path(fold) if test else self.predictions_path(fold)
        probs: list[np.ndarray] = []

        def maps():
            for prob, seg in batches:
                probs.append(prob)
                yield as_saved(prob, seg)[1]

        with NpzStreamWriter(path) as npz:
            npz.add("image_id", np.asarray(image_ids).astype(str))
            if map_shape is None:
                probs.extend(prob for prob, _ in batches)
            else:
                npz.add_rows("seg_prob", SEG_DTYPE, (len(image_ids), *map_shape), maps())
            prob = np.concatenate(probs) if probs else np.zeros(0)
            if len(prob) != len(image_ids):
                raise ValueError(f"{path}: {len(prob)} probabilities for {len(image_ids)} images")
            npz.add("prob", as_saved(prob, None)[0])
        return path

    def validation_predictions(self, fold: str) -> Predictions:
        """Fold `fold`'s model's predictions of its validation patients' images."""
        return load_predictions(self.predictions_path(fold))

    def test_ensemble(self) -> Predictions:
        """The fold ensemble's predictions of the test images (fold_mean of each fold's, in fold order)."""
        return ensemble_predictions([self.test_predictions_path(fold) for fold in self.folds])

    def streamed_validation_predictions(self, fold: str) -> StreamedPredictions:
        """validation_predictions, the maps read a block of images at a time."""
        return streamed_predictions(self.predictions_path(fold))

    def streamed_test_ensemble(self) -> StreamedPredictions:
        """test_ensemble, the maps averaged a block of images at a time."""
        return streamed_ensemble([self.test_predictions_path(fold) for fold in self.folds])
