"""compare: the candidate arch (model.arch) against each baseline.

Recognition: clustered (by patient) paired AUC tests on the image-level test predictions.
Survival: paired AUC tests of the risk scores on the binary task and paired bootstrap tests
of the C-index difference; each arch's risk-group log-rank p. Holm-adjusted p-values within
the family of 3 x (number of baselines) model comparisons and the family of log-rank tests.
Writes metrics/compare.json.
"""

from crlm.archs import ARCHS, CandidateConfig
from crlm.comparison import auc_between, c_index_between, intersection_union
from crlm.core.config import cli_params
from crlm.core.io import read_parquet, write_json
from crlm.core.logs import stage_logger, stage_main
from crlm.core.paths import METRICS, PREDICTIONS, SURVIVAL
from crlm.stats.config import StatsConfig
from crlm.stats.multiplicity import holm
from crlm.stats.survival import logrank
from crlm.survival.endpoint import DIED, MONTHS, RISK_SCORE

COMPARISONS = ("recognition_auc", "survival_auc", "survival_c_index")

log = stage_logger(__file__)


@stage_main
def main() -> None:
    params = cli_params(__doc__, CandidateConfig, StatsConfig)
    candidate = params.model.arch
    images = {a: read_parquet(PREDICTIONS / f"{a}.parquet").query("subset == 'test'") for a in ARCHS}
    patients = {a: read_parquet(SURVIVAL / f"{a}.parquet") for a in ARCHS}
    binary = {a: f.dropna(subset=["label", RISK_SCORE]) for a, f in patients.items()}
    baselines = [a for a in ARCHS if a != candidate]
    out = {
        "candidate": candidate,
        "recognition_auc": {a: auc_between(images, candidate, a, "image_id", "prob", params.stats) for a in baselines},
        "survival_auc": {
            a: auc_between(binary, candidate, a, "patient_id", RISK_SCORE, params.stats) for a in baselines
        },
        "survival_c_index": {a: c_index_between(patients[candidate], patients[a], params.stats) for a in baselines},
    }
    adjusted = holm({f"{family}.{a}": out[family][a]["p_value"] for family in COMPARISONS for a in baselines})
    for family in COMPARISONS:
        for arch in baselines:
            out[family][arch]["p_holm"] = adjusted[f"{family}.{arch}"]
    out["better_than_every_baseline"] = {family: intersection_union(out[family]) for family in COMPARISONS}
    out["logrank_p"] = {}
    for arch in ARCHS:
        grouped = patients[arch][patients[arch]["risk_group"] != ""]
        out["logrank_p"][arch] = logrank(grouped[MONTHS], grouped[DIED], grouped["risk_group"]).to_dict()["p_value"]
    out["logrank_p_holm"] = holm(out["logrank_p"])
    write_json(METRICS / "compare.json", out)
    for arch in baselines:
        rec, surv, c = (out[f][arch] for f in COMPARISONS)
        log.info(
            f"{candidate} vs {arch}: recognition AUC diff {rec['diff']} (p {rec['p_value']}, "
            f"Holm {rec['p_holm']}), survival AUC diff {surv['diff']} (p {surv['p_value']}), "
            f"C-index diff {c['diff']} (p {c['p_value']})"
        )


if __name__ == "__main__":
    main()
