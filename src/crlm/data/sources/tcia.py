"""TCIA Colorectal-Liver-Metastases through idc-index: DICOM CT series, expert DICOM-SEGs, the clinical table."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from crlm.config import DataConfig, Params
from crlm.data import tcia
from crlm.data.dicom import read_ct_series, read_seg_labels
from crlm.data.nifti import Volume
from crlm.data.sources.base import Case, natural_key, require_label

NO_TUMOUR_SEGMENT = "no_tumour_segment"     # the note of a SEG without a tumour segment (see qc.py)


class TciaSource:
    name = "tcia"
    regenerate = False     # downloads resume

    def fetch(self, raw_dir: Path, params: Params, dry_run: bool = False) -> str:
        cfg = params.data.tcia
        rows = tcia.selection(tcia.bundled_index(), cfg.max_patients, cfg.include_ai_segmentations)
        plan = tcia.plan_summary(rows)
        text = (f"tcia: {plan['patients']} patients, series {plan['series_by_modality']}, "
                f"{plan['instances']} files, {plan['size_gb']} GB")
        if dry_run:
            return text + " (dry run: nothing fetched)"
        out = raw_dir / self.name
        fetched = tcia.fetch(rows, out / "dicom")
        tcia.write_clinical(cfg.clinical, out / "clinical.csv")
        return text + f"; {len(fetched)} series downloaded, the rest already there"

    def cases(self, raw_dir: Path, data_cfg: DataConfig) -> list[Case]:
        return tcia_cases(raw_dir / self.name)

    def clinical_csv(self, raw_dir: Path) -> Path | None:
        return raw_dir / self.name / "clinical.csv"

    def read(self, case: Case) -> tuple[Volume, np.ndarray, str]:
        """The CT series and its SEG; a SEG with no tumour segment reads as tumour-free, with a note."""
        ct = read_ct_series(case.volume_path)
        require_label(case)
        seg = read_seg_labels(case.label_path, ct)
        note = "" if seg.tumour_segments else (
            f"{NO_TUMOUR_SEGMENT}: {case.label_path} has no tumour segment (segments: "
            f"{sorted(seg.liver_segments + seg.other_segments)}); every slice is labelled non-metastasis")
        return ct.volume, seg.array, note


def tcia_cases(source_dir: Path) -> list[Case]:
    """One case per patient folder under dicom/: its CT series folder and its expert SEG file.

    A patient without a SEG (or without a CT) is still listed, with the missing path,
    so QC records it (missing_mask / missing_ct) instead of it vanishing.
    """
    root = source_dir / "dicom"
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no DICOM folder; run the fetch stage first")
    cases = []
    for patient in sorted((p for p in root.iterdir() if p.is_dir()), key=lambda p: natural_key(p.name)):
        cts = sorted(patient.glob("CT_*"))
        segs = sorted(patient.glob("SEG_*"))
        ct = cts[0] if cts else patient / "CT_missing"
        seg_files = [f for folder in segs for f in sorted(folder.iterdir()) if f.is_file()]
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
