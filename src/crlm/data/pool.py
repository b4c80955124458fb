"""Work over volumes or slices in a pool of processes, results in input order.

The data stages (phantom generation, slices, qc, prepare) map a function over independent units (a
patient, a chunk of slices). `ordered_map` yields the results in the order of the inputs whatever
order the workers finish in, so a stage's outputs are the same bytes with one process or many. It
keeps at most `window` units in flight, so results that arrive early never pile up.

The CPU budget is the train stage's (`train.workers`, 0 = every core this process may use): one
setting caps every stage of an experiment, which `dvc queue start -j N` relies on. Workers are spawned
(not forked), as the training workers are, so they inherit no threads or open files.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from typing import ClassVar, TypeVar

from crlm.core.config import ConfigError
from crlm.core.logs import setup

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class WorkersConfig:
    """train.workers, the experiment's CPU budget, read by the data stages."""

    SECTION: ClassVar[str] = "train"
    PARTIAL: ClassVar[bool] = True
    workers: int  # CPU cores, 0 = all

    def __post_init__(self) -> None:
        if self.workers < 0:
            raise ConfigError(f"train.workers must be >= 0 (0 = every CPU core), got {self.workers}")


def cpu_budget(workers: int = 0) -> int:
    """The cores a stage may use: `workers`, or with 0 every core this process may run on."""
    return workers or len(os.sched_getaffinity(0))


def pool_size(budget: int, n_units: int, min_units_per_worker: int = 1) -> int:
    """Worker processes for n_units: at most `budget`, and one per `min_units_per_worker` units, so a
    small job (the tiny profile) is not slowed by spawning workers (about a second each)."""
    return max(1, min(budget, n_units // max(1, min_units_per_worker)))


def ordered_map(fn: Callable[[T], R], items: Iterable[T], workers: int, window: int | None = None) -> Iterator[R]:
    """fn(item) for each item, in the items' order; with workers == 1 in this process (no pool)."""
    if workers <= 1:
        yield from map(fn, items)
        return
    window = window or 2 * workers
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=setup) as pool:
        pending: deque[Future[R]] = deque()
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
