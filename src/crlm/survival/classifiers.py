"""Logistic regression and random forest on embedding features, chosen by patient-level CV.

The pipeline: PCA (keep a share of the variance) or a variance threshold ->
standardisation -> classifier. The classifier and its hyper-parameters are chosen
by an inner stratified CV inside each outer training fold (nested CV), so the
outer out-of-fold probabilities are not tuned on the patients they predict.
Rows are patients, so a stratified K-fold over rows is patient-grouped.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.base import clone
from sklearn.decomposition import PCA
from sklearn.ensemble import RandomForestClassifier
from sklearn.feature_selection import VarianceThreshold
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from crlm.config import SurvivalConfig


@dataclass(frozen=True)
class OutOfFold:
    prob: np.ndarray            # out-of-fold P(short-term) per row (NaN where undefined)
    chosen: list[str]           # the classifier chosen in each outer fold
    n_folds: int
    reason: str = ""            # why no probabilities could be made, else ""


def pipeline(cfg: SurvivalConfig) -> Pipeline:
    reduce = (PCA(n_components=cfg.pca_variance, svd_solver="full") if cfg.preprocessing == "pca"
              else VarianceThreshold(cfg.variance_threshold))
    return Pipeline([("reduce", reduce), ("scale", StandardScaler()), ("clf", LogisticRegression())])


def grid(cfg: SurvivalConfig) -> list[dict]:
    weight = None if cfg.class_weight == "none" else "balanced"
    out = []
    if "logistic" in cfg.classifiers:
        out.append({"clf": [LogisticRegression(class_weight=weight, max_iter=2000)], "clf__C": list(cfg.lr_c)})
    if "random_forest" in cfg.classifiers:
        out.append({"clf": [RandomForestClassifier(class_weight=weight, random_state=cfg.seed)],
                    "clf__n_estimators": list(cfg.rf_trees), "clf__max_depth": list(cfg.rf_depth)})
    return out


def fit_selected(x: np.ndarray, y: np.ndarray, cfg: SurvivalConfig, n_inner: int) -> GridSearchCV:
    """The best pipeline by inner-CV ROC AUC, refitted on all of (x, y)."""
    inner = StratifiedKFold(n_splits=n_inner, shuffle=True, random_state=cfg.seed)
    search = GridSearchCV(pipeline(cfg), grid(cfg), scoring="roc_auc", cv=inner, refit=True, n_jobs=None,
                          error_score="raise")
    return search.fit(x, y)


def out_of_fold(x: np.ndarray, y: np.ndarray, cfg: SurvivalConfig) -> OutOfFold:
    """Nested-CV out-of-fold probabilities; folds shrink to the minority class size, and with
    fewer than 2 patients of a class the result is undefined (NaN) with the reason."""
    y = np.asarray(y, dtype=int)
    minority = int(min((y == 1).sum(), (y == 0).sum()))
    n_outer = min(cfg.outer_folds, minority)
    if n_outer < 2:
        return OutOfFold(np.full(len(y), np.nan), [], 0,
                         reason=f"{int((y == 1).sum())} short- and {int((y == 0).sum())} long-term patients: "
                                "needs at least 2 of each")
    if cfg.preprocessing == "variance" and not (x.var(axis=0) >= cfg.variance_threshold).any():
        return OutOfFold(np.full(len(y), np.nan), [], 0,
                         reason=f"no embedding feature has variance >= survival.variance_threshold "
                                f"({cfg.variance_threshold}; the largest is {x.var(axis=0).max():.3g}): "
                                "lower it or use survival.preprocessing: pca")
    prob = np.full(len(y), np.nan)
    chosen = []
    outer = StratifiedKFold(n_splits=n_outer, shuffle=True, random_state=cfg.seed)
    try:
        for train, held_out in outer.split(x, y):
            model, description = fit_tuned(x[train], y[train], cfg)
            chosen.append(description)
            prob[held_out] = model.predict_proba(x[held_out])[:, 1]
    except ValueError as exc:   # e.g. a training fold where no feature passes the variance threshold
        return OutOfFold(np.full(len(y), np.nan), chosen, n_outer, reason=f"classifier failed: {exc}")
    return OutOfFold(prob, chosen, n_outer)


def fit_tuned(x: np.ndarray, y: np.ndarray, cfg: SurvivalConfig) -> tuple[Pipeline, str]:
    """The pipeline chosen by inner CV on (x, y), refitted on all of it, and its description."""
    n_inner = min(cfg.inner_folds, int(min((y == 1).sum(), (y == 0).sum())))
    if n_inner < 2:   # too few patients of a class to tune: the default pipeline
        return clone(pipeline(cfg)).fit(x, y), "logistic (untuned)"
    search = fit_selected(x, y, cfg, n_inner)
    return search.best_estimator_, describe(search.best_params_)


def describe(best_params: dict) -> str:
    clf = best_params["clf"]
    if isinstance(clf, LogisticRegression):
        return f"logistic C={best_params['clf__C']}"
    return f"random_forest trees={best_params['clf__n_estimators']} depth={best_params['clf__max_depth']}"
