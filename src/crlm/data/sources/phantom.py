"""The phantom: generated CT volumes with planted metastases, in LiTS's file layout, and its clinical table."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from crlm.config import DataConfig, Params
from crlm.data import phantom
from crlm.data.nifti import Volume
from crlm.data.sources.base import VOLUME_FILE, Case, natural_key, read_nifti_case


class PhantomSource:
    name = "phantom"
    regenerate = True      # generated: fetch rebuilds it from scratch

    def fetch(self, raw_dir: Path, params: Params, dry_run: bool = False) -> str:
        if not dry_run:
            phantom.write_phantom(params.phantom, raw_dir / self.name)
        return f"phantom: {params.phantom.n_patients} generated patients"

    def cases(self, raw_dir: Path, data_cfg: DataConfig) -> list[Case]:
        return volume_folder_cases(self.name, raw_dir / self.name)

    def clinical_csv(self, raw_dir: Path) -> Path | None:
        return raw_dir / self.name / "clinical.csv"

    def read(self, case: Case) -> tuple[Volume, np.ndarray, str]:
        return read_nifti_case(case)


def volume_folder_cases(source: str, source_dir: Path) -> list[Case]:
    """Cases in a volumes/volume-N.nii[.gz] folder with segmentations/segmentation-N.nii[.gz] beside it
    (LiTS's file names, as the phantom writes them).

    A volume without its segmentation is still listed (label_path does not
    exist), so the slices stage can record it instead of dropping it.
    """
    volume_dir = source_dir / "volumes"
    if not volume_dir.is_dir():
        raise FileNotFoundError(f"{volume_dir}: no volumes folder; run the fetch stage first")
    cases = []
    for path in volume_dir.iterdir():
        match = VOLUME_FILE.match(path.name)
        if not match:
            continue
        case_id, gz = match.group(1), match.group(2) or ""
        label = source_dir / "segmentations" / f"segmentation-{case_id}.nii{gz}"
        cases.append(Case(source, case_id, path, label))
    return sorted(cases, key=lambda c: natural_key(c.case_id))
