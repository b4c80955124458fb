"""survival: each arch's per-fold patient embeddings -> short- vs long-term survival classifier,
cross-fitted over the CNN folds (crlm.survival.crossfit) -> risk score and risk groups ->
AUC (complete-case and IPCW), C-indices, Kaplan-Meier, log-rank, Cox with clinical covariates.

Writes data/survival/<arch>.parquet (one row per patient), metrics/survival.json and,
per arch, plots/survival/km_<arch>.png (with at-risk table) and km_<arch>.csv.
The archs run side by side (one process per core): each is a few seconds of sklearn.
"""

import os

import numpy as np
import pandas as pd
from joblib import Parallel, delayed

from crlm.config import Params, cli_params
from crlm.io import read_json, read_parquet, write_json, write_parquet
from crlm.models.registry import ARCHS
from crlm.paths import CLINICAL, EMBEDDINGS, METRICS, PLOTS, SPLITS, SURVIVAL
from crlm.plots import km_plot
from crlm.survival.analysis import MONTHS, analyse
from crlm.survival.embeddings import fold_vectors

OUT = PLOTS / "survival"


def run_arch(arch: str, params: Params, splits: dict, clinical: pd.DataFrame) -> dict:
    path = EMBEDDINGS / f"{arch}.parquet"
    vectors = fold_vectors(read_parquet(path), source=str(path))
    result = analyse(vectors, splits, clinical, params.survival, params.stats)
    write_parquet(SURVIVAL / f"{arch}.parquet", result.patients)
    rows = result.patients[result.patients["risk_group"] != ""]
    durations = {g: r[MONTHS].to_numpy() for g, r in rows.groupby("risk_group")}
    km_plot(OUT / f"km_{arch}.png", result.km, durations, list(params.survival.km_times_months),
            f"{arch}: risk groups at p >= {params.survival.threshold}", result.summary["logrank"]["p_value"])
    _km_csv(arch, result.km)
    return result.summary


def _km_csv(arch: str, km: dict) -> None:
    """Both groups' curves on one time grid, for `dvc plots show/diff`."""
    times = np.unique(np.concatenate([k.timeline for k in km.values()])) if km else np.zeros(0)
    frame = pd.DataFrame({"months": times.round(4)})
    for group in ("high", "low"):
        frame[f"survival_{group}"] = km[group].at(times).round(6) if group in km else np.nan
    OUT.mkdir(parents=True, exist_ok=True)
    frame.to_csv(OUT / f"km_{arch}.csv", index=False)


def main() -> None:
    params = cli_params(__doc__)
    clinical = read_parquet(CLINICAL)   # vital_status checked against its codes in slices
    splits = read_json(SPLITS)
    jobs = min(len(ARCHS), os.cpu_count() or 1)
    summaries = Parallel(n_jobs=jobs)(delayed(run_arch)(arch, params, splits, clinical) for arch in ARCHS)
    metrics = {"candidate": params.model.arch, **dict(zip(ARCHS, summaries))}
    metrics["candidate_auc"] = metrics[params.model.arch]["auc"]["value"]
    metrics["candidate_logrank_p"] = metrics[params.model.arch]["logrank"]["p_value"]
    write_json(METRICS / "survival.json", metrics)
    for arch in ARCHS:
        s = metrics[arch]
        print(f"survival {arch}: AUC {s['auc']['value']}, log-rank p {s['logrank']['p_value']}, "
              f"groups {s['logrank']['n']}, {s['reason'] or 'ok'}")


if __name__ == "__main__":
    main()
