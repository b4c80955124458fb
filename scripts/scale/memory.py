"""Peak private memory of a process tree (memory-mapped file pages excluded), sampled in a thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import psutil

SAMPLE_S = 0.05  # the memory sampler's interval
ROLLUP_EVERY_S = 1.0  # smaps_rollup of the whole tree at least this often (MemorySampler)
ROLLUP_RISE = 1.02  # and whenever the tree's anonymous pages rise 2% above their highest at a read
ROLLUP_FIELDS = ("Anonymous", "Swap", "Pss_Anon", "SwapPss")


def read_rollup(pid: int) -> dict[str, int] | None:
    """The ROLLUP_FIELDS of /proc/<pid>/smaps_rollup in kB; None when the process is gone or unreadable."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return None
    fields = dict.fromkeys(ROLLUP_FIELDS, 0)
    for line in text.splitlines()[1:]:
        key, _, rest = line.partition(":")
        if key in fields:
            fields[key] = int(rest.split()[0])
    return fields


def read_anon_counters(pid: int) -> int | None:
    """RssAnon + VmSwap of /proc/<pid>/status in kB: the kernel's counters of the anonymous pages that
    smaps_rollup's Anonymous + Swap add up page by page, read in microseconds; None when the process is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    return sum(int(line.split()[1]) for line in text.splitlines() if line.startswith(("RssAnon:", "VmSwap:")))


class MemorySampler:
    """Peak private memory of process `pid` and its descendants, sampled in a thread.

    process_kb: the largest single process's Anonymous + Swap; tree_kb: the sum of Pss_Anon + SwapPss over the
    tree (copy-on-write pages a fork shares are split between the sharers, so counted once); root_kb: the
    `pid` process's own Anonymous + Swap. File-backed pages (a memory-mapped .npy) are in none of them.

    Every `every` s it walks the tree (psutil) and reads each process's anonymous-page counters
    (read_anon_counters); it reads /proc/<pid>/smaps_rollup of the whole tree whenever the counters' sum rises
    ROLLUP_RISE above its highest at a read, a process starts or ends, and at least every `rollup_every` s
    (`rollup_every` <= `every`: at every sample). smaps_rollup walks a process's page tables, about 12 ms of
    CPU for a process of 2 GB: at every 50 ms sample of a tree of such processes the sampler would take a core
    of its own, so the expensive read comes where a peak can be."""

    def __init__(self, pid: int, every: float = SAMPLE_S, rollup_every: float = ROLLUP_EVERY_S) -> None:
        self.pid, self.every, self.rollup_every = pid, every, rollup_every
        self.process_kb = self.tree_kb = self.root_kb = self.samples = self.rollups = 0
        self.cpu_s = 0.0  # the sampler thread's own CPU time
        self.largest = ""  # "stage" (the root process) or "child" (a worker), at process_kb's sample
        self.available = Path("/proc/self/smaps_rollup").is_file()
        self._rollup_level, self._rollup_at, self._rollup_pids = -1, 0.0, frozenset[int]()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> MemorySampler:
        if self.available:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _pids(self) -> list[int]:
        try:
            return [self.pid, *(child.pid for child in psutil.Process(self.pid).children(recursive=True))]
        except psutil.Error:
            return []

    def _private(self, pid: int, kb: int) -> None:
        if pid == self.pid:
            self.root_kb = max(self.root_kb, kb)
        if kb > self.process_kb:
            self.process_kb, self.largest = kb, "stage" if pid == self.pid else "child"

    def sample(self) -> None:
        counters = {pid: kb for pid in self._pids() if (kb := read_anon_counters(pid)) is not None}
        for pid, kb in counters.items():
            self._private(pid, kb)
        self.samples += 1
        total, now, pids = sum(counters.values()), time.monotonic(), frozenset(counters)
        if (
            total > self._rollup_level * ROLLUP_RISE
            or pids != self._rollup_pids
            or now - self._rollup_at >= self.rollup_every
        ):
            self.rollup(pids)
            self._rollup_level, self._rollup_at, self._rollup_pids = max(self._rollup_level, total), now, pids

    def rollup(self, pids: Iterable[int]) -> None:
        tree = 0
        for pid in pids:
            fields = read_rollup(pid)
            if fields is None:
                continue
            self._private(pid, fields["Anonymous"] + fields["Swap"])
            tree += fields["Pss_Anon"] + fields["SwapPss"]
        self.tree_kb = max(self.tree_kb, tree)
        self.rollups += 1

    def _run(self) -> None:
        start = time.thread_time()
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.every)
        self.cpu_s = time.thread_time() - start

    def result(self) -> dict[str, Any]:
        if not self.available:
            return {"process_mib": None, "tree_mib": None, "why": "no /proc/<pid>/smaps_rollup (Linux 4.14+)"}
        return {
            "process_mib": round(self.process_kb / 1024, 1),
            "largest": self.largest,
            "stage_process_mib": round(self.root_kb / 1024, 1),
            "tree_mib": round(self.tree_kb / 1024, 1),
            "samples": self.samples,
            "rollups": self.rollups,
            "sampler_cpu_s": round(self.cpu_s, 2),
        }
