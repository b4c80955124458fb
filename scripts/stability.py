"""Stability benchmark: retrain every arch with several training seeds and measure the spread.

Run through `make stability` (or `python scripts/stability.py 0 1 2`). For each
seed, a clone of the committed repository shares this repository's DVC cache,
sets `train.seed` and runs `dvc repro` through `report`; the data stages come
back from DVC's run cache without rerunning, and the workspace's own seed is
read from its metrics when `dvc status` is clean. Only the training seed changes: the phantom, the QC, the split and
the survival folds stay as they are, so the spread is that of training alone.

Writes metrics/stability.json: for each headline metric, its value per seed and
the mean, SD (n - 1) and range (max - min) over seeds; the report prints the SD
beside the numbers it takes from one run. A benchmark, not a test: about the
time of one `make repro` per seed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

from crlm.stability import FILES, headline, spread

REPO = Path(__file__).resolve().parents[1]
WORK = REPO / "bench" / "stability"


def run_seed(seed: int) -> dict[str, float | None]:
    clone = WORK / f"seed{seed}"
    if not clone.exists():
        subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    subprocess.run(["git", "-C", str(clone), "fetch", "-q", str(REPO), "HEAD"], check=True)
    subprocess.run(["git", "-C", str(clone), "checkout", "-q", "--force", "FETCH_HEAD"], check=True)
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
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], check=True,
                            capture_output=True, text=True).stdout.strip()
    result = {"seeds": seeds, "commit": commit,
              "metrics": {name: spread([runs[s].get(name) for s in seeds]) for name in runs[seeds[0]]}}
    out = REPO / "metrics" / "stability.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"stability: wrote {out}")
    for name, row in result["metrics"].items():
        print(f"  {name:32s} mean {row['mean']}  sd {row['sd']}  range {row['range']}")


if __name__ == "__main__":
    main([int(s) for s in sys.argv[1:]] or [0, 1, 2])
