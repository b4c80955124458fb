"""split: patient-level test set (an internal hold-out, or split.external's source or phantom site) and
stratified grouped folds, with a leak check."""

from crlm.core.config import cli_params
from crlm.core.io import read_parquet, write_json
from crlm.core.logs import stage_logger, stage_main
from crlm.core.paths import CLINICAL, METRICS, PROCESSED_MANIFEST, SPLITS
from crlm.data.split_making import NO_EXTERNAL, SplitConfig, make_splits, splits_summary
from crlm.data.splits import Splits

log = stage_logger(__file__)


@stage_main
def main() -> None:
    params = cli_params(__doc__, SplitConfig)
    manifest = read_parquet(PROCESSED_MANIFEST)
    sites = None
    if params.split.site is not None:  # a phantom site: the clinical table's site column
        clinical = read_parquet(CLINICAL)
        sites = clinical.set_index("patient_id")["site"] if "site" in clinical.columns else None
    splits = make_splits(manifest, params.split, sites)
    Splits.from_dict(splits).write(SPLITS)
    summary = splits_summary(manifest, splits)
    write_json(METRICS / "splits.json", summary)
    test = "internal hold-out" if params.split.external == NO_EXTERNAL else f"external: {params.split.external}"
    log.info(
        f"{summary['test']['patients']} test patients ({test}; {summary['test']['images']} images, prevalence "
        f"{summary['test']['metastasis_fraction']}), {len(splits['folds'])} folds over "
        f"{summary['development']['patients']} development patients"
    )


if __name__ == "__main__":
    main()
