"""Benchmark: wall time of each DVC stage of a default run and the training/inference
throughput of each arch, written to bench/results.json.

Run through `make bench`. Each stage is forced to rerun on its own
(`dvc repro --force --single-item`), so the times include DVC's own overhead,
as a user would see it. Throughput (images/s) is measured on random input on
the current device (CUDA when present) at the default size/width and at the
paper's (256 px, width 1), with the training loss (crlm.training.loop.Loss)
and Adam. The DeLong test is timed on 1,000,000 scores on one core.
Budgets come from the issues that set them.

Issue 16: on CUDA, the "cuda" entry holds each arch's training images/s as the
paper trains (256 px, width 1, batch 32, bf16 autocast, channels_last, the
batched augmentation on the device, the real loss, Adam; after warm-up, timed
between synchronisations), the GPU's mean utilisation meanwhile (nvidia-smi
every 0.2 s) and, with --paper-protocol, the wall time of `make repro-paper`
(the whole paper protocol as one `dvc exp run`), against the goals below; on a
CPU it says it was not measured. The "augmentation" entry holds the batched
augmentation's images/s at 256 px, batch 32, on one CPU thread, next to
torchvision's own per-image pipeline with the same parameters.
--only-throughput measures only these and the per-arch throughput (no dvc runs).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from crlm.archs import ARCHS

DATA_STAGES = ["fetch", "slices", "qc", "prepare", "split"]
MODEL_STAGES = [f"train@{arch}" for arch in ARCHS] + ["evaluate"]  # train@<arch>: the 5 folds
SURVIVAL_STAGES = ["embed", "survival", "compare", "report"]
OTHER_STAGES = ["augment"]
# through report in at most 15 minutes on a 2-core CPU (aim: 10)
BUDGET_S = {
    "data_stages": 60.0,
    "repro_through_evaluate": 780.0,
    "repro_through_report": 900.0,
    "delong_1e6_scores": 1.0,
}
# the paper's training on one H100, and the whole paper protocol (`make repro-paper`)
CUDA_GOALS = {"clmnet_train_images_per_s": 1500.0, "paper_protocol_wall_s": 600.0}
PAPER_SIZE, PAPER_WIDTH, PAPER_BATCH = 256, 1.0, 32
OLD_PER_IMAGE_IMAGES_PER_S = 71.0  # the per-image pipeline it replaced, per CPU thread at 256 px


def delong_seconds(n: int = 1_000_000) -> float:
    """Best of three DeLong tests on n paired scores (half positives), pinned to one thread."""
    import numpy as np
    from threadpoolctl import threadpool_limits

    from crlm.stats.delong import delong_test

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


def synchronise(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()


def throughput(
    arch: str,
    size: int,
    width: float,
    batch: int,
    steps: int,
    *,
    warmup: int = 1,
    augment: bool = False,
    precision: str | None = None,
    inference: bool = True,
    during_training=contextlib.nullcontext,
) -> dict:
    """Training (and inference) images/s of `arch` on random images, masks and labels, with the training loss
    and Adam, timed over `steps` batches after `warmup`. augment: the batched augmentation on the device at
    every training step, as the training loop does; precision: train.precision's by default;
    during_training: a context manager around the timed training steps (GpuUtilisation)."""

    import torch

    from crlm.data.transforms import augment_batch
    from crlm.models.registry import build_model, model_kwargs
    from crlm.params import load_params
    from crlm.training.device import MEMORY_FORMAT, autocast, resolve_precision, select_device
    from crlm.training.loop import Loss

    params = load_params()
    device = select_device("auto")
    precision = precision or resolve_precision(params.train.precision, device)
    kwargs = {**model_kwargs(params.model, arch), "width": width}
    model = build_model(arch, kwargs).to(device, memory_format=MEMORY_FORMAT)
    optimizer = torch.optim.Adam(model.parameters(), 1e-4)
    train = params.train
    loss_fn = Loss(train.cls_loss_weight, train.seg_loss_weight, train.seg_pos_weight).to(device)
    x = torch.rand(batch, 1, size, size, device=device)
    masks = (torch.rand(batch, 1, size, size, device=device) < 0.1).float()
    labels = torch.randint(0, 2, (batch,), device=device).float()

    def step(training: bool) -> None:
        images, targets = augment_batch(x, masks, params.augment) if training and augment else (x, masks)
        images = images.contiguous(memory_format=MEMORY_FORMAT)
        with torch.set_grad_enabled(training), autocast(device, precision if training else None):
            out = model(images)
        if training:
            loss = loss_fn(out, labels, targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

    def timed(training: bool, around=contextlib.nullcontext) -> float:
        model.train(training)
        for _ in range(warmup):
            step(training)
        synchronise(device)
        with around():
            start = time.perf_counter()
            for _ in range(steps):
                step(training)
            synchronise(device)
            elapsed = time.perf_counter() - start
        return round(batch * steps / elapsed, 1)

    out = {
        "device": str(device),
        "size": size,
        "width": width,
        "batch": batch,
        "precision": precision,
        "augment": augment,
        "train_images_per_s": timed(True, during_training),
    }
    if inference:
        out["inference_images_per_s"] = timed(False)
    return out


class GpuUtilisation:
    """The utilisation (%) of torch's CUDA device 0 from nvidia-smi every `every` s in a background thread,
    while in the `with` block. nvidia-smi ignores CUDA_VISIBLE_DEVICES and lists every GPU: the row whose
    UUID is torch's device's, else the first."""

    QUERY = ["nvidia-smi", "--query-gpu=uuid,utilization.gpu", "--format=csv,noheader,nounits"]

    def __init__(self, every: float = 0.2) -> None:
        import torch

        self.every, self.samples, self.why = every, [], None
        self.uuid = str(getattr(torch.cuda.get_device_properties(0), "uuid", "")).removeprefix("GPU-")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> GpuUtilisation:
        if shutil.which("nvidia-smi") is None:
            self.why = "nvidia-smi not found"
        else:
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _sample(self) -> None:
        while not self._stop.is_set():
            try:
                done = subprocess.run(self.QUERY, capture_output=True, text=True, timeout=10, check=True)
                rows = [line.split(",") for line in done.stdout.splitlines() if line.strip()]
                row = next((r for r in rows if self.uuid and self.uuid in r[0]), rows[0])
                self.samples.append(float(row[1]))
            except (OSError, subprocess.SubprocessError, ValueError, IndexError) as error:
                self.why = f"nvidia-smi failed: {error}"
                return
            self._stop.wait(self.every)

    def result(self) -> dict:
        mean = round(statistics.fmean(self.samples), 1) if self.samples else None
        return {"mean_percent": mean, "samples": len(self.samples), "why": self.why if mean is None else None}


def paper_protocol_seconds() -> dict:
    """Wall time of `make repro-paper`: the Makefile's PAPER settings as one `dvc exp run`."""
    start = time.perf_counter()
    done = subprocess.run(["make", "repro-paper"], check=False)
    return {
        "command": "make repro-paper",
        "wall_s": round(time.perf_counter() - start, 1),
        "returncode": done.returncode,
    }


def cuda_training(paper_protocol: bool) -> dict:
    """Issue 16's figures on the CUDA device: the paper's training images/s per arch, the GPU's utilisation
    meanwhile and (paper_protocol) the whole protocol's wall time, against CUDA_GOALS."""
    import torch

    from crlm.params import load_params
    from crlm.training.device import make_deterministic

    if not torch.cuda.is_available():
        return {"measured": False, "why": "no CUDA device"}
    make_deterministic(load_params().train.seed)  # as train_model runs
    speed, utilisation = {}, {}
    for arch in ARCHS:
        watch = GpuUtilisation()
        speed[arch] = throughput(
            arch,
            PAPER_SIZE,
            PAPER_WIDTH,
            PAPER_BATCH,
            steps=150,
            warmup=10,
            augment=True,
            precision="bf16",
            inference=False,
            during_training=lambda: watch,
        )
        utilisation[arch] = watch.result()
    if paper_protocol:
        protocol = paper_protocol_seconds()
        protocol_ok = protocol["returncode"] == 0 and protocol["wall_s"] <= CUDA_GOALS["paper_protocol_wall_s"]
    else:
        protocol, protocol_ok = {"measured": False, "why": "run with --paper-protocol"}, None
    clmnet = speed["clmnet"]["train_images_per_s"]
    return {
        "measured": True,
        "gpu": torch.cuda.get_device_name(0),
        "memory_format": "channels_last",
        "loss": "crlm.training.loop.Loss",
        "optimizer": "Adam",
        "deterministic": True,
        "augmentation": "crlm.data.transforms.augment_batch on the device",
        "train": speed,
        "gpu_utilisation": utilisation,
        "paper_protocol": protocol,
        "goals": CUDA_GOALS,
        "within_goal": {
            "clmnet_train_images_per_s": clmnet >= CUDA_GOALS["clmnet_train_images_per_s"],
            "paper_protocol_wall_s": protocol_ok,
        },
    }


def augmentation_throughput(size: int = PAPER_SIZE, batch: int = PAPER_BATCH, seconds: float = 3.0) -> dict:
    """Images/s on one CPU thread of the batched augmentation (augment_batch, one batch at a time) and of
    torchvision's per-image pipeline with the same parameters (params.yaml's augment section)."""
    import torch
    from torchvision import tv_tensors

    from crlm.data.transforms import augment_batch
    from crlm.data.transforms_reference import torchvision_pipeline
    from crlm.params import load_params

    cfg = load_params().augment
    images = torch.rand(batch, 1, size, size)
    masks = (torch.rand(batch, 1, size, size) < 0.1).to(torch.uint8)
    pipeline = torchvision_pipeline(cfg, size)

    def per_image() -> None:
        for image, mask in zip(images, masks):
            pipeline(tv_tensors.Image(image), tv_tensors.Mask(mask))

    def images_per_s(work) -> float:
        work()  # warm-up
        done, start = 0, time.perf_counter()
        while done == 0 or time.perf_counter() - start < seconds:
            work()
            done += batch
        return round(done / (time.perf_counter() - start), 1)

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(0)
        batched = images_per_s(lambda: augment_batch(images, masks, cfg))
        torchvision = images_per_s(per_image)
    finally:
        torch.set_num_threads(threads)
    return {
        "device": "cpu",
        "threads": 1,
        "size": size,
        "batch": batch,
        "batched_images_per_s": batched,
        "torchvision_per_image_images_per_s": torchvision,
        "old_per_image_images_per_s": OLD_PER_IMAGE_IMAGES_PER_S,
        "speed_up_over_torchvision": round(batched / torchvision, 1),
    }


def arch_throughput() -> dict:
    """Each arch's training and inference images/s at the default size/width and at the paper's."""
    import torch

    from crlm.params import load_params

    params = load_params()
    speed = {}
    for arch in ARCHS:
        speed[arch] = {
            "default": throughput(arch, params.prepare.image_size, params.model.width, params.train.batch_size, 4)
        }
        speed[arch]["paper"] = throughput(
            arch, PAPER_SIZE, PAPER_WIDTH, PAPER_BATCH if torch.cuda.is_available() else 4, 2
        )
    return speed


def machine() -> dict:
    import torch

    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def time_stage(stage: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "dvc", "repro", "--force", "--single-item", "--quiet", stage], check=True)
    return round(time.perf_counter() - start, 2)


def stage_timings() -> dict:
    """The forced dvc reruns and the DeLong test, against BUDGET_S."""
    stages = {stage: time_stage(stage) for stage in DATA_STAGES + MODEL_STAGES + SURVIVAL_STAGES + OTHER_STAGES}
    data_total = round(sum(stages[s] for s in DATA_STAGES), 2)
    through_evaluate = round(data_total + sum(stages[s] for s in MODEL_STAGES), 2)
    through_report = round(through_evaluate + sum(stages[s] for s in SURVIVAL_STAGES), 2)
    delong = delong_seconds()
    return {
        "stage_wall_s": stages,
        "data_stages_wall_s": data_total,
        "repro_through_evaluate_wall_s": through_evaluate,
        "repro_through_report_wall_s": through_report,
        "delong_1e6_scores_s": delong,
        "budgets_s": BUDGET_S,
        "within_budget": {
            "data_stages": data_total <= BUDGET_S["data_stages"],
            "repro_through_evaluate": through_evaluate <= BUDGET_S["repro_through_evaluate"],
            "repro_through_report": through_report <= BUDGET_S["repro_through_report"],
            "delong_1e6_scores": delong <= BUDGET_S["delong_1e6_scores"],
        },
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Stage wall times and throughput -> bench/results.json")
    parser.add_argument(
        "--only-throughput",
        action="store_true",
        help="no dvc reruns or DeLong timing: measure the throughput, cuda and augmentation "
        "entries only and update them in --out (its other entries are kept)",
    )
    parser.add_argument(
        "--paper-protocol",
        action="store_true",
        help="on CUDA, also time `make repro-paper` (the whole paper protocol; long)",
    )
    parser.add_argument("--out", type=Path, default=Path("bench/results.json"))
    args = parser.parse_args(argv)

    results = {"machine": machine()}
    if args.only_throughput:
        old = json.loads(args.out.read_text()) if args.out.exists() else {}
        results = {**old, "throughput_machine": results["machine"]}
    else:
        results.update(stage_timings())
    results["throughput"] = arch_throughput()
    results["cuda"] = cuda_training(args.paper_protocol)
    results["augmentation"] = augmentation_throughput()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
