"""What every data source shares: the case, the source interface, and reading a NIfTI case."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from crlm.data.config import DataConfig

if TYPE_CHECKING:
    from crlm.params import Params
from crlm.data.nifti import Volume, read_nifti
from crlm.data.sources.store import Listing

VOLUME_FILE = re.compile(r"^volume-(.+?)\.nii(\.gz)?$")  # LiTS's volume file name: volume-<case id>.nii[.gz]


@dataclass(frozen=True)
class Case:
    source: str
    case_id: str  # the id inside its source (LiTS number, TCIA Patient-ID)
    volume_path: Path  # NIfTI file, or the CT series folder (tcia)
    label_path: Path  # NIfTI label map, or the DICOM-SEG file (tcia)

    @property
    def patient_id(self) -> str:
        return patient_id(self.source, self.case_id)


def patient_id(source: str, case_id: str) -> str:
    """Pipeline-wide patient id: prefixed by the source so ids never collide."""
    return f"{source}-{case_id}"


class CaseError(Exception):
    """A case that cannot be used: `reason` is the QC reason, the message names the file."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


@dataclass(frozen=True)
class Fetched:
    summary: str  # one line for the log
    files: tuple[str, ...] = ()  # what the source provides in its folder (relative paths; none on a dry run)


class Source(Protocol):
    """One data source: its folder in the raw store, what fetch puts there, its cases, clinical table and reader."""

    name: str  # its name in data.sources and the prefix of its patient ids
    regenerate: bool  # generated (phantom): written whole into a folder named by what generates it, not resumed

    def folder(self, params: Params) -> str:
        """Its folder in the raw store (crlm.core.paths.raw_dir()), which data/raw.json records."""

    def fetch(self, source_dir: Path, params: Params, dry_run: bool = False, workers: int = 1) -> Fetched:
        """Write (or resume, or keep) source_dir and check it; a one-line summary and the files it provides.
        dry_run fetches nothing (and says what it would); `workers`: the CPU cores it may use."""

    def cases(self, source_dir: Path, data_cfg: DataConfig, listed: Listing | None = None) -> list[Case]:
        """Every case in source_dir (only those `listed` names, when given: the files data/raw.json lists),
        one without its label map too (QC records it)."""

    def clinical_csv(self, source_dir: Path) -> Path | None:
        """Its clinical table in TCIA's columns, or None for an image-only source."""

    def read(self, case: Case) -> tuple[Volume, np.ndarray, str]:
        """The volume (HU), its label map (0 background, 1 liver, 2 tumour), aligned slice by slice, and a
        note ("" or why every slice's label is uncertain). Raises VolumeReadError or CaseError."""


def read_nifti_case(case: Case) -> tuple[Volume, np.ndarray, str]:
    """A NIfTI volume and its NIfTI label map of the same shape (no note)."""
    volume = read_nifti(case.volume_path)
    require_label(case)
    labels = read_nifti(case.label_path)
    if labels.array.shape != volume.array.shape:
        raise CaseError(
            "shape_mismatch",
            f"{case.label_path}: label shape {labels.array.shape} differs from "
            f"volume shape {volume.array.shape} ({case.volume_path})",
        )
    return volume, labels.array, ""


def require_label(case: Case) -> None:
    if not case.label_path.is_file():
        raise CaseError("missing_mask", f"{case.label_path}: label map not found for {case.volume_path}")


def natural_key(text: str) -> tuple:
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text))
