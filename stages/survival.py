"""survival: each arch's per-fold patient embeddings -> short- vs long-term survival classifier,
cross-fitted over the CNN folds (crlm.survival.crossfit) -> risk score and risk groups ->
AUC (complete-case and IPCW), C-indices, Kaplan-Meier, log-rank, Cox with clinical covariates.

Writes data/survival/<arch>.parquet (one row per patient), metrics/survival.json and,
per arch, plots/survival/km_<arch>.png (with at-risk table) and km_<arch>.csv.
The archs run side by side (crlm.survival.run).
"""

from crlm.archs import ARCHS, CandidateConfig
from crlm.core.config import cli_params
from crlm.core.io import read_parquet, write_json, write_parquet
from crlm.core.logs import stage_logger, stage_main
from crlm.core.paths import CLINICAL, EMBEDDINGS, METRICS, PLOTS, SPLITS, SURVIVAL
from crlm.data.splits import Splits
from crlm.plots import km_csv, km_plot
from crlm.stats.config import StatsConfig
from crlm.survival.config import SurvivalConfig
from crlm.survival.run import at_risk_by_group, survival_metrics, survival_of_archs

OUT = PLOTS / "survival"
log = stage_logger(__file__)


@stage_main
def main() -> None:
    params = cli_params(__doc__, CandidateConfig, SurvivalConfig, StatsConfig)
    clinical = read_parquet(CLINICAL)  # vital_status checked against its codes in slices
    splits = Splits.read(SPLITS).to_dict()  # checked; crlm.survival takes the JSON form
    paths = {arch: EMBEDDINGS / f"{arch}.parquet" for arch in ARCHS}
    embeddings = {arch: (read_parquet(path), str(path)) for arch, path in paths.items()}
    results = survival_of_archs(embeddings, splits, clinical, params.survival, params.stats)

    times = list(params.survival.km_times_months)
    for arch, result in results.items():
        write_parquet(SURVIVAL / f"{arch}.parquet", result.patients)
        km_plot(
            OUT / f"km_{arch}.png",
            result.km,
            at_risk_by_group(result.patients, times),
            times,
            f"{arch}: upper vs lower half of the risk score",
            result.summary["logrank"]["p_value"],
        )
        km_csv(OUT / f"km_{arch}.csv", result.km)  # for `dvc plots show/diff`
    metrics = survival_metrics({arch: result.summary for arch, result in results.items()}, params.model.arch)
    write_json(METRICS / "survival.json", metrics)
    for arch in results:
        s = metrics[arch]
        log.info(
            f"{arch}: AUC {s['auc']['value']}, log-rank p {s['logrank']['p_value']}, "
            f"groups {s['logrank']['n']}, {s['reason'] or 'ok'}"
        )


if __name__ == "__main__":
    main()
