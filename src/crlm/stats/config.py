"""params.yaml's `stats` section: the bootstrap and the confidence level of every interval."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from crlm.core.config import open_unit_interval, positive


@dataclass(frozen=True)
class StatsConfig:
    SECTION: ClassVar[str] = "stats"
    seed: int
    n_boot: int
    ci_level: float

    def __post_init__(self) -> None:
        positive("stats.n_boot", self.n_boot)
        open_unit_interval("stats.ci_level", self.ci_level)
