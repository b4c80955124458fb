"""One training across several processes (GPUs, or nodes) with PyTorch DDP, started by torchrun.

`torchrun --nproc-per-node=N stages/train.py --arch clmnet` starts N processes
and sets RANK, LOCAL_RANK and WORLD_SIZE in each (docs/scaling.md); without
torchrun the world is one process and nothing here is used.

A distributed step is the single-process step with the same global batch
(train.batch_size images), split into one consecutive shard per process:

- every process draws the augmentation of the whole global batch from the same
  seeded generator and applies its shard's rows (crlm.data.transforms);
- batch norm normalises by the statistics of the global batch (torch's
  SyncBatchNorm on CUDA; GlobalBatchNorm2d below on the CPU's gloo backend,
  where SyncBatchNorm refuses to run);
- the mean losses are weighted by shard size, and the Dice term sums its
  intersection and error counts over every process, so DDP's gradient average
  is the gradient of the single-process loss;
- a trailing batch smaller than the number of processes joins the one before
  it, so no process gets an empty shard.

So the weights equal the single-process run's up to floating-point summation
order (tests/training/test_distributed.py bounds the difference), with one exception:
dropout draws its masks in each process from a generator seeded by (seed,
epoch, step, rank), forked off the one the augmentation draws from, so the
masks of different shards are independent and the augmentation stays the
same in every process; they are other draws than one process makes.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, cast

import torch
import torch.distributed as dist
from torch import nn

if TYPE_CHECKING:
    from crlm.models.base import Network


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """The process that writes files and logs (rank 0)."""
        return self.rank == 0

    def shard(self, n: int) -> slice:
        """This process's rows of a global batch of n (consecutive; sizes differ by at most one)."""
        if self.size == 1:
            return slice(None)
        return slice(self.rank * n // self.size, (self.rank + 1) * n // self.size)


SINGLE = World()
# rank 0 alone predicts and writes a fold's maps while the others wait in the next fold's DDP set-up
TIMEOUT = timedelta(hours=1)


def smallest(world: World) -> int:
    """The smallest batch a step takes: two images for batch norm, and one per process."""
    return max(2, world.size)


def own_dropout_draws(world: World, seed: int, device: torch.device):
    """Around a distributed forward pass: dropout draws from a generator of this process's own (`seed`),
    and the shared generator (the augmentation's) is left as it was; nothing in one process."""
    if world.size == 1:
        return contextlib.nullcontext()

    @contextlib.contextmanager
    def forked():
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(seed)
            yield

    return forked()


def world_from_env(env: Mapping[str, str] | None = None) -> World:
    """The world torchrun describes in the environment (RANK, WORLD_SIZE, LOCAL_RANK); one process without."""
    env = os.environ if env is None else env
    return World(int(env.get("RANK", 0)), int(env.get("WORLD_SIZE", 1)), int(env.get("LOCAL_RANK", 0)))


@contextlib.contextmanager
def process_group(device_type: str):
    """Join the torchrun world for the duration (nccl on CUDA, gloo on the CPU); yields the World."""
    world = world_from_env()
    if world.size == 1:
        yield world
        return
    if device_type == "cuda":
        torch.cuda.set_device(world.local_rank)
    dist.init_process_group("nccl" if device_type == "cuda" else "gloo", timeout=TIMEOUT)
    try:
        yield world
    finally:
        dist.destroy_process_group()


def device_of(world: World, device: torch.device) -> torch.device:
    """The process's own GPU under torchrun (LOCAL_RANK); the device unchanged otherwise."""
    if world.size > 1 and device.type == "cuda":
        return torch.device("cuda", world.local_rank)
    return device


def with_global_batch_norm(model: Network, world: World, device: torch.device) -> Network:
    """The model with batch norm over every process's shard (new modules: before the optimizer is built)."""
    if world.size == 1:
        return model
    # both convert the batch norms inside `model` in place and return `model` itself (no batch norm)
    if device.type == "cuda":
        return cast("Network", nn.SyncBatchNorm.convert_sync_batchnorm(model))
    return cast("Network", GlobalBatchNorm2d.convert(model))


def wrap(model: nn.Module, world: World, device: torch.device, unused_parameters: bool) -> nn.Module:
    """DDP around the model; the model itself when there is one process."""
    if world.size == 1:
        return model
    return nn.parallel.DistributedDataParallel(
        model, device_ids=[device.index] if device.type == "cuda" else None, find_unused_parameters=unused_parameters
    )


def unwrapped(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


class _Summed(torch.autograd.Function):
    """all_reduce(SUM) with its gradient: the gradient of a sum over processes, summed over processes."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:
        out = tensor.clone()
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        out = grad.clone()
        dist.all_reduce(out)
        return out


def summed(tensor: torch.Tensor, world: World) -> torch.Tensor:
    """The sum over every process, differentiable (its gradient flows back to every process's share)."""
    return tensor if world.size == 1 else _Summed.apply(tensor)


def mean_over_world(value: float, world: World, device: torch.device) -> float:
    if world.size == 1:
        return value
    tensor = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return tensor.item() / world.size


class GlobalBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d over the global batch of every process, on any backend (gloo included).

    Training: mean and biased variance of the concatenated batch (sums all-reduced), the running
    statistics updated with the unbiased variance, as nn.BatchNorm2d does; evaluation: nn.BatchNorm2d.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or not dist.is_initialized():
            return super().forward(x)
        values = x.double()  # sums of squares in float64: E[x^2] - E[x]^2 cancels in float32
        count = torch.tensor([values.numel() / values.shape[1]], dtype=torch.float64, device=x.device)
        sums = _Summed.apply(torch.cat([count, values.sum((0, 2, 3)), (values * values).sum((0, 2, 3))]))
        n, channels = sums[0], x.shape[1]
        mean = sums[1 : 1 + channels] / n
        var = sums[1 + channels :] / n - mean * mean
        # convert() admits only batch norms with running statistics and a momentum
        assert self.num_batches_tracked is not None and self.momentum is not None
        assert self.running_mean is not None and self.running_var is not None
        with torch.no_grad():
            self.num_batches_tracked.add_(1)
            self.running_mean.lerp_(mean.float(), self.momentum)
            self.running_var.lerp_((var * n / (n - 1)).float(), self.momentum)
        scale = self.weight * torch.rsqrt(var + self.eps)
        out = values * scale.view(1, -1, 1, 1) + (self.bias - mean * scale).view(1, -1, 1, 1)
        return out.to(x.dtype)

    @classmethod
    def convert(cls, module: nn.Module) -> nn.Module:
        """Every nn.BatchNorm2d of `module` replaced by this class, with its parameters and statistics (the
        default kind only: affine, running statistics, a momentum; another is refused, never mis-normalised)."""
        if type(module) is nn.BatchNorm2d:
            if not (module.affine and module.track_running_stats and module.momentum is not None):
                raise ValueError(
                    f"GlobalBatchNorm2d: {module} is not supported (affine, track_running_stats "
                    "and a momentum are required)"
                )
            assert module.running_mean is not None  # track_running_stats, checked above
            converted = cls(
                module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats
            ).to(module.running_mean.device)
            converted.load_state_dict(module.state_dict())
            converted.train(module.training)
            return converted
        for name, child in module.named_children():
            module.add_module(name, cls.convert(child))
        return module
