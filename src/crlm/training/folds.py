"""Train one arch on every cross-validation fold, several at a time on a CPU.

A fold trains on its training sample (crlm.data.sampling: its training
patients' images without ambiguous slices, capped per patient and
class-balanced, as the train section says), is validated on every image of its
validation patients and predicts every image of the test patients: the
labels choose training images only, so validation and test are scored at
their natural prevalence.

Each (arch, fold) training is independent and seeded on its own, so running
them side by side in worker processes changes nothing but the wall time. On a
CPU, small convolutions use two cores poorly: two single-threaded trainings at
once are ~1.7x faster than one training on two threads; train.workers caps the
cores (0 = all), so that parallel experiments can share a machine. On CUDA
the folds spread over the visible GPUs, one training per GPU at a time (each
worker process sees one GPU). Under torchrun (crlm.training.distributed) the
folds train one after another, each across every process, and the main
process alone writes files.

The folds are those of data/splits/splits.json (crlm.data.splits.Splits), whose count
split.folds must equal. A fold's outputs: data/models/<arch>/<fold>/{model.pt,
predictions.npz, test_predictions.npz} (written through crlm.models.folds.FoldModels) and its
dvclive curves under plots/train/<arch>/<fold>/. Its checkpoint under
data/checkpoints/<arch>/<fold>/ outlives it until every fold of the arch is
done, so an interrupted stage resumes finished folds for free and the
unfinished one from its last epoch.

The curves are written by this (the stage's) process alone, one training after
another, from the per-epoch history each training returns; no worker touches
dvclive. dvclive is not safe in several processes of one DVC repository at
once: every Live.next_step() writes and every Live.end() deletes one file per
repository, .dvc/tmp/exps/run/DVCLIVE_STEP_COMPLETED (a signal for the VS Code
extension, dvclive/vscode.py), and the delete is "if it exists, remove it", so
a worker whose file a sibling removed in between died with FileNotFoundError
(dvclive 3.49.1; no Live option turns the signal off, and it is sent whenever
the working directory is inside a DVC repository, under `dvc repro` or not).
Under `dvc exp run`, Live.end() also stages files in git, and concurrent ends
collide on .git/index.lock. A curve is complete when its training ends rather
than growing epoch by epoch; its content is the same.
"""

from __future__ import annotations

import itertools
import logging
import os
import shutil
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import torch

if TYPE_CHECKING:
    from crlm.params import Params
from crlm.core.io import write_json
from crlm.core.logs import setup as setup_logging
from crlm.core.paths import CHECKPOINTS, MODELS, PLOTS, SPLITS
from crlm.data.splits import Splits
from crlm.training.device import compute_fingerprint, resolve_precision, select_device
from crlm.training.distributed import SINGLE, World

log = logging.getLogger(__name__)


def worker_plan(n_jobs: int, device: torch.device, cpus: int | None = None, gpus: int = 0) -> tuple[int, int]:
    """(worker processes, torch threads per worker) for n_jobs trainings on `cpus` cores (None: all of this
    machine's) and, on CUDA, `gpus` GPUs (one training per GPU)."""
    cpus = cpus or os.cpu_count() or 1
    slots = gpus if device.type == "cuda" else cpus
    workers = max(1, min(n_jobs, slots))
    return workers, max(1, cpus // workers)


def visible_gpus() -> list[str]:
    """The GPUs this process may use, as CUDA_VISIBLE_DEVICES names them (all of torch's when unset)."""
    names = os.environ.get("CUDA_VISIBLE_DEVICES")
    if names is not None:
        return [name.strip() for name in names.split(",") if name.strip()]
    return [str(i) for i in range(torch.cuda.device_count())]


def take_one_gpu(free_gpus) -> None:
    """A worker's initializer: claim one GPU from the queue and see only it (before CUDA starts here)."""
    os.environ["CUDA_VISIBLE_DEVICES"] = free_gpus.get(timeout=60)


class FoldResult(NamedTuple):
    summary: str  # one line for the stage's log: "<arch>/<fold>: ..."
    # one row per epoch: {"epoch": n, "train_loss": ..., "val_auc": ..., ...} (val_*: every train.val_every
    # epochs and the last)
    history: list[dict]


def train_all_folds(arch: str, params: Params, cpus: int | None = None, world: World = SINGLE) -> list[str]:
    """Train `arch` on every cross-validation fold; returns one summary line per fold (in the main process;
    the other processes of a torchrun world return none).

    Each fold's curves are written here as soon as its training (and those before it) returned.
    """
    splits = Splits.read(SPLITS)
    splits.check_fold_count(params.split.folds)
    folds = splits.fold_names
    device = select_device(params.train.device)
    gpus = visible_gpus() if device.type == "cuda" else []
    cpus = cpus or params.train.workers or None
    workers, threads = worker_plan(len(folds), device, cpus, len(gpus))
    results: Iterable[FoldResult]
    if world.size > 1:  # this node's cores shared by its processes (torchrun sets LOCAL_WORLD_SIZE)
        threads = max(1, (cpus or os.cpu_count() or 1) // int(os.environ.get("LOCAL_WORLD_SIZE", world.size)))
        results = [train_fold(arch, fold, params, threads, world) for fold in folds]
        if not world.main:
            return []
        lines = [_write_curves_of(arch, fold, result) for fold, result in zip(folds, results)]
    elif workers == 1:
        results = (train_fold(arch, fold, params, threads) for fold in folds)
        lines = [_write_curves_of(arch, fold, result) for fold, result in zip(folds, results)]
    else:
        context = get_context("spawn")  # spawn, not fork: a forked child would inherit torch's thread pools
        pinning: dict[str, Any] = {}  # ProcessPoolExecutor's initializer and initargs, or none
        if gpus:
            free_gpus = context.Queue()
            for gpu in gpus[:workers]:
                free_gpus.put(gpu)
            pinning = {"initializer": take_one_gpu, "initargs": (free_gpus,)}
        with ProcessPoolExecutor(workers, mp_context=context, **pinning) as pool:
            results = pool.map(train_fold, [arch] * len(folds), folds, [params] * len(folds), [threads] * len(folds))
            lines = [_write_curves_of(arch, fold, result) for fold, result in zip(folds, results)]
    shutil.rmtree(CHECKPOINTS / arch, ignore_errors=True)
    write_compute(PLOTS / "train" / arch, device, resolve_precision(params.train.precision, device))
    return lines


def write_compute(directory: Path, device: torch.device, precision: str) -> None:
    """directory/compute.json: the machine's compute fingerprint, which `crlm verify` reads to decide whether a
    rerun elsewhere must reproduce these weights byte for byte or only within seed noise."""
    write_json(directory / "compute.json", compute_fingerprint(device, precision))


def _write_curves_of(arch: str, fold: str, result: FoldResult) -> str:
    summary, history = result
    write_curves(PLOTS / "train" / arch / fold, history)
    return summary


def write_curves(directory: Path, history: list[dict]) -> None:
    """One training's per-epoch curves under `directory` (dvclive: one step per epoch, None skipped).

    Call it from one process at a time in a DVC repository (see the module docstring).
    """
    from dvclive import Live

    # dvcyaml=False: dvclive must not rewrite dvc.yaml; the curves are declared there by hand
    live = Live(str(directory), dvcyaml=False, save_dvc_exp=False)
    for row in history:
        for name, value in row.items():
            if name != "epoch" and value is not None:
                live.log_metric(name, value)
        live.next_step()
    live.end()


def train_fold(arch: str, fold: str, params: Params, threads: int, world: World = SINGLE) -> FoldResult:
    """Train `arch` on one fold (0..k-1); write its model, the predictions of its validation patients
    (predictions.npz) and of the test set (test_predictions.npz: evaluate averages the folds' into the
    ensemble's).

    (In a worker process on a CPU: it sets up logging itself, a spawned process inherits none.) Logs one
    line per epoch; returns the per-epoch history; the caller writes the curves.
    """
    from crlm.data.dataset import load_image_set
    from crlm.data.sampling import training_sample
    from crlm.models.folds import FoldModels
    from crlm.models.inference import predict_batches
    from crlm.models.model_file import save_model
    from crlm.training.loop import TrainingDiverged, train_model

    setup_logging()
    torch.set_num_threads(threads)
    data = load_image_set()  # memory-mapped: every worker reads the same pages
    splits = Splits.read(SPLITS)
    chosen = splits.fold(fold)
    train_patients, val_patients = list(chosen.train), list(chosen.val)
    train_idx = training_sample(data.manifest, train_patients, params.train, fold)
    val_idx = data.indices_of(val_patients)

    # validated on its own validation patients only: the test set stays unseen while training
    # (a resumed training's history holds the epochs before the interruption too)
    try:
        result = train_model(
            arch,
            params,
            data,
            train_idx,
            val_idx,
            checkpoint=CHECKPOINTS / arch / fold / "last.pt",
            on_epoch_end=epoch_logger(f"{arch}/{fold}", params.train.epochs) if world.main else None,
            world=world,
        )
    except TrainingDiverged as exc:
        raise TrainingDiverged(f"fold {fold}: {exc}") from None
    if not world.main:
        return FoldResult("", result.history)

    models = FoldModels.of(arch, splits.fold_names, MODELS)
    save_model(models.model_path(fold), arch, result.kwargs, result.model)
    for test, idx in ((False, val_idx), (True, data.indices_of(list(splits.test)))):
        batches = predict_batches(result.model, data, idx, params.train.batch_size)
        first = next(batches)  # whether the arch segments
        models.write_predictions(
            fold,
            test,
            data.manifest["image_id"].to_numpy()[idx],
            ((p.prob, p.seg_prob) for p in itertools.chain([first], batches)),
            None if first.seg_prob is None else data.image_shape,
        )
    resumed = f", resumed after epoch {result.resumed_from_epoch}" if result.resumed_from_epoch else ""
    summary = (
        f"{arch}/{fold}: {len(train_idx)} of {len(data.indices_of(train_patients))} training images "
        f"({data.labels[train_idx].mean():.0%} metastasis), {params.train.epochs} epochs, "
        f"final train loss {result.history[-1]['train_loss']:.3f}{resumed}"
    )
    return FoldResult(summary, result.history)


def epoch_logger(name: str, epochs: int) -> Callable[[dict], None]:
    """train_model's on_epoch_end: logs "<name> epoch <n>/<epochs>: train loss .., val_auc .., ..." (the val_*
    metrics on the validation epochs; an undefined one as None)."""

    def log_epoch(row: dict) -> None:
        metrics = ", ".join(
            f"{key} {value:.4f}" if isinstance(value, float) else f"{key} {value}"
            for key, value in row.items()
            if key not in ("epoch", "train_loss")
        )
        log.info(
            f"{name} epoch {row['epoch']}/{epochs}: train loss {row['train_loss']:.4f}"
            + (f", {metrics}" if metrics else "")
        )

    return log_epoch
