"""params.yaml's `model` section: the keys every arch shares. Torch-free.

Each arch's own section (model.<arch>) is its module's `Config`, beside its network (crlm/models/<arch>.py);
this section keeps those sub-sections as raw mappings (`sections`) and crlm.models.registry builds the one
an arch needs, so that a stage that builds one arch reads only that arch's code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from crlm.core.config import positive

Pretrained = Literal["none", "imagenet"]  # crlm.models.pretrained.PRETRAINED


@dataclass(frozen=True)
class NetworkConfig:
    """The keys every arch's network is built from (the train stage reads these, not model.arch)."""

    SECTION: ClassVar[str] = "model"
    OPEN_SUBSECTIONS: ClassVar[bool] = True
    PARTIAL: ClassVar[bool] = True
    width: float
    embedding_dim: int
    pretrained: Pretrained
    batch_norm: bool
    sections: dict[str, Any] = field(default_factory=dict, compare=False, kw_only=True)  # model.<arch>, raw

    def __post_init__(self) -> None:
        positive("model.width", self.width)
        positive("model.embedding_dim", self.embedding_dim)

    def shared_kwargs(self) -> dict[str, Any]:
        """The network arguments every arch takes, from this section."""
        return {
            "width": self.width,
            "embedding_dim": self.embedding_dim,
            "pretrained": self.pretrained,
            "batch_norm": self.batch_norm,
        }


@dataclass(frozen=True)
class ModelConfig(NetworkConfig):
    """The whole section."""

    PARTIAL: ClassVar[bool] = False
    arch: str  # the candidate arch that the report and the headline single out
