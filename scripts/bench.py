"""Benchmark: wall time of each DVC stage of a default run, written to bench/results.json.

Run through `make bench`. Each stage is forced to rerun on its own
(`dvc repro --force --single-item`), so the times include DVC's own overhead,
as a user would see it. Budgets come from the issues that set them.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

DATA_STAGES = ["fetch", "slices", "qc", "prepare", "split"]
OTHER_STAGES = ["augment"]
BUDGET_S = {"data_stages": 60.0}


def time_stage(stage: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "dvc", "repro", "--force", "--single-item", "--quiet", stage], check=True)
    return round(time.perf_counter() - start, 2)


def main() -> None:
    stages = {stage: time_stage(stage) for stage in DATA_STAGES + OTHER_STAGES}
    data_total = round(sum(stages[s] for s in DATA_STAGES), 2)
    results = {
        "machine": {"platform": platform.platform(), "python": platform.python_version(),
                    "cpu_count": os.cpu_count()},
        "stage_wall_s": stages,
        "data_stages_wall_s": data_total,
        "budgets_s": BUDGET_S,
        "within_budget": {"data_stages": data_total <= BUDGET_S["data_stages"]},
    }
    out = Path("bench/results.json")
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
