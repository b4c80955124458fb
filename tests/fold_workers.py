"""What the worker processes of tests/training/test_fold_curves.py run.

Spawned workers import this module by name, so it imports nothing heavy (no torch).
"""

from __future__ import annotations

import time
from pathlib import Path

EPOCHS = 3


def history_of(fold: str) -> list[dict]:
    """A fold's made-up per-epoch history (distinct per fold; no AUC in epoch 1, like a one-class batch)."""
    offset = int(fold)
    return [
        {"epoch": e, "train_loss": offset + 1 / e, "val_auc": None if e == 1 else offset / 100 + e / 10}
        for e in range(1, EPOCHS + 1)
    ]


def fold_ending_with_the_others(arch: str, fold: str, params, threads: int) -> tuple[str, list[dict]]:
    """A stand-in for crlm.training.folds.train_fold: no training, and every fold returns at the same
    moment (each waits until all folds have reached this point: a barrier through files in the cwd)."""
    n_folds = params.split.folds
    arrived = Path("arrived")
    arrived.mkdir(exist_ok=True)
    (arrived / fold).touch()
    deadline = time.monotonic() + 120
    while sum(1 for _ in arrived.iterdir()) < n_folds:
        if time.monotonic() > deadline:
            raise TimeoutError(f"fold {fold}: not every fold started; is the pool smaller than {n_folds}?")
        time.sleep(0.001)
    return f"train {arch}/{fold}", history_of(fold)


def dvclive_in_this_process(directory: str, start, done, failed, rounds: int, results) -> None:
    """What each fold worker did before: its own dvclive Live, next_step() and end() in step with the others.

    Every round all processes pass `start` together, log a step and end; the first error sets
    `failed`, and after `done` every process sees it and stops. Puts its first error (or None)
    on `results` as "module.Type: message".
    """
    error = None
    try:
        from dvclive import Live

        live = Live(directory, dvcyaml=False, save_dvc_exp=False)
        for step in range(rounds):
            live.log_metric("train_loss", 1 / (step + 1))
            start.wait()
            try:
                live.next_step()
                live.end()
            except Exception as exc:  # noqa: BLE001 - reported to the test, which checks the kind
                error = error or f"{type(exc).__module__}.{type(exc).__name__}: {exc}"
                failed.set()
            done.wait()
            if failed.is_set():
                break
    except BaseException as exc:  # noqa: BLE001 - a broken barrier or anything else: report, never hang
        error = error or f"{type(exc).__module__}.{type(exc).__name__}: {exc}"
    results.put(error)
