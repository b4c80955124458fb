"""Logistic regression and random forest on embedding features, tuned by patient-level inner CV.

The preprocessing is fixed a priori, not chosen on the results: drop constant features,
standardise (so that nothing depends on the embedding's scale), then PCA keeping
survival.pca_variance of the variance. The classifier family and its hyper-parameters
are chosen by a stratified inner CV on the training patients only (the outer level is
the cross-fitting over CNN folds, crlm.survival.crossfit). Rows are patients, so a
stratified K-fold over rows is patient-grouped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sklearn.decomposition import PCA
from sklearn.ensemble import RandomForestClassifier
from sklearn.feature_selection import VarianceThreshold
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from crlm.core.options import look_up
from crlm.survival.config import SurvivalConfig


def pipeline(cfg: SurvivalConfig) -> Pipeline:
    return Pipeline(
        [
            ("constant", VarianceThreshold(0.0)),
            ("scale", StandardScaler()),
            ("reduce", PCA(n_components=cfg.pca_variance, svd_solver="full")),
            ("clf", LogisticRegression()),
        ]
    )


@dataclass(frozen=True)
class Classifier:
    estimator: type  # the sklearn class (tells which one was chosen)
    grid: Callable[[SurvivalConfig, str | None], dict]  # (cfg, class_weight) -> its GridSearchCV entry
    describe: Callable[[dict], str]  # GridSearchCV's best_params_ -> one line


def logistic_grid(cfg: SurvivalConfig, weight: str | None) -> dict:
    return {"clf": [LogisticRegression(class_weight=weight, max_iter=2000)], "clf__C": list(cfg.lr_c)}


def logistic_text(best_params: dict) -> str:
    return f"logistic C={best_params['clf__C']}"


def forest_grid(cfg: SurvivalConfig, weight: str | None) -> dict:
    return {
        "clf": [RandomForestClassifier(class_weight=weight, random_state=cfg.seed)],
        "clf__n_estimators": list(cfg.rf_trees),
        "clf__max_depth": list(cfg.rf_depth),
    }


def forest_text(best_params: dict) -> str:
    return f"random_forest trees={best_params['clf__n_estimators']} depth={best_params['clf__max_depth']}"


# survival.classifiers -> each candidate family. The grid follows this order, not survival.classifiers':
# GridSearchCV keeps the first of tied candidates.
CLASSIFIERS = {
    "logistic": Classifier(estimator=LogisticRegression, grid=logistic_grid, describe=logistic_text),
    "random_forest": Classifier(estimator=RandomForestClassifier, grid=forest_grid, describe=forest_text),
}
# survival.class_weight -> sklearn's class_weight
CLASS_WEIGHTS = {"balanced": "balanced", "none": None}


def grid(cfg: SurvivalConfig) -> list[dict]:
    weight = look_up("survival.class_weight", cfg.class_weight, CLASS_WEIGHTS)
    for name in cfg.classifiers:
        look_up("survival.classifiers", name, CLASSIFIERS)  # an unknown name fails here, named
    return [CLASSIFIERS[name].grid(cfg, weight) for name in CLASSIFIERS if name in cfg.classifiers]


def fit_tuned(x: np.ndarray, y: np.ndarray, cfg: SurvivalConfig) -> tuple[Pipeline, str]:
    """The pipeline chosen by inner-CV ROC AUC on (x, y), refitted on all of it, and its description.

    Raises ValueError when a class has fewer than 2 patients or no feature varies."""
    y = np.asarray(y, dtype=int)
    n_short, n_long = int((y == 1).sum()), int((y == 0).sum())
    if min(n_short, n_long) < 2:
        raise ValueError(f"{n_short} short- and {n_long} long-term training patients: needs at least 2 of each")
    if not (np.ptp(x, axis=0) > 0).any():
        raise ValueError("every embedding feature is constant over the training patients (an untrained CNN?)")
    n_inner = min(cfg.inner_folds, n_short, n_long)
    inner = StratifiedKFold(n_splits=n_inner, shuffle=True, random_state=cfg.seed)
    search = GridSearchCV(pipeline(cfg), grid(cfg), scoring="roc_auc", cv=inner, refit=True, error_score="raise")
    search.fit(x, y)
    return search.best_estimator_, describe(search.best_params_)


def describe(best_params: dict) -> str:
    chosen = next(c for c in CLASSIFIERS.values() if isinstance(best_params["clf"], c.estimator))
    return chosen.describe(best_params)
