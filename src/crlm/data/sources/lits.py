"""LiTS from Kaggle: volumes and segmentations wherever its archives put them; no clinical data."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from crlm.config import DataConfig, Params
from crlm.data import lits
from crlm.data.nifti import Volume
from crlm.data.sources.base import VOLUME_FILE, Case, natural_key, read_nifti_case

_LABEL = re.compile(r"^segmentation-(.+?)\.nii(\.gz)?$")


class LitsSource:
    name = "lits"
    regenerate = False     # downloads resume

    def fetch(self, raw_dir: Path, params: Params, dry_run: bool = False) -> str:
        if dry_run:
            return f"lits: Kaggle datasets {list(params.data.lits.datasets)} (no plan without the Kaggle API)"
        fetched = lits.fetch(params.data.lits, raw_dir / self.name)
        return f"lits: {len(fetched)} dataset(s) downloaded, the rest already there"

    def cases(self, raw_dir: Path, data_cfg: DataConfig) -> list[Case]:
        return lits_kaggle_cases(raw_dir / self.name / "extracted", data_cfg.lits.max_volumes)

    def clinical_csv(self, raw_dir: Path) -> Path | None:
        return None        # image-only: recognition and segmentation, no survival

    def read(self, case: Case) -> tuple[Volume, np.ndarray, str]:
        return read_nifti_case(case)


def lits_kaggle_cases(root: Path, max_volumes: int = 0) -> list[Case]:
    """LiTS as Kaggle ships it: volume-N.nii in volume_pt*/ folders, segmentation-N.nii in segmentations/
    (any depth under root); the first max_volumes by number (0: all)."""
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no extracted LiTS data; run the fetch stage first")
    labels = {}
    for path in root.rglob("segmentation-*.nii*"):
        labels[_LABEL.match(path.name).group(1)] = path
    cases = []
    for path in root.rglob("volume-*.nii*"):
        match = VOLUME_FILE.match(path.name)
        if match:
            case_id = match.group(1)
            label = labels.get(case_id, path.parent / f"segmentation-{case_id}.nii{match.group(2) or ''}")
            cases.append(Case("lits", case_id, path, label))
    cases.sort(key=lambda c: natural_key(c.case_id))
    return cases[:max_volumes] if max_volumes else cases
