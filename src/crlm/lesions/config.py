"""params.yaml's `lesions` section."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from crlm.core.config import ConfigError, unit_interval


@dataclass(frozen=True)
class LesionsConfig:
    SECTION: ClassVar[str] = "lesions"
    min_iou: float  # detected at this IoU with the predicted pieces on it (0 = any overlap)
    size_bands_mm: tuple[float, ...]  # edges of the equivalent-diameter bands: <= e0, (e0, e1], ..., > e_last
    froc_thresholds: tuple[float, ...]  # probability cuts of the FROC curve, ascending

    def __post_init__(self) -> None:
        unit_interval("lesions.min_iou", self.min_iou)
        edges = self.size_bands_mm
        if not edges or min(edges) <= 0 or any(b <= a for a, b in zip(edges, edges[1:])):
            raise ConfigError(f"lesions.size_bands_mm must be positive and increasing, got {list(edges)}")
        cuts = self.froc_thresholds
        if not cuts or any(b <= a for a, b in zip(cuts, cuts[1:])) or not 0 < cuts[0] <= cuts[-1] <= 1:
            raise ConfigError(f"lesions.froc_thresholds must be increasing within (0, 1], got {list(cuts)}")
