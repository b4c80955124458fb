"""TCIA Colorectal-Liver-Metastases through idc-index: DICOM CT series, expert DICOM-SEGs, the clinical table."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from crlm.data.config import DataConfig

if TYPE_CHECKING:
    from crlm.params import Params
from crlm.data import tcia
from crlm.data.dicom import read_ct_series, read_seg_labels
from crlm.data.nifti import Volume
from crlm.data.sources.base import Case, Fetched, natural_key, require_label
from crlm.data.sources.store import Listing, all_files

NO_TUMOUR_SEGMENT = "no_tumour_segment"  # the note of a SEG without a tumour segment (see qc.py)


class TciaSource:
    name = "tcia"
    regenerate = False  # downloads resume

    def folder(self, params: Params) -> str:
        return self.name

    def fetch(self, source_dir: Path, params: Params, dry_run: bool = False, workers: int = 1) -> Fetched:
        cfg = params.data.tcia
        rows = tcia.selection(tcia.bundled_index(), cfg.max_patients, cfg.include_ai_segmentations)
        plan = tcia.plan_summary(rows)
        text = (
            f"tcia: {plan['patients']} patients, series {plan['series_by_modality']}, "
            f"{plan['instances']} files, {plan['size_gb']} GB"
        )
        if dry_run:
            return Fetched(text + " (dry run: nothing fetched)")
        fetched = tcia.fetch(rows, source_dir / "dicom")
        tcia.write_clinical(cfg.clinical, source_dir / "clinical.csv")
        # the selection's files only: the folder may hold other experiments' patients too
        files = ["clinical.csv"]
        for row in rows.itertuples():
            series = tcia.series_folder(source_dir / "dicom", row)
            files += [(series / rel).relative_to(source_dir).as_posix() for rel in all_files(series)]
        return Fetched(text + f"; {len(fetched)} series downloaded, the rest already there", tuple(files))

    def cases(self, source_dir: Path, data_cfg: DataConfig, listed: Listing | None = None) -> list[Case]:
        return tcia_cases(source_dir, listed)

    def clinical_csv(self, source_dir: Path) -> Path | None:
        return source_dir / "clinical.csv"

    def read(self, case: Case) -> tuple[Volume, np.ndarray, str]:
        """The CT series and its SEG; a SEG with no tumour segment reads as tumour-free, with a note."""
        ct = read_ct_series(case.volume_path)
        require_label(case)
        seg = read_seg_labels(case.label_path, ct)
        note = (
            ""
            if seg.tumour_segments
            else (
                f"{NO_TUMOUR_SEGMENT}: {case.label_path} has no tumour segment (segments: "
                f"{sorted(seg.liver_segments + seg.other_segments)}); every slice is labelled non-metastasis"
            )
        )
        return ct.volume, seg.array, note


def tcia_cases(source_dir: Path, listed: Listing | None = None) -> list[Case]:
    """One case per patient folder under dicom/: its CT series folder and its expert SEG file; with `listed`,
    only the patients and series it names.

    A patient without a SEG (or without a CT) is still listed, with the missing path,
    so QC records it (missing_mask / missing_ct) instead of it vanishing.
    """
    root = source_dir / "dicom"
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no DICOM folder; run the fetch stage first")

    def kept(path: Path) -> bool:
        return listed is None or path in listed

    cases = []
    for patient in sorted((p for p in root.iterdir() if p.is_dir() and kept(p)), key=lambda p: natural_key(p.name)):
        cts = sorted(p for p in patient.glob("CT_*") if kept(p))
        segs = sorted(p for p in patient.glob("SEG_*") if kept(p))
        ct = cts[0] if cts else patient / "CT_missing"
        seg_files = [f for folder in segs for f in sorted(folder.iterdir()) if f.is_file() and kept(f)]
        label = _expert_seg(seg_files) if seg_files else patient / "SEG_missing" / "seg.dcm"
        cases.append(Case("tcia", patient.name, ct, label))
    return cases


def _expert_seg(files: list[Path]) -> Path:
    """The expert segmentation ("Segmentation") when AI segmentations were fetched too."""
    import pydicom

    for path in files:
        if str(pydicom.dcmread(path, stop_before_pixels=True).get("SeriesDescription", "")) == "Segmentation":
            return path
    return files[0]
