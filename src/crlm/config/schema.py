"""params.yaml's schema: one frozen dataclass per section, each checking its own ranges.

Options with a fixed set of choices are `Literal` types, checked once when params.yaml is read
(crlm.config.loader); the `model` section has one sub-section per arch of the registry (crlm.archs).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal, get_args

from crlm.archs import ARCH_NAMES, ARCHS
from crlm.config.beyond import CalibrationConfig, ExplainConfig, LesionsConfig
from crlm.config.checks import ConfigError, _open_unit_interval, _ordered_pair, _positive, _unit_interval


# The choices of each option, validated once when params.yaml is read (_coerce). Each consumer owns the
# table that implements them (crlm.options.look_up); tests/test_options.py ties the two. Config cannot
# import the consumers: every stage imports config, and they load torch, sklearn and pydicom.
SourceName = Literal["phantom", "tcia", "lits"]              # crlm.data.sources.SOURCES
Crop = Literal["none", "liver"]                              # crlm.data.prepare.CROPS
Device = Literal["auto", "cpu", "cuda"]                      # crlm.training.device.DEVICES
Precision = Literal["auto", "fp32", "bf16"]                  # crlm.training.device.PRECISIONS
LRSchedule = Literal["constant", "onecycle"]                 # crlm.training.loop.LR_SCHEDULES
Aggregation = Literal["mean", "max"]                         # crlm.survival.embeddings.AGGREGATIONS
ClassifierName = Literal["logistic", "random_forest"]        # crlm.survival.classifiers.CLASSIFIERS
ClassWeight = Literal["balanced", "none"]                    # crlm.survival.classifiers.CLASS_WEIGHTS
Pretrained = Literal["none", "imagenet"]                     # crlm.models.pretrained.PRETRAINED


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
    sources: tuple[SourceName, ...]
    tcia: TciaConfig
    lits: LitsConfig

    def __post_init__(self) -> None:
        if not self.sources:
            raise ConfigError(f"data.sources is empty; name at least one of {list(get_args(SourceName))}")


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

    def __post_init__(self) -> None:
        _positive("slices.min_tumor_px", self.min_tumor_px)   # 0 would label every slice metastasis


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
    image_size: int                    # prepared image side in px
    window_center_hu: float
    window_width_hu: float
    crop: Crop
    crop_margin: float

    def __post_init__(self) -> None:
        _positive("prepare.image_size", self.image_size)
        smallest = max(ARCHS.values(), key=lambda arch: arch.min_image_size)   # every arch is trained
        if self.image_size < smallest.min_image_size:
            raise ConfigError(f"prepare.image_size must be at least {smallest.min_image_size} (the smallest image "
                              f"{smallest.title}'s network takes), got {self.image_size}")
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


def _check_model(self) -> None:
    if self.arch not in ARCH_NAMES:
        raise ConfigError(f"model.arch: unknown architecture {self.arch!r}; valid: {list(ARCH_NAMES)}")
    _positive("model.width", self.width)
    _positive("model.embedding_dim", self.embedding_dim)
    for name in ARCH_NAMES:
        channels = getattr(getattr(self, name), "decoder_channels", None)
        if channels is not None and len(channels) != 4:
            raise ConfigError(f"model.{name}.decoder_channels needs 4 values (strides 8, 4, 2, 1)")


# the keys every arch shares, then one section per arch of the registry (model.<name>, typed by its
# registry entry's config), so that adding an arch needs no edit here
ModelConfig = dataclasses.make_dataclass(
    "ModelConfig",
    [("arch", str), ("width", float), ("embedding_dim", int), ("pretrained", Pretrained), ("batch_norm", bool),
     *((arch.name, arch.config) for arch in ARCHS.values())],
    namespace={"__post_init__": _check_model, "__doc__": "The model section of params.yaml."},
    frozen=True)
ModelConfig.__module__ = __name__   # make_dataclass's `module` argument needs Python 3.12


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
    device: Device
    lr_schedule: LRSchedule
    precision: Precision
    val_every: int                     # validate every N epochs and at the last
    exclude_ambiguous: bool            # the training sample (sampling.py) leaves ambiguous slices out
    max_slices_per_patient: int
    balance: bool                      # undersample the training sample's majority class
    majority_per_minority: float
    workers: int                       # CPU cores the train stage may use, 0 = all

    def __post_init__(self) -> None:
        _positive("train.epochs", self.epochs)
        if self.workers < 0:
            raise ConfigError(f"train.workers must be >= 0 (0 = every CPU core), got {self.workers}")
        _positive("train.val_every", self.val_every)
        _positive("train.max_slices_per_patient", self.max_slices_per_patient)
        _positive("train.majority_per_minority", self.majority_per_minority)
        _positive("train.lr", self.lr)
        if self.batch_size < 2:
            raise ConfigError(f"train.batch_size must be >= 2 (batch norm), got {self.batch_size}")


@dataclass(frozen=True)
class CRFConfig:
    enabled: bool           # refine the masks of the archs whose registry entry has crf (crlm.archs)
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


@dataclass(frozen=True)
class EmbedConfig:
    aggregation: Aggregation
    batch_size: int

    def __post_init__(self) -> None:
        _positive("embed.batch_size", self.batch_size)


@dataclass(frozen=True)
class SurvivalConfig:
    seed: int
    horizon_months: float
    pca_variance: float
    classifiers: tuple[ClassifierName, ...]
    lr_c: tuple[float, ...]
    rf_trees: tuple[int, ...]
    rf_depth: tuple[int, ...]
    class_weight: ClassWeight
    inner_folds: int
    threshold: float
    covariates: tuple[str, ...]
    log_covariates: tuple[str, ...]
    min_events_per_covariate: float
    km_times_months: tuple[float, ...]

    def __post_init__(self) -> None:
        _positive("survival.horizon_months", self.horizon_months)
        _open_unit_interval("survival.pca_variance", self.pca_variance)
        if not self.classifiers:
            raise ConfigError("survival.classifiers is empty; name at least one of "
                              f"{list(get_args(ClassifierName))}")
        for key in ("lr_c", "rf_trees", "rf_depth"):
            values = getattr(self, key)
            if not values or min(values) <= 0:
                raise ConfigError(f"survival.{key} must list positive values, got {list(values)}")
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
    calibration: CalibrationConfig
    lesions: LesionsConfig
    explain: ExplainConfig
