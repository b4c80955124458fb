"""params.yaml's `survival` section."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal, get_args

from crlm.core.config import ConfigError, open_unit_interval, positive, unit_interval

ClassifierName = Literal["logistic", "random_forest"]  # crlm.survival.classifiers.CLASSIFIERS
ClassWeight = Literal["balanced", "none"]  # crlm.survival.classifiers.CLASS_WEIGHTS


@dataclass(frozen=True)
class SurvivalConfig:
    SECTION: ClassVar[str] = "survival"
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
        positive("survival.horizon_months", self.horizon_months)
        open_unit_interval("survival.pca_variance", self.pca_variance)
        if not self.classifiers:
            raise ConfigError(f"survival.classifiers is empty; name at least one of {list(get_args(ClassifierName))}")
        for key in ("lr_c", "rf_trees", "rf_depth"):
            values = getattr(self, key)
            if not values or min(values) <= 0:
                raise ConfigError(f"survival.{key} must list positive values, got {list(values)}")
        if self.inner_folds < 2:
            raise ConfigError(f"survival.inner_folds must be >= 2, got {self.inner_folds}")
        positive("survival.min_events_per_covariate", self.min_events_per_covariate)
        unit_interval("survival.threshold", self.threshold)
