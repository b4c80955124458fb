"""Where each data source lives on disk and how its cases are found.

fetch writes `data/raw/<source>/` exactly as the source gives it; this module
lists the cases (volume + label map + clinical table) that the slices stage
reads. Real-data sources (tcia, lits) are wired in with their own fetchers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from crlm.config import KNOWN_SOURCES, Params, TciaConfig
from crlm.data import lits, phantom, tcia


@dataclass(frozen=True)
class Case:
    source: str
    case_id: str  # the id inside its source (LiTS number, TCIA Patient-ID)
    volume_path: Path       # NIfTI file, or the CT series folder for kind "dicom"
    label_path: Path        # NIfTI label map, or the DICOM-SEG file
    kind: str = "nifti"     # nifti | dicom

    @property
    def patient_id(self) -> str:
        return patient_id(self.source, self.case_id)


def patient_id(source: str, case_id: str) -> str:
    """Pipeline-wide patient id: prefixed by the source so ids never collide."""
    return f"{source}-{case_id}"


def fetch(source: str, raw_dir: Path, params: Params, dry_run: bool = False) -> str:
    """Write data/raw/<source>/; returns a one-line summary. dry_run prints the plan (tcia) and fetches nothing."""
    if source == "phantom":
        if not dry_run:
            phantom.write_phantom(params.phantom, raw_dir / "phantom")
        return f"phantom: {params.phantom.n_patients} generated patients"
    if source == "tcia":
        return _fetch_tcia(params.data.tcia, raw_dir / "tcia", dry_run)
    if source == "lits":
        if dry_run:
            return f"lits: Kaggle datasets {list(params.data.lits.datasets)} (no plan without the Kaggle API)"
        fetched = lits.fetch(params.data.lits, raw_dir / "lits")
        return f"lits: {len(fetched)} dataset(s) downloaded, the rest already there"
    raise ValueError(f"unknown data source {source!r}; valid: {list(KNOWN_SOURCES)}")


def _fetch_tcia(cfg: TciaConfig, out: Path, dry_run: bool) -> str:
    rows = tcia.selection(tcia.bundled_index(), cfg.max_patients, cfg.include_ai_segmentations)
    plan = tcia.plan_summary(rows)
    text = (f"tcia: {plan['patients']} patients, series {plan['series_by_modality']}, "
            f"{plan['instances']} files, {plan['size_gb']} GB")
    if dry_run:
        return text + " (dry run: nothing fetched)"
    fetched = tcia.fetch(rows, out / "dicom")
    tcia.write_clinical(cfg.clinical, out / "clinical.csv")
    return text + f"; {len(fetched)} series downloaded, the rest already there"


_LITS_VOLUME = re.compile(r"^volume-(.+?)\.nii(\.gz)?$")
_LITS_LABEL = re.compile(r"^segmentation-(.+?)\.nii(\.gz)?$")


def lits_style_cases(source: str, source_dir: Path) -> list[Case]:
    """Cases laid out like LiTS: volumes/volume-N.nii[.gz] with segmentations/segmentation-N.nii[.gz].

    A volume without its segmentation is still listed (label_path does not
    exist), so the slices stage can record it instead of dropping it.
    """
    volume_dir = source_dir / "volumes"
    if not volume_dir.is_dir():
        raise FileNotFoundError(f"{volume_dir}: no volumes folder; run the fetch stage first")
    cases = []
    for path in volume_dir.iterdir():
        match = _LITS_VOLUME.match(path.name)
        if not match:
            continue
        case_id, gz = match.group(1), match.group(2) or ""
        label = source_dir / "segmentations" / f"segmentation-{case_id}.nii{gz}"
        cases.append(Case(source, case_id, path, label))
    return sorted(cases, key=lambda c: _natural_key(c.case_id))


def lits_kaggle_cases(root: Path, max_volumes: int = 0) -> list[Case]:
    """LiTS as Kaggle ships it: volume-N.nii in volume_pt*/ folders, segmentation-N.nii in segmentations/
    (any depth under root); the first max_volumes by number (0: all)."""
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no extracted LiTS data; run the fetch stage first")
    labels = {}
    for path in root.rglob("segmentation-*.nii*"):
        labels[_LITS_LABEL.match(path.name).group(1)] = path
    cases = []
    for path in root.rglob("volume-*.nii*"):
        match = _LITS_VOLUME.match(path.name)
        if match:
            case_id = match.group(1)
            label = labels.get(case_id, path.parent / f"segmentation-{case_id}.nii{match.group(2) or ''}")
            cases.append(Case("lits", case_id, path, label))
    cases.sort(key=lambda c: _natural_key(c.case_id))
    return cases[:max_volumes] if max_volumes else cases


def tcia_cases(source_dir: Path) -> list[Case]:
    """One case per patient folder under dicom/: its CT series folder and its expert SEG file.

    A patient without a SEG (or without a CT) is still listed, with the missing path,
    so QC records it (missing_mask / missing_ct) instead of it vanishing.
    """
    root = source_dir / "dicom"
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no DICOM folder; run the fetch stage first")
    cases = []
    for patient in sorted((p for p in root.iterdir() if p.is_dir()), key=lambda p: _natural_key(p.name)):
        cts = sorted(patient.glob("CT_*"))
        segs = sorted(patient.glob("SEG_*"))
        ct = cts[0] if cts else patient / "CT_missing"
        seg_files = [f for folder in segs for f in sorted(folder.iterdir()) if f.is_file()]
        label = _expert_seg(seg_files) if seg_files else patient / "SEG_missing" / "seg.dcm"
        cases.append(Case("tcia", patient.name, ct, label, kind="dicom"))
    return cases


def _expert_seg(files: list[Path]) -> Path:
    """The expert segmentation ("Segmentation") when AI segmentations were fetched too."""
    import pydicom

    for path in files:
        if str(pydicom.dcmread(path, stop_before_pixels=True).get("SeriesDescription", "")) == "Segmentation":
            return path
    return files[0]


def list_cases(source: str, raw_dir: Path, max_volumes: int = 0) -> list[Case]:
    if source == "phantom":
        return lits_style_cases(source, raw_dir / source)
    if source == "tcia":
        return tcia_cases(raw_dir / source)
    if source == "lits":
        return lits_kaggle_cases(raw_dir / source / "extracted", max_volumes)
    raise ValueError(f"unknown or unsupported data source {source!r}; valid: {list(KNOWN_SOURCES)}")


def clinical_csv(source: str, raw_dir: Path) -> Path | None:
    """The source's clinical table in TCIA's columns, or None for image-only sources."""
    if source in ("phantom", "tcia"):
        return raw_dir / source / "clinical.csv"
    return None


def _natural_key(text: str) -> tuple:
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text))
