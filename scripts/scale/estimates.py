"""The summary of the runs: the growth from N to 2N patients, the checks against TARGETS, and what the real
cohorts need, extrapolated; --combine's several results as one."""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .runner import MATRIX, READER_STAGES, SHORT_TRAINING, TCIA_SIZE, TRAIN_STAGES
from .units import MIB, fmt_mib

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
