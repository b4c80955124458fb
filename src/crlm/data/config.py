"""params.yaml's sections of the data stages: data (the sources), phantom, slices, qc and prepare.

(split's section lives in crlm.data.split_making, its folds alone in crlm.data.splits, and augment's in
crlm.data.transforms, beside their code: the train stage reads split.folds and augment and none of these.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal, get_args

from crlm.core.config import ConfigError, ordered_pair, positive, unit_interval

# The choices of each option, validated once when params.yaml is read; each consumer owns the table that
# implements them (crlm.core.options.look_up) and tests/core/test_options.py ties the two.
SourceName = Literal["phantom", "tcia", "lits"]  # crlm.data.sources.SOURCES
Crop = Literal["none", "liver"]  # crlm.data.prepare.CROPS


@dataclass(frozen=True)
class TciaConfig:
    max_patients: int  # 0 = all 197
    include_ai_segmentations: bool  # also fetch the AIMI AI annotations (analysis results)
    clinical: str  # "idc" (idc-index's clinical index, network) or a CSV/XLSX path

    def __post_init__(self) -> None:
        if self.max_patients < 0:
            raise ConfigError(f"data.tcia.max_patients must be >= 0 (0 = all), got {self.max_patients}")


@dataclass(frozen=True)
class LitsConfig:
    datasets: tuple[str, ...]  # Kaggle dataset slugs, fetched in turn
    max_volumes: int  # 0 = all

    def __post_init__(self) -> None:
        if self.max_volumes < 0:
            raise ConfigError(f"data.lits.max_volumes must be >= 0 (0 = all), got {self.max_volumes}")


@dataclass(frozen=True)
class DataConfig:
    SECTION: ClassVar[str] = "data"
    sources: tuple[SourceName, ...]
    tcia: TciaConfig
    lits: LitsConfig

    def __post_init__(self) -> None:
        if not self.sources:
            raise ConfigError(f"data.sources is empty; name at least one of {list(get_args(SourceName))}")


@dataclass(frozen=True)
class SiteConfig:
    """phantom.site_b: a second scanner site. Its patients are site "B", the others site "A", scanned with the
    phantom's own settings; share 0 = one site (no site is recorded)."""

    share: float  # fraction of the patients scanned at site B
    noise_hu: float  # image noise SD in HU (site A's: 8 + 22 x phantom.difficulty)
    liver_hu_shift: float  # added to the liver parenchyma's HU (another contrast phase)
    slice_thickness_mm: float  # the same body: n_slices x slice_thickness_mm of site A, in slices of this
    pixel_spacing_mm: float  # the same field of view: matrix x pixel_spacing_mm of site A, in pixels of this

    def __post_init__(self) -> None:
        if not 0.0 <= self.share < 1.0:
            raise ConfigError(f"phantom.site_b.share must be in [0, 1) (0 = one site), got {self.share}")
        if self.noise_hu < 0:
            raise ConfigError(f"phantom.site_b.noise_hu must be >= 0, got {self.noise_hu}")
        positive("phantom.site_b.slice_thickness_mm", self.slice_thickness_mm)
        positive("phantom.site_b.pixel_spacing_mm", self.pixel_spacing_mm)


@dataclass(frozen=True)
class PhantomConfig:
    SECTION: ClassVar[str] = "phantom"
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
    site_b: SiteConfig

    def __post_init__(self) -> None:
        positive("phantom.n_patients", self.n_patients)
        if self.n_slices < 4:
            raise ConfigError(f"phantom.n_slices must be >= 4, got {self.n_slices}")
        if self.matrix < 32:
            raise ConfigError(f"phantom.matrix must be >= 32, got {self.matrix}")
        for name in ("lesion_free_fraction", "difficulty", "missing_rate", "defect_rate"):
            unit_interval(f"phantom.{name}", getattr(self, name))
        ordered_pair("phantom.lesion_diameter_mm", self.lesion_diameter_mm)
        ordered_pair("phantom.follow_up_months", self.follow_up_months)
        site_b = round(self.site_b.share * self.n_patients)
        if self.site_b.share > 0 and not 0 < site_b < self.n_patients:
            raise ConfigError(
                f"phantom.site_b.share {self.site_b.share} of phantom.n_patients {self.n_patients} gives {site_b} "
                "site B patients; give each site at least one"
            )
        if self.site_b.share > 0 and round(self.matrix * self.pixel_spacing_mm / self.site_b.pixel_spacing_mm) < 32:
            raise ConfigError(
                f"phantom.site_b.pixel_spacing_mm {self.site_b.pixel_spacing_mm} gives site B fewer than 32 pixels "
                f"across the field of view of {self.matrix * self.pixel_spacing_mm:g} mm"
            )
        if (
            self.site_b.share > 0
            and round(self.n_slices * self.slice_thickness_mm / self.site_b.slice_thickness_mm) < 4
        ):
            raise ConfigError(
                f"phantom.site_b.slice_thickness_mm {self.site_b.slice_thickness_mm} gives site B fewer than 4 "
                f"slices over the {self.n_slices * self.slice_thickness_mm:g} mm that phantom.n_slices covers"
            )


@dataclass(frozen=True)
class SlicesConfig:
    SECTION: ClassVar[str] = "slices"
    min_tumor_px: int

    def __post_init__(self) -> None:
        positive("slices.min_tumor_px", self.min_tumor_px)  # 0 would label every slice metastasis


@dataclass(frozen=True)
class QCConfig:
    SECTION: ClassVar[str] = "qc"
    min_matrix_px: int
    max_pixel_spacing_mm: float
    min_std_hu: float
    saturation_hu: float
    max_saturated_fraction: float
    min_liver_px: int
    min_liver_slices: int


@dataclass(frozen=True)
class PrepareConfig:
    SECTION: ClassVar[str] = "prepare"
    image_size: int  # prepared image side in px (at least every arch's smallest: crlm.params)
    window_center_hu: float
    window_width_hu: float
    crop: Crop
    crop_margin: float

    def __post_init__(self) -> None:
        positive("prepare.image_size", self.image_size)
        unit_interval("prepare.crop_margin", self.crop_margin)
        positive("prepare.window_width_hu", self.window_width_hu)
