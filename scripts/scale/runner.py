"""The scratch workspace: params.yaml's overrides, each stage as its own process with its wall, CPU, peak
private memory and disk, and the disk a run needs before it runs."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from crlm.archs import ARCHS

from .memory import ROLLUP_EVERY_S, ROLLUP_RISE, SAMPLE_S, MemorySampler
from .units import fmt_bytes

REPO = Path(__file__).resolve().parents[2]

DATA_STAGES = ["fetch", "slices", "qc", "prepare", "split"]
TRAIN_STAGES = [f"train@{arch}" for arch in ARCHS]
READER_STAGES = ["evaluate", "embed", "lesions", "explain"]
STAGES = DATA_STAGES + TRAIN_STAGES + READER_STAGES

# the default run: TCIA's size as a phantom, the paper's image size without a crop, a short training per arch
TCIA_SIZE = {"patients": 197, "slices": 55}
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


# ---------------------------------------------------------------- a stage as a measured process


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
    code = "import json, sys; from scale.runner import meta_model_bytes; print(meta_model_bytes(json.load(sys.stdin)))"
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
