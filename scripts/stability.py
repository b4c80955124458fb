"""Stability benchmark: retrain every arch with several training seeds and measure the spread.

Run through `make stability` (or `python scripts/stability.py 0 1 2 3 4`). For each
seed, a clone of the committed repository shares this repository's DVC cache,
sets `train.seed` and runs `dvc repro` through `report`; the data stages come
back from DVC's run cache without rerunning, and a clone kept from an earlier
`make stability` keeps its own dvc.lock and outputs, so only the stages whose
code or params changed since rerun (training only when its code did), and the workspace's own seed is
read from its metrics when `dvc status` is clean. Only the training seed changes: the phantom, the QC, the split and
the survival folds stay as they are, so the spread is that of training alone.

Writes metrics/stability.json: for each headline metric, its value per seed and
the mean, SD (n - 1) and range (max - min) over seeds; the report prints the SD
beside the numbers it takes from one run, and `crlm review` reads each change
against it. reports/stability.md is the same as a table. A benchmark, not a test: about the
time of one `make repro` per seed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from crlm.stability import FILES, headline, spread, table

REPO = Path(__file__).resolve().parents[1]
WORK = REPO / "bench" / "stability"


# the seed's own record of its run, which the committed code must not overwrite: git-tracked stage outputs
# and dvc.lock (the DVC-cached outputs, trained models included, stay in the clone's untracked data/)
OWN_RUN = ("dvc.lock", "metrics", "plots", "reports")


def run_seed(seed: int) -> dict[str, float | None]:
    clone = WORK / f"seed{seed}"
    kept_from_before = clone.exists()
    if not kept_from_before:
        subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    with tempfile.TemporaryDirectory() as kept:
        # a clone that has run before keeps its own outputs and dvc.lock across the checkout of the new
        # commit (DVC writes a stage's lock entry with its outputs, so they agree even after an interrupted
        # run), and `dvc repro` reruns only the stages whose code or params changed since: training only when
        # its code did (DVC's run cache cannot restore stages with uncached outputs, so it would retrain)
        for name in OWN_RUN:
            if kept_from_before and (clone / name).exists():
                shutil.copytree(clone / name, Path(kept) / name) if (clone / name).is_dir() else shutil.copy2(
                    clone / name, Path(kept) / name
                )
        subprocess.run(["git", "-C", str(clone), "fetch", "-q", str(REPO), "HEAD"], check=True)
        subprocess.run(["git", "-C", str(clone), "checkout", "-q", "--force", "FETCH_HEAD"], check=True)
        for name in OWN_RUN:
            if (Path(kept) / name).is_dir():
                shutil.copytree(Path(kept) / name, clone / name, dirs_exist_ok=True)
            elif (Path(kept) / name).exists():
                shutil.copy2(Path(kept) / name, clone / name)
    subprocess.run(["dvc", "cache", "dir", "--local", str(REPO / ".dvc" / "cache")], cwd=clone, check=True)
    params = yaml.safe_load((clone / "params.yaml").read_text())
    params["train"]["seed"] = seed
    (clone / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    start = time.perf_counter()
    # the clone's own code: the editable install points at this workspace, which may have moved on
    env = {**os.environ, "PYTHONPATH": str(clone / "src")}
    subprocess.run(["dvc", "repro", "report"], cwd=clone, check=True, env=env)
    print(f"stability: seed {seed} in {time.perf_counter() - start:.0f} s", flush=True)
    return headline({name: json.loads((clone / "metrics" / f"{name}.json").read_text()) for name in FILES})


def workspace_run(seed: int) -> dict[str, float | None] | None:
    """This workspace's own metrics when they are those of `seed` and up to date (no retraining)."""
    if yaml.safe_load((REPO / "params.yaml").read_text())["train"]["seed"] != seed:
        return None
    status = subprocess.run(["dvc", "status", "--json"], cwd=REPO, check=True, capture_output=True, text=True)
    if json.loads(status.stdout or "{}"):
        return None
    print(f"stability: seed {seed} from this workspace's up-to-date metrics", flush=True)
    return headline({name: json.loads((REPO / "metrics" / f"{name}.json").read_text()) for name in FILES})


def main(seeds: list[int]) -> None:
    WORK.mkdir(parents=True, exist_ok=True)
    runs = {seed: workspace_run(seed) or run_seed(seed) for seed in seeds}
    commit = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()
    result = {
        "seeds": seeds,
        "commit": commit,
        "metrics": {name: spread([runs[s].get(name) for s in seeds]) for name in runs[seeds[0]]},
    }
    out = REPO / "metrics" / "stability.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    summary = REPO / "reports" / "stability.md"
    summary.write_text(
        "# Seed spread (`make stability`)\n\nGenerated by scripts/stability.py from "
        "metrics/stability.json.\n\n" + table(result)
    )
    print(f"stability: wrote {out} and {summary}")
    for name, row in result["metrics"].items():
        print(f"  {name:32s} mean {row['mean']}  sd {row['sd']}  range {row['range']}")


if __name__ == "__main__":
    main([int(s) for s in sys.argv[1:]] or [0, 1, 2, 3, 4])
