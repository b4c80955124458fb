"""prepare: window, resize and class-balance the kept slices into data/processed/."""

import numpy as np

from crlm.config import cli_params
from crlm.data.prepare import prepare_images, processed_manifest, select_slices
from crlm.io import read_parquet, write_parquet
from crlm.paths import PROCESSED_ARRAYS, PROCESSED_MANIFEST, QC, SLICES, SLICES_DIR


def main() -> None:
    params = cli_params(__doc__)
    manifest = read_parquet(SLICES)
    qc = read_parquet(QC)
    kept = manifest[manifest["image_id"].isin(qc.loc[qc["kept"], "image_id"])]
    selected = select_slices(kept, params.prepare)
    arrays = prepare_images(selected, SLICES_DIR, params.data.image_size, params.prepare)
    PROCESSED_ARRAYS.parent.mkdir(parents=True, exist_ok=True)
    np.savez(PROCESSED_ARRAYS, **arrays)
    write_parquet(PROCESSED_MANIFEST, processed_manifest(selected))
    print(f"prepare: {len(kept)} kept slices -> {len(selected)} images "
          f"({int(selected['label'].sum())} metastasis) at {params.data.image_size} px")


if __name__ == "__main__":
    main()
