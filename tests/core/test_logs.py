"""crlm.core.logs: one logging setup (timestamped lines on stdout), every stage's start and end logged, progress
bars off without a terminal and in CI; training logs one line per epoch per fold."""

import ast
import io
import logging
import re
import subprocess
import sys

import pytest

from crlm.core import logs
from tests.conftest import REPO

STAGES = sorted((REPO / "stages").glob("*.py"))


@logs.stage_main
def _stage_that_works():
    logging.getLogger("test_logs").info("working")
    return 7


@logs.stage_main
def _stage_that_fails():
    raise RuntimeError("broken input")


def test_a_stage_main_logs_its_start_and_its_end_with_the_duration(caplog):
    caplog.set_level(logging.INFO)
    assert _stage_that_works() == 7
    messages = [(r.name, r.getMessage()) for r in caplog.records]
    assert messages[:2] == [("test_logs", "start"), ("test_logs", "working")]  # logger named after the file
    assert messages[2][0] == "test_logs" and re.fullmatch(r"done in \d+\.\d s", messages[2][1])


def test_a_failing_stage_logs_the_failure_and_raises(caplog):
    caplog.set_level(logging.INFO)
    with pytest.raises(RuntimeError, match="broken input"):
        _stage_that_fails()
    last = caplog.records[-1]
    assert last.levelname == "ERROR" and re.fullmatch(r"failed after \d+\.\d s", last.getMessage())


def test_setup_logs_timestamped_lines_to_stdout():
    code = (
        "import logging; from crlm.core.logs import setup; setup(); setup(); "
        "logging.getLogger('evaluate').info('unet: test AUC 0.9'); logging.getLogger('x').debug('hidden')"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stderr == ""
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO evaluate: unet: test AUC 0\.9\n", result.stdout)


@pytest.mark.parametrize("script", STAGES, ids=[s.stem for s in STAGES])
def test_every_stage_main_is_a_stage_main_and_logs_instead_of_printing(script):
    tree = ast.parse(script.read_text())
    main = next(node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == "main")
    assert [ast.unparse(d) for d in main.decorator_list] == ["stage_main"]
    prints = [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print"
    ]
    assert prints == [], f"{script.name}: print() at lines {prints}; log instead"


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_is_off_without_a_terminal_and_in_ci(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    assert logs.progress(range(3), "x", file=io.StringIO()).disable  # not a TTY: CI logs, files
    assert not logs.bars_enabled(io.StringIO())
    terminal = _Terminal()
    bar = logs.progress(range(3), "cases", file=terminal)
    assert not bar.disable and list(bar) == [0, 1, 2]
    assert "cases" in terminal.getvalue()
    assert logs.bars_enabled(terminal)
    for value, off in (("true", True), ("1", True), ("0", False), ("false", False), ("", False)):
        monkeypatch.setenv("CI", value)
        assert bool(logs.progress(range(3), "x", file=_Terminal()).disable) is off
        assert logs.bars_enabled(_Terminal()) is not off


def test_a_disabled_bar_still_yields_everything(monkeypatch):
    monkeypatch.setenv("CI", "true")
    assert list(logs.progress(iter("abc"), "x")) == ["a", "b", "c"]


def test_training_logs_one_line_per_epoch_with_the_validation_metrics_when_there_are_some(caplog):
    from crlm.training.folds import epoch_logger

    caplog.set_level(logging.INFO)
    log_epoch = epoch_logger("clmnet/3", 40)
    log_epoch({"epoch": 11, "train_loss": 0.51234})
    log_epoch({"epoch": 12, "train_loss": 0.5, "val_auc": 0.8125, "val_dice": 0.25, "val_bce": 0.4})
    log_epoch({"epoch": 13, "train_loss": 0.5, "val_auc": None, "val_bce": 0.4})
    assert [(r.name, r.getMessage()) for r in caplog.records] == [
        ("crlm.training.folds", "clmnet/3 epoch 11/40: train loss 0.5123"),
        (
            "crlm.training.folds",
            "clmnet/3 epoch 12/40: train loss 0.5000, val_auc 0.8125, val_dice 0.2500, val_bce 0.4000",
        ),
        ("crlm.training.folds", "clmnet/3 epoch 13/40: train loss 0.5000, val_auc None, val_bce 0.4000"),
    ]
