"""params.yaml's sections of the analyses beyond the paper: lesions, calibration, explain (issue 15)."""

from __future__ import annotations

from dataclasses import dataclass

from crlm.config.checks import ConfigError, _positive, _unit_interval

__all__ = ["CalibrationConfig", "ExplainConfig", "LesionsConfig"]


@dataclass(frozen=True)
class LesionsConfig:
    min_iou: float                      # detected at this IoU with the predicted pieces on it (0 = any overlap)
    size_bands_mm: tuple[float, ...]    # edges of the equivalent-diameter bands: <= e0, (e0, e1], ..., > e_last
    froc_thresholds: tuple[float, ...]  # probability cuts of the FROC curve, ascending

    def __post_init__(self) -> None:
        _unit_interval("lesions.min_iou", self.min_iou)
        edges = self.size_bands_mm
        if not edges or min(edges) <= 0 or any(b <= a for a, b in zip(edges, edges[1:])):
            raise ConfigError(f"lesions.size_bands_mm must be positive and increasing, got {list(edges)}")
        cuts = self.froc_thresholds
        if not cuts or any(b <= a for a, b in zip(cuts, cuts[1:])) or not 0 < cuts[0] <= cuts[-1] <= 1:
            raise ConfigError(f"lesions.froc_thresholds must be increasing within (0, 1], got {list(cuts)}")


@dataclass(frozen=True)
class CalibrationConfig:
    image_bins: int                     # quantile bins of the image-level reliability diagram (test images)
    patient_bins: int                   # quantile bins of the survival reliability diagram (complete cases)
    thresholds: tuple[float, float]     # decision curve: threshold probabilities from, to
    threshold_step: float
    net_benefit_at: tuple[float, ...]   # thresholds whose net benefit metrics/calibration.json holds

    def __post_init__(self) -> None:
        for key in ("image_bins", "patient_bins"):
            if getattr(self, key) < 2:
                raise ConfigError(f"calibration.{key} must be >= 2, got {getattr(self, key)}")
        low, high = self.thresholds
        if not 0 < low < high < 1:
            raise ConfigError(f"calibration.thresholds must be [low, high], 0 < low < high < 1, got {[low, high]}")
        _positive("calibration.threshold_step", self.threshold_step)
        if not all(0 < t < 1 for t in self.net_benefit_at):
            raise ConfigError(f"calibration.net_benefit_at must lie in (0, 1), got {list(self.net_benefit_at)}")


@dataclass(frozen=True)
class ExplainConfig:
    pointing_tolerance_px: int          # pointing game: the CAM's peak counts within this many px of the tumour

    def __post_init__(self) -> None:
        if self.pointing_tolerance_px < 0:
            raise ConfigError(f"explain.pointing_tolerance_px must be >= 0, got {self.pointing_tolerance_px}")
