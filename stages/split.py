"""split: patient-level test set and stratified grouped folds, with a leak check."""

from crlm.config import cli_params
from crlm.data.splits import Splits, make_splits, splits_summary
from crlm.io import read_parquet, write_json
from crlm.logs import stage_logger, stage_main
from crlm.paths import METRICS, PROCESSED_MANIFEST, SPLITS

log = stage_logger(__file__)


@stage_main
def main() -> None:
    params = cli_params(__doc__)
    manifest = read_parquet(PROCESSED_MANIFEST)
    splits = make_splits(manifest, params.split)
    Splits.from_dict(splits).write(SPLITS)
    summary = splits_summary(manifest, splits)
    write_json(METRICS / "splits.json", summary)
    log.info(f"{summary['test']['patients']} test patients ({summary['test']['images']} images, prevalence "
             f"{summary['test']['metastasis_fraction']}), {len(splits['folds'])} folds over "
             f"{summary['development']['patients']} development patients")


if __name__ == "__main__":
    main()
