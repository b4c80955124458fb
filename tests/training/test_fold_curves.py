"""Fold trainings side by side in worker processes, ending at one moment, under `dvc exp run`'s environment.

dvclive 3.49.1 writes (Live.next_step) and deletes (Live.end: "if it exists, remove it") one signal
file per DVC repository, .dvc/tmp/exps/run/DVCLIVE_STEP_COMPLETED (dvclive/vscode.py); two processes
ending at once can both see it and one dies with FileNotFoundError; under `dvc exp run`, Live.end()
also stages files in git, and concurrent ends collide on .git/index.lock. The fold workers therefore
never run dvclive: train_all_folds writes every fold's curves in the stage's process from the returned
history.
"""

import multiprocessing
import os
import subprocess

import pytest

from crlm.data.splits import Splits, fold_names
from crlm.params import params_from_dict
from crlm.training import folds
from tests import fold_workers
from tests.conftest import tiny_params_dict

N_FOLDS = 16  # 16 CV folds, each in its own worker process


@pytest.fixture
def dvc_exp_run(tmp_path, monkeypatch):
    """A git + DVC repository as the working directory, and the variables `dvc exp run` gives a stage
    (dvc/stage/run.py: DVC_ROOT, DVC_STAGE; dvc/repo/experiments/queue/base.py: DVC_EXP_BASELINE_REV,
    DVC_EXP_NAME, DVC_ROOT)."""
    from dvc.repo import Repo

    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.org"]
    subprocess.run([*git, "init", "-q"], cwd=tmp_path, check=True)
    Repo.init(str(tmp_path)).close()
    subprocess.run([*git, "add", "-A"], cwd=tmp_path, check=True)
    subprocess.run([*git, "commit", "-qm", "init"], cwd=tmp_path, check=True)
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=tmp_path, check=True, capture_output=True, text=True
    ).stdout.strip()
    monkeypatch.chdir(tmp_path)
    for name, value in {
        "DVC_ROOT": str(tmp_path),
        "DVC_STAGE": "train@unet",
        "DVC_EXP_BASELINE_REV": head,
        "DVC_EXP_NAME": "tiny-exp",
        "DVC_NO_ANALYTICS": "1",
        "DVC_STUDIO_OFFLINE": "true",
    }.items():
        monkeypatch.setenv(name, value)
    return tmp_path


def _read_curve(path):
    lines = path.read_text().splitlines()
    return lines[0], [line.split("\t") for line in lines[1:]]


def test_many_folds_ending_together_under_dvc_exp_run_all_succeed_and_keep_their_curves(dvc_exp_run, monkeypatch):
    params = params_from_dict(tiny_params_dict(split={"folds": N_FOLDS}, train={"device": "cpu"}))
    names = fold_names(N_FOLDS)
    splits = {"test": [], "folds": [{"train": [], "val": [f"p{fold}"]} for fold in names]}
    Splits.from_dict(splits).write(dvc_exp_run / "data" / "splits" / "splits.json")  # the folds train_all_folds reads
    # the real train_all_folds, with a stand-in training the spawned workers import from tests/fold_workers.py
    monkeypatch.setattr(folds, "train_fold", fold_workers.fold_ending_with_the_others)
    lines = folds.train_all_folds("unet", params, cpus=N_FOLDS)  # one worker per fold, all at once

    assert lines == [f"train unet/{fold}" for fold in names]
    assert len(list((dvc_exp_run / "arrived").iterdir())) == N_FOLDS
    for fold in names:
        curves = dvc_exp_run / "plots" / "train" / "unet" / fold / "plots" / "metrics"
        history = fold_workers.history_of(fold)
        header, rows = _read_curve(curves / "train_loss.tsv")
        assert header == "step\ttrain_loss"
        assert [(int(s), float(v)) for s, v in rows] == [(e - 1, r["train_loss"]) for e, r in enumerate(history, 1)]
        header, rows = _read_curve(curves / "val_auc.tsv")
        assert [(int(s), float(v)) for s, v in rows] == [(1, history[1]["val_auc"]), (2, history[2]["val_auc"])]
    assert not (dvc_exp_run / ".dvc" / "tmp" / "exps" / "run" / "DVCLIVE_STEP_COMPLETED").exists()


class DvcliveRace(Exception):
    """dvclive failed in a process because another process used it at the same time."""


# what the former design died of: the VS Code signal file (dvclive/vscode.py: exists, then remove),
# and, under `dvc exp run` only, git's index lock (Live.end() stages the curves' folder in git)
RACES = ("builtins.FileNotFoundError: [Errno 2] No such file or directory: ", "dulwich.file.FileLocked: ")


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="the race needs processes running at the same time")
@pytest.mark.xfail(
    raises=DvcliveRace,
    strict=False,
    reason="dvclive 3.49.1 in several processes of one repository at once races on "
    ".dvc/tmp/exps/run/DVCLIVE_STEP_COMPLETED (and, under dvc exp run, on .git/index.lock): "
    "why fold workers do not run dvclive",
)
def test_dvclive_in_several_processes_ending_together_races(dvc_exp_run):
    """The former design, reproduced: a Live in each of 8 processes, all ending at one moment.

    XFAIL: a race happened (usually in the first rounds). XPASS: none in 100 rounds. Either way
    it passes: it documents why train_all_folds writes the curves; any other error fails it."""
    n, ctx = 8, multiprocessing.get_context("spawn")
    start, done = ctx.Barrier(n, timeout=120), ctx.Barrier(n, timeout=120)
    failed, results = ctx.Event(), ctx.Queue()
    workers = [
        ctx.Process(
            target=fold_workers.dvclive_in_this_process,
            args=(str(dvc_exp_run / "plots" / str(k)), start, done, failed, 100, results),
        )
        for k in range(n)
    ]
    for worker in workers:
        worker.start()
    errors = [results.get(timeout=600) for _ in workers]
    for worker in workers:
        worker.join()
    errors = [e for e in errors if e]
    assert all(e.startswith(RACES) for e in errors), errors
    if errors:
        raise DvcliveRace(f"{len(errors)} of {n} processes: " + "; ".join(sorted(set(errors))))
