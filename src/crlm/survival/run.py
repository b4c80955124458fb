"""Every arch's survival analysis, as the survival stage writes it: the archs side by side (one process per
core: each is a few seconds of sklearn), then metrics/survival.json with the candidate's headline keys."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
from joblib import Parallel, delayed

from crlm.embedding.table import fold_vectors
from crlm.headline import candidate_keys
from crlm.stats.config import StatsConfig
from crlm.stats.survival import at_risk
from crlm.survival.analysis import SurvivalAnalysis, analyse
from crlm.survival.config import SurvivalConfig
from crlm.survival.endpoint import MONTHS


def survival_of(
    embeddings: pd.DataFrame,
    source: str,
    splits: dict,
    clinical: pd.DataFrame,
    cfg: SurvivalConfig,
    stats_cfg: StatsConfig,
) -> SurvivalAnalysis:
    """One arch's analysis from its per-fold patient embeddings (data/embeddings/<arch>.parquet, read from
    `source`)."""
    return analyse(fold_vectors(embeddings, source=source), splits, clinical, cfg, stats_cfg)


def survival_of_archs(
    embeddings: dict[str, tuple[pd.DataFrame, str]],
    splits: dict,
    clinical: pd.DataFrame,
    cfg: SurvivalConfig,
    stats_cfg: StatsConfig,
) -> dict[str, SurvivalAnalysis]:
    """survival_of each arch (arch -> (embeddings, source)), min(archs, cores) at a time."""
    jobs = min(len(embeddings), os.cpu_count() or 1)
    results = Parallel(n_jobs=jobs)(
        delayed(survival_of)(frame, source, splits, clinical, cfg, stats_cfg) for frame, source in embeddings.values()
    )
    return dict(zip(embeddings, results))


def at_risk_by_group(patients: pd.DataFrame, times: list[float]) -> dict[str, np.ndarray]:
    """Risk group -> the number of its patients still under observation at each of `times` (the KM table)."""
    rows = patients[patients["risk_group"] != ""]
    return {group: at_risk(r[MONTHS].to_numpy(), times) for group, r in rows.groupby("risk_group")}


def survival_metrics(summaries: dict[str, dict], candidate: str) -> dict:
    """metrics/survival.json: the candidate, each arch's summary, then the candidate_* keys."""
    metrics = {"candidate": candidate, **summaries}
    metrics.update(candidate_keys("survival", metrics, candidate))
    return metrics
