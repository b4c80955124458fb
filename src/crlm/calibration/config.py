"""params.yaml's `calibration` section."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from crlm.core.config import ConfigError, positive


@dataclass(frozen=True)
class CalibrationConfig:
    SECTION: ClassVar[str] = "calibration"
    image_bins: int  # quantile bins of the image-level reliability diagram (test images)
    patient_bins: int  # quantile bins of the survival reliability diagram (complete cases)
    thresholds: tuple[float, float]  # decision curve: threshold probabilities from, to
    threshold_step: float
    net_benefit_at: tuple[float, ...]  # thresholds whose net benefit metrics/calibration.json holds

    def __post_init__(self) -> None:
        for key in ("image_bins", "patient_bins"):
            if getattr(self, key) < 2:
                raise ConfigError(f"calibration.{key} must be >= 2, got {getattr(self, key)}")
        low, high = self.thresholds
        if not 0 < low < high < 1:
            raise ConfigError(f"calibration.thresholds must be [low, high], 0 < low < high < 1, got {[low, high]}")
        positive("calibration.threshold_step", self.threshold_step)
        if not all(0 < t < 1 for t in self.net_benefit_at):
            raise ConfigError(f"calibration.net_benefit_at must lie in (0, 1), got {list(self.net_benefit_at)}")
