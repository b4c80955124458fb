"""prepare: window and resize every QC-passed slice into data/processed/ (no sampling: see train)."""

import numpy as np

from crlm.config import cli_params
from crlm.data.labels import is_ambiguous
from crlm.data.prepare import kept_slices, prepare_images, processed_manifest
from crlm.io import read_parquet, write_parquet
from crlm.paths import PROCESSED_ARRAYS, PROCESSED_MANIFEST, QC, SLICES, SLICES_DIR


def main() -> None:
    params = cli_params(__doc__)
    kept = kept_slices(read_parquet(SLICES), read_parquet(QC))
    arrays = prepare_images(kept, SLICES_DIR, params.data.image_size, params.prepare)
    PROCESSED_ARRAYS.parent.mkdir(parents=True, exist_ok=True)
    np.savez(PROCESSED_ARRAYS, **arrays)
    write_parquet(PROCESSED_MANIFEST, processed_manifest(kept))
    print(f"prepare: {len(kept)} images ({int(kept['label'].sum())} metastasis, "
          f"{int(is_ambiguous(kept).sum())} ambiguous) at {params.data.image_size} px")


if __name__ == "__main__":
    main()
