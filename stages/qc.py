"""qc: rule-based exclusions with one reason per slice; counts in metrics/qc.json."""

from crlm.config import cli_params
from crlm.data.qc import qc_summary, run_qc
from crlm.io import read_parquet, write_json, write_parquet
from crlm.paths import CLINICAL, METRICS, QC, SLICES, SLICES_DIR


def main() -> None:
    params = cli_params(__doc__)
    manifest = read_parquet(SLICES)
    qc = run_qc(manifest, SLICES_DIR, params.qc)
    write_parquet(QC, qc)
    summary = qc_summary(manifest, qc, read_parquet(CLINICAL))
    write_json(METRICS / "qc.json", summary)
    reasons = {k: v for k, v in summary["excluded_by_reason"].items() if v}
    print(f"qc: kept {summary['rows']['kept']} ({summary['rows']['ambiguous_kept']} ambiguous), "
          f"excluded {summary['rows']['excluded']} {reasons}")
    for patient, why in summary["unusable_cases"].items():
        print(f"qc: excluded {patient}: {why}")
    for kind, noted in summary["notes"].items():
        print(f"qc: note {kind} for {noted['count']} patient(s): {sorted(noted['patients'])}")
    if summary["clinical"]["without_images"]:
        print(f"qc: clinical rows without images: {summary['clinical']['without_images']}")


if __name__ == "__main__":
    main()
