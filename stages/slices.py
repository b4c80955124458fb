"""slices: liver-containing axial slices + tumour masks, and the normalised clinical table."""

import shutil

import pandas as pd

from crlm.config import cli_params
from crlm.data.clinical import normalise_clinical
from crlm.data.slices import build_slices
from crlm.data.sources import clinical_csv, list_cases
from crlm.io import write_parquet
from crlm.paths import CLINICAL, RAW, SLICES, SLICES_DIR


def main() -> None:
    params = cli_params(__doc__)
    cases = [case for source in params.data.sources
             for case in list_cases(source, RAW, params.data.lits.max_volumes)]
    shutil.rmtree(SLICES_DIR, ignore_errors=True)
    manifest = build_slices(cases, SLICES_DIR, params.slices.min_tumor_px)
    write_parquet(SLICES, manifest)

    tables = []
    for source in params.data.sources:
        path = clinical_csv(source, RAW)
        if path is not None:
            tables.append(normalise_clinical(pd.read_csv(path, dtype=str), source, origin=str(path)))
    clinical = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(
        {"patient_id": pd.Series(dtype=str), "source": pd.Series(dtype=str), "case_id": pd.Series(dtype=str)})
    write_parquet(CLINICAL, clinical.sort_values("patient_id", kind="stable"))
    usable = (manifest["slice_index"] >= 0).sum()
    print(f"slices: {len(cases)} cases -> {usable} liver slices "
          f"({int(manifest['label'].eq(1).sum())} metastasis); {len(clinical)} clinical rows")


if __name__ == "__main__":
    main()
