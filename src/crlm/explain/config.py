"""params.yaml's `explain` section."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from crlm.core.config import ConfigError


@dataclass(frozen=True)
class ExplainConfig:
    SECTION: ClassVar[str] = "explain"
    pointing_tolerance_px: int  # pointing game: the CAM's peak counts within this many px of the tumour

    def __post_init__(self) -> None:
        if self.pointing_tolerance_px < 0:
            raise ConfigError(f"explain.pointing_tolerance_px must be >= 0, got {self.pointing_tolerance_px}")
