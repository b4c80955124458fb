"""Benchmark: the pipeline's stages at the size of the real cohorts -> bench/scale.json and reports/scale.md.

Run through `make bench-scale` (options: `make bench-scale SCALE_ARGS="--double"`). In a scratch workspace
(a temporary folder, or --workdir), with its own raw store (CRLM_RAW_DIR=<scratch>/raw) and a params.yaml
that is the repository's with the overrides below, each stage runs as its own process, as the tests run
stages outside dvc: `python <repo>/stages/<stage>.py --params params.yaml` (train with `--arch <arch>`, one
run per arch), with PYTHONPATH=<repo>/src:<repo>. The default size is TCIA's collection (197 patients,
512 x 512 slices) as a phantom: 197 patients x 55 slices at 0.8 mm, prepared at 256 px without a crop, and a
short training per arch at the paper's width 1 (1 epoch on one slice per patient, balanced).

Per stage it records:
- wall_s, cpu_s (the RUSAGE_CHILDREN delta: the stage and every pool worker it reaped) and cores_used =
  cpu_s / wall_s, beside the CPU budget (train.workers, 0 = every core);
- the peak private memory, memory-mapped file pages excluded (MemorySampler): every SAMPLE_S a thread walks
  the stage process and its descendants (psutil) and reads their anonymous-page counters, and
  /proc/<pid>/smaps_rollup of them all where a peak can be; a process's private memory is Anonymous + Swap,
  the tree's is the sum of Pss_Anon + SwapPss (pages a fork shares counted once); the maxima of the largest
  single process and of the tree are kept. psutil's uss, VmHWM and ru_maxrss count the file pages of a
  memory-mapped array and are no criterion (ru_maxrss is kept for reference);
- the disk its outputs take (allocated blocks), and at the end that of the raw store, data/interim,
  data/processed and data/models.

reports/scale.md (a docs page, through scripts/docs_hooks.py) is generated from the same figures: the machine,
the command, the per-stage table, the doubling growth (--double), the checks against TARGETS, and what the
real cohorts need, extrapolated by the rules that the page states.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import yaml

from crlm.archs import ARCHS

REPO = Path(__file__).resolve().parents[1]
MIB = 2**20
SAMPLE_S = 0.05  # the memory sampler's interval
ROLLUP_EVERY_S = 1.0  # smaps_rollup of the whole tree at least this often (MemorySampler)
ROLLUP_RISE = 1.02  # and whenever the tree's anonymous pages rise 2% above their highest at a read
ROLLUP_FIELDS = ("Anonymous", "Swap", "Pss_Anon", "SwapPss")

DATA_STAGES = ["fetch", "slices", "qc", "prepare", "split"]
TRAIN_STAGES = [f"train@{arch}" for arch in ARCHS]
READER_STAGES = ["evaluate", "embed", "lesions", "explain"]
STAGES = DATA_STAGES + TRAIN_STAGES + READER_STAGES
TIMED_DATA_STAGES = ["slices", "qc", "prepare", "split"]  # the 240 s target


@dataclass(frozen=True)
class Cohort:
    patients: int
    ct_slices: int


COHORTS = {
    "TCIA": Cohort(197, 17_639),  # TCIA's Colorectal-Liver-Metastases: CT slices at 512 x 512
    "LiTS": Cohort(131, 58_638),  # LiTS: 131 volumes at 512 x 512
}
COHORTS["both"] = Cohort(sum(c.patients for c in COHORTS.values()), sum(c.ct_slices for c in COHORTS.values()))
TARGETS = {
    "process_mib": 2048.0,  # no stage's single process above 2 GiB of private memory, at TCIA's size
    "data_stages_s": 240.0,  # slices + qc + prepare + split, at TCIA's size
    "growth": 1.25,  # peak private memory at 2N patients / at N
}
SERVER_CORES = 16  # the CPU cores of the GPU server of the "what you need" table

# the default run: TCIA's size as a phantom, the paper's image size without a crop, a short training per arch
TCIA_SIZE = {"patients": 197, "slices": 55}
LITS_SIZE = {"patients": 131, "slices": 450}
MATRIX, PIXEL_SPACING_MM = 512, 0.8
FIELD_OF_VIEW_MM = MATRIX * PIXEL_SPACING_MM  # kept when --matrix changes the matrix
SHORT_TRAINING = {
    "prepare.image_size": 256,
    "prepare.crop": "none",
    "model.width": 1.0,
    "train.epochs": 1,
    "train.val_every": 1,
    "train.max_slices_per_patient": 1,  # a few batches per fold: one image per training patient, balanced
}

# the outputs whose disk each stage's row shows (paths in the workspace; "raw" is the raw store)
STAGE_OUTPUTS = {
    "fetch": ["raw", "data/raw.json"],
    "slices": ["data/interim/slices", "data/interim/slices.parquet", "data/interim/clinical.parquet"],
    "qc": ["data/interim/qc.parquet"],
    "prepare": ["data/processed"],
    "split": ["data/splits"],
    **{f"train@{arch}": [f"data/models/{arch}"] for arch in ARCHS},
    "evaluate": ["data/predictions"],
    "embed": ["data/embeddings"],
    "lesions": ["metrics/lesions.json", "plots/lesions"],
    "explain": ["metrics/cam.json", "plots/evaluate/cam.png"],
}
DISK_TOTALS = {"raw store": "raw", "data/interim": "data/interim", "data/processed": "data/processed"}


# ---------------------------------------------------------------- private memory of a process tree


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


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_measured(
    command: list[str], cwd: Path, env: dict[str, str], log_path: Path, rollup_every: float = ROLLUP_EVERY_S
) -> dict[str, Any]:
    """Run `command` to its end (output to log_path) and measure it: wall_s, cpu_s, cores_used, the peak
    private memory (MemorySampler) and, for reference, ru_maxrss of the reaped children so far (a running
    maximum over every child of this process, memory-mapped file pages included)."""
    cpu_before, start = children_cpu_s(), time.perf_counter()
    with log_path.open("w") as log:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
        with MemorySampler(process.pid, rollup_every=rollup_every) as sampler:
            returncode = process.wait()
    wall = time.perf_counter() - start
    cpu = children_cpu_s() - cpu_before
    return {
        "returncode": returncode,
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "cores_used": round(cpu / wall, 2) if wall > 0 else None,
        **sampler.result(),
        "ru_maxrss_children_mib": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
    }


# ---------------------------------------------------------------- the workspace and its stages


def disk_bytes(path: Path) -> int:
    """Allocated bytes of a file or of every file under a folder (0 when absent)."""
    if path.is_file():
        return path.stat().st_blocks * 512
    return sum(p.stat().st_blocks * 512 for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def set_dotted(params: dict, key: str, value: Any) -> None:
    """params[a][b][c] = value for key "a.b.c", where params.yaml has that key (a misspelt one is refused)."""
    *sections, name = key.split(".")
    node: Any = params
    for section in sections:
        node = node.get(section) if isinstance(node, dict) else None
    if not sections or not isinstance(node, dict) or name not in node:
        raise SystemExit(f"bench_scale: {key}: params.yaml has no such key")
    node[name] = value


def run_overrides(patients: int, slices: int, matrix: int, extra: dict[str, Any]) -> dict[str, Any]:
    """params.yaml's overrides of one run: the phantom's size, the short training, then --set's."""
    return {
        "phantom.n_patients": patients,
        "phantom.n_slices": slices,
        "phantom.matrix": matrix,
        "phantom.pixel_spacing_mm": round(FIELD_OF_VIEW_MM / matrix, 4),
        **SHORT_TRAINING,
        **extra,
    }


def with_overrides(overrides: dict[str, Any]) -> dict:
    """The repository's params.yaml with `overrides` (dotted keys) on top."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    for key, value in overrides.items():
        set_dotted(params, key, value)
    return params


def stage_command(stage: str) -> list[str]:
    name, _, arch = stage.partition("@")
    command = [sys.executable, str(REPO / "stages" / f"{name}.py"), "--params", "params.yaml"]
    return command + (["--arch", arch] if arch else [])


def stage_env(workdir: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)]),
        "CRLM_RAW_DIR": str(workdir / "raw"),
    }


def count_rows(path: Path, column: str, at_least: int | None = None) -> int | None:
    if not path.is_file():
        return None
    import pandas as pd

    values = pd.read_parquet(path, columns=[column])[column]
    return int((values >= at_least).sum()) if at_least is not None else len(values)


def workspace_disk(workdir: Path) -> dict[str, int]:
    disk = {name: disk_bytes(workdir / path) for name, path in DISK_TOTALS.items()}
    models = workdir / "data" / "models"
    weights = sum(disk_bytes(p) for p in models.rglob("model.pt")) if models.is_dir() else 0
    disk["data/models (weights)"] = weights
    disk["data/models (predictions)"] = disk_bytes(models) - weights
    disk["total"] = disk_bytes(workdir) - disk_bytes(workdir / "logs")
    return disk


def bench_run(
    workdir: Path,
    stages: list[str],
    overrides: dict[str, Any],
    patients: int,
    slices: int,
    rollup_every: float = ROLLUP_EVERY_S,
) -> dict:
    """One run of `stages` in `workdir` (its params.yaml written from `overrides`); stops at a failed stage."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "logs").mkdir(exist_ok=True)
    params = with_overrides(overrides)
    (workdir / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = stage_env(workdir)
    cores = len(os.sched_getaffinity(0))
    run: dict[str, Any] = {
        "workdir": str(workdir),
        "patients": patients,
        "slices_per_patient": slices,
        "matrix": params["phantom"]["matrix"],
        "image_size": params["prepare"]["image_size"],
        "ct_slices": patients * slices,
        "cores": cores,
        "cpu_budget": params["train"]["workers"] or cores,
        "overrides": overrides,
        "sampler": {"every_s": SAMPLE_S, "rollup_every_s": max(rollup_every, SAMPLE_S), "rollup_rise": ROLLUP_RISE},
        "stages": {},
    }
    check = subprocess.run(
        [sys.executable, str(REPO / "stages" / "validate.py")], cwd=workdir, env=env, capture_output=True, text=True
    )
    if check.returncode:
        raise SystemExit(f"bench_scale: the params are not valid:\n{check.stdout}{check.stderr}")
    for stage in stages:
        print(f"[{patients} patients] {stage} ...", flush=True)
        log = workdir / "logs" / f"{stage.replace('@', '-')}.log"
        measured = run_measured(stage_command(stage), workdir, env, log, rollup_every)
        measured["disk_bytes"] = sum(disk_bytes(workdir / path) for path in STAGE_OUTPUTS[stage])
        run["stages"][stage] = measured
        print(f"  {stage_line(stage, measured)}", flush=True)
        if measured["returncode"]:
            tail = log.read_text(errors="replace").splitlines()[-15:]
            measured["log_tail"] = tail
            print(f"  {stage} failed (exit {measured['returncode']}); its log {log} ends:", *tail, sep="\n    ")
            break
    run["liver_slices"] = count_rows(workdir / "data/interim/slices.parquet", "slice_index", at_least=0)
    run["prepared_images"] = count_rows(workdir / "data/processed/manifest.parquet", "image_id")
    run["disk_bytes"] = workspace_disk(workdir)
    return run


def stage_line(stage: str, m: dict) -> str:
    return (
        f"wall {m['wall_s']} s, cpu {m['cpu_s']} s ({m['cores_used']} cores), private peak: process "
        f"{m.get('process_mib')} MiB, tree {m.get('tree_mib')} MiB; outputs {fmt_bytes(m['disk_bytes'])}"
    )


# ---------------------------------------------------------------- the machine


def gpu_names() -> list[str]:
    if shutil.which("nvidia-smi") is None:
        return []
    query = ["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"]
    try:
        done = subprocess.run(query, capture_output=True, text=True, timeout=20, check=True)
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in done.stdout.splitlines() if line.strip()]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_commit() -> str:
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    return f"{commit} (uncommitted changes)" if git("status", "--porcelain", "--untracked-files=no") else commit


def machine() -> dict[str, Any]:
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "gpu": gpu_names(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "commit": git_commit(),
    }


# ---------------------------------------------------------------- the disk a run needs, before it runs


def disk_upper_bound(params: dict, patients: int, train: bool) -> dict:
    """Bytes the runs of `patients` patients in all take at most with `params`: every slice uncompressed (the
    phantom writes gzip NIfTI, slices writes compressed .npz, so the real figure is far smaller), every slice
    with liver, and each fold's weights of every arch."""
    n, matrix, size = (
        patients * params["phantom"]["n_slices"],
        params["phantom"]["matrix"],
        params["prepare"]["image_size"],
    )
    bound = {
        "raw store": n * matrix**2 * 3,  # int16 volume + uint8 label map
        "data/interim": n * matrix**2 * 4,  # int16 image + uint8 tumour and liver masks per liver slice
        "data/processed": n * size**2 * 4,  # float16 image + uint8 tumour and liver masks
    }
    if train:
        bound["data/models (weights)"] = params["split"]["folds"] * model_bytes(params)
    bound["total"] = sum(bound.values())
    return bound


def model_bytes(params: dict) -> int:
    """The bytes of every arch's parameters and buffers with `params`, built on torch's meta device in a child
    process (so that this one never imports torch)."""
    code = "import json, sys, bench_scale; print(bench_scale.meta_model_bytes(json.load(sys.stdin)))"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "scripts"), str(REPO / "src")])}
    done = subprocess.run(
        [sys.executable, "-c", code], input=json.dumps(params), env=env, capture_output=True, text=True, check=True
    )
    return int(done.stdout.split()[-1])


def meta_model_bytes(params: dict) -> int:
    import torch

    from crlm.models.registry import build_model, model_kwargs
    from crlm.params import params_from_dict

    model = params_from_dict(params).model
    total = 0
    for arch in ARCHS:
        with torch.device("meta"):
            network = build_model(arch, model_kwargs(model, arch))
        total += sum(t.numel() * t.element_size() for t in [*network.parameters(), *network.buffers()])
    return total


# ---------------------------------------------------------------- the summary: growth, checks, needs


def growth(small: dict, large: dict) -> dict[str, dict]:
    """Per stage measured in both runs: peak(2N) / peak(N) of the largest process and of the tree."""
    out = {}
    for stage, a in small["stages"].items():
        b = large["stages"].get(stage)
        if b is None or a["returncode"] or b["returncode"] or not a.get("process_mib") or not a.get("tree_mib"):
            continue
        process, tree = b["process_mib"] / a["process_mib"], b["tree_mib"] / a["tree_mib"]
        out[stage] = {
            "process_mib": [a["process_mib"], b["process_mib"]],
            "process_growth": round(process, 3),
            "tree_mib": [a["tree_mib"], b["tree_mib"]],
            "tree_growth": round(tree, 3),
            "ok": max(process, tree) <= TARGETS["growth"],
        }
    return out


def is_tcia_size(run: dict) -> bool:
    size = run["patients"] >= TCIA_SIZE["patients"] and run["matrix"] == MATRIX
    return size and run["image_size"] == SHORT_TRAINING["prepare.image_size"]


def memory_rule(stage: str, growths: dict[str, dict] | None) -> str:
    """How a stage's peak private memory is carried to a larger cohort: flat where --double measured it
    within the growth target, linear in the CT slices where it grew more, flat by assumption otherwise."""
    if growths is None or stage not in growths:
        return "assumed flat"
    return "flat" if growths[stage]["ok"] else "linear"


def scaled_memory(run: dict, growths: dict[str, dict] | None, ratio: float, key: str) -> float | None:
    values = []
    for stage, m in run["stages"].items():
        if m["returncode"] or m.get(key) is None:
            continue
        values.append(m[key] * (ratio if memory_rule(stage, growths) == "linear" else 1.0))
    return round(max(values), 1) if values else None


def stage_sum(run: dict, stages: Iterable[str], key: str) -> float | None:
    """The sum of `key` over `stages`, None unless every one of them ran and succeeded."""
    measured = [run["stages"].get(stage) for stage in stages]
    if not measured or any(m is None or m["returncode"] for m in measured):
        return None
    return round(sum(m[key] for m in measured), 2)


def checks(run: dict, growths: dict[str, dict] | None, model_runs: Iterable[dict] = ()) -> list[dict]:
    """The targets, at TCIA's size: the measured figure, the figure at TCIA's CT slices (linear for the
    time; the memory rule for the memory) and the verdict; a run below TCIA's size is not checked, but for
    the training and the readers of `model_runs` (smaller runs that trained, --combine), whose memory is
    carried to TCIA's size by the memory rule and checked there."""
    ratio = COHORTS["TCIA"].ct_slices / run["ct_slices"]
    tcia = is_tcia_size(run)
    why_not = (
        f"not checked: the run ({run['patients']} patients, matrix {run['matrix']}, {run['image_size']} px) "
        f"is not TCIA's size ({TCIA_SIZE['patients']} patients, matrix {MATRIX}, 256 px)"
    )

    def verdict(value: float | None, ok: bool) -> str:
        if value is None:
            return "not measured"
        return ("pass" if ok else "FAIL") if tcia else why_not

    process = scaled_memory(run, growths, 1.0, "process_mib")
    process_tcia = scaled_memory(run, growths, ratio, "process_mib")
    data = stage_sum(run, TIMED_DATA_STAGES, "wall_s")
    data_tcia = round(data * ratio, 1) if data is not None else None
    out = [
        {
            "check": "largest single process, private memory (every stage)",
            "measured": process,
            "at_tcia": process_tcia,
            "target": f"<= {fmt_mib(TARGETS['process_mib'])}",
            "unit": "MiB",
            "verdict": verdict(process_tcia, process_tcia is not None and process_tcia <= TARGETS["process_mib"]),
        },
        {
            "check": "slices + qc + prepare + split, wall",
            "measured": data,
            "at_tcia": data_tcia,
            "target": f"< {TARGETS['data_stages_s']:.0f} s",
            "unit": "s",
            # the target is set on the TCIA-size phantom itself (TCIA_SIZE), so it is checked on the measured figure
            "verdict": verdict(data, data is not None and data < TARGETS["data_stages_s"]),
        },
    ]
    out += [model_memory_check(model_run, growths) for model_run in model_runs if model_run is not run]
    worst = max((max(g["process_growth"], g["tree_growth"]) for g in (growths or {}).values()), default=None)
    out.append(
        {
            "check": "peak private memory at 2N patients / at N (largest process and tree, worst stage)",
            "measured": worst,
            "at_tcia": None,
            "target": f"<= {TARGETS['growth']}",
            "unit": "x",
            "verdict": "not measured: run with --double"
            if growths is None
            else verdict(worst, worst is not None and worst <= TARGETS["growth"]),
        }
    )
    return out


def model_memory_check(model_run: dict, growths: dict[str, dict] | None) -> dict:
    """The largest single process of the training and the readers of a smaller run, carried to TCIA's CT
    slices by the memory rule (flat where --double measured it flat)."""
    stages = {s: m for s, m in model_run["stages"].items() if s in TRAIN_STAGES + READER_STAGES}
    only = {**model_run, "stages": stages}
    measured = scaled_memory(only, growths, 1.0, "process_mib")
    at_tcia = scaled_memory(only, growths, COHORTS["TCIA"].ct_slices / model_run["ct_slices"], "process_mib")
    settings = ", ".join(f"{k}={v}" for k, v in model_run["overrides"].items() if k in ("model.width", "split.folds"))
    ok = at_tcia is not None and at_tcia <= TARGETS["process_mib"]
    return {
        "check": f"largest single process, private memory (training and readers, run of {model_run['patients']} "
        f"patients, {settings})",
        "measured": measured,
        "at_tcia": at_tcia,
        "target": f"<= {fmt_mib(TARGETS['process_mib'])}",
        "unit": "MiB",
        "verdict": "not measured" if at_tcia is None else ("pass" if ok else "FAIL") + " (extrapolated)",
    }


def scaled(value: float | None, ratio: float) -> float | None:
    return round(value * ratio, 1) if value is not None else None


def needs(run: dict, growths: dict[str, dict] | None, gpu_here: bool, model_run: dict | None = None) -> dict[str, dict]:
    """What each cohort needs, extrapolated from `run` by NEEDS_RULES; the training, the readers and the models'
    disk from `model_run` where given (a smaller run that trained, --combine)."""
    out = {}
    model_run = model_run or run
    disk = {**run["disk_bytes"], **{k: v for k, v in model_run["disk_bytes"].items() if k.startswith("data/models")}}
    for name, cohort in COHORTS.items():
        ratio = cohort.ct_slices / run["ct_slices"]
        model_ratio = cohort.ct_slices / model_run["ct_slices"]
        scaled_disk = {
            key: disk.get(key, 0)
            if key == "data/models (weights)"
            else round(disk.get(key, 0) * (model_ratio if key.startswith("data/models") else ratio))
            for key in (
                "raw store",
                "data/interim",
                "data/processed",
                "data/models (weights)",
                "data/models (predictions)",
            )
        }
        data_cpu = stage_sum(run, TIMED_DATA_STAGES, "cpu_s")
        tree = max_or_none(
            scaled_memory(run, growths, ratio, "tree_mib"), scaled_memory(model_run, growths, model_ratio, "tree_mib")
        )
        process = max_or_none(
            scaled_memory(run, growths, ratio, "process_mib"),
            scaled_memory(model_run, growths, model_ratio, "process_mib"),
        )
        cache = scaled_disk["data/processed"] / MIB
        train = stage_sum(model_run, TRAIN_STAGES, "wall_s")
        readers = stage_sum(model_run, READER_STAGES, "wall_s")
        fetch = stage_sum(run, ["fetch"], "wall_s")
        data = stage_sum(run, TIMED_DATA_STAGES, "wall_s")
        out[name] = {
            "patients": cohort.patients,
            "ct_slices": cohort.ct_slices,
            "ratio": round(ratio, 3),
            "disk_bytes": {**scaled_disk, "total": sum(scaled_disk.values())},
            "process_mib": process,
            "tree_mib": tree,
            "page_cache_mib": round(cache, 1),
            "ram_mib": round(tree + cache, 1) if tree is not None else None,
            "fetch_phantom_s": scaled(fetch, ratio),
            "data_stages_s": scaled(data, ratio),
            "data_stages_core_h": round(data_cpu * ratio / 3600, 2) if data_cpu is not None else None,
            "server_data_stages_s": round(data_cpu * ratio / SERVER_CORES, 1) if data_cpu is not None else None,
            "short_training_s": scaled(train, model_ratio),
            "readers_s": scaled(readers, model_ratio),
            "gpu_measured": gpu_here,
        }
    return out


def max_or_none(*values: float | None) -> float | None:
    known = [v for v in values if v is not None]
    return max(known) if known else None


def largest_by_width(runs: list[dict]) -> list[dict]:
    """The run of the most CT slices at each model width (the memory of training and reading is set by the
    width and the batch, not the cohort: each width gets its check)."""
    widths: dict[Any, dict] = {}
    for run in runs:
        width = run["overrides"].get("model.width")
        if width not in widths or run["ct_slices"] > widths[width]["ct_slices"]:
            widths[width] = run
    return list(widths.values())


def combine(results: list[dict]) -> dict:
    """Several runs' results as one page (--combine): every run (the TCIA-size one first), the growth of the
    run with --double, the checks of the TCIA-size run, and the needs extrapolated from it with the training,
    the readers and the models from the largest run that trained."""
    runs = sorted((run for r in results for run in r["runs"]), key=lambda run: not is_tcia_size(run))
    growths = next((r["growth"] for r in results if r.get("growth")), None)
    trained = [run for run in runs if any(s in run["stages"] for s in TRAIN_STAGES)]
    model_run = max(trained, key=lambda run: run["ct_slices"]) if trained else None
    machine_info = results[0]["machine"]
    return {
        **results[0],
        "command": "\n".join(r["command"] for r in results),
        "runs": runs,
        "growth": growths,
        "checks": checks(runs[0], growths, largest_by_width(trained)),
        "needs": needs(runs[0], growths, bool(machine_info.get("gpu")), model_run),
        "needs_from": {"data": runs[0]["patients"], "models": model_run["patients"] if model_run else None},
    }


def summarise(machine_info: dict, command: str, runs: list[dict], bound: dict | None = None) -> dict:
    """bench/scale.json's content: the machine, the command, the runs, the growth from the first run to the
    second (--double), the checks of the first run (the size asked for) and the needs extrapolated from the
    largest run."""
    growths = growth(runs[0], runs[1]) if len(runs) > 1 else None
    run = runs[-1]
    return {
        "generated": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine_info,
        "command": command,
        "disk_upper_bound_bytes": bound,
        "runs": runs,
        "growth": growths,
        "targets": TARGETS,
        "checks": checks(runs[0], growths),
        "needs": needs(run, growths, bool(machine_info.get("gpu"))),
        "server_cores": SERVER_CORES,
    }


# ---------------------------------------------------------------- reports/scale.md


def fmt_bytes(n: float | None) -> str:
    """Bytes in the largest binary unit that keeps the figure at or above 1000 of the unit below."""
    if n is None:
        return "-"
    for unit, size in (("GiB", 2**30), ("MiB", MIB), ("KiB", 2**10)):
        if n >= size * 1000 / 1024:
            value = n / size
            return f"{value:,.2f} {unit}" if value < 10 else f"{value:,.1f} {unit}"
    return f"{n:.0f} B"


def fmt_mib(mib: float | None) -> str:
    return "-" if mib is None else fmt_bytes(mib * MIB)


def fmt_s(s: float | None) -> str:
    if s is None:
        return "-"
    if s < 120:
        return f"{s:.1f} s"
    if s < 7200:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


def fmt_value(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    return {"MiB": fmt_mib, "s": fmt_s}.get(unit, lambda v: f"{v:.2f}")(value)


def stage_table(run: dict) -> list[str]:
    lines = [
        "| stage | wall | CPU | cores used (budget) | peak private, largest process | peak private, tree | "
        "disk of its outputs |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for stage, m in run["stages"].items():
        failed = f" (failed, exit {m['returncode']})" if m["returncode"] else ""
        largest = f" ({m['largest']})" if m.get("largest") else ""
        lines.append(
            f"| `{stage}`{failed} | {fmt_s(m['wall_s'])} | {fmt_s(m['cpu_s'])} | "
            f"{m['cores_used']} ({run['cpu_budget']}) | {fmt_mib(m.get('process_mib'))}{largest} | "
            f"{fmt_mib(m.get('tree_mib'))} | {fmt_bytes(m['disk_bytes'])} |"
        )
    return lines


def sampler_note(run: dict) -> list[str]:
    cpu = sum(m.get("sampler_cpu_s") or 0.0 for m in run["stages"].values())
    wall = sum(m["wall_s"] for m in run["stages"].values())
    samples = sum(m.get("samples") or 0 for m in run["stages"].values())
    rollups = sum(m.get("rollups") or 0 for m in run["stages"].values())
    if not wall:
        return []
    return [
        f"The memory sampler took {samples:,} samples ({rollups:,} of them with smaps_rollup) and used {cpu:.1f} s "
        f"of CPU in the benchmark's own process over {fmt_s(wall)} of stages ({100 * cpu / wall:.0f}% of one "
        "core), beside the stages and not in their CPU column.",
        "",
    ]


def run_section(run: dict, title: str) -> list[str]:
    overrides = ", ".join(f"`{k}={v}`" for k, v in run["overrides"].items())
    liver = run.get("liver_slices")
    prepared = run.get("prepared_images")
    lines = [
        f"## {title}",
        "",
        f"{run['patients']} patients x {run['slices_per_patient']} slices = {run['ct_slices']:,} CT slices at "
        f"{run['matrix']} x {run['matrix']}, {liver if liver is not None else '-'} of them with liver, "
        f"{prepared if prepared is not None else '-'} prepared images at {run['image_size']} px; "
        f"{run['cores']} cores usable, CPU budget {run['cpu_budget']} (`train.workers`). "
        f"params.yaml overrides: {overrides}.",
        "",
        *stage_table(run),
        "",
        *sampler_note(run),
        "| disk | " + " | ".join(run["disk_bytes"]) + " |",
        "| --- | " + " | ".join("---:" for _ in run["disk_bytes"]) + " |",
        "| this run | " + " | ".join(fmt_bytes(v) for v in run["disk_bytes"].values()) + " |",
        "",
    ]
    return lines


def growth_section(result: dict) -> list[str]:
    growths = result["growth"]
    if growths is None:
        return [
            "## Growth with the number of patients",
            "",
            "Not measured: `--double` runs at N and 2N patients and reports peak(2N) / peak(N) per stage.",
            "",
        ]
    small, large = result["runs"][0]["patients"], result["runs"][1]["patients"]
    lines = [
        "## Growth with the number of patients",
        "",
        f"Peak private memory at {large} patients / at {small} (target <= {TARGETS['growth']}: a stage whose "
        "memory grows with the cohort would not fit a larger one).",
        "",
        f"| stage | largest process, {small} | {large} | growth | tree, {small} | {large} | growth | "
        f"<= {TARGETS['growth']} |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for stage, g in growths.items():
        lines.append(
            f"| `{stage}` | {fmt_mib(g['process_mib'][0])} | {fmt_mib(g['process_mib'][1])} | "
            f"{g['process_growth']:.2f} | {fmt_mib(g['tree_mib'][0])} | {fmt_mib(g['tree_mib'][1])} | "
            f"{g['tree_growth']:.2f} | {'yes' if g['ok'] else 'NO'} |"
        )
    return [*lines, ""]


def checks_section(result: dict) -> list[str]:
    lines = [
        "## Checks against the targets",
        "",
        f"At TCIA's size ({COHORTS['TCIA'].patients} patients, {COHORTS['TCIA'].ct_slices:,} CT slices at "
        f"512 x 512, prepared at 256 px). The column *at TCIA's CT slices* carries the measured figure to "
        "TCIA's slice count by the rules of [What you need](#what-you-need) (an extrapolation wherever the run "
        "had another number of CT slices); the memory's verdict is on that column, the data stages' on the "
        f"measured figure (their target is set on the TCIA-size phantom itself: {TCIA_SIZE['patients']} patients "
        f"x {TCIA_SIZE['slices']} slices).",
        "",
        "| check | measured | at TCIA's CT slices | target | verdict |",
        "| --- | ---: | ---: | --- | --- |",
    ]
    for c in result["checks"]:
        lines.append(
            f"| {c['check']} | {fmt_value(c['measured'], c['unit'])} | {fmt_value(c['at_tcia'], c['unit'])} | "
            f"{c['target']} | {c['verdict']} |"
        )
    return [*lines, ""]


def needs_section(result: dict) -> list[str]:
    run = result["runs"][-1]
    size = " at 2N patients" if len(result["runs"]) > 1 else ""
    source = f"the run above{size} ({run['ct_slices']:,} CT slices)"
    if result.get("needs_from"):  # --combine
        run = result["runs"][0]
        models = result["needs_from"]["models"]
        source = f"the run of {run['patients']} patients ({run['ct_slices']:,} CT slices)" + (
            f", the training, the readers and the models from the run of {models} patients" if models else ""
        )
    rules = [
        f"Extrapolated from {source}, **not measured at the cohorts' sizes** (but for TCIA's data stages), by "
        "these rules:",
        "",
        "- disk and time scale linearly with the CT slices (with the phantom's share of slices with liver, not "
        "the cohort's); the models' weights (of the archs that ran) do not scale;",
        "- a stage's peak private memory is flat where `--double` measured its growth within "
        f"{TARGETS['growth']}, linear in the CT slices where it grew more, and assumed flat where it was not "
        "measured;",
        "- the page cache is the prepared set's size on disk (training and the readers read `data/processed` "
        "again and again); RAM = the largest tree's private memory + that page cache;",
        "- the raw store holds the phantom's gzip NIfTI files: the real downloads (TCIA's DICOM, LiTS' NIfTI) "
        "take another size, and their `fetch` is a download whose time is the network's;",
        f"- a GPU server's data stages: this machine's CPU time of them / {SERVER_CORES} cores (linear in the "
        "cores, not measured);",
        "- the training is the short one (one epoch, one slice per training patient): a full training takes "
        "about train.epochs x train.max_slices_per_patient times its training steps, plus the same predictions.",
    ]
    if not is_tcia_size(run):
        rules += [
            "",
            f"**This run was at matrix {run['matrix']} and {run['image_size']} px, not {MATRIX} and 256, and "
            "fixed costs (starting Python, importing torch) weigh more in a small run: the figures below are "
            "indicative only.**",
        ]
    gpu_here = bool(result["machine"].get("gpu"))
    lines = [
        "## What you need",
        "",
        *rules,
        "",
        "| cohort | CT slices | disk | RAM (largest process / tree + page cache) | data stages here "
        "(slices..split) | short training + readers here | data stages, GPU server | training + readers, "
        "GPU server |",
        "| --- | ---: | ---: | --- | ---: | ---: | ---: | --- |",
    ]
    for name, n in result["needs"].items():
        core_h = f" ({n['data_stages_core_h']} core-h)" if n["data_stages_core_h"] is not None else ""
        here = " + ".join(
            fmt_s(n[key]) if n[key] is not None else "not run" for key in ("short_training_s", "readers_s")
        )
        gpu = here if gpu_here else "not measured on this machine (no GPU)"
        lines.append(
            f"| {name} | {n['ct_slices']:,} | {fmt_bytes(n['disk_bytes']['total'])} | "
            f"{fmt_mib(n['process_mib'])} / {fmt_mib(n['tree_mib'])} + {fmt_mib(n['page_cache_mib'])} = "
            f"{fmt_mib(n['ram_mib'])} | {fmt_s(n['data_stages_s'])}{core_h} | {here} | "
            f"{fmt_s(n['server_data_stages_s'])} | {gpu} |"
        )
    lines += ["", "Disk by folder (extrapolated):", ""]
    keys = list(next(iter(result["needs"].values()))["disk_bytes"])
    lines += [
        "| cohort | " + " | ".join(keys) + " |",
        "| --- | " + " | ".join("---:" for _ in keys) + " |",
        *(
            f"| {name} | " + " | ".join(fmt_bytes(n["disk_bytes"][k]) for k in keys) + " |"
            for name, n in result["needs"].items()
        ),
        "",
    ]
    return lines


def render_page(result: dict) -> str:
    m = result["machine"]
    gpu = ", ".join(m["gpu"]) if m["gpu"] else "none"
    lines = [
        "# Scale benchmark",
        "",
        f"Generated by `scripts/bench_scale.py` on {result['generated']}; do not edit, rerun it "
        "([how](../docs/scaling.md#at-the-size-of-the-real-cohorts)). Memory is private memory (anonymous "
        "pages and swap; memory-mapped file pages excluded) from `/proc/<pid>/smaps_rollup`: a single "
        "process's Anonymous + Swap, and the process tree's Pss_Anon + SwapPss (pages a fork shares counted "
        f"once). Every {int(SAMPLE_S * 1000)} ms the sampler reads each process's counters of the same anonymous "
        "pages (`/proc/<pid>/status`: RssAnon + VmSwap), and smaps_rollup of the whole tree whenever they rise "
        f"{100 * (ROLLUP_RISE - 1):.0f}% above their highest so far, a process starts or ends, and at least every "
        f"{result['runs'][0].get('sampler', {}).get('rollup_every_s', ROLLUP_EVERY_S):g} s (so the tree's "
        "figure may fall short of its peak by that 2%; a single process's takes the counters' peaks too).",
        "",
        "| machine | |",
        "| --- | --- |",
        f"| CPU | {m['cpu']} ({m['cores']} cores, {m['cores_usable']} usable) |",
        f"| memory | {m['memory_gib']} GiB |",
        f"| GPU | {gpu} |",
        f"| platform | {m['platform']}, Python {m['python']} |",
        f"| commit | {m['commit']} |",
        "",
        "```bash",
        result["command"],
        "```",
        "",
    ]
    first = result["runs"][0]
    if not is_tcia_size(first):
        lines += [
            f"**This run is smaller than TCIA's collection ({first['patients']} patients, matrix {first['matrix']}, "
            f"{first['image_size']} px): a trial of the benchmark, not the figures of the real cohorts' size "
            "(`make bench-scale` gives those).**",
            "",
        ]
    if not m["gpu"]:
        lines += ["No GPU on this machine: every time on this page is a CPU time.", ""]
    for run in result["runs"]:
        lines += run_section(run, "Per stage" if len(result["runs"]) == 1 else f"Per stage, {run['patients']} patients")
    lines += growth_section(result) + checks_section(result) + needs_section(result)
    return "\n".join(lines).rstrip() + "\n"


def write_outputs(result: dict, json_path: Path, page_path: Path | None) -> None:
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(result, indent=2) + "\n")
    if page_path is not None:
        page_path.parent.mkdir(parents=True, exist_ok=True)
        page_path.write_text(render_page(result))


# ---------------------------------------------------------------- the command line


def parse_sets(values: list[str]) -> dict[str, Any]:
    out = {}
    for value in values:
        key, sep, raw = value.partition("=")
        if not sep or "." not in key:
            raise SystemExit(f"bench_scale: --set {value!r}: expected section.key=value")
        out[key] = yaml.safe_load(raw)
    return out


def chosen_stages(spec: str | None) -> list[str]:
    if not spec:
        return STAGES
    names = []
    for name in spec.split(","):
        name = name.strip()
        expanded = TRAIN_STAGES if name == "train" else [name]
        unknown = [n for n in expanded if n not in STAGES]
        if unknown:
            raise SystemExit(f"bench_scale: unknown stage {name!r}; valid: {', '.join(['train', *STAGES])}")
        names += expanded
    return [stage for stage in STAGES if stage in names]  # the pipeline's order


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patients", type=int, help=f"phantom patients (default {TCIA_SIZE['patients']})")
    parser.add_argument("--slices", type=int, help=f"slices per volume (default {TCIA_SIZE['slices']})")
    parser.add_argument(
        "--matrix",
        type=int,
        default=MATRIX,
        help="in-plane pixels (default 512); the pixel spacing keeps the 410 mm field of view",
    )
    parser.add_argument(
        "--lits",
        action="store_true",
        help=f"LiTS' size: {LITS_SIZE['patients']} patients x {LITS_SIZE['slices']} slices (needs the disk "
        "that it prints first)",
    )
    parser.add_argument("--double", action="store_true", help="run at N and 2N patients; report the growth")
    parser.add_argument("--stages", help=f"comma-separated, in any order (default all): train, {', '.join(STAGES)}")
    parser.add_argument(
        "--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="another params override"
    )
    parser.add_argument("--workdir", type=Path, help="the scratch workspace, kept (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary workspace")
    parser.add_argument("--force", action="store_true", help="run even when the disk bound exceeds the free disk")
    parser.add_argument(
        "--rollup-every",
        type=float,
        default=ROLLUP_EVERY_S,
        metavar="S",
        help=f"read smaps_rollup at least every S s (default {ROLLUP_EVERY_S:g}; {SAMPLE_S:g}: at every sample)",
    )
    parser.add_argument("--out", type=Path, default=Path("bench/scale.json"), help="the results (JSON)")
    parser.add_argument("--page", type=Path, default=REPO / "reports" / "scale.md", help="the generated page")
    parser.add_argument(
        "--combine", type=Path, nargs="+", metavar="JSON", help="write one page from these earlier results and stop"
    )
    args = parser.parse_args(argv)
    if args.combine:
        missing = [str(path) for path in args.combine if not path.is_file()]
        if missing:
            raise SystemExit(f"bench_scale: --combine: no such result file {missing}; a run writes one with --out")
        result = combine([json.loads(path.read_text()) for path in args.combine])
        write_outputs(result, args.out, args.page)
        print(f"bench_scale: {args.out}, {args.page}")
        return

    size = {**TCIA_SIZE, **(LITS_SIZE if args.lits else {})}
    patients, slices = args.patients or size["patients"], args.slices or size["slices"]
    stages = chosen_stages(args.stages)
    extra = parse_sets(args.set)
    sizes = [patients, 2 * patients] if args.double else [patients]
    where = args.workdir or Path(tempfile.gettempdir())
    params = with_overrides(run_overrides(patients, slices, args.matrix, extra))
    bound = disk_upper_bound(params, sum(sizes), any(s in TRAIN_STAGES for s in stages))
    free = shutil.disk_usage(next(p for p in [where.absolute(), *where.absolute().parents] if p.exists())).free
    print(
        f"bench_scale: {' and '.join(map(str, sizes))} patients x {slices} slices at {args.matrix} px in "
        f"{args.workdir or f'a temporary folder in {where}'}; disk at most {fmt_bytes(bound['total'])} ("
        + ", ".join(f"{k} {fmt_bytes(v)}" for k, v in bound.items() if k != "total")
        + f"; uncompressed bound), free {fmt_bytes(free)}",
        flush=True,
    )
    if bound["total"] > free and not args.force:
        raise SystemExit(
            "bench_scale: the disk bound exceeds the free disk; the real figure is usually several times "
            "smaller (compressed NIfTI and .npz): --force runs anyway, --workdir puts it on another disk"
        )

    command = "python scripts/bench_scale.py" + "".join(f" {shlex.quote(a)}" for a in (argv or sys.argv[1:]))
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="crlm-scale-"))
    print(f"bench_scale: workspace {workdir}" + ("" if args.workdir or args.keep else " (removed at the end)"))
    runs = []
    try:
        for n in sizes:
            folder = workdir / f"n{n}" if args.double else workdir
            overrides = run_overrides(n, slices, args.matrix, extra)
            runs.append(bench_run(folder, stages, overrides, n, slices, args.rollup_every))
    finally:
        if args.workdir is None and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    result = summarise(machine(), command, runs, bound)
    write_outputs(result, args.out, args.page)
    print(f"bench_scale: {args.out}, {args.page}")
    for c in result["checks"]:
        print(f"  {c['check']}: {fmt_value(c['measured'], c['unit'])} -> {c['verdict']}")


if __name__ == "__main__":
    main()
