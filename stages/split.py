"""split: patient-level test set and stratified grouped folds, with a leak check."""

from crlm.core.config import cli_params
from crlm.core.io import read_parquet, write_json
from crlm.core.logs import stage_logger, stage_main
from crlm.core.paths import METRICS, PROCESSED_MANIFEST, SPLITS
from crlm.data.splits import SplitConfig, Splits, make_splits, splits_summary

log = stage_logger(__file__)


@stage_main
def main() -> None:
    params = cli_params(__doc__, SplitConfig)
    manifest = read_parquet(PROCESSED_MANIFEST)
    splits = make_splits(manifest, params.split)
    Splits.from_dict(splits).write(SPLITS)
    summary = splits_summary(manifest, splits)
    write_json(METRICS / "splits.json", summary)
    log.info(
        f"{summary['test']['patients']} test patients ({summary['test']['images']} images, prevalence "
        f"{summary['test']['metastasis_fraction']}), {len(splits['folds'])} folds over "
        f"{summary['development']['patients']} development patients"
    )


if __name__ == "__main__":
    main()
