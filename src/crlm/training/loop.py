"""The training loop: Adam, BCE on the image label + Dice/BCE on the mask, per-epoch seeds.

Every epoch draws its batch order and augmentations from (train.seed, epoch)
alone, so a run resumed from a checkpoint is identical to one that was never
interrupted, and two runs with one seed on one CPU give identical weights.
Under torchrun each process trains on its shard of every batch
(crlm.training.distributed).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from segmentation_models_pytorch.losses import DiceLoss
from torch import nn
from torch.nn import functional as F

if TYPE_CHECKING:
    from crlm.params import Params
from crlm.core.errors import UserError
from crlm.core.options import look_up
from crlm.data.dataset import ImageSet
from crlm.data.transforms import AugmentConfig, augment_batch
from crlm.evaluation.classification import roc_auc_or_none
from crlm.models.base import Network
from crlm.models.inference import predict_batches
from crlm.models.registry import build_model, model_kwargs
from crlm.training.checkpoint import fingerprint, load_checkpoint, save_checkpoint
from crlm.training.device import MEMORY_FORMAT, autocast, make_deterministic, resolve_precision, select_device
from crlm.training.distributed import (
    SINGLE,
    World,
    device_of,
    mean_over_world,
    own_dropout_draws,
    smallest,
    summed,
    with_global_batch_norm,
    wrap,
)


@dataclass
class TrainResult:
    model: Network
    kwargs: dict  # the arguments the network was built with (for its model file)
    history: list[dict] = field(default_factory=list)
    resumed_from_epoch: int = 0


EpochCallback = Callable[[dict], None]


def batches(indices: np.ndarray, batch_size: int, least: int = 2) -> list[np.ndarray]:
    """Consecutive batches; a trailing batch under `least` images joins the previous one (batch norm needs two
    images; a distributed step one per process)."""
    chunks = [indices[i : i + batch_size] for i in range(0, len(indices), batch_size)]
    if len(chunks) > 1 and len(chunks[-1]) < least:
        last = chunks.pop()
        chunks[-1] = np.concatenate([chunks[-1], last])
    return chunks


class Loss(nn.Module):
    """cls_weight x BCE(image label) + seg_weight x (BCE + Dice)(tumour mask), over the batch.

    In a distributed training, `share` (this process's images / the global batch x processes) weights the
    mean terms and the Dice term is computed from sums over every process: DDP's average of the processes'
    gradients is then the gradient of the global batch's loss.
    """

    pos_weight: torch.Tensor  # a buffer, registered in __init__

    def __init__(self, cls_weight: float, seg_weight: float, seg_pos_weight: float, world: World = SINGLE) -> None:
        super().__init__()
        self.cls_weight, self.seg_weight, self.world = cls_weight, seg_weight, world
        self.register_buffer("pos_weight", torch.tensor(seg_pos_weight))
        self.dice = DiceLoss("binary", from_logits=True)

    def forward(self, out, labels: torch.Tensor, masks: torch.Tensor, share: float = 1.0) -> torch.Tensor:
        loss = self.cls_weight * F.binary_cross_entropy_with_logits(out.logit.float(), labels)
        if out.seg_logits is not None and self.seg_weight > 0:
            seg = out.seg_logits.float()
            seg_bce = F.binary_cross_entropy_with_logits(seg, masks, pos_weight=self.pos_weight)
            if self.world.size == 1:
                return loss + self.seg_weight * (seg_bce + self.dice(seg, masks))
            global_dice = global_dice_loss(seg, masks, self.world)
            return (loss + self.seg_weight * seg_bce) * share + self.seg_weight * global_dice
        return loss if self.world.size == 1 else loss * share


def global_dice_loss(seg_logits: torch.Tensor, masks: torch.Tensor, world: World, eps: float = 1e-7) -> torch.Tensor:
    """segmentation_models_pytorch's binary DiceLoss (from logits, smooth 0) of the global batch, from this
    process's share: the intersection and error sums are summed over every process."""
    prob = F.logsigmoid(seg_logits).exp().flatten()
    target = masks.flatten().type_as(prob)
    sums = summed(
        torch.stack([(prob * target).sum(), (prob * (1 - target)).sum(), ((1 - prob) * target).sum(), target.sum()]),
        world,
    )
    intersection, false_pos, false_neg, positives = sums
    score = intersection / (intersection + 0.5 * false_pos + 0.5 * false_neg).clamp_min(eps)
    return (1.0 - score) * (positives > 0).to(score.dtype)


class TrainingDiverged(UserError):
    """The training loss became NaN or infinite (a learning rate too high for the recipe)."""


def train_model(
    arch: str,
    params: Params,
    data: ImageSet,
    train_idx: np.ndarray,
    val_idx: np.ndarray | None = None,
    checkpoint: Path | None = None,
    on_epoch_end: EpochCallback | None = None,
    world: World = SINGLE,
) -> TrainResult:
    """Train `arch` on data[train_idx]; with val_idx, report val loss/AUC/Dice every train.val_every epochs
    and at the last (the other epochs' history rows hold the training loss only).

    With a world of several processes (torchrun), each trains on its shard of every batch, every process
    returns the same model and history, and the main process alone writes the checkpoint."""
    cfg = params.train
    if len(train_idx) < 2:
        raise ValueError(f"train {arch}: {len(train_idx)} training image(s); need at least 2")
    if cfg.batch_size < world.size:
        raise ValueError(
            f"train.batch_size {cfg.batch_size} is the global batch, split over {world.size} "
            f"processes: it must be at least {world.size}"
        )
    device = device_of(world, select_device(cfg.device))
    precision = resolve_precision(cfg.precision, device)
    make_deterministic(cfg.seed)
    kwargs = model_kwargs(params.model, arch)
    # torch's stubs lack Module.to(device=..., memory_format=...), which Module.to accepts (keywords of Tensor.to)
    model = build_model(arch, kwargs).to(device=device, memory_format=MEMORY_FORMAT)  # type: ignore[call-overload]
    model = with_global_batch_norm(model, world, device)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = _scheduler(optimizer, cfg, steps_per_epoch=len(batches(train_idx, cfg.batch_size, smallest(world))))
    loss_fn = Loss(cfg.cls_loss_weight, cfg.seg_loss_weight, cfg.seg_pos_weight, world).to(device)
    settings = {
        "arch": arch,
        "model": kwargs,
        "train": params.train,
        "augment": params.augment,
        "images": data.manifest["image_id"].to_numpy()[train_idx].tolist(),
    }
    key = fingerprint(settings if world.size == 1 else {**settings, "processes": world.size})

    result = TrainResult(model, kwargs)
    start = 1
    state = load_checkpoint(checkpoint, key) if checkpoint else None
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        result.history = state["history"]
        result.resumed_from_epoch = state["epoch"]
        start = state["epoch"] + 1
        logging.getLogger(__name__).info(f"{arch}: resuming after epoch {state['epoch']} from {checkpoint}")
        if on_epoch_end:
            for row in result.history:
                on_epoch_end(row)

    # a head whose loss is off gets no gradient; DDP must be told
    trained = wrap(model, world, device, unused_parameters=0 in (cfg.seg_loss_weight, cfg.cls_loss_weight))
    setup = EpochSetup(
        trained,
        optimizer,
        scheduler,
        loss_fn,
        data,
        train_idx,
        params.augment if cfg.augment else None,
        cfg.batch_size,
        cfg.seed,
        device,
        precision,
        world,
    )
    for epoch in range(start, cfg.epochs + 1):
        row = {"epoch": epoch, "train_loss": _train_epoch(setup, epoch)}
        if not math.isfinite(row["train_loss"]):
            raise TrainingDiverged(
                f"train {arch}: the training loss is {row['train_loss']} at epoch {epoch} "
                f"(train.lr {cfg.lr}, train.lr_schedule {cfg.lr_schedule}): the training "
                "diverged; lower train.lr"
            )
        if val_idx is not None and len(val_idx) and (epoch % cfg.val_every == 0 or epoch == cfg.epochs):
            row.update(_validate(model, loss_fn, data, val_idx, cfg.batch_size, device))
        result.history.append(row)
        if checkpoint and world.main:
            save_checkpoint(
                checkpoint,
                model=model,
                optimizer=optimizer,
                scheduler=scheduler,
                epoch=epoch,
                history=result.history,
                key=key,
            )
        if on_epoch_end:
            on_epoch_end(row)
    return result


def constant_lr(optimizer, lr: float, epochs: int, steps_per_epoch: int) -> torch.optim.lr_scheduler.LRScheduler:
    """train.lr at every step (the optimizer's own)."""
    return torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=0)


def one_cycle_lr(optimizer, lr: float, epochs: int, steps_per_epoch: int) -> torch.optim.lr_scheduler.LRScheduler:
    """Warm-up to train.lr, then cosine annealing."""
    return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, epochs=epochs, steps_per_epoch=steps_per_epoch)


# train.lr_schedule -> the per-step learning-rate scheduler
LR_SCHEDULES = {"constant": constant_lr, "onecycle": one_cycle_lr}


def _scheduler(optimizer, cfg, steps_per_epoch: int) -> torch.optim.lr_scheduler.LRScheduler:
    """The per-step learning rate that train.lr_schedule names."""
    schedule = look_up("train.lr_schedule", cfg.lr_schedule, LR_SCHEDULES)
    return schedule(optimizer, cfg.lr, cfg.epochs, steps_per_epoch)


@dataclass(frozen=True)
class EpochSetup:
    """What every epoch of one training shares (all but the epoch's number)."""

    model: nn.Module  # DDP-wrapped in a distributed training
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    loss_fn: Loss
    data: ImageSet
    train_idx: np.ndarray
    augment: AugmentConfig | None  # None: no augmentation (train.augment false)
    batch_size: int
    seed: int  # train.seed: an epoch's draws come from (seed, epoch) alone
    device: torch.device
    precision: str
    world: World = SINGLE


def _train_epoch(setup: EpochSetup, epoch: int) -> float:
    model, optimizer, scheduler, loss_fn = setup.model, setup.optimizer, setup.scheduler, setup.loss_fn
    data, world, device = setup.data, setup.world, setup.device
    model.train()
    epoch_seed = setup.seed * 100_003 + epoch
    torch.manual_seed(epoch_seed)  # augmentation and dropout draws
    order = np.random.default_rng(epoch_seed).permutation(setup.train_idx)
    total, count = 0.0, 0
    for step, batch in enumerate(batches(order, setup.batch_size, smallest(world))):
        rows = world.shard(len(batch))  # the whole batch in a single process
        idx = batch[rows]
        images = torch.from_numpy(data.images_at(idx)).unsqueeze(1).to(device)
        masks = torch.from_numpy(data.tumour_at(idx)).unsqueeze(1).to(device).float()
        labels = torch.from_numpy(data.labels[idx]).to(device)
        if setup.augment is not None:  # on the training device, the whole batch at once
            images, masks = augment_batch(images, masks, setup.augment, len(batch), rows)
        images = images.contiguous(memory_format=MEMORY_FORMAT)
        with (
            own_dropout_draws(world, (epoch_seed * 1_000_003 + step) * 1_009 + world.rank, device),
            autocast(device, setup.precision),
        ):
            out = model(images)
        loss = loss_fn(out, labels, masks, share=len(idx) * world.size / len(batch))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        total += mean_over_world(loss.item(), world, device) * len(batch)  # the global batch's loss
        count += len(batch)
    return total / count


@torch.no_grad()
def _validate(model, loss_fn, data: ImageSet, idx: np.ndarray, batch_size: int, device) -> dict:
    # the Dice of all validation pixels at once, from integer counts summed a batch at a time
    probs, inter, predicted_px, true_px, segments = [], 0, 0, 0, False
    done = 0
    for batch in predict_batches(model, data, idx, batch_size, device):
        probs.append(batch.prob)
        rows = idx[done : done + len(batch.prob)]
        done += len(rows)
        if batch.seg_prob is not None:
            segments = True
            masks = data.tumour_at(rows).astype(bool)
            predicted = batch.seg_prob >= 0.5
            inter += int(np.logical_and(predicted, masks).sum())
            predicted_px += int(predicted.sum())
            true_px += int(masks.sum())
    prob = np.concatenate(probs) if probs else np.zeros(0, np.float32)
    labels = data.labels[idx]
    out = {"val_auc": roc_auc_or_none(labels, prob)}
    if segments:
        out["val_dice"] = float(2 * inter / max(predicted_px + true_px, 1))
    eps = 1e-7
    p = np.clip(prob, eps, 1 - eps)
    out["val_bce"] = float(-np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p)))
    return out
