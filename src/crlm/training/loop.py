"""The training loop: Adam, BCE on the image label + Dice/BCE on the mask, per-epoch seeds.

Every epoch draws its batch order and augmentations from (train.seed, epoch)
alone, so a run resumed from a checkpoint is identical to one that was never
interrupted, and two runs with one seed on one CPU give identical weights.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from segmentation_models_pytorch.losses import DiceLoss
from torch import nn
from torch.nn import functional as F

from crlm.config import Params
from crlm.data.dataset import ImageSet
from crlm.data.transforms import augment_batch
from crlm.evaluation.classification import roc_auc_or_none
from crlm.models import build_model
from crlm.models.inference import predict
from crlm.options import look_up
from crlm.training.checkpoint import fingerprint, load_checkpoint, save_checkpoint
from crlm.training.device import MEMORY_FORMAT, autocast, make_deterministic, resolve_precision, select_device


@dataclass
class TrainResult:
    model: nn.Module
    history: list[dict] = field(default_factory=list)
    resumed_from_epoch: int = 0


EpochCallback = Callable[[dict], None]


def batches(indices: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Consecutive batches; a trailing batch of one joins the previous one (batch norm needs two)."""
    chunks = [indices[i:i + batch_size] for i in range(0, len(indices), batch_size)]
    if len(chunks) > 1 and len(chunks[-1]) == 1:
        last = chunks.pop()
        chunks[-1] = np.concatenate([chunks[-1], last])
    return chunks


class Loss(nn.Module):
    def __init__(self, cls_weight: float, seg_weight: float, seg_pos_weight: float) -> None:
        super().__init__()
        self.cls_weight, self.seg_weight = cls_weight, seg_weight
        self.register_buffer("pos_weight", torch.tensor(seg_pos_weight))
        self.dice = DiceLoss("binary", from_logits=True)

    def forward(self, out, labels: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        loss = self.cls_weight * F.binary_cross_entropy_with_logits(out.logit.float(), labels)
        if out.seg_logits is not None and self.seg_weight > 0:
            seg = out.seg_logits.float()
            loss = loss + self.seg_weight * (
                F.binary_cross_entropy_with_logits(seg, masks, pos_weight=self.pos_weight) + self.dice(seg, masks))
        return loss


def train_model(arch: str, params: Params, data: ImageSet, train_idx: np.ndarray,
                val_idx: np.ndarray | None = None, checkpoint: Path | None = None,
                on_epoch_end: EpochCallback | None = None) -> TrainResult:
    """Train `arch` on data[train_idx]; with val_idx, report val loss/AUC/Dice every train.val_every epochs
    and at the last (the other epochs' history rows hold the training loss only)."""
    cfg = params.train
    if len(train_idx) < 2:
        raise ValueError(f"train {arch}: {len(train_idx)} training image(s); need at least 2")
    device = select_device(cfg.device)
    precision = resolve_precision(cfg.precision, device)
    make_deterministic(cfg.seed)
    model = build_model(arch, params.model).to(device=device, memory_format=MEMORY_FORMAT)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = _scheduler(optimizer, cfg, steps_per_epoch=len(batches(train_idx, cfg.batch_size)))
    loss_fn = Loss(cfg.cls_loss_weight, cfg.seg_loss_weight, cfg.seg_pos_weight).to(device)
    key = fingerprint({"arch": arch, "model": params.model, "train": params.train, "augment": params.augment,
                       "images": data.manifest["image_id"].to_numpy()[train_idx].tolist()})

    result = TrainResult(model)
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

    for epoch in range(start, cfg.epochs + 1):
        row = {"epoch": epoch, "train_loss": _train_epoch(model, optimizer, scheduler, loss_fn, data, train_idx,
                                                          params.augment, cfg.augment, cfg.batch_size, cfg.seed, epoch, device,
                                                          precision)}
        if val_idx is not None and len(val_idx) and (epoch % cfg.val_every == 0 or epoch == cfg.epochs):
            row.update(_validate(model, loss_fn, data, val_idx, cfg.batch_size, device))
        result.history.append(row)
        if checkpoint:
            save_checkpoint(checkpoint, model=model, optimizer=optimizer, scheduler=scheduler, epoch=epoch,
                            history=result.history, key=key)
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


def _train_epoch(model, optimizer, scheduler, loss_fn, data: ImageSet, train_idx, augment, augmenting: bool,
                 batch_size: int, seed: int, epoch: int, device: torch.device, precision: str) -> float:
    model.train()
    epoch_seed = seed * 100_003 + epoch
    torch.manual_seed(epoch_seed)               # augmentation and dropout draws
    order = np.random.default_rng(epoch_seed).permutation(train_idx)
    total, count = 0.0, 0
    for idx in batches(order, batch_size):
        images = torch.from_numpy(data.images[idx]).unsqueeze(1).to(device).float()
        masks = torch.from_numpy(data.tumour[idx]).unsqueeze(1).to(device).float()
        labels = torch.from_numpy(data.labels[idx]).to(device)
        if augmenting:   # on the training device, the whole batch at once
            images, masks = augment_batch(images, masks, augment)
        images = images.contiguous(memory_format=MEMORY_FORMAT)
        with autocast(device, precision):
            out = model(images)
        loss = loss_fn(out, labels, masks)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        total += loss.item() * len(idx)
        count += len(idx)
    return total / count


@torch.no_grad()
def _validate(model, loss_fn, data: ImageSet, idx: np.ndarray, batch_size: int, device) -> dict:
    preds = predict(model, data, idx, batch_size, device)
    labels = data.labels[idx]
    out = {"val_auc": roc_auc_or_none(labels, preds.prob)}
    if preds.seg_prob is not None:
        masks = data.tumour[idx].astype(bool)
        predicted = preds.seg_prob >= 0.5
        inter = np.logical_and(predicted, masks).sum()
        out["val_dice"] = float(2 * inter / max(predicted.sum() + masks.sum(), 1))
    eps = 1e-7
    p = np.clip(preds.prob, eps, 1 - eps)
    out["val_bce"] = float(-np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p)))
    return out
