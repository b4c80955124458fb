"""Logging and progress bars for the stages.

Every stage's main() is wrapped in `stage_main`: it sets up logging (`setup`: the standard
`logging` module, timestamped lines on stdout, where DVC shows a stage's output) and logs the
stage's start and its end with the duration. Package modules log through
`logging.getLogger(__name__)`; a worker process (spawned, so it inherits no logging setup) calls
`setup()` itself.

`progress` is a tqdm bar on stderr for the long loops; it is off where nobody watches: without a
terminal (tqdm's disable=None: CI logs, `dvc repro > file`) and whenever the CI variable is set.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

from tqdm import tqdm

from crlm.core.errors import UserError

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
DEBUG = "CRLM_DEBUG"  # set to 1: a UserError's traceback too
T = TypeVar("T")


def setup(level: int = logging.INFO) -> None:
    """Log `level` and above to stdout as "<time> <level> <logger>: <message>". Once per process: where the
    root logger already has a handler (a second call; pytest's log capture) it is left as it is."""
    logging.basicConfig(level=level, format=FORMAT, stream=sys.stdout)


def stage_logger(script: str | Path) -> logging.Logger:
    """The logger of the stage script at `script` (its __file__): named after the stage, e.g. "evaluate"."""
    return logging.getLogger(Path(script).stem)


def stage_main(main: Callable[[], T]) -> Callable[[], T]:
    """Decorator for a stage's main(): logging set up, "start" and "done in <s> s" (or "failed after <s> s")
    logged by the stage's logger. A UserError ends the stage with its message as one line and exit status 1
    (the traceback too where CRLM_DEBUG=1); any other exception keeps its traceback."""
    log = stage_logger(main.__code__.co_filename)

    @functools.wraps(main)
    def run() -> T:
        setup()
        log.info("start")
        start = time.perf_counter()
        try:
            result = main()
        except UserError as exc:  # a bad param or file: its message names it and the fix
            log.error("failed after %.1f s: %s", time.perf_counter() - start, exc)
            if os.environ.get(DEBUG, "").strip() not in ("", "0"):
                raise
            raise SystemExit(1) from None
        except Exception:
            log.error("failed after %.1f s", time.perf_counter() - start)
            raise
        log.info("done in %.1f s", time.perf_counter() - start)
        return result

    return run


def in_ci() -> bool:
    """Whether the CI variable is set (to anything but "", "0" or "false")."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false")


def bars_enabled(file=None) -> bool:
    """Whether `progress` would draw on `file` (default stderr): a terminal, outside CI. For a library's own
    progress bar (e.g. a download client's show_progress_bar)."""
    file = sys.stderr if file is None else file
    return not in_ci() and hasattr(file, "isatty") and file.isatty()


def progress(iterable: Iterable[T], desc: str, total: int | None = None, **kwargs) -> tqdm:
    """`iterable` with a tqdm bar on stderr, off without a terminal or in CI (see the module docstring)."""
    return tqdm(iterable, desc=desc, total=total, disable=True if in_ci() else None, **kwargs)
