"""TCIA Colorectal-Liver-Metastases through idc-index: the download plan, a resumable download, and the cases.

No credentials are needed. The plan comes from the index that ships with
idc-index (no network): one CT series and the expert DICOM-SEG ("Segmentation",
no analysis_result_id) per patient; the AI annotations (analysis results) only
when `data.tcia.include_ai_segmentations` asks for them. Files land in
<raw store>/tcia/dicom/<PatientID>/<Modality>_<SeriesInstanceUID>/ (crlm.core.paths.raw_dir()). A series whose
folder already holds the index's instance count is not fetched again.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from crlm.core.logs import bars_enabled

COLLECTION = "colorectal_liver_metastases"
DIR_TEMPLATE = "%PatientID/%Modality_%SeriesInstanceUID"
IDC_PATIENT_COLUMN = "dicom_patient_id"  # IDC's clinical tables: the DICOM PatientID of each row
SURVIVAL_COLUMN = "overall_survival_months"
COLUMNS = [
    "PatientID",
    "Modality",
    "SeriesInstanceUID",
    "SeriesDescription",
    "analysis_result_id",
    "instanceCount",
    "series_size_MB",
]


def bundled_index() -> pd.DataFrame:
    """idc-index's series table (shipped with the package: no network)."""
    from idc_index import IDCClient

    return IDCClient().index


def selection(index: pd.DataFrame, max_patients: int = 0, include_ai: bool = False) -> pd.DataFrame:
    """The collection's CT and SEG series to fetch, patients in sorted order, the first max_patients (0: all)."""
    rows = index[(index["collection_id"] == COLLECTION) & index["Modality"].isin(["CT", "SEG"])]
    if not include_ai:
        rows = rows[rows["analysis_result_id"].isna()]
    rows = rows[COLUMNS].sort_values(["PatientID", "Modality", "SeriesInstanceUID"]).reset_index(drop=True)
    if max_patients:
        keep = sorted(rows["PatientID"].unique())[:max_patients]
        rows = rows[rows["PatientID"].isin(keep)].reset_index(drop=True)
    return rows


def plan_summary(rows: pd.DataFrame) -> dict:
    return {
        "patients": int(rows["PatientID"].nunique()),
        "series_by_modality": {m: int(n) for m, n in rows["Modality"].value_counts().sort_index().items()},
        "instances": int(rows["instanceCount"].sum()),
        "size_gb": round(float(rows["series_size_MB"].sum()) / 1024, 2),
    }


def series_folder(root: Path, row) -> Path:
    return Path(root) / str(row.PatientID) / f"{row.Modality}_{row.SeriesInstanceUID}"


def missing_series(rows: pd.DataFrame, root: Path) -> pd.DataFrame:
    """Series whose folder does not hold exactly the index's number of files (absent or interrupted)."""

    def complete(row) -> bool:
        folder = series_folder(root, row)
        return folder.is_dir() and sum(1 for p in folder.iterdir() if p.is_file()) == int(row.instanceCount)

    return rows[[not complete(row) for row in rows.itertuples()]]


def idc_download(series_uids: list[str], root: Path) -> None:
    from idc_index import IDCClient

    IDCClient().download_from_selection(
        downloadDir=str(root), seriesInstanceUID=series_uids, dirTemplate=DIR_TEMPLATE, show_progress_bar=bars_enabled()
    )


def fetch(rows: pd.DataFrame, root: Path, download: Callable[[list[str], Path], None] = idc_download) -> list[str]:
    """Download what is missing, then check every series is complete; returns the fetched series UIDs."""
    todo = missing_series(rows, root)
    if len(todo):
        for row in todo.itertuples():  # an interrupted series is fetched again from scratch
            folder = series_folder(root, row)
            if folder.is_dir():
                for path in folder.iterdir():
                    path.unlink()
        download(todo["SeriesInstanceUID"].tolist(), root)
    still = missing_series(rows, root)
    if len(still):
        first = still.iloc[0]
        raise RuntimeError(
            f"{len(still)} TCIA series incomplete after download, e.g. "
            f"{series_folder(root, first)} (expected {first.instanceCount} files); rerun fetch"
        )
    return todo["SeriesInstanceUID"].tolist()


def write_clinical(spec: str, out: Path, client=None) -> None:
    """<raw store>/tcia/clinical.csv from idc-index's clinical tables ("idc", network; `client` is an
    idc_index.IDCClient) or a local CSV/XLSX copy of TCIA's clinical spreadsheet; the slices stage
    normalises it (-999, percentages, codes)."""
    if spec == "idc":
        table = idc_clinical_table(client)
        origin = "idc-index clinical table"
    else:
        path = Path(spec)
        if not path.is_file():
            raise FileNotFoundError(f"data.tcia.clinical: {path} not found (give TCIA's clinical CSV/XLSX, or 'idc')")
        if path.suffix.lower() in (".xlsx", ".xls"):
            try:
                table = pd.read_excel(path, dtype=str)
            except ImportError as exc:
                raise ImportError(
                    f"{path}: reading Excel needs openpyxl (pip install openpyxl), or save the sheet as CSV"
                ) from exc
        else:
            table = pd.read_csv(path, dtype=str)
        origin = str(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with_patient_id(table, origin).to_csv(out, index=False)


def with_patient_id(table: pd.DataFrame, origin: str) -> pd.DataFrame:
    """The table with its patient column named Patient-ID. IDC's tables carry `dicom_patient_id` (the
    DICOM PatientID, which names the image folders) beside their own copy of TCIA's id: the DICOM one wins."""
    if IDC_PATIENT_COLUMN in table.columns:
        return table.rename(columns={IDC_PATIENT_COLUMN: "Patient-ID"})
    ids = [c for c in table.columns if c.lower().replace("_", "-") == "patient-id"]
    if not ids:
        raise ValueError(f"TCIA clinical table from {origin}: no Patient-ID column (columns: {list(table.columns)})")
    return table.rename(columns={ids[0]: "Patient-ID"})


def clinical_table_name(clinical_index: pd.DataFrame) -> str:
    """The short name (as get_clinical_table takes it) of the collection's clinical table: the one of the
    collection's tables in idc-index's clinical index that has the survival column."""
    rows = clinical_index[clinical_index["collection_id"] == COLLECTION]
    if rows.empty:
        raise RuntimeError(
            f"idc-index's clinical index has no table for {COLLECTION}; set data.tcia.clinical "
            "to a local copy of TCIA's clinical spreadsheet"
        )
    short = rows["short_table_name"]
    with_survival = sorted(set(short[rows["column"] == SURVIVAL_COLUMN]))
    if len(with_survival) != 1:
        raise RuntimeError(
            f"idc-index's clinical index lists tables {sorted(set(short))} for {COLLECTION}; "
            f"expected exactly one with '{SURVIVAL_COLUMN}', found {with_survival}"
        )
    return with_survival[0]


def idc_clinical_table(client=None) -> pd.DataFrame:
    if client is None:
        from idc_index import IDCClient

        client = IDCClient()
    if client.clinical_index is None:
        client.fetch_index("clinical_index")  # network: the index and the collections' tables
    name = clinical_table_name(client.clinical_index)
    table = client.get_clinical_table(name)
    if table is None:  # idc-index logs the reason and returns None
        raise RuntimeError(
            f"idc-index could not load clinical table {name!r} for {COLLECTION} "
            f"(from {client.clinical_data_dir}); set data.tcia.clinical to a local copy instead"
        )
    return table
