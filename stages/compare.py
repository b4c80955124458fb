"""compare: the candidate arch (model.arch) against each baseline.

DeLong tests on the paired image-level test predictions and on the paired patient-level
survival probabilities; each arch's risk-group log-rank p; a log-rank test on the patients
where the candidate and a baseline disagree. Writes metrics/compare.json.
"""

from crlm.config import cli_params
from crlm.comparison import delong_between, discordant_logrank
from crlm.io import read_parquet, write_json
from crlm.models.registry import ARCHS
from crlm.paths import METRICS, PREDICTIONS, SURVIVAL
from crlm.stats.survival import logrank
from crlm.survival.analysis import DIED, MONTHS


def main() -> None:
    params = cli_params(__doc__)
    candidate = params.model.arch
    images = {a: read_parquet(PREDICTIONS / f"{a}.parquet").query("subset == 'test'") for a in ARCHS}
    patients = {a: read_parquet(SURVIVAL / f"{a}.parquet") for a in ARCHS}
    binary = {a: f.dropna(subset=["label", "prob"]) for a, f in patients.items()}
    out = {"candidate": candidate, "recognition_delong": {}, "survival_delong": {}, "discordant_logrank": {},
           "logrank_p": {}}
    for arch in ARCHS:
        grouped = patients[arch][patients[arch]["risk_group"] != ""]
        out["logrank_p"][arch] = logrank(grouped[MONTHS], grouped[DIED], grouped["risk_group"]).as_dict()["p_value"]
        if arch == candidate:
            continue
        out["recognition_delong"][arch] = delong_between(images, candidate, arch, "image_id", params.stats)
        out["survival_delong"][arch] = delong_between(binary, candidate, arch, "patient_id", params.stats)
        out["discordant_logrank"][arch] = discordant_logrank(patients[candidate], patients[arch])
    write_json(METRICS / "compare.json", out)
    for arch in out["recognition_delong"]:
        rec, surv = out["recognition_delong"][arch], out["survival_delong"][arch]
        print(f"compare {candidate} vs {arch}: recognition AUC diff {rec['diff']} (DeLong p {rec['p_value']}), "
              f"survival AUC diff {surv['diff']} (p {surv['p_value']})")


if __name__ == "__main__":
    main()
