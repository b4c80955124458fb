"""params.yaml's `embed` section."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from crlm.core.config import positive

Aggregation = Literal["mean", "max"]  # crlm.embedding.extract.AGGREGATIONS


@dataclass(frozen=True)
class EmbedConfig:
    SECTION: ClassVar[str] = "embed"
    aggregation: Aggregation
    batch_size: int

    def __post_init__(self) -> None:
        positive("embed.batch_size", self.batch_size)
