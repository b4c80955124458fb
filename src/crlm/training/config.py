"""params.yaml's `train` section."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from crlm.core.config import ConfigError, positive

Device = Literal["auto", "cpu", "cuda"]  # crlm.training.device.DEVICES
Precision = Literal["auto", "fp32", "bf16"]  # crlm.training.device.PRECISIONS
LRSchedule = Literal["constant", "onecycle"]  # crlm.training.loop.LR_SCHEDULES


@dataclass(frozen=True)
class TrainConfig:
    SECTION: ClassVar[str] = "train"
    seed: int
    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    cls_loss_weight: float
    seg_loss_weight: float
    seg_pos_weight: float
    augment: bool
    device: Device
    lr_schedule: LRSchedule
    precision: Precision
    val_every: int  # validate every N epochs and at the last
    exclude_ambiguous: bool  # the training sample (sampling.py) leaves ambiguous slices out
    max_slices_per_patient: int
    balance: bool  # undersample the training sample's majority class
    majority_per_minority: float
    workers: int  # CPU cores the train stage may use, 0 = all

    def __post_init__(self) -> None:
        positive("train.epochs", self.epochs)
        if self.workers < 0:
            raise ConfigError(f"train.workers must be >= 0 (0 = every CPU core), got {self.workers}")
        positive("train.val_every", self.val_every)
        positive("train.max_slices_per_patient", self.max_slices_per_patient)
        positive("train.majority_per_minority", self.majority_per_minority)
        positive("train.lr", self.lr)
        if self.batch_size < 2:
            raise ConfigError(f"train.batch_size must be >= 2 (batch norm), got {self.batch_size}")
