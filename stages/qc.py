"""qc: rule-based exclusions with one reason per slice; counts in metrics/qc.json."""

from crlm.core.config import cli_params
from crlm.core.io import read_parquet, write_json, write_parquet
from crlm.core.logs import stage_logger, stage_main
from crlm.core.paths import CLINICAL, METRICS, QC, SLICES, SLICES_DIR
from crlm.data.config import QCConfig
from crlm.data.pool import WorkersConfig, cpu_budget
from crlm.data.qc import qc_summary, run_qc

log = stage_logger(__file__)


@stage_main
def main() -> None:
    params = cli_params(__doc__, QCConfig, WorkersConfig)
    manifest = read_parquet(SLICES)
    qc = run_qc(manifest, SLICES_DIR, params.qc, cpu_budget(params.train.workers))
    write_parquet(QC, qc)
    summary = qc_summary(manifest, qc, read_parquet(CLINICAL))
    write_json(METRICS / "qc.json", summary)
    reasons = {k: v for k, v in summary["excluded_by_reason"].items() if v}
    log.info(
        f"kept {summary['rows']['kept']} ({summary['rows']['ambiguous_kept']} ambiguous), "
        f"excluded {summary['rows']['excluded']} {reasons}"
    )
    for patient, why in summary["unusable_cases"].items():
        log.info(f"excluded {patient}: {why}")
    for kind, noted in summary["notes"].items():
        log.info(f"note {kind} for {noted['count']} patient(s): {sorted(noted['patients'])}")
    if summary["clinical"]["without_images"]:
        log.info(f"clinical rows without images: {summary['clinical']['without_images']}")


if __name__ == "__main__":
    main()
