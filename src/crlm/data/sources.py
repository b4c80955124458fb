"""Where each data source lives on disk and how its cases are found.

fetch writes `data/raw/<source>/` exactly as the source gives it; this module
lists the cases (volume + label map + clinical table) that the slices stage
reads. Real-data sources (tcia, lits) are wired in with their own fetchers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from crlm.config import KNOWN_SOURCES, PhantomConfig
from crlm.data import phantom


@dataclass(frozen=True)
class Case:
    source: str
    case_id: str  # the id inside its source (LiTS number, TCIA Patient-ID)
    volume_path: Path
    label_path: Path

    @property
    def patient_id(self) -> str:
        return patient_id(self.source, self.case_id)


def patient_id(source: str, case_id: str) -> str:
    """Pipeline-wide patient id: prefixed by the source so ids never collide."""
    return f"{source}-{case_id}"


def fetch(source: str, raw_dir: Path, phantom_cfg: PhantomConfig) -> None:
    if source == "phantom":
        phantom.write_phantom(phantom_cfg, raw_dir / "phantom")
        return
    if source in KNOWN_SOURCES:
        raise NotImplementedError(
            f"data source {source!r} has no downloader yet (issue 5); use data.sources: [phantom]"
        )
    raise ValueError(f"unknown data source {source!r}; valid: {list(KNOWN_SOURCES)}")


_LITS_VOLUME = re.compile(r"^volume-(.+?)\.nii(\.gz)?$")


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


def list_cases(source: str, raw_dir: Path) -> list[Case]:
    if source == "phantom":
        return lits_style_cases(source, raw_dir / source)
    raise ValueError(f"unknown or unsupported data source {source!r}; valid: {list(KNOWN_SOURCES)}")


def clinical_csv(source: str, raw_dir: Path) -> Path | None:
    """The source's clinical table in TCIA's columns, or None for image-only sources."""
    if source == "phantom":
        return raw_dir / source / "clinical.csv"
    return None


def _natural_key(text: str) -> tuple:
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text))
