"""A models folder (data/models/<arch>/<fold>/model.pt), checked against the params file, and the fold
ensemble's predictions of prepared images.

The ensemble is formed exactly as the evaluate stage forms the test set's: each fold model predicts the images
with crlm.models.inference.predict (batch train.batch_size), its probabilities and tumour maps rounded to the
dtypes the train stage saves them in (crlm.models.folds.as_saved), read back as the evaluate stage reads them
(as_read) and averaged over the folds by the same function (crlm.models.folds.fold_mean).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from crlm.core.arrays import blocks
from crlm.data.dataset import ImageSet
from crlm.models.config import ModelConfig
from crlm.models.folds import SEG_READ_DTYPE, FoldModels, as_read, as_saved, fold_mean, maps_mean
from crlm.models.inference import predict_batches
from crlm.models.model_file import ModelFileError, folder_arch, load_model, read_model_file
from crlm.models.registry import model_kwargs
from crlm.predict import PredictError

SHARED_KEYS = ("width", "embedding_dim", "pretrained", "batch_norm")  # the model keys every arch is built from


def fold_model_paths(models_dir: str | Path) -> list[Path]:
    """Every <fold>/model.pt of the folder, in fold order."""
    models_dir = Path(models_dir)
    if not models_dir.is_dir():
        raise PredictError(
            f"{models_dir}: models folder not found (expected data/models/<arch> with one "
            "<fold>/model.pt per fold; the train stages write it)"
        )
    paths = FoldModels.found(models_dir).model_paths()
    if not paths:
        raise PredictError(f"{models_dir}: no fold models in the models folder (expected <fold>/model.pt)")
    return paths


def config_differences(saved: dict, arch: str, current: ModelConfig) -> list[str]:
    """The network arguments an `arch` model was saved with (model_kwargs) whose value differs from what
    `current` (the params' model section) gives."""
    ours = model_kwargs(current, arch)
    diffs = [
        (f"model.{key}" if key in SHARED_KEYS else f"model.{arch}.{key}", saved.get(key), ours.get(key))
        for key in {**saved, **ours}
    ]
    return [f"{key} {old!r} (params: {new!r})" for key, old, new in diffs if _plain(old) != _plain(new)]


def _plain(value):
    """A list and a tuple of the same values are the same argument."""
    return list(value) if isinstance(value, (list, tuple)) else value


def checked_arch(paths: list[Path], model_cfg: ModelConfig, params_path: str | Path) -> str:
    """The arch of the fold models, after checking that each was built from the params file's model section
    (the shared keys and its arch's own section: model.arch, the candidate, and the other archs' sections do
    not build it)."""
    archs = set()
    for path in paths:
        try:
            arch, saved_cfg, _ = read_model_file(path, folder_arch(path))
        except ModelFileError as exc:
            raise PredictError(str(exc)) from None
        diffs = config_differences(saved_cfg, arch, model_cfg)
        if diffs:
            raise PredictError(
                f"{path}: trained with another model config than {params_path}: "
                f"{'; '.join(diffs)}; a models folder from another experiment needs that "
                "experiment's params file (--params)"
            )
        archs.add(arch)
    if len(archs) > 1:
        raise PredictError(f"{paths[0].parent.parent}: fold models of several archs {sorted(archs)}")
    return archs.pop()


def image_set(images: np.ndarray) -> ImageSet:
    """The prepared slices of the one new patient as an ImageSet (patient_id "new"), without masks."""
    n = len(images)
    return ImageSet(
        pd.DataFrame({"image_id": [str(i) for i in range(n)], "patient_id": ["new"] * n, "label": np.zeros(n, int)}),
        images,  # converted to float32 a batch at a time (ImageSet.images_at)
        np.broadcast_to(np.uint8(0), images.shape),  # no masks: predict does not read them
    )


def ensemble_predict(
    paths: list[Path], images: np.ndarray, batch_size: int, device: torch.device
) -> tuple[np.ndarray, np.ndarray | None]:
    """(mean probability (N,) float64, mean tumour map (N, S, S) float32 or None) of the fold models. Each
    fold's maps are kept as the train stage saves them (float16) and averaged a block of images at a time."""
    n = len(images)
    data = image_set(images)
    probs, segs = [], []
    for path in paths:
        model = load_model(path).to(device)
        fold_probs, fold_segs = [], []
        for batch in predict_batches(model, data, np.arange(n), batch_size, device):
            prob, seg = as_saved(batch.prob, batch.seg_prob)
            fold_probs.append(prob)
            if seg is not None:
                fold_segs.append(seg)
        probs.append(as_read(np.concatenate(fold_probs) if fold_probs else np.zeros(0, np.float32), None)[0])
        if fold_segs:
            segs.append(np.concatenate(fold_segs))
    prob, _ = fold_mean(probs, None)
    if not segs:
        return prob, None
    return prob, np.concatenate([maps_mean([seg[rows].astype(SEG_READ_DTYPE) for seg in segs]) for rows in blocks(n)])
