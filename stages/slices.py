"""slices: liver-containing axial slices + tumour masks, and the normalised clinical table.

Reads the raw store (crlm.core.paths.raw_dir()) through data/raw.json: every file it lists must be there
with its size and md5, or the stage stops with one error naming the file and the fix. A case that is
there but cannot be read is excluded by QC, with a warning naming the file in the store.
"""

import shutil

import pandas as pd

from crlm.core.config import cli_params
from crlm.core.io import write_parquet
from crlm.core.logs import stage_logger, stage_main
from crlm.core.options import look_up
from crlm.core.paths import CLINICAL, RAW_MANIFEST, SLICES, SLICES_DIR, raw_dir
from crlm.data.clinical import normalise_clinical
from crlm.data.config import DataConfig, SlicesConfig
from crlm.data.pool import WorkersConfig, cpu_budget
from crlm.data.slices import build_slices
from crlm.data.sources import SOURCES
from crlm.data.sources.store import as_in_default_store, checked_folder, read_manifest

log = stage_logger(__file__)


@stage_main
def main() -> None:
    params = cli_params(__doc__, DataConfig, SlicesConfig, WorkersConfig)
    listed, store = read_manifest(RAW_MANIFEST), raw_dir()
    checked = {name: checked_folder(listed, name, store) for name in params.data.sources}  # before reading any
    folders = {name: folder for name, (folder, _) in checked.items()}
    cases = [
        case
        for name, (folder, listing) in checked.items()
        for case in look_up("data.sources", name, SOURCES).cases(folder, params.data, listing)
    ]
    shutil.rmtree(SLICES_DIR, ignore_errors=True)
    manifest = build_slices(cases, SLICES_DIR, params.slices.min_tumor_px, cpu_budget(params.train.workers))
    for case in manifest[manifest["case_error"] == "unreadable"].itertuples():
        log.warning(
            f"{case.patient_id} excluded (QC: unreadable): {case.detail}; the file has the md5 "
            f"{RAW_MANIFEST} lists, so it was so when fetched: if the source's copy is sound, "
            "`dvc repro -f fetch` fetches it again"
        )
    # QC details name raw files as data/raw/<source>/...: the outputs do not depend on where the store is
    write_parquet(SLICES, as_in_default_store(manifest, folders, ["detail", "note"]))

    tables = []
    for name in params.data.sources:
        path = SOURCES[name].clinical_csv(folders[name])
        if path is not None:
            tables.append(normalise_clinical(pd.read_csv(path, dtype=str), name, origin=str(path)))
    clinical = (
        pd.concat(tables, ignore_index=True)
        if tables
        else pd.DataFrame(
            {"patient_id": pd.Series(dtype=str), "source": pd.Series(dtype=str), "case_id": pd.Series(dtype=str)}
        )
    )
    write_parquet(CLINICAL, clinical.sort_values("patient_id", kind="stable"))
    usable = (manifest["slice_index"] >= 0).sum()
    log.info(
        f"{len(cases)} cases -> {usable} liver slices "
        f"({int(manifest['label'].eq(1).sum())} metastasis); {len(clinical)} clinical rows"
    )


if __name__ == "__main__":
    main()
