"""The one reader of params.yaml: typed, frozen, validated config objects.

Each section of params.yaml maps to one dataclass below. Unknown or missing
keys raise an error that names the key, so a typo in `dvc exp run -S ...`
fails loudly instead of being ignored.
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_type_hints

import yaml

KNOWN_SOURCES = ("phantom", "tcia", "lits")
ARCH_NAMES = ("vgg16", "deeplabv3", "unet", "clmnet")
PRETRAINED = ("none", "imagenet")
LR_SCHEDULES = ("constant", "onecycle")
PRECISIONS = ("auto", "fp32", "bf16")
DEVICES = ("auto", "cpu", "cuda")


class ConfigError(ValueError):
    """A params.yaml value is missing, unknown or out of range."""


@dataclass(frozen=True)
class TciaConfig:
    max_patients: int                  # 0 = all 197
    include_ai_segmentations: bool     # also fetch the AIMI AI annotations (analysis results)
    clinical: str                      # "idc" (idc-index's clinical index, network) or a CSV/XLSX path

    def __post_init__(self) -> None:
        if self.max_patients < 0:
            raise ConfigError(f"data.tcia.max_patients must be >= 0 (0 = all), got {self.max_patients}")


@dataclass(frozen=True)
class LitsConfig:
    datasets: tuple[str, ...]          # Kaggle dataset slugs, fetched in turn
    max_volumes: int                   # 0 = all

    def __post_init__(self) -> None:
        if self.max_volumes < 0:
            raise ConfigError(f"data.lits.max_volumes must be >= 0 (0 = all), got {self.max_volumes}")


@dataclass(frozen=True)
class DataConfig:
    sources: tuple[str, ...]
    image_size: int
    tcia: TciaConfig
    lits: LitsConfig

    def __post_init__(self) -> None:
        unknown = [s for s in self.sources if s not in KNOWN_SOURCES]
        if unknown:
            raise ConfigError(f"data.sources: unknown source(s) {unknown}; valid: {list(KNOWN_SOURCES)}")
        if not self.sources:
            raise ConfigError("data.sources is empty; name at least one of " f"{list(KNOWN_SOURCES)}")
        _positive("data.image_size", self.image_size)


@dataclass(frozen=True)
class PhantomConfig:
    seed: int
    n_patients: int
    n_slices: int
    matrix: int
    pixel_spacing_mm: float
    slice_thickness_mm: float
    lesion_free_fraction: float
    max_lesions: int
    lesion_diameter_mm: tuple[float, float]
    cyst_rate: float
    difficulty: float
    survival_effect: float
    median_survival_months: float
    follow_up_months: tuple[float, float]
    missing_rate: float
    defect_rate: float

    def __post_init__(self) -> None:
        _positive("phantom.n_patients", self.n_patients)
        if self.n_slices < 4:
            raise ConfigError(f"phantom.n_slices must be >= 4, got {self.n_slices}")
        if self.matrix < 32:
            raise ConfigError(f"phantom.matrix must be >= 32, got {self.matrix}")
        for name in ("lesion_free_fraction", "difficulty", "missing_rate", "defect_rate"):
            _unit_interval(f"phantom.{name}", getattr(self, name))
        _ordered_pair("phantom.lesion_diameter_mm", self.lesion_diameter_mm)
        _ordered_pair("phantom.follow_up_months", self.follow_up_months)


@dataclass(frozen=True)
class SlicesConfig:
    min_tumor_px: int


@dataclass(frozen=True)
class QCConfig:
    min_matrix_px: int
    max_pixel_spacing_mm: float
    min_std_hu: float
    saturation_hu: float
    max_saturated_fraction: float
    min_liver_px: int
    min_liver_slices: int


@dataclass(frozen=True)
class PrepareConfig:
    window_center_hu: float
    window_width_hu: float
    crop: str
    crop_margin: float

    def __post_init__(self) -> None:
        if self.crop not in ("none", "liver"):
            raise ConfigError(f"prepare.crop must be 'none' or 'liver', got {self.crop!r}")
        _unit_interval("prepare.crop_margin", self.crop_margin)
        _positive("prepare.window_width_hu", self.window_width_hu)


@dataclass(frozen=True)
class SplitConfig:
    seed: int
    test_fraction: float
    folds: int

    def __post_init__(self) -> None:
        _open_unit_interval("split.test_fraction", self.test_fraction)
        if self.folds < 2:
            raise ConfigError(f"split.folds must be >= 2, got {self.folds}")


@dataclass(frozen=True)
class AugmentConfig:
    seed: int
    rotation_deg: float
    hflip_p: float
    crop_scale: tuple[float, float]
    scale: tuple[float, float]
    elastic_alpha: float
    elastic_sigma: float
    elastic_p: float
    preview_images: int

    def __post_init__(self) -> None:
        _unit_interval("augment.hflip_p", self.hflip_p)
        _unit_interval("augment.elastic_p", self.elastic_p)
        _ordered_pair("augment.crop_scale", self.crop_scale)
        _ordered_pair("augment.scale", self.scale)


@dataclass(frozen=True)
class VGG16Config:
    dropout: float


@dataclass(frozen=True)
class DeepLabV3Config:
    dropout: float
    atrous_rates: tuple[int, ...]


@dataclass(frozen=True)
class UNetConfig:
    dropout: float
    decoder_channels: tuple[int, ...]


@dataclass(frozen=True)
class CLMNetConfig:
    dropout: float
    atrous_rates: tuple[int, ...]
    decoder_channels: tuple[int, ...]
    se: bool
    se_reduction: int
    aspp_branch: bool
    unet_branch: bool


@dataclass(frozen=True)
class ModelConfig:
    arch: str
    width: float
    embedding_dim: int
    pretrained: str
    batch_norm: bool
    vgg16: VGG16Config
    deeplabv3: DeepLabV3Config
    unet: UNetConfig
    clmnet: CLMNetConfig

    def __post_init__(self) -> None:
        if self.arch not in ARCH_NAMES:
            raise ConfigError(f"model.arch: unknown architecture {self.arch!r}; valid: {list(ARCH_NAMES)}")
        if self.pretrained not in PRETRAINED:
            raise ConfigError(f"model.pretrained must be one of {list(PRETRAINED)}, got {self.pretrained!r}")
        _positive("model.width", self.width)
        _positive("model.embedding_dim", self.embedding_dim)
        for name in ("unet", "clmnet"):
            if len(getattr(self, name).decoder_channels) != 4:
                raise ConfigError(f"model.{name}.decoder_channels needs 4 values (strides 8, 4, 2, 1)")


@dataclass(frozen=True)
class TrainConfig:
    seed: int
    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    cls_loss_weight: float
    seg_loss_weight: float
    seg_pos_weight: float
    augment: bool
    device: str
    lr_schedule: str
    precision: str
    val_every: int                     # validate every N epochs and at the last
    exclude_ambiguous: bool            # the training sample (sampling.py) leaves ambiguous slices out
    max_slices_per_patient: int
    balance: bool                      # undersample the training sample's majority class
    majority_per_minority: float

    def __post_init__(self) -> None:
        _positive("train.epochs", self.epochs)
        _positive("train.val_every", self.val_every)
        _positive("train.max_slices_per_patient", self.max_slices_per_patient)
        _positive("train.majority_per_minority", self.majority_per_minority)
        if self.precision not in PRECISIONS:
            raise ConfigError(f"train.precision must be one of {list(PRECISIONS)}, got {self.precision!r}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ConfigError(f"train.lr_schedule must be one of {list(LR_SCHEDULES)}, got {self.lr_schedule!r}")
        _positive("train.lr", self.lr)
        if self.batch_size < 2:
            raise ConfigError(f"train.batch_size must be >= 2 (batch norm), got {self.batch_size}")
        if self.device not in DEVICES:
            raise ConfigError(f"train.device must be one of {list(DEVICES)}, got {self.device!r}")


@dataclass(frozen=True)
class CRFConfig:
    enabled: bool           # refine the masks of the archs the registry marks CRF_REFINED
    iterations: int
    gaussian_sxy: float
    gaussian_compat: float
    bilateral_sxy: float
    bilateral_srgb: float
    bilateral_compat: float


@dataclass(frozen=True)
class EvaluateConfig:
    threshold: float
    overlay_images: int

    def __post_init__(self) -> None:
        _unit_interval("evaluate.threshold", self.threshold)


@dataclass(frozen=True)
class StatsConfig:
    seed: int
    n_boot: int
    ci_level: float

    def __post_init__(self) -> None:
        _positive("stats.n_boot", self.n_boot)
        _open_unit_interval("stats.ci_level", self.ci_level)


AGGREGATIONS = ("mean", "max")
CLASSIFIERS = ("logistic", "random_forest")


@dataclass(frozen=True)
class EmbedConfig:
    aggregation: str
    batch_size: int

    def __post_init__(self) -> None:
        if self.aggregation not in AGGREGATIONS:
            raise ConfigError(f"embed.aggregation must be one of {list(AGGREGATIONS)}, got {self.aggregation!r}")
        _positive("embed.batch_size", self.batch_size)


@dataclass(frozen=True)
class SurvivalConfig:
    seed: int
    horizon_months: float
    pca_variance: float
    classifiers: tuple[str, ...]
    lr_c: tuple[float, ...]
    rf_trees: tuple[int, ...]
    rf_depth: tuple[int, ...]
    class_weight: str
    inner_folds: int
    threshold: float
    covariates: tuple[str, ...]
    log_covariates: tuple[str, ...]
    min_events_per_covariate: float
    km_times_months: tuple[float, ...]

    def __post_init__(self) -> None:
        _positive("survival.horizon_months", self.horizon_months)
        _open_unit_interval("survival.pca_variance", self.pca_variance)
        unknown = [c for c in self.classifiers if c not in CLASSIFIERS]
        if unknown or not self.classifiers:
            raise ConfigError(f"survival.classifiers: unknown or empty {list(self.classifiers)}; "
                              f"valid: {list(CLASSIFIERS)}")
        for key in ("lr_c", "rf_trees", "rf_depth"):
            values = getattr(self, key)
            if not values or min(values) <= 0:
                raise ConfigError(f"survival.{key} must list positive values, got {list(values)}")
        if self.class_weight not in ("balanced", "none"):
            raise ConfigError(f"survival.class_weight must be 'balanced' or 'none', got {self.class_weight!r}")
        if self.inner_folds < 2:
            raise ConfigError(f"survival.inner_folds must be >= 2, got {self.inner_folds}")
        _positive("survival.min_events_per_covariate", self.min_events_per_covariate)
        _unit_interval("survival.threshold", self.threshold)


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


def load_params(path: str | Path = "params.yaml") -> Params:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: params file not found")
    raw = yaml.safe_load(path.read_text()) or {}
    return params_from_dict(raw, source=str(path))


def cli_params(description: str, argv: list[str] | None = None) -> Params:
    """The params of a stage script: `--params PATH` (default params.yaml)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    return load_params(parser.parse_args(argv).params)


def params_from_dict(raw: dict[str, Any], source: str = "params") -> Params:
    return _build(Params, raw, prefix="", source=source)


def model_config_from_dict(raw: dict[str, Any], source: str) -> ModelConfig:
    """A `model` section saved with a trained model, validated like params.yaml's."""
    return _build(ModelConfig, raw, prefix="model.", source=source)


def _build(cls: type, raw: Any, prefix: str, source: str) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: '{prefix.rstrip('.') or 'top level'}' must be a mapping")
    hints = get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(raw) - set(names))
    if unknown:
        raise ConfigError(f"{source}: unknown key(s) {[prefix + k for k in unknown]}")
    missing = [prefix + n for n in names if n not in raw]
    if missing:
        raise ConfigError(f"{source}: missing key(s) {missing}")
    values = {}
    for name in names:
        hint = hints[name]
        key = prefix + name
        if dataclasses.is_dataclass(hint):
            values[name] = _build(hint, raw[name], prefix=key + ".", source=source)
        else:
            values[name] = _coerce(raw[name], hint, key, source)
    return cls(**values)


def _coerce(value: Any, hint: Any, key: str, source: str) -> Any:
    origin = getattr(hint, "__origin__", None)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{source}: {key} must be a list, got {value!r}")
        args = hint.__args__
        item_type = args[0]
        if len(args) == 2 and args[1] is not Ellipsis and len(value) != 2:
            raise ConfigError(f"{source}: {key} must have two values, got {value!r}")
        return tuple(_coerce(v, item_type, key, source) for v in value)
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{source}: {key} must be true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{source}: {key} must be an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{source}: {key} must be a number, got {value!r}")
        return float(value)
    if hint is str:
        return str(value)
    raise ConfigError(f"{source}: {key}: unsupported type {hint}")  # pragma: no cover


def _positive(key: str, value: float) -> None:
    if value <= 0:
        raise ConfigError(f"{key} must be > 0, got {value}")


def _unit_interval(key: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"{key} must be in [0, 1], got {value}")


def _open_unit_interval(key: str, value: float) -> None:
    if not 0.0 < value < 1.0:
        raise ConfigError(f"{key} must be in (0, 1), got {value}")


def _ordered_pair(key: str, pair: tuple[float, float]) -> None:
    if pair[0] > pair[1]:
        raise ConfigError(f"{key} must be [low, high], got {list(pair)}")
