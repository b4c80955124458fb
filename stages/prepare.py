"""prepare: window and resize every QC-passed slice into data/processed/ (no sampling: see train): the images,
tumour and liver masks as .npy arrays the later stages memory-map, and the manifest, which records each
image's crop box (crlm.data.prepare.CROP_COLUMNS)."""

from crlm.core.config import cli_params
from crlm.core.io import read_parquet, write_parquet
from crlm.core.logs import stage_logger, stage_main
from crlm.core.paths import PROCESSED, PROCESSED_MANIFEST, QC, SLICES, SLICES_DIR
from crlm.data.config import PrepareConfig
from crlm.data.labels import is_ambiguous
from crlm.data.pool import WorkersConfig, cpu_budget
from crlm.data.prepare import kept_slices, processed_manifest, write_prepared

log = stage_logger(__file__)


@stage_main
def main() -> None:
    params = cli_params(__doc__, PrepareConfig, WorkersConfig)
    kept = kept_slices(read_parquet(SLICES), read_parquet(QC))
    boxes = write_prepared(kept, SLICES_DIR, params.prepare, PROCESSED, cpu_budget(params.train.workers))
    write_parquet(PROCESSED_MANIFEST, processed_manifest(kept, boxes))
    log.info(
        f"{len(kept)} images ({int(kept['label'].sum())} metastasis, "
        f"{int(is_ambiguous(kept).sum())} ambiguous) at {params.prepare.image_size} px"
    )


if __name__ == "__main__":
    main()
