"""params.yaml's `evaluate` section."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from crlm.core.config import unit_interval


@dataclass(frozen=True)
class ThresholdConfig:
    """evaluate.threshold alone (the lesions stage reads it)."""

    SECTION: ClassVar[str] = "evaluate"
    PARTIAL: ClassVar[bool] = True
    threshold: float

    def __post_init__(self) -> None:
        unit_interval("evaluate.threshold", self.threshold)


@dataclass(frozen=True)
class OverlayConfig:
    """evaluate.overlay_images alone (the explain stage reads it)."""

    SECTION: ClassVar[str] = "evaluate"
    PARTIAL: ClassVar[bool] = True
    overlay_images: int


@dataclass(frozen=True)
class EvaluateConfig(ThresholdConfig):
    """params.yaml's `evaluate` section."""

    PARTIAL: ClassVar[bool] = False
    overlay_images: int
