"""survival: each arch's per-fold patient embeddings -> short- vs long-term survival classifier,
cross-fitted over the CNN folds (crlm.survival.crossfit) -> risk score and risk groups ->
AUC (complete-case and IPCW), C-indices, Kaplan-Meier, log-rank, Cox with clinical covariates.

Writes data/survival/<arch>.parquet (one row per patient), metrics/survival.json,
per arch plots/survival/km_<arch>.png (with at-risk table) and km_<arch>.csv, and the fitted classifiers that
`crlm predict` applies to a new patient: data/survival_models/<arch>/ (crlm.survival.saved_models).
The archs run side by side (crlm.survival.run).
"""

from crlm.archs import ARCHS, CandidateConfig
from crlm.core.config import cli_params
from crlm.core.io import read_parquet, write_json, write_parquet
from crlm.core.logs import stage_logger, stage_main
from crlm.core.paths import CLINICAL, EMBEDDINGS, METRICS, MODELS, PLOTS, SPLITS, SURVIVAL
from crlm.data.splits import Splits
from crlm.models.folds import FoldModels
from crlm.plots import km_csv, km_plot
from crlm.stats.config import StatsConfig
from crlm.survival.config import SurvivalConfig
from crlm.survival.run import at_risk_by_group, survival_metrics, survival_of_archs
from crlm.survival.saved_models import MODELS_DIR, EmbedAggregationConfig, write_saved_models

OUT = PLOTS / "survival"
log = stage_logger(__file__)


@stage_main
def main() -> None:
    params = cli_params(__doc__, CandidateConfig, SurvivalConfig, StatsConfig, EmbedAggregationConfig)
    clinical = read_parquet(CLINICAL)  # vital_status checked against its codes in slices
    checked = Splits.read(SPLITS)
    splits = checked.to_dict()  # checked; crlm.survival takes the JSON form
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
        cnn = FoldModels.of(arch, checked.fold_names, MODELS)
        write_saved_models(
            MODELS_DIR / arch,
            arch,
            result,
            checked.fold_names,
            params.embed.aggregation,
            {fold: cnn.model_path(fold) for fold in checked.fold_names},
        )
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
