"""Benchmark: wall time of each DVC stage of a default run and the training/inference
throughput of each arch, written to bench/results.json.

Run through `make bench`. Each stage is forced to rerun on its own
(`dvc repro --force --single-item`), so the times include DVC's own overhead,
as a user would see it. Throughput (images/s) is measured on random input on
the current device (CUDA when present) at the default size/width and at the
paper's (256 px, width 1). The DeLong test is timed on 1,000,000 scores on one core.
Budgets come from the issues that set them.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from crlm.archs import ARCHS

DATA_STAGES = ["fetch", "slices", "qc", "prepare", "split"]
MODEL_STAGES = [f"train@{arch}" for arch in ARCHS] + ["evaluate"]   # train@<arch>: the 5 folds
SURVIVAL_STAGES = ["embed", "survival", "compare", "report"]
OTHER_STAGES = ["augment"]
# issue 12: through report in at most 15 minutes on a 2-core CPU (aim: 10)
BUDGET_S = {"data_stages": 60.0, "repro_through_evaluate": 780.0, "repro_through_report": 900.0,
            "delong_1e6_scores": 1.0}


def delong_seconds(n: int = 1_000_000) -> float:
    """Best of three DeLong tests on n paired scores (half positives), pinned to one thread."""
    from threadpoolctl import threadpool_limits

    import numpy as np

    from crlm.stats import delong_test

    rng = np.random.default_rng(0)
    labels = rng.random(n) < 0.5
    a, b = labels + rng.normal(size=n), 0.5 * labels + rng.normal(size=n)
    times = []
    with threadpool_limits(1):
        for _ in range(3):
            start = time.perf_counter()
            delong_test(labels, a, b)
            times.append(time.perf_counter() - start)
    return round(min(times), 3)


def throughput(arch: str, size: int, width: float, batch: int, steps: int) -> dict:
    """Training and inference images/s of `arch` on random input (after one warm-up step)."""
    import dataclasses

    import torch

    from crlm.config import load_params
    from crlm.models import build_model
    from crlm.training.device import MEMORY_FORMAT, autocast, resolve_precision, select_device

    params = load_params()
    cfg = params.model
    device = select_device("auto")
    precision = resolve_precision(params.train.precision, device)
    model = build_model(arch, dataclasses.replace(cfg, width=width)).to(device, memory_format=MEMORY_FORMAT)
    optimizer = torch.optim.Adam(model.parameters(), 1e-4)
    x = torch.rand(batch, 1, size, size, device=device).contiguous(memory_format=MEMORY_FORMAT)

    def timed(train: bool) -> float:
        model.train(train)
        for step in range(steps + 1):
            if step == 1:
                if device.type == "cuda":
                    torch.cuda.synchronize()
                start = time.perf_counter()
            with torch.set_grad_enabled(train), autocast(device, precision if train else None):
                out = model(x)
                loss = out.logit.float().mean()
            if train:
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return round(batch * steps / (time.perf_counter() - start), 1)

    return {"device": str(device), "size": size, "width": width, "batch": batch,
            "train_images_per_s": timed(True), "inference_images_per_s": timed(False)}


def time_stage(stage: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "dvc", "repro", "--force", "--single-item", "--quiet", stage], check=True)
    return round(time.perf_counter() - start, 2)


def main() -> None:
    stages = {stage: time_stage(stage) for stage in DATA_STAGES + MODEL_STAGES + SURVIVAL_STAGES + OTHER_STAGES}
    data_total = round(sum(stages[s] for s in DATA_STAGES), 2)
    through_evaluate = round(data_total + sum(stages[s] for s in MODEL_STAGES), 2)
    through_report = round(through_evaluate + sum(stages[s] for s in SURVIVAL_STAGES), 2)
    delong = delong_seconds()
    import torch

    from crlm.config import load_params

    params = load_params()
    speed = {}
    for arch in ARCHS:
        speed[arch] = {"default": throughput(arch, params.prepare.image_size, params.model.width,
                                             params.train.batch_size, 4)}
        speed[arch]["paper"] = throughput(arch, 256, 1.0, 32 if torch.cuda.is_available() else 4, 2)
    results = {
        "machine": {"platform": platform.platform(), "python": platform.python_version(),
                    "cpu_count": os.cpu_count(),
                    "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None},
        "stage_wall_s": stages,
        "data_stages_wall_s": data_total,
        "repro_through_evaluate_wall_s": through_evaluate,
        "repro_through_report_wall_s": through_report,
        "delong_1e6_scores_s": delong,
        "throughput": speed,
        "budgets_s": BUDGET_S,
        "within_budget": {"data_stages": data_total <= BUDGET_S["data_stages"],
                          "repro_through_evaluate": through_evaluate <= BUDGET_S["repro_through_evaluate"],
                          "repro_through_report": through_report <= BUDGET_S["repro_through_report"],
                          "delong_1e6_scores": delong <= BUDGET_S["delong_1e6_scores"]},
    }
    out = Path("bench/results.json")
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
