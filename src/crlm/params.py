"""The whole of params.yaml, every section checked: what the validate stage runs before any other stage,
and what `crlm` and the tests read. A stage reads only its own sections (crlm.core.config.cli_params).

Each section's dataclass lives beside the code that uses it; this module gathers them, and checks what
spans sections: every arch of the registry (crlm.archs) has its model.<arch> section, valid, and takes
the prepared image size; split.external names a source of data.sources, or a site of a phantom that has two.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crlm.archs import ARCH_NAMES, ARCHS
from crlm.calibration.config import CalibrationConfig
from crlm.core.config import ConfigError, build, read_params_file
from crlm.data.config import DataConfig, PhantomConfig, PrepareConfig, QCConfig, SlicesConfig
from crlm.data.phantom import SITE_A, SITE_B
from crlm.data.split_making import NO_EXTERNAL, SplitConfig
from crlm.data.transforms import AugmentConfig
from crlm.embedding.config import EmbedConfig
from crlm.evaluation.config import EvaluateConfig
from crlm.explain.config import ExplainConfig
from crlm.lesions.config import LesionsConfig
from crlm.models.config import ModelConfig
from crlm.models.crf import CRFConfig
from crlm.models.registry import arch_config
from crlm.stats.config import StatsConfig
from crlm.survival.config import SurvivalConfig
from crlm.training.config import TrainConfig


@dataclass(frozen=True)
class Params:
    data: DataConfig
    phantom: PhantomConfig
    slices: SlicesConfig
    qc: QCConfig
    prepare: PrepareConfig
    split: SplitConfig
    augment: AugmentConfig
    model: ModelConfig
    train: TrainConfig
    crf: CRFConfig
    evaluate: EvaluateConfig
    stats: StatsConfig
    embed: EmbedConfig
    survival: SurvivalConfig
    calibration: CalibrationConfig
    lesions: LesionsConfig
    explain: ExplainConfig


def params_from_dict(raw: dict[str, Any], source: str = "params") -> Params:
    params = build(Params, raw, prefix="", source=source)
    check_archs(params, source)
    check_external(params, source)
    return params


def load_params(path: str | Path = "params.yaml") -> Params:
    return params_from_dict(read_params_file(path), source=str(path))


def check_external(params: Params, source: str) -> None:
    """split.external: `none`, a source that data.sources lists, or site:<A|B> of a phantom in data.sources
    with a second site (phantom.site_b.share > 0)."""
    external, sources = params.split.external, params.data.sources
    valid = (
        f"valid: none, {', '.join(sources)}, or site:{SITE_A} / site:{SITE_B} of a phantom with "
        "phantom.site_b.share > 0"
    )
    if params.split.site is not None:
        if params.split.site not in (SITE_A, SITE_B):
            raise ConfigError(f"{source}: split.external {external!r}: no such phantom site; {valid}")
        if "phantom" not in sources or params.phantom.site_b.share == 0:
            raise ConfigError(
                f"{source}: split.external {external!r} is a phantom site: it needs phantom in data.sources "
                f"(now {list(sources)}) and phantom.site_b.share > 0 (now {params.phantom.site_b.share:g})"
            )
    elif external != NO_EXTERNAL and external not in sources:
        raise ConfigError(f"{source}: split.external {external!r} is not in data.sources {list(sources)}; {valid}")


def check_archs(params: Params, source: str) -> None:
    """model.arch names a registered arch; model.<arch> of each is there and valid, and no other; the
    prepared images are large enough for every arch (every arch is trained)."""
    model = params.model
    if model.arch not in ARCH_NAMES:
        raise ConfigError(f"{source}: model.arch: unknown architecture {model.arch!r}; valid: {list(ARCH_NAMES)}")
    unknown = sorted(set(model.sections) - set(ARCH_NAMES))
    if unknown:
        raise ConfigError(
            f"{source}: unknown key(s) {['model.' + name for name in unknown]} (no such arch in "
            f"crlm.archs; valid: {list(ARCH_NAMES)})"
        )
    for name in ARCH_NAMES:
        arch_config(model, name, source)
    smallest = max(ARCHS.values(), key=lambda arch: arch.min_image_size)
    if params.prepare.image_size < smallest.min_image_size:
        raise ConfigError(
            f"prepare.image_size must be at least {smallest.min_image_size} (the smallest image "
            f"{smallest.title}'s network takes), got {params.prepare.image_size}"
        )
